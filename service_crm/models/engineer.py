"""Field engineers: who can fix what, where, and when."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from service_crm.models.part import Warehouse


class Engineer(models.Model):
    """A field service engineer with skills, a home region and van stock."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="engineer",
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    skills = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    region = models.CharField(max_length=40, db_index=True)
    available = models.BooleanField(default=True, help_text="Off = on leave / not dispatchable")
    warehouse = models.ForeignKey(
        Warehouse, null=True, blank=True, on_delete=models.SET_NULL, related_name="engineers"
    )

    class Meta:
        ordering = ["region", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"


class Unavailability(models.Model):
    """A period an engineer cannot be dispatched (leave, training, another job)."""

    engineer = models.ForeignKey(Engineer, on_delete=models.CASCADE, related_name="absences")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["engineer", "starts_at"]
        verbose_name_plural = "unavailabilities"

    def __str__(self) -> str:
        return f"{self.engineer}: {self.starts_at:%Y-%m-%d} - {self.ends_at:%Y-%m-%d}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The period must end after it starts."})
