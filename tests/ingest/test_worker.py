"""The ingest worker against the real Mosquitto and PostgreSQL: devices publish, readings land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest

from aftercare import broker
from aftercare.mqtt import endpoint
from ingest.worker import IngestWorker, Metrics
from tests.ingest.chaos import device
from tests.support.wait import wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]
SPOOLS = Path(tempfile.mkdtemp(prefix="aftercare-spools-"))
T0_MS = int(time.time() * 1000) - 3_600_000


def scalar(dsn: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def publish_all(client: mqtt.Client, topic: str, payloads: list[bytes]) -> None:
    infos = [client.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)


def reading(i: int, **metrics: Any) -> bytes:
    return orjson.dumps({"ts": T0_MS + i * 1000, "seq": i, "metrics": metrics})


@contextmanager
def worker_thread(dsn: str, url: str, **kw: Any) -> Iterator[IngestWorker]:
    kw.setdefault("client_id", f"ingest-test-{uuid.uuid4().hex[:8]}")
    kw.setdefault("share_group", f"g{uuid.uuid4().hex[:8]}")
    kw.setdefault("session_expiry_s", 0)
    kw.setdefault("spool_dir", SPOOLS / kw["client_id"])
    w = IngestWorker(database_url=dsn, mqtt_url=url, batch_ms=50, **kw)
    w.metrics = Metrics(w)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        assert w.subscribed.wait(10), "worker could not connect and subscribe"
        yield w
    finally:
        w.stop()
        t.join(15)


def test_walking_skeleton_device_publishes_and_readings_appear(
    store_dsn: str, ingest_mqtt_url: str, device_mqtt_url: Callable[[str], str]
) -> None:
    with worker_thread(store_dsn, ingest_mqtt_url) as w, \
            device(device_mqtt_url("pump-1"), "pump-1") as dev:
        publish_all(dev, "devices/pump-1/telemetry", [
            reading(0, flow_m3h=12.5, pressure_bar=3.1),
            reading(1, flow_m3h=None, pressure_bar=3.2),
            b'{"ts": "soon", "metrics": {"flow_m3h": 1}}',
            orjson.dumps({"readings": [{"ts": T0_MS + 2000, "metrics": {"flow_m3h": 13}},
                                       {"ts": T0_MS + 3000, "metrics": {"flow_m3h": "x"}}]}),
        ])
        publish_all(dev, "devices/pump-1/status", [b'{"state": "online"}'])
        wait_for("readings", lambda: w.counters.messages >= 5)
    rows = psycopg.connect(store_dsn).execute(
        "SELECT metric, value FROM readings WHERE device = 'pump-1' ORDER BY time, metric"
    ).fetchall()
    assert rows == [("flow_m3h", 12.5), ("pressure_bar", 3.1), ("flow_m3h", None),
                    ("pressure_bar", 3.2), ("flow_m3h", 13.0)]
    rejects = psycopg.connect(store_dsn).execute(
        "SELECT topic, reason, payload FROM ingest_rejects ORDER BY id").fetchall()
    assert [(t, r) for t, r, _ in rejects] == [("devices/pump-1/telemetry", "bad ts"),
                                               ("devices/pump-1/telemetry", "value not a number")]
    assert rejects[0][2] == b'{"ts": "soon", "metrics": {"flow_m3h": 1}}'
    assert scalar(store_dsn, "SELECT state FROM devices WHERE device_key = 'pump-1'") == "online"
    assert w.counters.rejected_by_reason == {"bad ts": 1, "value not a number": 1}
    assert w.metrics is not None
    port = broker.free_port()
    w.metrics.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    assert 'aftercare_ingest_rejected_total{reason="bad ts"} 1.0' in text
    assert "aftercare_ingest_readings_stored_total 5.0" in text
    assert "aftercare_ingest_lag_seconds" in text
    # The spool's backlog and how long an outage it would absorb, for alerting.
    assert "aftercare_ingest_spool_bytes 0.0" in text
    assert "aftercare_ingest_outage_survivable_seconds" in text
    assert "aftercare_ingest_heartbeat_age_seconds" in text


def test_device_cannot_publish_as_another_and_strangers_cannot_connect(
    store_dsn: str, ingest_mqtt_url: str, device_mqtt_url: Callable[[str], str]
) -> None:
    with worker_thread(store_dsn, ingest_mqtt_url):
        with device(device_mqtt_url("dev-001"), "dev-001") as dev:
            # The forged message first, acknowledged (the broker decided on it) before the
            # honest one is sent: the broker would have queued it to the worker before the
            # honest one, so once the honest reading is stored a forged one would be too.
            publish_all(dev, "devices/dev-002/telemetry", [reading(0, temp_c=1.0)])
            publish_all(dev, "devices/dev-001/telemetry", [reading(0, temp_c=2.0)])
        wait_for("the honest reading", lambda: scalar(
            store_dsn, "SELECT count(*) FROM readings WHERE device = 'dev-001'") >= 1)
    assert scalar(store_dsn, "SELECT array_agg(device) FROM readings") == ["dev-001"]
    ep = endpoint(ingest_mqtt_url)
    for user, password in (("dev-001", "wrong"), (None, None), ("nobody", "x")):
        assert connack(ep.host, ep.port, user, password).is_failure, user


def connack(host: str, port: int, user: str | None, password: str | None) -> Any:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    result: list[Any] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect(host, port)
    client.loop_start()
    try:
        wait_for("CONNACK", lambda: bool(result), 10)
    finally:
        client.loop_stop()
    return result[0]


def test_two_workers_share_the_load_and_store_each_message_once(
    store_dsn: str, ingest_mqtt_url: str, device_mqtt_url: Callable[[str], str]
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    devices = [f"dev-{i:03d}" for i in range(10)]
    per_device = 100
    # Opt-in: a broker that keeps shared subscriptions across restarts (Mosquitto does not).
    with worker_thread(store_dsn, ingest_mqtt_url, share_group=group, shared=True) as a, \
            worker_thread(store_dsn, ingest_mqtt_url, share_group=group, shared=True) as b:
        for d in devices:
            with device(device_mqtt_url(d), d) as dev:
                publish_all(dev, f"devices/{d}/telemetry",
                            [reading(i, temp_c=float(i)) for i in range(per_device)])
        total = len(devices) * per_device
        wait_for("all messages", lambda: a.counters.messages + b.counters.messages >= total)
        assert a.counters.messages > 0
        assert b.counters.messages > 0
    assert scalar(store_dsn, "SELECT count(*) FROM readings") == total
    assert scalar(store_dsn, "SELECT count(DISTINCT (device, time)) FROM readings") == total


def test_database_outage_is_absorbed_by_the_spool_and_resumes_without_loss(
    store_template: str, ingest_mqtt_url: str, device_mqtt_url: Callable[[str], str]
) -> None:
    from tests.support.services import admin_connection, dsn_for

    name = f"aftercare_outage_{uuid.uuid4().hex[:8]}"
    dsn = dsn_for(name)  # does not exist yet: the database is "down"
    try:
        # A batch is not bounded by the receive maximum: the spool decouples the two.
        with worker_thread(dsn, ingest_mqtt_url, batch_size=20, receive_maximum=5) as w, \
                device(device_mqtt_url("dev-005"), "dev-005") as dev:
            publish_all(dev, "devices/dev-005/telemetry",
                        [reading(i, temp_c=float(i)) for i in range(50)])
            wait_for("a failed write", lambda: w.counters.db_errors >= 1)
            # Acknowledged only once on disk: the broker's queue is no longer the limit.
            wait_for("the spool", lambda: w.counters.spooled >= 50)
            assert w.counters.messages == 0
            assert w.spool is not None
            assert w.spool.pending_bytes > 0
            with admin_connection() as admin:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{store_template}"')
            wait_for("the backlog", lambda: w.counters.messages >= 50, 60)
        assert scalar(dsn, "SELECT count(*) FROM readings") == 50
        # The batch retried through the outage, then the backlog 20 at a time (at most 5 at a
        # time if the receive maximum bounded a batch: 10 batches or more).
        assert w.counters.batches <= 4, w.counters.batches
    finally:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_sigkill_at_any_moment_loses_nothing_and_stores_each_reading_once(
    store_dsn: str, ingest_mqtt_url: str, device_mqtt_url: Callable[[str], str],
    tmp_path: Any,
) -> None:
    client_id = f"ingest-kill-{uuid.uuid4().hex[:8]}"
    group = f"g{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": store_dsn, "MQTT_URL": ingest_mqtt_url,
           "INGEST_METRICS_PORT": "0"}
    cmd = [sys.executable, "-m", "aftercare_cli", "ingest", "--client-id", client_id,
           "--share-group", group, "--batch-ms", "20", "--batch-size", "200",
           "--spool-dir", str(tmp_path / "spool")]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "ingest.log", "ab"))  # noqa: SIM115

    proc = start()
    # Subscribe (creating the persistent session) before devices publish.
    wait_for("worker session", lambda: "connected to" in (tmp_path / "ingest.log").read_text())
    n_dev, per = 5, 400
    stop = threading.Event()

    def publisher() -> None:
        for d in range(n_dev):
            name = f"dev-{10 + d:03d}"
            with device(device_mqtt_url(name), name) as dev:
                publish_all(dev, f"devices/{name}/telemetry",
                            [reading(i, temp_c=float(i), load_pct=50.0) for i in range(per)])
        stop.set()

    t = threading.Thread(target=publisher)
    t.start()
    kills = 0
    while not stop.is_set() or kills < 3:
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        proc = start()
    t.join()
    try:
        expected = n_dev * per * 2
        wait_for("every reading", lambda: scalar(
            store_dsn, "SELECT count(*) FROM readings") >= expected, 90)
        assert scalar(store_dsn, "SELECT count(*) FROM readings") == expected
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert kills >= 3
