"""Service tickets with their SLA clock, and their pauses."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import DurationField, ExpressionWrapper, F, Value

from service_crm import conf
from service_crm.models.account import Account
from service_crm.models.alert import Episode
from service_crm.models.asset import Asset
from service_crm.models.choices import Coverage, Outcome, Priority, TicketSource, TicketStatus
from service_crm.models.contract import MaintenanceContract

# A ticket in either state is done: everything else is an open ticket.
DONE_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class TicketQuerySet(models.QuerySet["Ticket"]):
    def open(self) -> TicketQuerySet:
        """Tickets not resolved or closed: the one meaning of "open ticket"."""
        return self.exclude(status__in=DONE_STATUSES)

    def sla_at_risk_window(self, now: dt.datetime) -> TicketQuerySet:
        """Open, unpaused tickets with a resolution target, of whose resolution time less than
        the at-risk fraction (``AFTERCARE_SLA_AT_RISK_FRACTION``) is left at ``now``, overdue
        ones included: the one at-risk rule, shared by the SLA monitor (which warns the desk
        once per ticket) and the desk's panel (which lists those not yet breached).
        Annotated with ``left`` and ``allowed`` (durations)."""
        fraction = conf.sla_at_risk_fraction()
        return (self.open()
                .filter(paused_at__isnull=True, resolution_due__isnull=False,
                        resolution_due__gt=F("opened_at"))
                .annotate(
                    left=ExpressionWrapper(F("resolution_due") - Value(now),
                                           output_field=DurationField()),
                    allowed=ExpressionWrapper((F("resolution_due") - F("opened_at")) * fraction,
                                              output_field=DurationField()))
                .filter(left__lt=F("allowed")))


class Ticket(models.Model):
    """A case the service desk works: what is wrong with which asset, and how fast it is due.

    The SLA due times come from the contract's targets for the ticket's priority, counted in the
    contract calendar's business hours; pauses (waiting for the customer) stop the clock.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="tickets")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="tickets")
    episode = models.ForeignKey(
        Episode, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    contract = models.ForeignKey(
        MaintenanceContract, null=True, blank=True, on_delete=models.PROTECT,
        related_name="tickets",
    )
    coverage = models.CharField(max_length=20, choices=Coverage.choices)
    source = models.CharField(max_length=20, choices=TicketSource.choices)
    priority = models.CharField(max_length=4, choices=Priority.choices, default=Priority.P3)
    status = models.CharField(max_length=20, choices=TicketStatus.choices,
                              default=TicketStatus.NEW)
    summary = models.CharField(max_length=300)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    opened_at = models.DateTimeField()
    response_due = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)
    at_risk_notified = models.BooleanField(default=False)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["status", "resolution_due"], name="ticket_status_due"),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.summary}"

    @property
    def number(self) -> str:
        return f"T-{self.pk or 0:06d}"

    @property
    def is_open(self) -> bool:
        return self.status not in DONE_STATUSES


class TicketPause(models.Model):
    """A period the SLA clock of a ticket stood still (e.g. waiting for customer access)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="pauses")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["ticket", "started_at"]

    def __str__(self) -> str:
        return f"{self.ticket.number} paused {self.started_at:%Y-%m-%d %H:%M}"


class AlertOutcome(models.Model):
    """The verdict on one detector's part in a ticket: did its alert point at a real fault?"""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="alert_outcomes")
    detector = models.CharField(max_length=63)
    failure_mode_code = models.CharField(max_length=63)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "detector"], name="outcome_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.detector}/{self.failure_mode_code}: {self.outcome}"
