"""Maintenance contracts, their SLA targets and business-hours calendars."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from service_crm.models.account import Account
from service_crm.models.asset import Asset
from service_crm.models.choices import ContractTier, Priority, RenewalStatus


class BusinessCalendar(models.Model):
    """The hours an SLA clock runs: working days, opening hours and holidays in a time zone."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="Europe/Berlin")
    always_open = models.BooleanField(default=False, help_text="24x7: the clock never stops")
    workdays = ArrayField(
        models.PositiveSmallIntegerField(), default=list, blank=True,
        help_text="ISO weekdays the clock runs on (1=Monday .. 7=Sunday)",
    )
    opens = models.TimeField(default=dt.time(8, 0))
    closes = models.TimeField(default=dt.time(17, 0))
    holidays = ArrayField(models.DateField(), default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = f"Unknown time zone {self.timezone!r}."
        if not self.always_open:
            if not self.workdays:
                errors["workdays"] = "Name at least one working day, or mark the calendar 24x7."
            elif any(d < 1 or d > 7 for d in self.workdays):
                errors["workdays"] = "Working days are ISO weekdays 1..7."
            if self.opens >= self.closes:
                errors["closes"] = "Closing time must be after opening time."
        if errors:
            raise ValidationError(errors)


class MaintenanceContract(models.Model):
    """A service agreement: which assets, what is covered, how fast we respond, and until when."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contracts")
    number = models.CharField(max_length=40, unique=True)
    tier = models.CharField(max_length=20, choices=ContractTier.choices)
    assets = models.ManyToManyField(Asset, related_name="contracts", blank=True)
    covers_parts = models.BooleanField(default=False)
    covers_labour = models.BooleanField(default=True)
    visits_per_year = models.PositiveSmallIntegerField(default=1)
    interval_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(7)],
        help_text="Days between planned visits; empty = 365 / visits per year",
    )
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT)
    start = models.DateField()
    end = models.DateField()
    auto_renew = models.BooleanField(default=False)
    renewal_status = models.CharField(
        max_length=20, choices=RenewalStatus.choices, default=RenewalStatus.NOT_DUE
    )
    price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(0)]
    )
    # Kept by the planning of visits (not edited by hand): how far ahead the visit plan is in
    # line, and a digest of what it was planned from, so a pass only looks at contracts that
    # changed or have a new visit coming into its horizon.
    visits_planned_through = models.DateField(null=True, blank=True, editable=False)
    visits_plan_key = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["account", "-end"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")),
                                   name="contract_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_tier_display()})"

    def active_on(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    @property
    def visit_interval_days(self) -> int | None:
        """Days between planned visits, or None when the contract plans none."""
        if self.interval_days:
            return int(self.interval_days)
        if self.visits_per_year:
            return max(1, 365 // int(self.visits_per_year))
        return None

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "A contract must end after it starts."})


class SlaTarget(models.Model):
    """Response and resolution times, in business hours, for one priority under a contract."""

    contract = models.ForeignKey(
        MaintenanceContract, on_delete=models.CASCADE, related_name="sla_targets"
    )
    priority = models.CharField(max_length=4, choices=Priority.choices)
    response_h = models.DecimalField(max_digits=6, decimal_places=2,
                                     validators=[MinValueValidator(0)])
    resolution_h = models.DecimalField(max_digits=6, decimal_places=2,
                                       validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["contract", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "priority"], name="sla_unique_priority"),
        ]

    def __str__(self) -> str:
        return f"{self.priority}: respond {self.response_h} h, resolve {self.resolution_h} h"

    def clean(self) -> None:
        if self.resolution_h is not None and self.response_h is not None \
                and self.resolution_h < self.response_h:
            raise ValidationError({"resolution_h": "Resolution cannot be due before response."})


class WarrantySlaTarget(models.Model):
    """Warranty terms: how fast we respond to and resolve a fault on an asset under warranty,
    for one priority, counted in a calendar's business hours (warranty has no contract)."""

    priority = models.CharField(max_length=4, choices=Priority.choices, unique=True)
    response_h = models.DecimalField(max_digits=6, decimal_places=2,
                                     validators=[MinValueValidator(0)])
    resolution_h = models.DecimalField(max_digits=6, decimal_places=2,
                                       validators=[MinValueValidator(0)])
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT)

    class Meta:
        ordering = ["priority"]

    def __str__(self) -> str:
        return f"Warranty {self.priority}: respond {self.response_h} h, " \
               f"resolve {self.resolution_h} h"

    def clean(self) -> None:
        if self.resolution_h is not None and self.response_h is not None \
                and self.resolution_h < self.response_h:
            raise ValidationError({"resolution_h": "Resolution cannot be due before response."})


MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


def _document_path(instance: ContractDocument, filename: str) -> str:
    # A random name: the customer's file name says nothing about where it is stored, and two
    # uploads of "contract.pdf" never collide.
    return f"contracts/{instance.contract_id}/{uuid.uuid4().hex}{PurePath(filename).suffix.lower()}"


def _document_size(file: Any) -> None:
    if file.size > MAX_DOCUMENT_BYTES:
        raise ValidationError(f"A document may be at most {MAX_DOCUMENT_BYTES // 2**20} MB; "
                              f"this one is {file.size / 2**20:.1f} MB.")


def _document_is_pdf(file: Any) -> None:
    from service_crm.pdf import pdf_problem

    problem = pdf_problem(file)
    if problem is not None:
        raise ValidationError(problem, code="not_pdf")


class ContractDocument(models.Model):
    """A signed contract, an annex or terms as a PDF: uploaded by the back office, downloaded
    by the account's customers in the portal. Stored under MEDIA_ROOT, never served directly:
    every download goes through a view that checks the account."""

    contract = models.ForeignKey(MaintenanceContract, on_delete=models.CASCADE,
                                 related_name="documents")
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to=_document_path, max_length=200, validators=[
        FileExtensionValidator(["pdf"], message="Contract documents are PDF files."),
        _document_size, _document_is_pdf])
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["contract", "-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.contract.number}: {self.title}"

