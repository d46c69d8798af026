"""The CRM consumer on a 3-node RabbitMQ cluster loses the node it consumes from: it moves to
another node by itself and applies what is published after, once. A cluster of its own (the
other cluster tests kill nodes of theirs; a second dead node would leave no quorum). Takes
about 1.5 minutes with the cluster's start."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from anomaly.publish import AlertPublisher
from tests.support.rabbit_cluster import RabbitCluster, scratch_cluster
from tests.support.wait import wait_for
from tests.test_cluster import P, _consumer, _crm_events, _publish

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.db, pytest.mark.broker]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    with scratch_cluster([]) as rc:
        yield rc


def _publish_until_taken(url: str, payloads: list[bytes], timeout_s: float = 90.0) -> int:
    """Publish in order as the detect worker's outbox does: a payload the cluster does not
    take (a quorum queue electing a new leader nacks it) is sent again, after a pause, until
    it is taken. Returns how many sends were refused on the way."""
    from anomaly.publish import PublishUnavailable

    async def go() -> int:
        refused = 0
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with AlertPublisher(url, partitions=P, max_retry_s=2) as pub:
            for p in payloads:
                while True:
                    try:
                        await pub.send(p)
                        break
                    except PublishUnavailable:
                        refused += 1
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(1.0)
        return refused

    return asyncio.run(go())


@pytest.mark.django_db(transaction=True)
def test_cluster_crm_consumer_moves_off_a_killed_broker_node(
        cluster: RabbitCluster, tmp_path: Path) -> None:
    """One CRM consumer with every node in its EVENTS_URL: the node it consumes from is
    SIGKILLed mid-stream; it moves to another node by itself and applies every event published
    after, once (one episode and one ticket per asset)."""
    from django.db import connection

    from service_crm import models as m
    from tests import factories as f

    rc = cluster
    devices = [f"cmp-n{i:02d}" for i in range(8)]
    site = f.SiteFactory(account=f.AccountFactory(name="Knotenwerk"))
    model = f.FailureModeFactory(code="bearing_wear").equipment_model
    for device in devices:
        f.AssetFactory(site=site, equipment_model=model, device=device)
        f.store_device(device)
    s = connection.settings_dict
    dsn = f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT']}/{s['NAME']}"
    halves = [_crm_events(d) for d in devices]
    log = tmp_path / "crm-n.log"
    # Every node in the consumer's URL: it consumes from the first that takes it (a node can
    # refuse AMQP logins for a while after the cluster forms), and that node is killed.
    proc = _consumer(dsn, rc.cluster_amqp_url(rc.nodes), "crm-n", log)
    try:
        wait_for("the consumer on a node", lambda: re.search(
            r"consuming \S+ from 127\.0\.0\.1:(\d+)", log.read_text()) is not None, 90)
        port = int(re.findall(r"consuming \S+ from 127\.0\.0\.1:(\d+)", log.read_text())[0])
        victim = next(n for n in rc.nodes if n.amqp_port == port)
        publisher_url = rc.cluster_amqp_url([n for n in rc.nodes if n is not victim])
        _publish(publisher_url, [p for first, _ in halves for p in first])
        wait_for("the first half applied",
                 lambda: m.Alert.objects.filter(asset__site=site).count() == 2 * len(devices),
                 60)
        rc.kill(victim)
        refused = _publish_until_taken(publisher_url, [p for _, second in halves for p in second])
        print(f"sends refused right after the kill (then sent again): {refused}")

        def all_applied() -> bool:
            return m.Alert.objects.filter(asset__site=site, alert_id__endswith="-z",
                                          revision=3).count() == len(devices)

        wait_for("every later event applied from another node", all_applied, 120)
        proc.terminate()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        print(f"--- crm-n.log\n{log.read_text()[-3000:]}")
    text = log.read_text()
    assert "moving to the next node" in text, text[-3000:]
    assert re.search(rf"consuming \S+ from 127\.0\.0\.1:(?!{victim.amqp_port}\b)\d+",
                     text), text[-3000:]
    assets = m.Asset.objects.filter(site=site)
    per_asset = Counter(m.Episode.objects.filter(asset__in=assets).values_list(
        "asset_id", "failure_mode_code"))
    assert len(per_asset) == len(devices), per_asset
    assert set(per_asset.values()) == {1}, per_asset
    tickets = Counter(m.Ticket.objects.filter(episode__asset__in=assets).values_list(
        "episode_id", flat=True))
    assert len(tickets) == len(devices), tickets
    assert set(tickets.values()) == {1}, tickets
