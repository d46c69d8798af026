"""Work orders: an engineer's visit to fix what a ticket describes."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from service_crm.models.choices import ChargeKind, WorkOrderStatus
from service_crm.models.engineer import Engineer
from service_crm.models.part import SparePart, Warehouse
from service_crm.models.ticket import Ticket


class WorkOrder(models.Model):
    """A planned or performed job: engineer, window, checklist, parts, time and report."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="work_orders")
    engineer = models.ForeignKey(
        Engineer, null=True, blank=True, on_delete=models.SET_NULL, related_name="work_orders"
    )
    status = models.CharField(
        max_length=20, choices=WorkOrderStatus.choices, default=WorkOrderStatus.PROPOSED
    )
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)
    checklist = models.JSONField(default=list, blank=True,
                                 help_text='[{"task": "...", "done": false}, ...]')
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    time_spent_min = models.PositiveIntegerField(default=0)
    notes = models.TextField(blank=True)
    completion_report = models.TextField(blank=True)

    class Meta:
        ordering = ["-scheduled_start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scheduled_end__isnull=True)
                | models.Q(scheduled_end__gt=models.F("scheduled_start")),
                name="work_order_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"WO-{self.pk or 0:06d} ({self.status})"


class WorkOrderPart(models.Model):
    """A spare part used on a work order, taken from a warehouse's stock."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="parts_used")
    part = models.ForeignKey(SparePart, on_delete=models.PROTECT)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["work_order", "part"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.part.sku}"


class WorkOrderCharge(models.Model):
    """What a completed job cost, line by line, and whether the customer pays it: parts and
    labour the contract (or the warranty) covers are free, the rest is billable."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="charges")
    kind = models.CharField(max_length=10, choices=ChargeKind.choices)
    part = models.ForeignKey(SparePart, null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=10, decimal_places=2,
                                   validators=[MinValueValidator(0)])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2,
                                     validators=[MinValueValidator(0)])
    covered = models.BooleanField(help_text="Free under the contract or warranty")
    covered_by = models.CharField(max_length=60, blank=True,
                                  help_text="What covers it: a contract number or 'warranty'")
    invoice = models.ForeignKey("service_crm.Invoice", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="lines",
                                help_text="The invoice a billable line was put on")
    offer = models.ForeignKey("service_crm.Offer", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="quoted_charges",
                              help_text="The offer a billable line was quoted on instead of "
                                        "being invoiced")

    class Meta:
        ordering = ["work_order", "kind", "pk"]

    def __str__(self) -> str:
        state = "covered" if self.covered else "billable"
        return f"{self.description}: {self.amount} EUR ({state})"

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))
