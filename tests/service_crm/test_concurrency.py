"""Concurrent deliveries: several threads, each with its own database connection."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aftercare.events import AlertEvent
from service_crm import models as m
from service_crm.services import alerts
from service_crm.services.alerts import alert_ingest
from tests.support.crm import make_event, race
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db(transaction=True)]
THREADS = 6


def _race(events: list[AlertEvent]) -> list[alerts.IngestResult]:
    """Run alert_ingest for every event at once; the first exception is re-raised."""
    outcomes = race([lambda ev=ev: alert_ingest(event=ev, now=NOW) for ev in events])
    for out in outcomes:
        if isinstance(out, BaseException):
            raise out
    return outcomes


def test_same_alert_from_several_threads_makes_one_episode_and_one_ticket(world: World) -> None:
    world.cover_by_contract()
    ev = make_event(alert_id="race-1")
    results = _race([ev] * THREADS)
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["duplicate"] * (THREADS - 1) + ["ticket"]
    assert m.Alert.objects.count() == 1
    assert m.Episode.objects.count() == 1
    assert m.Ticket.objects.count() == 1
    assert m.WorkOrder.objects.count() == 1


def test_different_alerts_for_one_failure_mode_share_one_episode(world: World) -> None:
    results = _race([make_event(alert_id=f"race-{i}") for i in range(THREADS)])
    assert len({r.episode_id for r in results}) == 1
    assert m.Alert.objects.count() == THREADS
    assert m.Ticket.objects.count() == 1
    assert m.Offer.objects.count() == 1


def test_same_alert_for_an_unclaimed_device_is_stored_once(
        world: World, event: Callable[..., AlertEvent]) -> None:
    results = _race([event(device="cmp-0404", alert_id="race-u")] * THREADS)
    assert sorted(r.outcome.value for r in results) == \
        ["duplicate"] * (THREADS - 1) + ["unclaimed"]
    assert m.Alert.objects.filter(alert_id="race-u").count() == 1
