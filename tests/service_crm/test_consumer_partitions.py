"""Alert events partitioned by asset on RabbitMQ (EVENTS_PARTITIONS): each partition is a quorum
queue with a single active consumer, so consumers split the partitions and one asset's events
(from any of its devices) are applied in order by one consumer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import connection

from aftercare.event_partitions import partition_of
from anomaly.catalogue import read_catalogue
from anomaly.publish import AlertPublisher
from service_crm import models as m
from service_crm.adapters.consumer import Consumer, Stats
from tests.support.crm import make_event
from tests.support.wait import wait_for
from tests.support.world import World

pytestmark = [pytest.mark.db, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

URL = "amqp://guest:guest@127.0.0.1:5672/"
K = 3  # an unusual count, so the queues are this test's own


@pytest.fixture(autouse=True)
def empty_queues() -> None:
    """Nothing left over from an earlier run in this test's partition queues."""
    from faststream.rabbit import RabbitBroker

    from aftercare.event_partitions import rabbit_queue

    async def go() -> None:
        async with RabbitBroker(URL, logger=None) as b:
            for i in range(K):
                await (await b.declare_queue(rabbit_queue(i, K))).purge()

    asyncio.run(go())


@contextmanager
def consumers(parts: list[list[int]], url: str = URL, **kw: Any) -> Iterator[list[Stats]]:
    """One consumer per entry of `parts` (its partitions), each on its own thread and loop."""
    boxes: list[dict[str, Any]] = []
    threads = []
    for mine in parts:
        box: dict[str, Any] = {"started": threading.Event()}

        def run(box: dict[str, Any] = box, mine: list[int] = mine) -> None:
            async def go() -> None:
                box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
                consumer = Consumer(url, partitions=(K, mine), **kw)
                box["stats"] = consumer.stats

                async def ready() -> None:
                    box["started"].set()

                await consumer.run(box["stop"], on_started=ready)

            try:
                asyncio.run(go())
            except BaseException as exc:
                box["error"] = exc
                box["started"].set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        box["started"].wait(30)
        if "error" in box:
            raise box["error"]
        boxes.append(box)
        threads.append(t)
    try:
        yield [b["stats"] for b in boxes]
    finally:
        for b in boxes:
            b["loop"].call_soon_threadsafe(b["stop"].set)
        for t in threads:
            t.join(30)


def publish(payloads: list[bytes], event_key: Any = str) -> None:
    async def go() -> None:
        async with AlertPublisher(URL, partitions=K) as pub:
            pub.event_key = event_key
            for p in payloads:
                await pub.send(p)

    asyncio.run(go())


def test_a_devices_events_go_to_its_partitions_consumer_in_order(world: World) -> None:
    device = m.DeviceLink.objects.get(asset=world.asset).device_key
    mine = partition_of(device, K)
    states = ["open", "update", "update", "update", "clear"]
    events = [make_event(device, alert_id="part-1", revision=r, state=s,
                         severity="critical" if r >= 3 else "warning").to_json()
              for r, s in enumerate(states, 1)]
    others = [p for p in range(K) if p != mine]
    with consumers([[mine], others]) as (owner, other):
        publish(events)
        wait_for("5 events applied", lambda: owner.applied + owner.duplicates >= 5)
    assert (owner.applied, owner.duplicates) == (5, 0)   # in order: no revision skipped
    assert (other.applied, other.duplicates) == (0, 0)
    alert = m.Alert.objects.get(alert_id="part-1")
    assert alert.revision == 5
    assert m.Ticket.objects.count() == 1


def test_an_assets_devices_share_its_partition(world: World) -> None:
    """An asset with two devices whose ids fall in different partitions: keyed by the asset
    (the detect worker's catalogue), both devices' events reach one consumer, in order."""
    first = m.DeviceLink.objects.get(asset=world.asset).device_key
    second = next(d for d in (f"{first}-aux{i}" for i in range(100))
                  if partition_of(d, K) != partition_of(first, K))
    m.DeviceLink.objects.create(asset=world.asset, device_key=second)
    s = connection.settings_dict
    with psycopg.connect(f"postgresql://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}") as c:
        catalogue = read_catalogue(c)
    key = catalogue.event_key(first)
    assert key == catalogue.event_key(second) == f"asset:{world.asset.pk}"
    mine = partition_of(key, K)
    events = [make_event(dev, alert_id=f"two-{dev}").to_json() for dev in (first, second)]
    others = [p for p in range(K) if p != mine]
    with consumers([[mine], others]) as (owner, other):
        publish(events, catalogue.event_key)
        wait_for("both events applied", lambda: owner.applied + owner.duplicates >= 2)
    assert (owner.applied, other.applied) == (2, 0)
    assert set(m.Alert.objects.values_list("asset", flat=True)) == {world.asset.pk}


def test_a_second_consumer_of_the_same_partitions_is_a_standby(world: World) -> None:
    device = m.DeviceLink.objects.get(asset=world.asset).device_key
    with consumers([list(range(K)), list(range(K))]) as (first, standby):
        publish([make_event(device, alert_id="part-2").to_json()])
        wait_for("the event", lambda: first.applied + standby.applied >= 1)
    assert (first.applied, standby.applied) == (1, 0)     # single active consumer


def test_a_consumer_moves_to_another_node_when_its_node_dies(world: World) -> None:
    """A cluster URL: the consumer starts on the first node (a relay to the real server);
    the relay dies; within the failover time the consumer is on the next node and applies
    what is published after, and a node that never answered at start is skipped."""
    from tests.support.relay import Relay, free_port

    device = m.DeviceLink.objects.get(asset=world.asset).device_key
    relay = Relay(5672).start()
    url = f"amqp://guest:guest@127.0.0.1:{free_port()},127.0.0.1:{relay.port},127.0.0.1:5672/"
    try:
        with consumers([list(range(K))], url=url, failover_after_s=1,
                       watch_every_s=0.5) as (stats,):
            publish([make_event(device, alert_id="fo-1").to_json()])
            wait_for("the first event", lambda: stats.applied >= 1)
            relay.kill()
            publish([make_event(device, alert_id="fo-1", revision=2, state="clear").to_json()])
            wait_for("the event after the node died", lambda: stats.applied >= 2,
                     timeout_s=60)
    finally:
        relay.kill()
    assert m.Alert.objects.get(alert_id="fo-1").revision == 2
