"""The FastStream consumer against a private Mosquitto: publish events, see tickets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aftercare import broker
from aftercare.events import ALERTS_TOPIC, AlertEvent
from service_crm import models as m
from service_crm.adapters.consumer import Consumer, Stats
from tests.support.crm import make_event
from tests.support.services import DEVICE_SECRET, mqtt_url_for
from tests.support.wait import wait_for
from tests.support.world import World

pytestmark = [pytest.mark.db, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def events_url(mosquitto: broker.BrokerFiles) -> str:
    return mqtt_url_for(mosquitto, broker.SERVICE_USER,
                        broker.service_password(DEVICE_SECRET, broker.SERVICE_USER))


@contextmanager
def running_consumer(url: str, client_id: str) -> Iterator[Stats]:
    """The consumer on its own thread and event loop, as `aftercare crm-consumer` runs it."""
    started = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        async def go() -> None:
            stop = asyncio.Event()
            box["loop"], box["stop"] = asyncio.get_running_loop(), stop

            async def ready() -> None:
                started.set()

            consumer = Consumer(url, client_id=client_id)
            box["stats"] = consumer.stats
            await consumer.run(stop, on_started=ready)

        try:
            asyncio.run(go())
        except BaseException as exc:
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(30)
    if "error" in box:
        raise box["error"]
    try:
        yield box["stats"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)
    if "error" in box:
        raise box["error"]


def publish(url: str, payloads: list[bytes]) -> None:
    from faststream.mqtt import MQTTBroker, QoS

    async def go() -> None:
        async with MQTTBroker(url, client_id="test-publisher") as pub:
            for p in payloads:
                await pub.publish(p, ALERTS_TOPIC, qos=QoS.AT_LEAST_ONCE)

    asyncio.run(go())


def test_published_alerts_become_tickets_once(world: World, events_url: str) -> None:
    world.cover_by_contract()
    ev: AlertEvent = make_event(alert_id="bus-1")
    upd = make_event(alert_id="bus-1", revision=2, state="update", severity="critical")
    with running_consumer(events_url, "crm-test-1") as stats:
        publish(events_url, [ev.to_json(), ev.to_json(), b"{not json", upd.to_json()])
        wait_for("4 events", lambda: stats.applied + stats.duplicates + stats.rejected >= 4)
    assert (stats.applied, stats.duplicates, stats.rejected) == (2, 1, 1)
    assert m.Ticket.objects.count() == 1
    assert m.Alert.objects.get().revision == 2
    assert m.Episode.objects.get().peak_severity == "critical"
    rejected = m.AuditLog.objects.get(action="alert.rejected")
    assert rejected.after is not None
    assert rejected.after["payload"] == "{not json"


def test_events_published_while_consumer_is_down_are_delivered_on_restart(
        world: World, events_url: str) -> None:
    with running_consumer(events_url, "crm-test-2"):
        pass  # registers the persistent session and its subscription
    publish(events_url, [make_event(alert_id="while-down").to_json()])
    with running_consumer(events_url, "crm-test-2") as stats:
        wait_for("the queued event", lambda: stats.applied >= 1)
    assert m.Alert.objects.get().alert_id == "while-down"
    assert m.Ticket.objects.count() == 1
