"""Equipment models: what a type of machine measures, how it fails and how it is serviced."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from service_crm.models.part import SparePart


class EquipmentModel(models.Model):
    """A product line we service (e.g. a screw compressor), shared by all its assets."""

    name = models.CharField(max_length=200, unique=True)
    manufacturer = models.CharField(max_length=200, blank=True)
    equipment_type = models.CharField(max_length=40, help_text="compressor, pump, chiller, cnc...")
    contract_list_price = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("1200.00"),
        help_text="Yearly maintenance contract list price per asset (used in offers)",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MetricSpec(models.Model):
    """A telemetry channel of an equipment model with its unit and normal operating limits."""

    equipment_model = models.ForeignKey(
        EquipmentModel, on_delete=models.CASCADE, related_name="metrics"
    )
    metric = models.CharField(max_length=63,
                              help_text="name as sent by devices, e.g. temperature_c")
    unit = models.CharField(max_length=20)
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["equipment_model", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["equipment_model", "metric"], name="metric_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} [{self.unit}]"

    def clean(self) -> None:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValidationError({"high": "The upper limit must be above the lower limit."})


class FailureMode(models.Model):
    """A way an equipment model fails, as named by the detectors (e.g. ``bearing_wear``)."""

    equipment_model = models.ForeignKey(
        EquipmentModel, on_delete=models.CASCADE, related_name="failure_modes"
    )
    code = models.CharField(max_length=63)
    name = models.CharField(max_length=200)
    required_skill = models.CharField(max_length=40, help_text="engineer skill needed to fix it")
    labour_hours = models.DecimalField(
        max_digits=5, decimal_places=1, default=Decimal("2.0"),
        validators=[MinValueValidator(Decimal("0"))],
    )

    class Meta:
        ordering = ["equipment_model", "code"]
        constraints = [
            models.UniqueConstraint(fields=["equipment_model", "code"], name="failure_mode_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.equipment_model}: {self.name}"


class BomLine(models.Model):
    """One spare part (and how many) a repair of a failure mode usually needs."""

    failure_mode = models.ForeignKey(FailureMode, on_delete=models.CASCADE, related_name="bom")
    part = models.ForeignKey(SparePart, on_delete=models.PROTECT, related_name="bom_lines")
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["failure_mode", "part"]
        constraints = [
            models.UniqueConstraint(fields=["failure_mode", "part"], name="bom_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.part.sku}"


class ServiceTask(models.Model):
    """A standard service task for an equipment model (becomes a work-order checklist item)."""

    equipment_model = models.ForeignKey(
        EquipmentModel, on_delete=models.CASCADE, related_name="service_tasks"
    )
    name = models.CharField(max_length=200)
    interval_days = models.PositiveIntegerField(null=True, blank=True)
    duration_min = models.PositiveIntegerField(default=30)
    skill = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["equipment_model", "name"]

    def __str__(self) -> str:
        return self.name
