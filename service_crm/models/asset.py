"""Installed equipment at customer sites, and the device ids they report as."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from aftercare.broker import ReservedDeviceId, check_device_id
from aftercare.contract import DEVICE_ID_PATTERN, DEVICE_ID_RULE
from service_crm.models.choices import AssetStatus
from service_crm.models.equipment import EquipmentModel
from service_crm.models.site import Site

device_key_validator = RegexValidator(rf"^{DEVICE_ID_PATTERN}$", DEVICE_ID_RULE)


def device_key_not_reserved(value: str) -> None:
    """A device id may not take the name of one of Aftercare's MQTT service accounts."""
    try:
        check_device_id(value)
    except ReservedDeviceId as exc:
        raise ValidationError(str(exc), code="reserved") from exc


class Asset(models.Model):
    """One installed machine: serial number, model, site, warranty, and its status."""

    serial = models.CharField(max_length=64, unique=True)
    equipment_model = models.ForeignKey(
        EquipmentModel, on_delete=models.PROTECT, related_name="assets"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="assets")
    install_date = models.DateField()
    warranty_end = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=AssetStatus.choices, default=AssetStatus.IN_SERVICE
    )

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return f"{self.serial} ({self.equipment_model})"

    def under_warranty(self, on: dt.date) -> bool:
        return self.warranty_end is not None and self.install_date <= on <= self.warranty_end

    def clean(self) -> None:
        if self.warranty_end is not None and self.warranty_end < self.install_date:
            raise ValidationError({"warranty_end": "Warranty cannot end before installation."})


class DeviceLink(models.Model):
    """A device id (as seen on the broker) claimed by an asset; a device belongs to one asset."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="devices")
    # Text, not a foreign key: the telemetry store's `devices` table is not Django-managed.
    device_key = models.CharField(max_length=64, unique=True,
                                  validators=[device_key_validator, device_key_not_reserved])
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["device_key"]

    def __str__(self) -> str:
        return self.device_key
