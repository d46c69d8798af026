"""The account timeline: every call, email, visit, note and automated step."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from service_crm.models.account import Account, Contact
from service_crm.models.asset import Asset
from service_crm.models.choices import InteractionKind
from service_crm.models.ticket import Ticket


class Interaction(models.Model):
    """One entry on an account's timeline, so sales and service see the same history."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="interactions")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="interactions")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="interactions")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="interactions")
    kind = models.CharField(max_length=20, choices=InteractionKind.choices)
    summary = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                           on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["account", "-at"], name="interaction_account_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.summary}"
