"""Database-level rules: they hold even when code bypasses the services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction

from service_crm import models as m
from service_crm.models.choices import EpisodeStatus
from tests import factories as f
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def _episode(world: World, status: str) -> m.Episode:
    return m.Episode.objects.create(asset=world.asset, failure_mode_code="bearing_wear",
                                    status=status, opened_at=NOW, last_alert_at=NOW,
                                    peak_severity="warning")


def test_second_live_episode_for_asset_and_failure_mode_is_refused(world: World) -> None:
    _episode(world, EpisodeStatus.OPEN)
    with pytest.raises(IntegrityError), transaction.atomic():
        _episode(world, EpisodeStatus.WATCHING)


def test_closed_episodes_do_not_block_a_new_one(world: World) -> None:
    _episode(world, EpisodeStatus.CLOSED)
    _episode(world, EpisodeStatus.CLOSED)
    assert _episode(world, EpisodeStatus.OPEN).pk


def test_audit_log_refuses_update_and_delete(world: World) -> None:
    entry = m.AuditLog.objects.create(at=NOW, actor_label="automation", action="x",
                                      object_type="asset", object_id="1")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        m.AuditLog.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        m.AuditLog.objects.filter(pk=entry.pk).delete()
    assert m.AuditLog.objects.get(pk=entry.pk).action == "x"


def test_offer_consent_needs_when_and_how(world: World) -> None:
    c = m.Contact(account=world.account, name="No record", email="n@x.test", offer_consent=True)
    with pytest.raises(ValidationError) as err:
        c.full_clean()
    assert set(err.value.message_dict) >= {"consent_given_at", "consent_method"}
    with pytest.raises(IntegrityError), transaction.atomic():
        c.save()


def test_device_belongs_to_one_asset(world: World) -> None:
    other = f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model)
    with pytest.raises(IntegrityError), transaction.atomic():
        m.DeviceLink.objects.create(asset=other, device_key="cmp-n1")


@pytest.mark.parametrize(("model", "kwargs", "field"), [
    (m.Site, {"name": "x", "region": "n", "timezone": "Mars/Olympus"}, "timezone"),
    (m.BusinessCalendar, {"name": "c", "workdays": [1], "opens": dt.time(18),
                          "closes": dt.time(8)}, "closes"),
    (m.BusinessCalendar, {"name": "c", "workdays": [0, 8]}, "workdays"),
])
def test_clean_names_the_bad_field(world: World, model: type, kwargs: dict[str, object],
                                   field: str) -> None:
    obj = model(account=world.account, **kwargs) if model is m.Site else model(**kwargs)
    with pytest.raises(ValidationError) as err:
        obj.full_clean()
    assert field in err.value.message_dict


def test_warranty_cannot_end_before_installation(world: World) -> None:
    world.asset.warranty_end = world.asset.install_date - dt.timedelta(days=1)
    with pytest.raises(ValidationError) as err:
        world.asset.full_clean()
    assert "warranty_end" in err.value.message_dict
