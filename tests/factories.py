"""Test data: factory_boy factories for the service CRM (realistic defaults, every one
overridable), alert events as the anomaly worker publishes them, and rows of the telemetry
store as ingest and its rollup refresh write them."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.db import connection

from aftercare.events import AlertEvent, Evidence
from service_crm import models as m
from service_crm.models.choices import ContractTier, Priority


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Account

    name = factory.Sequence(lambda n: f"Nordwerk Foods {n} GmbH")
    industry = "food"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@customer.test")
    roles = factory.LazyFunction(lambda: ["technical"])


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Site

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Plant {n}")
    city = "Hamburg"
    timezone = "Europe/Berlin"
    region = "north"


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Warehouse
        django_get_or_create = ("code",)

    code = "WH-NORTH"
    name = "Hamburg depot"
    region = "north"


class SparePartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.SparePart

    sku = factory.Sequence(lambda n: f"SP-{n:05d}")
    name = "Bearing kit"
    price = Decimal("120.00")


class EquipmentModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.EquipmentModel

    name = factory.Sequence(lambda n: f"Screw compressor SC-{n}")
    equipment_type = "compressor"
    contract_list_price = Decimal("1800.00")


class FailureModeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.FailureMode

    equipment_model = factory.SubFactory(EquipmentModelFactory)
    code = "bearing_wear"
    name = "Bearing wear"
    required_skill = "compressor"
    labour_hours = Decimal("3.0")


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Asset
        skip_postgeneration_save = True

    serial = factory.Sequence(lambda n: f"SN-{n:06d}")
    equipment_model = factory.SubFactory(EquipmentModelFactory)
    site = factory.SubFactory(SiteFactory)
    install_date = dt.date(2023, 1, 10)
    warranty_end = dt.date(2025, 1, 10)

    @factory.post_generation
    def device(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            m.DeviceLink.objects.create(asset=self, device_key=extracted)


class CalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.BusinessCalendar
        django_get_or_create = ("name",)

    name = "Germany office hours"
    timezone = "Europe/Berlin"
    workdays = factory.LazyFunction(lambda: [1, 2, 3, 4, 5])
    opens = dt.time(8, 0)
    closes = dt.time(17, 0)


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.MaintenanceContract
        skip_postgeneration_save = True

    account = factory.SubFactory(AccountFactory)
    number = factory.Sequence(lambda n: f"MC-{n:05d}")
    tier = ContractTier.GOLD
    calendar = factory.SubFactory(CalendarFactory)
    start = dt.date(2026, 1, 1)
    end = dt.date(2026, 12, 31)
    price = Decimal("4800.00")

    @factory.post_generation
    def sla(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create:
            return
        targets = extracted or {Priority.P1: (4, 16), Priority.P2: (8, 24),
                                Priority.P3: (16, 40), Priority.P4: (24, 80)}
        for prio, (resp, res) in targets.items():
            m.SlaTarget.objects.create(contract=self, priority=prio,
                                       response_h=Decimal(resp), resolution_h=Decimal(res))


class EngineerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Engineer

    name = factory.Sequence(lambda n: f"Engineer {n}")
    email = factory.Sequence(lambda n: f"engineer{n}@aftercare.test")
    skills = factory.LazyFunction(lambda: ["compressor"])
    region = "north"


# --- events and store rows ------------------------------------------------------------------

_ids = itertools.count(1)


def alert_event(device: str, *, at: dt.datetime, alert_id: str | None = None, revision: int = 1,
                state: str = "open", severity: str = "warning",
                failure_mode: str = "bearing_wear", detector: str = "zscore") -> AlertEvent:
    """An alert (by default a new, open one) as the anomaly worker publishes it."""
    return AlertEvent(
        alert_id=alert_id or f"a-{next(_ids)}", revision=revision, state=state,  # type: ignore[arg-type]
        device=device, kind="equipment", severity=severity,  # type: ignore[arg-type]
        failure_mode=failure_mode, score=0.9, opened_at=at, at=at,
        evidence=(Evidence(metric="vibration_rms_mm_s", detector=detector, score=0.9,
                           value=7.1, baseline=2.8),),
        detectors={detector: 0.9},
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
