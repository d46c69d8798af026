"""Detector alerts as received, and what the episode they belong to looks like."""

from __future__ import annotations

from django.db import models

from service_crm.models.asset import Asset
from service_crm.models.choices import AlertState, EpisodeStatus, Severity
from service_crm.models.equipment import FailureMode


class Episode(models.Model):
    """One occurrence of a failure mode on an asset, from first alert until it is fixed.

    Later alerts for the same asset and failure mode attach to the open episode; after a repair
    the episode is watched for a while and reopened if the anomaly comes back.
    """

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="episodes")
    failure_mode_code = models.CharField(max_length=63)
    failure_mode = models.ForeignKey(
        FailureMode, null=True, blank=True, on_delete=models.SET_NULL, related_name="episodes"
    )
    status = models.CharField(
        max_length=20, choices=EpisodeStatus.choices, default=EpisodeStatus.OPEN
    )
    opened_at = models.DateTimeField()
    last_alert_at = models.DateTimeField()
    peak_severity = models.CharField(max_length=10, choices=Severity.choices)
    watch_until = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # The rule the whole alert pipeline leans on: never two live episodes for one
            # asset and failure mode, even when alerts race each other.
            models.UniqueConstraint(
                fields=["asset", "failure_mode_code"],
                condition=models.Q(status__in=["open", "watching"]),
                name="episode_one_live_per_asset_failure_mode",
            ),
        ]

    def __str__(self) -> str:
        return f"Episode {self.pk}: {self.asset.serial} {self.failure_mode_code} ({self.status})"


class Alert(models.Model):
    """A detector's alert on one device (one condition), at its latest applied revision."""

    alert_id = models.CharField(max_length=100, unique=True)
    revision = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=AlertState.choices)
    device_key = models.CharField(max_length=64, db_index=True)
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts",
        help_text="Empty while the device is unclaimed",
    )
    episode = models.ForeignKey(
        Episode, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    kind = models.CharField(max_length=20)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    failure_mode_code = models.CharField(max_length=63)
    score = models.FloatField()
    opened_at = models.DateTimeField()
    at = models.DateTimeField(help_text="Time of the latest revision")
    evidence = models.JSONField(default=list, blank=True)
    detectors = models.JSONField(default=dict, blank=True)
    classified = models.BooleanField(
        default=True, help_text="False: led by a metric the equipment model does not name; the "
                                "failure mode is a guess from the metric's name until the desk "
                                "classifies it")
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["asset", "-at"], name="alert_asset_at")]

    def __str__(self) -> str:
        return f"{self.alert_id} r{self.revision} {self.state}"
