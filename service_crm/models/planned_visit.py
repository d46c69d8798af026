"""Planned maintenance visits: a contract's visit plan, one row per asset and due date."""

from __future__ import annotations

from django.db import models

from service_crm.models.asset import Asset
from service_crm.models.choices import PlannedVisitStatus
from service_crm.models.contract import MaintenanceContract
from service_crm.models.work_order import WorkOrder


class PlannedVisit(models.Model):
    """A preventive visit a contract promises for one asset on one due date. Generated ahead by
    the housekeeping, once per (contract, asset, due date); it carries the proposed work order,
    or says why none was needed (a recent visit) or why it was dropped (the contract changed)."""

    contract = models.ForeignKey(MaintenanceContract, on_delete=models.CASCADE,
                                 related_name="planned_visits")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="planned_visits")
    due = models.DateField()
    status = models.CharField(max_length=20, choices=PlannedVisitStatus.choices)
    work_order = models.OneToOneField(WorkOrder, null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="planned_visit")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["due", "pk"]
        constraints = [
            # The plan is generated again on every housekeeping pass: this makes it idempotent
            # even when two passes race.
            models.UniqueConstraint(fields=["contract", "asset", "due"],
                                    name="planned_visit_once"),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} / {self.asset}: {self.due} ({self.status})"
