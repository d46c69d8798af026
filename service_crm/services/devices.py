"""Devices and assets: the desk claims a device seen on the broker for an installed asset, or
releases it again.

A device id is text in the telemetry store's ``devices`` table (not Django-managed); a
:class:`DeviceLink` says which asset it reports for. Claims of one device are serialised by a
row lock on that ``devices`` row, so two desk agents claiming the same device at once see one
claim win and the other refused with a field-keyed message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from aftercare.store import devices as store_devices
from service_crm.models import Asset, DeviceLink
from service_crm.models.asset import device_key_not_reserved, device_key_validator
from service_crm.models.choices import AssetStatus
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, interaction_record

# Who may attach and detach devices: the desk and its managers (sales only looks).
CLAIM_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})


def _check_actor(actor: Any) -> None:
    if not has_role(user=actor, roles=CLAIM_ROLES):
        raise ValidationError({"actor": "Only the service desk attaches or detaches devices."})


def _lock_store_device(device_key: str) -> None:
    """Lock the device's row in the store, or refuse a key the store has never seen."""
    try:
        device_key_validator(device_key)
        device_key_not_reserved(device_key)
    except ValidationError as exc:
        raise ValidationError({"device_key": exc.messages}) from exc
    if not store_devices.device_lock(connection, device_key):
        raise ValidationError(
            {"device_key": f"No device {device_key!r} has been seen on the broker."})


@transaction.atomic(durable=True)
def device_claim(*, device_key: str, asset: Asset, actor: Any,
                 now: dt.datetime | None = None) -> Asset:
    """Attach an unclaimed device to ``asset``; its telemetry and alerts count for the asset
    from then on. Claiming a device the asset already has changes nothing."""
    now = now or timezone.now()
    _check_actor(actor)
    _lock_store_device(device_key)
    asset = Asset.objects.select_related("site__account").get(pk=asset.pk)
    if asset.status == AssetStatus.DECOMMISSIONED:
        raise ValidationError({"asset": f"{asset.serial} is decommissioned."})
    existing = DeviceLink.objects.filter(device_key=device_key).select_related("asset").first()
    if existing is not None:
        if existing.asset_id == asset.pk:
            return asset
        raise ValidationError({"device_key": f"{device_key} is already attached to "
                                             f"{existing.asset.serial}."})
    link = DeviceLink(asset=asset, device_key=device_key)
    link.full_clean()
    link.save()
    audit_record(actor=actor, action="device.claim", obj=link, before=None, at=now)
    interaction_record(account=asset.site.account, asset=asset, at=now, by=actor,
                       summary=f"Device {device_key} attached to {asset.serial}")
    return asset


@transaction.atomic(durable=True)
def device_release(*, device_key: str, actor: Any, now: dt.datetime | None = None) -> Asset:
    """Detach a device from its asset; it shows as unclaimed again. Returns the asset it left.

    The link row is deleted; the audit entry is filed under it, with its values in ``before``."""
    now = now or timezone.now()
    _check_actor(actor)
    _lock_store_device(device_key)
    link = (DeviceLink.objects.select_related("asset__site__account")
            .filter(device_key=device_key).first())
    if link is None:
        raise ValidationError({"device_key": f"{device_key} is not attached to any asset."})
    asset = link.asset
    audit_record(actor=actor, action="device.release", obj=link, before=None, at=now,
                 deleting=True)
    link.delete()
    interaction_record(account=asset.site.account, asset=asset, at=now, by=actor,
                       summary=f"Device {device_key} detached from {asset.serial}")
    return asset
