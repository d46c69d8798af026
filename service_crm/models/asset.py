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
    # A line and its machines: a machine names the line (or unit) it belongs to. Deleting the
    # line leaves its machines standing on their own rather than deleting them.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
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
        problem = self.parent_problem()
        if problem:
            raise ValidationError({"parent": problem})

    def parent_problem(self) -> str:
        """Why `parent` cannot be this asset's parent, or "" when it can.

        A parent must belong to the same account, and following parents upwards must never come
        back to this asset (no cycles, not even through assets saved earlier).
        """
        parent = self.parent
        if parent is None:
            return ""
        if self.pk is not None and parent.pk == self.pk:
            return "An asset cannot be its own parent."
        if self.site_id is not None and parent.site.account_id != self.site.account_id:
            return f"Parent {parent.serial} belongs to another account."
        seen: set[int] = set()
        current: Asset | None = parent
        while current is not None:
            if self.pk is not None and current.pk == self.pk:
                return f"Parent {parent.serial} would make a cycle."
            if current.pk in seen:  # a cycle already stored above this asset
                return f"Parent {parent.serial} sits in a cycle."
            seen.add(current.pk)
            current = current.parent
        return ""


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
