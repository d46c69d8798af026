"""Web-test helpers on top of the service CRM factories (reused, not duplicated)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.db import connection

from aftercare.events import AlertEvent, Evidence
from tests.service_crm.factories import (  # noqa: F401  (re-exported for the web tests)
    AccountFactory,
    AssetFactory,
    ContactFactory,
    ContractFactory,
    EngineerFactory,
    EquipmentModelFactory,
    FailureModeFactory,
    SiteFactory,
    SparePartFactory,
    UserFactory,
    WarehouseFactory,
)

_ids = itertools.count(1)


def alert_event(device: str, *, at: dt.datetime, severity: str = "warning",
                failure_mode: str = "bearing_wear") -> AlertEvent:
    """An 'open' alert as the anomaly worker publishes it."""
    return AlertEvent(
        alert_id=f"web-{next(_ids)}", revision=1, state="open", device=device,
        kind="equipment", severity=severity,  # type: ignore[arg-type]
        failure_mode=failure_mode, score=0.9, opened_at=at, at=at,
        evidence=(Evidence(metric="vibration_rms_mm_s", detector="zscore", score=0.9,
                           value=7.1, baseline=2.8),),
        detectors={"zscore": 0.9},
    )


def store_device(device_key: str, *, state: str = "online") -> None:
    """A device as the ingest worker records it in the store's `devices` table."""
    with connection.cursor() as cur:
        cur.execute("INSERT INTO devices (device_key, last_seen, state) VALUES (%s, now(), %s) "
                    "ON CONFLICT (device_key) DO NOTHING", [device_key, state])


def store_rollup_1h(device_key: str, metric: str, rows: list[tuple[dt.datetime, float]]) -> None:
    """Hourly rollup rows (min = mean - 1, max = mean + 1), as the store's refresh writes."""
    store_device(device_key)
    with connection.cursor() as cur:
        cur.execute("INSERT INTO metrics (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                    [metric])
        for bucket, mean in rows:
            cur.execute(
                "INSERT INTO telemetry_1h (bucket, device_id, metric_id, min, max, mean, last, "
                "count) SELECT %s, d.id, m.id, %s, %s, %s, %s, 60 FROM devices d, metrics m "
                "WHERE d.device_key = %s AND m.name = %s",
                [bucket, mean - 1, mean + 1, mean, mean, device_key, metric])


def fresh(user: Any) -> Any:
    """The same user re-read, so permission and role caches start empty."""
    return type(user).objects.get(pk=user.pk)
