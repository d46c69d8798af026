"""Beyond one machine: a 3-node RabbitMQ cluster (quorum queues behind MQTT), two ingest workers
and two partitioned detect workers; one broker node and one detect worker are killed; then two
CRM consumers on the partitioned alert events, the active one killed mid-stream.

Asserts every reading a device had acknowledged is stored exactly once, the detect workers'
alert events are the ones a single worker raises on the same data, each queued once, and each
injected fault alerted once. Takes about 1.5 minutes (the cluster's start is ~25 s of it).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiormq
import numpy as np
import psycopg
import pytest

from aftercare import broker
from aftercare.events import AlertEvent
from anomaly.leases import held_by
from anomaly.publish import AlertPublisher, PublishUnavailable
from anomaly.worker import DetectWorker, WorkerOptions
from ingest.writer import write_columns
from tests.ingest.chaos import POISON, ROOT, Flood, WorkerProcess, tally
from tests.ingest.chaos import device as mqtt_device
from tests.support.anomaly import run_until_caught_up
from tests.support.rabbit_cluster import RabbitCluster, scratch_cluster
from tests.support.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.db, pytest.mark.broker]

FLOOD = [f"cluster-{i:02d}" for i in range(6)]
PUMPS = [f"cpump-{i:02d}" for i in range(24)]
FAULTY = PUMPS[::4]                      # overheating from minute 10 to 15
P = 4
S = 1_000_000
N_S = 1500


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    with scratch_cluster(FLOOD) as rc:
        yield rc


def write_pumps(conn: psycopg.Connection[Any], start_us: int) -> None:
    """PUMPS for 25 minutes at 1 Hz (temperature and flow); FAULTY overheat for 5 minutes."""
    rng = np.random.default_rng(7)
    t = start_us + np.arange(N_S, dtype=np.int64) * S
    for dev in PUMPS:
        temp = 70 + 0.5 * rng.normal(size=N_S)
        if dev in FAULTY:
            temp[600:900] = 99 + 0.3 * rng.normal(size=300)
        flow = 32 + 0.4 * rng.normal(size=N_S)
        for name, v in (("temperature_c", temp), ("flow_l_min", flow)):
            write_columns(conn, device=[dev] * N_S, metric=[name] * N_S, time=t, value=v)


def _detect(dsn: str, events_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "EVENTS_URL": events_url,
           "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aftercare_cli", "detect", "--name", "cluster",
             "--partitions", str(P), "--lease-ttl-s", "4", "--settle-s", "0",
             # An hour of pumps no profile describes: judged without the day of learning.
             "--poll-s", "0.2", "--learn-unknown-s", "0"], env=env, stdout=out, stderr=out)


def _outbox(conn: psycopg.Connection[Any], like: str) -> list[tuple[str, int, bytes, bool]]:
    rows = conn.execute("SELECT alert_id, revision, payload, published_at IS NOT NULL "
                        "FROM anomaly_outbox WHERE worker LIKE %s", (like,)).fetchall()
    conn.commit()
    return [(str(a), int(r), bytes(p), bool(done)) for a, r, p, done in rows]


def _watermarks(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("SELECT worker, (extract(epoch FROM watermark) * 1e6)::int8 "
                        "FROM anomaly_checkpoints WHERE worker LIKE 'cluster.p%'").fetchall()
    conn.commit()
    return {str(w): int(t) for w, t in rows}


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def _connected_port(log: str) -> int:
    """The port of the node the worker's last 'connected to' line names."""
    found = re.findall(r"connected to 127\.0\.0\.1:(\d+) ", log)
    assert found, log[-2000:]
    return int(found[-1])


def _accepting_amqp_node(rc: RabbitCluster) -> str:
    """The AMQP URL of a live node that accepts the service account (the detect workers'
    publisher takes one host); waits for one, up to a minute."""
    async def accepts(url: str) -> bool:
        try:
            await (await aiormq.connect(url)).close()
        except Exception as exc:  # refused, or closed at Connection.Open
            print(f"AMQP {url.rsplit('@', 1)[-1]}: {exc!r}")
            return False
        return True

    found: list[str] = []

    def any_node() -> bool:
        found[:] = [u for u in (rc.amqp_url(n) for n in rc.nodes if rc.alive(n))
                    if asyncio.run(accepts(u))][:1]
        return bool(found)

    wait_for("a live node accepting AMQP connections", any_node, 60)
    return found[0]


def test_cluster_survives_a_broker_node_and_a_detect_worker(
        cluster: RabbitCluster, store_dsn: str, tmp_path: Path) -> None:
    rc = cluster
    # -- ingest: two workers, a flood, the node worker 0 is connected to killed
    workers = [WorkerProcess(tmp_path, dsn=store_dsn, mqtt_url=rc.url(broker.INGEST_USER),
                             client_id=f"cluster-ingest-{i}") for i in range(2)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_subscribed(60)
        # Each worker starts on the URL's first node, unless that one did not answer in
        # time: the node killed is the one worker 0 is on, found from its log.
        on = [_connected_port(w.log.read_text()) for w in workers]
        victim = next(n for n in rc.nodes if n.mqtt_port == on[0])
        flood = Flood(rc, FLOOD, 600.0)
        flood.start()
        try:
            # Conditions, not durations: how fast readings are acknowledged depends on load.
            wait_for("500 readings acknowledged", lambda: len(flood.acked) >= 500, 60)
            rc.kill(victim)
            acked_at_kill = len(flood.acked)
            wait_for("500 more acknowledged after the kill",
                     lambda: len(flood.acked) >= acked_at_kill + 500, 90)
        finally:
            flood.stop()
        t = tally(store_dsn, flood, workers, 0.0, settle_s=60)
    finally:
        for w in workers:
            w.stop()
    assert t.lost == 0, t
    assert t.duplicated == 0, t
    for w, port in zip(workers, on, strict=True):
        if port != victim.mqtt_port:
            continue  # this one's node lived: nothing to fail over from
        log = w.log.read_text()  # it failed over to another node and kept its session
        assert log.count("connected to") >= 2, log[-2000:]
        assert "session present: True" in log, log[-2000:]

    assert [rc.alive(n) for n in rc.nodes] == [n is not victim for n in rc.nodes]

    # -- detection: two partitioned workers, one killed mid-way, the other takes over
    start_us = int(datetime.now(UTC).timestamp() - 3600) * S
    with psycopg.connect(store_dsn) as conn:
        write_pumps(conn, start_us)
        # write_columns' block is a savepoint inside the transaction its first lookup opened:
        # until this commit the new partitions' locks would hold the detect workers' reads.
        conn.commit()
        end_us = start_us + (N_S - 1) * S
        # Every node, the killed one first: the publisher skips it (and any node that
        # stops answering later) instead of waiting on one host.
        events_url = rc.cluster_amqp_url([victim] + [n for n in rc.nodes if n is not victim])
        a = _detect(store_dsn, events_url, tmp_path / "detect-a.log")
        b = _detect(store_dsn, events_url, tmp_path / "detect-b.log")
        try:
            def holders_now() -> dict[int, tuple[str | None, int]]:
                now = held_by(conn, P)
                conn.commit()  # a new transaction each time: now() moves on
                return now

            wait_for("both detect workers holding partitions",
                     lambda: len({h for h, _ in holders_now().values() if h}) == 2, 60)
            wait_for("a first checkpoint", lambda: bool(_watermarks(conn)), 60)
            before = holders_now()
            a_parts = {p: e for p, (h, e) in before.items() if h and f"-{a.pid}-" in h}
            assert a_parts, before
            a.kill()
            a.wait(10)
            midway = min(_watermarks(conn).values()) < end_us
            wait_for("every partition analysed to the end and published", lambda: (
                len(wm := _watermarks(conn)) == P and min(wm.values()) >= end_us
                and all(done for *_, done in _outbox(conn, "cluster.p%"))), 90)

            def taken_over() -> bool:
                now = {h for h, _ in holders_now().values()}
                return len(now) == 1 and None not in now

            # The dead worker's leases expire (4 s) and the survivor claims them.
            wait_for("the survivor holding every partition", taken_over, 30)
            holders = holders_now()
        finally:
            for proc in (a, b):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(20)
            for log in ("detect-a.log", "detect-b.log"):  # shown by pytest on a failure
                text = (tmp_path / log).read_text()
                print(f"--- {log} (exit {a.returncode if 'a' in log else b.returncode})")
                print("\n".join([ln for ln in text.splitlines() if "WARNING" in ln][:20]))
                print(text[-3000:])
            for n in rc.nodes:  # why a node refused a connection, if it did
                for f in (n.dir / "log").glob("*.log"):
                    lines = [ln for ln in f.read_text(errors="replace").splitlines()
                             if "[error]" in ln or "refused" in ln or "closing AMQP" in ln]
                    print(f"--- {f.name}\n" + "\n".join(lines[-30:]))
        survivor = {h for h, _ in holders.values()}
        assert len(survivor) == 1, holders
        assert f"-{b.pid}-" in str(next(iter(survivor))), holders
        for part, epoch in a_parts.items():                          # taken over: new epochs
            assert holders[part][1] > epoch, (holders, a_parts)

        queued = _outbox(conn, "cluster.p%")
        keys = Counter((alert, rev) for alert, rev, *_ in queued)
        assert not [k for k, n in keys.items() if n > 1], "an alert event was queued twice"
        reference = run_until_caught_up(DetectWorker(conn, WorkerOptions(
            name="reference", settle_s=0, learn_unknown_s=0)))
        assert sorted(keys) == sorted((e.alert_id, e.revision) for e in reference), (
            f"not the single worker's alerts (killed mid-way: {midway})")
        opened = Counter(ev.device for ev in (AlertEvent.from_json(p) for _, _, p, _ in queued)
                         if ev.state == "open" and ev.kind == "equipment"
                         and ev.device in PUMPS)
        assert opened == Counter(FAULTY), opened


# -- CRM consumers: two on the partitioned alert events, the active one killed mid-stream

CRM_DEVICES = [f"cmp-k{i:02d}" for i in range(12)]


def _crm_events(device: str) -> tuple[list[bytes], list[bytes]]:
    """A device's events in two halves: an alert opened (and a second detector's alert of the
    same failure mode), then escalated and updated after the hand-over."""
    from tests.support.crm import make_event

    first, second = f"{device}-z", f"{device}-l"
    return ([make_event(device, alert_id=first).to_json(),
             make_event(device, alert_id=second, detector="limits").to_json()],
            [make_event(device, alert_id=first, revision=2, state="update",
                        severity="critical").to_json(),
             make_event(device, alert_id=first, revision=3, state="update",
                        severity="critical").to_json()])


def _publish(url: str, payloads: list[bytes], wait_s: float = 90.0) -> None:
    """Publish in order, as the detect worker's outbox does: a node that refuses for a while
    (RabbitMQ can refuse AMQP logins for some seconds after the cluster forms, more on a busy
    machine) is waited for, up to `wait_s`, instead of failing the first send."""
    async def go() -> None:
        async with AlertPublisher(url, partitions=P) as pub:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            for p in payloads:
                while True:
                    try:
                        await pub.send(p)
                        break
                    except PublishUnavailable:
                        if loop.time() > deadline:
                            raise
                        await asyncio.sleep(0.5)

    asyncio.run(go())


def _consumer(dsn: str, events_url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "EVENTS_URL": events_url,
           "EVENTS_PARTITIONS": str(P), "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aftercare_cli", "crm-consumer", "--client-id", name,
             "--housekeeping-every-s", "0"], env=env, stdout=out, stderr=out)


@pytest.mark.django_db(transaction=True)
def test_cluster_crm_consumers_survive_a_killed_consumer(
        cluster: RabbitCluster, tmp_path: Path) -> None:
    from django.db import connection

    from service_crm import models as m
    from tests import factories as f

    site = f.SiteFactory(account=f.AccountFactory(name="Clusterwerk"))
    model = f.FailureModeFactory(code="bearing_wear").equipment_model  # make_event's mode
    for device in CRM_DEVICES:
        f.AssetFactory(site=site, equipment_model=model, device=device)
        f.store_device(device)
    s = connection.settings_dict
    dsn = f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT']}/{s['NAME']}"
    events_url = _accepting_amqp_node(cluster)
    halves = [_crm_events(d) for d in CRM_DEVICES]
    early = [p for first, _ in halves for p in first]
    late = [p for _, second in halves for p in second]

    logs = {name: tmp_path / f"{name}.log" for name in ("crm-a", "crm-b")}
    a = _consumer(dsn, events_url, "crm-a", logs["crm-a"])
    procs = [a]
    try:  # a registers first, so it is the active consumer of every partition; b stands by
        wait_for("consumer a", lambda: "consuming" in logs["crm-a"].read_text(), 60)
        b = _consumer(dsn, events_url, "crm-b", logs["crm-b"])
        procs.append(b)
        wait_for("consumer b", lambda: "consuming" in logs["crm-b"].read_text(), 60)
        _publish(events_url, early + late[: len(late) // 2])
        wait_for("the first half applied",
                 lambda: m.Alert.objects.count() == len(early), 60)
        a.kill()  # maybe mid-delivery: what it had not acknowledged goes to b
        a.wait(10)
        _publish(events_url, late[len(late) // 2:])

        def all_applied() -> bool:
            return m.Alert.objects.filter(alert_id__endswith="-z", revision=3).count() == len(
                CRM_DEVICES)

        wait_for("every event applied by the standby", all_applied, 90)
        b.terminate()
        b.wait(30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for name, log in logs.items():  # shown by pytest on a failure
            print(f"--- {name}.log\n{log.read_text()[-3000:]}")

    stopped = re.findall(r"stopped: (\d+) applied", logs["crm-b"].read_text())
    assert stopped, "the standby did not stop cleanly"
    assert int(stopped[-1]) > 0, "the standby applied nothing"
    assets = m.Asset.objects.filter(devices__device_key__in=CRM_DEVICES)
    assert assets.count() == len(CRM_DEVICES)
    per_asset = Counter(m.Episode.objects.filter(asset__in=assets).values_list(
        "asset_id", "failure_mode_code"))
    assert len(per_asset) == len(CRM_DEVICES), per_asset
    assert set(per_asset.values()) == {1}, per_asset          # one episode per asset and mode
    tickets = Counter(m.Ticket.objects.filter(episode__asset__in=assets).values_list(
        "episode_id", flat=True))
    assert len(tickets) == len(CRM_DEVICES), tickets          # each episode ticketed...
    assert set(tickets.values()) == {1}, tickets              # ...once
    assert m.Alert.objects.filter(severity="critical", alert_id__endswith="-z").count() == len(
        CRM_DEVICES)


# -- ingest over AMQP: competing workers on one quorum queue split the load


def test_cluster_ingest_workers_share_one_quorum_queue(
        cluster: RabbitCluster, store_dsn: str, tmp_path: Path) -> None:
    """Two `aftercare ingest --amqp-url` workers consume one quorum queue (every node in the
    URL, a dead one first if the first test killed one): each gets a share of the flood, one
    is SIGKILLed mid-flood and restarted on its spool, and every acknowledged reading is
    stored exactly once."""
    rc = cluster
    nodes = sorted(rc.nodes, key=rc.alive)  # a dead node (if any) first: skipped
    amqp = rc.cluster_amqp_url(nodes, user=broker.INGEST_USER)
    env = {**os.environ, "DATABASE_URL": store_dsn, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "aftercare_cli", "ingest", "--amqp-url", amqp,
                    "--declare-only"], env=env, check=True, timeout=120)
    workers = [WorkerProcess(tmp_path, dsn=store_dsn, mqtt_url=rc.url(broker.INGEST_USER),
                             client_id=f"amqp-ingest-{i}", extra=("--amqp-url", amqp))
               for i in range(2)]
    topic = f"devices/{FLOOD[0]}/telemetry"
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_subscribed(90)
        with psycopg.connect(store_dsn) as conn:
            rejects_before = _count(conn, "SELECT count(*) FROM ingest_rejects")
        flood = Flood(rc, FLOOD, 400.0)
        flood.start()
        try:
            wait_for("500 readings acknowledged", lambda: len(flood.acked) >= 500, 90)
            # Hostile payloads through the cluster's MQTT plugin and the quorum queue: each
            # is kept as a reject with its reason and neither worker stops. The device tries
            # the nodes in turn until one accepts its login, as a device in the field does.
            with mqtt_device(rc.url(FLOOD[0]), f"{FLOOD[0]}-poison", timeout_s=90) as client:
                for p in POISON:
                    client.publish(topic, p, qos=1).wait_for_publish(30)
            workers[0].kill()
            acked_at_kill = len(flood.acked)
            wait_for("300 more acknowledged with one worker", lambda: len(flood.acked) >=
                     acked_at_kill + 300, 90)
            workers[0].start()                      # supervised: back on its spool
            workers[0].wait_subscribed(90)
            wait_for("300 more with both again",
                     lambda: len(flood.acked) >= acked_at_kill + 600, 90)
        finally:
            flood.stop()
        t = tally(store_dsn, flood, workers, 0.0, settle_s=90)
        with psycopg.connect(store_dsn) as conn:
            wait_for("every poison payload kept as a reject", lambda: _count(
                conn, "SELECT count(*) FROM ingest_rejects") - rejects_before >= len(POISON),
                60)
            # A poison message redelivered after the kill may be rejected twice: count
            # distinct payloads.
            reasons = dict(conn.execute(
                "SELECT md5(payload), min(reason) FROM ingest_rejects WHERE topic = %s "
                "GROUP BY 1", (topic,)).fetchall())
    finally:
        for w in workers:
            w.stop()
    logs = [w.log.read_text() for w in workers]
    assert t.lost == 0, (t, logs[0][-1500:], logs[1][-1500:])
    assert t.duplicated == 0, t
    assert len(reasons) == len(POISON), reasons
    assert all(reasons.values()), reasons
    assert not any("Traceback" in log for log in logs), [log[-3000:] for log in logs]
    # The survivor stopped cleanly and says how many messages it took: fewer than were
    # stored, so the other worker took a share (each message here carries one reading).
    took = [int(n) for n in re.findall(r"stopped: (\d+) messages", logs[1])]
    assert took, logs[1][-2000:]
    assert 0 < took[-1] < t.stored, (took, t)
