"""Equipment models: what a type of machine measures, how it fails and how it is serviced.

The catalogue is also the one source of what the anomaly detector knows of a kind of machine:
an equipment model's running indicator and bearing, and per metric its role, limits, healthy
range and drift watch. Together they are the model's *equipment profile*
(:mod:`anomaly.profiles`), imported and exported as YAML by
:mod:`service_crm.adapters.profiles`; the detect worker reads it from these tables.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from anomaly.profiles import ROLES, parse_metric, profile_dict
from service_crm.models.part import SparePart

# The profile's names of settings that have a column of their own, by column.
_SETTING_FIELD = {"mode": "failure_mode", "scored": "role", "ignored": "role",
                  "healthy": "healthy_low", "low": "low", "high": "high",
                  "clear_low": "clear_low", "clear_high": "clear_high",
                  "duration_s": "duration_s", "drift": "drift", "unit": "unit"}


class EquipmentModel(models.Model):
    """A product line we service (e.g. a screw compressor), shared by all its assets."""

    name = models.CharField(max_length=200, unique=True)
    manufacturer = models.CharField(max_length=200, blank=True)
    equipment_type = models.CharField(max_length=40, help_text="compressor, pump, chiller, cnc...")
    contract_list_price = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("1200.00"),
        help_text="Yearly maintenance contract list price per asset (used in offers)",
    )
    expected_life_years = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1)],
        help_text="Service life of a machine of this model; an asset near it is ageing "
                  "(a replacement or retrofit opportunity)",
    )
    # The detector's equipment profile (kind-level part; the metrics are MetricSpec rows).
    kind = models.SlugField(max_length=63, blank=True,
                            help_text="profile name of the kind of machine, e.g. screw_compressor")
    running_metric = models.CharField(
        max_length=63, blank=True,
        help_text="metric that tells whether the machine runs (empty: no profile, generic "
                  "detection for its devices)")
    running_above = models.FloatField(null=True, blank=True,
                                      help_text="the machine runs while that metric is above this")
    bearing_balls = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="rolling elements of the main bearing (spectral check)")
    bearing_pitch_ratio = models.FloatField(
        null=True, blank=True, help_text="ball diameter / pitch diameter of that bearing")
    speed_metric = models.CharField(max_length=63, blank=True,
                                    help_text="shaft speed channel in rpm, if the machine has one")
    profile_updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_profile(self) -> bool:
        return bool(self.running_metric)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.running_metric and self.running_above is None:
            errors["running_above"] = "Give the level above which the machine runs."
        if not self.running_metric and self.running_above is not None:
            errors["running_metric"] = "Name the metric that tells whether the machine runs."
        if (self.bearing_balls is None) != (self.bearing_pitch_ratio is None):
            errors["bearing_pitch_ratio" if self.bearing_pitch_ratio is None
                   else "bearing_balls"] = "Give both the bearing's balls and pitch ratio."
        if self.bearing_balls is not None and self.bearing_balls < 3:
            errors["bearing_balls"] = "A rolling bearing has at least 3 rolling elements."
        if self.bearing_pitch_ratio is not None and not 0 < self.bearing_pitch_ratio < 1:
            errors["bearing_pitch_ratio"] = "The pitch ratio lies between 0 and 1."
        if errors:
            raise ValidationError(errors)


class MetricRole(models.TextChoices):
    EVIDENCE = "evidence", "Evidence of a failure mode"
    INPUT = "input", "Operating input (never a fault)"
    IGNORED = "ignored", "Ignored"


assert tuple(MetricRole.values) == ROLES  # noqa: S101 - the profile's roles, same order


class MetricSpec(models.Model):
    """A telemetry channel of an equipment model: its unit, what it tells the detector (its
    role and the failure mode it points to), its alarm limits with hysteresis and duration, its
    healthy range and whether it is watched for drift."""

    equipment_model = models.ForeignKey(
        EquipmentModel, on_delete=models.CASCADE, related_name="metrics"
    )
    metric = models.CharField(max_length=63,
                              help_text="name as sent by devices, e.g. temperature_c")
    unit = models.CharField(max_length=20, blank=True)
    role = models.CharField(max_length=10, choices=MetricRole.choices,
                            default=MetricRole.EVIDENCE)
    failure_mode = models.CharField(
        max_length=63, blank=True,
        help_text="failure-mode code a deviation here points to (empty: from the metric's name)")
    low = models.FloatField(null=True, blank=True, help_text="alarm below this")
    high = models.FloatField(null=True, blank=True, help_text="alarm above this")
    clear_low = models.FloatField(null=True, blank=True,
                                  help_text="a low alarm clears above this (hysteresis)")
    clear_high = models.FloatField(null=True, blank=True,
                                   help_text="a high alarm clears below this (hysteresis)")
    duration_s = models.FloatField(default=30.0, validators=[MinValueValidator(0.0)],
                                   help_text="a limit counts once crossed this long (seconds)")
    healthy_low = models.FloatField(null=True, blank=True, help_text="normal range, low end")
    healthy_high = models.FloatField(null=True, blank=True, help_text="normal range, high end")
    drift = models.BooleanField(default=False,
                                help_text="steady while running: watch for slow drift")
    settings = models.JSONField(
        default=dict, blank=True,
        help_text="further detector settings of the profile format: min_std, side, transform, "
                  "partners, witnesses, stuck, steps, smooth_s, idle_max, multivariate, "
                  "sensor_range")
    updated_at = models.DateTimeField(auto_now=True)

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
        # The same validation the detector applies when it loads the profile.
        if not isinstance(self.settings, dict):
            raise ValidationError({"settings": "Must be a mapping of setting names to values."})
        clash = sorted(set(self.settings) & set(_SETTING_FIELD))
        if clash:
            raise ValidationError({"settings": f"{clash} have fields of their own."})
        raw = profile_dict({}, [self.profile_columns()])["metrics"][self.metric]
        try:
            parse_metric(raw, self.metric)
        except ValueError as exc:
            message = str(exc)
            key = message.split(": ", 1)[0].removeprefix(f"{self.metric}.").split(".")[0]
            raise ValidationError({_SETTING_FIELD.get(key, "settings"): message}) from None

    def profile_columns(self) -> dict[str, object]:
        """This row in the vocabulary of :func:`anomaly.profiles.profile_dict`."""
        return {"metric": self.metric, "unit": self.unit, "role": self.role,
                "failure_mode": self.failure_mode, "low": self.low, "high": self.high,
                "clear_low": self.clear_low, "clear_high": self.clear_high,
                "duration_s": self.duration_s, "healthy_low": self.healthy_low,
                "healthy_high": self.healthy_high, "drift": self.drift,
                "settings": self.settings}


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
