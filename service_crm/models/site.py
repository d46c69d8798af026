"""Customer sites: where equipment stands and engineers drive to."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models

from service_crm.master_data import normalise_country, normalise_name
from service_crm.models.account import Account


class Site(models.Model):
    """A customer location with its address, local time zone and service region."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="DE", help_text="ISO 3166 alpha-2")
    timezone = models.CharField(max_length=64, default="Europe/Berlin")
    region = models.CharField(max_length=40, db_index=True)

    class Meta:
        ordering = ["account", "name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="site_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.account} / {self.name}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self.name = normalise_name(self.name or "")
        try:
            self.country = normalise_country(self.country or "")
        except ValueError as exc:
            errors["country"] = str(exc)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = f"Unknown time zone {self.timezone!r}."
        if errors:
            raise ValidationError(errors)
