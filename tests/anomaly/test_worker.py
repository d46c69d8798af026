"""`aftercare detect`: reads the real store, checkpoints in it, publishes on the real brokers."""

from __future__ import annotations

import asyncio
import io
import queue
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import pytest

from aftercare import broker
from aftercare.events import ALERTS_TOPIC, AlertEvent
from anomaly.bank import BankConfig
from anomaly.publish import AlertPublisher
from anomaly.worker import DetectWorker, WorkerOptions, publish_pending
from ingest.writer import write_columns
from tests.support.anomaly import run_until_caught_up
from tests.support.services import DEVICE_SECRET, mqtt_url_for

pytestmark = pytest.mark.db

S = 1_000_000
START_US = int(datetime(2026, 1, 5, 8, 0, tzinfo=UTC).timestamp()) * S
N_S = 1500
# 25 minutes of history: these pumps have no equipment model, and their generic channels are
# judged without the day an unknown machine first learns (tests/anomaly/test_generic.py).
CONFIG = BankConfig(stuck_s=120, generic_learn_s=0.0)


def write_fleet(conn: psycopg.Connection[Any]) -> None:
    """Two pumps for 25 minutes at 1 Hz; pump-1 overheats from minute 10 for 5 minutes and its
    flow sensor freezes from minute 18."""
    rng = np.random.default_rng(42)
    t = START_US + np.arange(N_S, dtype=np.int64) * S
    temp = 70 + 0.5 * rng.normal(size=(2, N_S))
    temp[0, 600:900] = 99 + 0.3 * rng.normal(size=300)
    flow = 32 + 0.4 * rng.normal(size=(2, N_S))
    flow[0, 1080:] = 31.5
    for dev in range(2):
        for name, v in (("temperature_c", temp[dev]), ("flow_l_min", flow[dev])):
            write_columns(conn, device=[f"pump-{dev + 1}"] * N_S, metric=[name] * N_S,
                          time=t, value=v)


def outbox(conn: psycopg.Connection[Any], name: str) -> list[tuple[str, int, str]]:
    rows = conn.execute("SELECT alert_id, revision, payload FROM anomaly_outbox "
                        "WHERE worker = %s ORDER BY id", (name,)).fetchall()
    conn.commit()
    return [(a, r, AlertEvent.from_json(bytes(p)).state) for a, r, p in rows]


def test_worker_raises_the_fleets_alerts_once(store_conn: psycopg.Connection[Any]) -> None:
    write_fleet(store_conn)
    options = WorkerOptions(name="solo", settle_s=0, max_span_s=240)
    events = run_until_caught_up(DetectWorker(store_conn, options, CONFIG))
    opened = [(e.device, e.kind, e.failure_mode) for e in events if e.state == "open"]
    assert opened == [("pump-1", "equipment", "overheating"),
                      ("pump-1", "device", "sensor stuck")]
    hot = next(e for e in events if e.kind == "equipment")
    # Opens once the condition has persisted for open_hold_s (a lone wild reading never does).
    assert hot.opened_at == datetime.fromtimestamp(
        (START_US + 600 * S + int(CONFIG.open_hold_s * S)) / S, UTC)
    assert hot.evidence[0].metric == "temperature_c"
    assert hot.evidence[0].value is not None
    assert [e.state for e in events if e.alert_id == hot.alert_id][-1] == "clear"
    assert [(e.alert_id, e.revision) for e in events] == [(a, r) for a, r, _ in
                                                           outbox(store_conn, "solo")]


def test_restart_neither_misses_nor_repeats_alerts(store_conn: psycopg.Connection[Any]) -> None:
    write_fleet(store_conn)
    straight = WorkerOptions(name="straight", settle_s=0, max_span_s=100)
    run_until_caught_up(DetectWorker(store_conn, straight, CONFIG))
    restarted = WorkerOptions(name="restarted", settle_s=0, max_span_s=100)
    for _ in range(15):                      # a new process (from the checkpoint) every 3 steps
        worker = DetectWorker(store_conn, restarted, CONFIG)
        for _ in range(3):
            worker.step()
    run_until_caught_up(DetectWorker(store_conn, restarted, CONFIG))
    assert outbox(store_conn, "restarted") == outbox(store_conn, "straight")
    states = [state for _, _, state in outbox(store_conn, "straight")]
    # The overheating (calibrated: these pumps have no equipment model) opens and clears, then
    # the frozen flow sensor opens; escalations are updates.
    assert [s for s in states if s != "update"] == ["open", "clear", "open"]


def _channels(worker: DetectWorker) -> list[tuple[str, str]]:
    return sorted((c.asset, c.metric) for c in worker.bank.specs)


def test_a_metric_id_past_16_bits_is_its_own_channel(
        store_conn: psycopg.Connection[Any]) -> None:
    """Metric ids go to 1,000,000: metric 65,537 of pump-1 is not metric 1 of pump-2. And a
    checkpoint written when keys gave metric ids 16 bits resumes with the same channels."""
    t = START_US + np.arange(120, dtype=np.int64) * S
    for dev in ("pump-1", "pump-2"):
        write_columns(store_conn, device=[dev] * 60, metric=["temperature_c"] * 60,
                      time=t[:60], value=np.full(60, 70.0))
    options = WorkerOptions(name="wide", settle_s=0, max_span_s=30)
    worker = DetectWorker(store_conn, options, CONFIG)
    run_until_caught_up(worker)
    assert worker.chan_keys.tolist() == [1 << 32 | 1, 2 << 32 | 1]
    state = np.load(io.BytesIO(worker._state_bytes()))
    old = io.BytesIO()
    np.savez(old, chan_keys=np.array([1 << 16 | 1, 2 << 16 | 1], np.int64), bank=state["bank"])
    with store_conn.transaction():
        store_conn.execute("UPDATE anomaly_checkpoints SET state = %s WHERE worker = 'wide'",
                           (old.getvalue(),))
        store_conn.execute("ALTER TABLE metrics ALTER COLUMN id RESTART WITH 65537")
    write_columns(store_conn, device=["pump-1"] * 60, metric=["flow_l_min"] * 60,
                  time=t[60:], value=np.full(60, 30.0))
    write_columns(store_conn, device=["pump-2"] * 60, metric=["temperature_c"] * 60,
                  time=t[60:], value=np.full(60, 70.0))
    assert store_conn.execute("SELECT id FROM metrics WHERE name = 'flow_l_min'"
                              ).fetchone() == (65537,)
    store_conn.commit()
    resumed = DetectWorker(store_conn, options, CONFIG)
    assert resumed.chan_keys.tolist() == [1 << 32 | 1, 2 << 32 | 1]
    run_until_caught_up(resumed)
    assert sorted((c.asset, c.metric) for c in resumed.bank.specs) == [
        ("pump-1", "flow_l_min"), ("pump-1", "temperature_c"), ("pump-2", "temperature_c")]
    assert resumed.chan_keys.tolist()[2] == 1 << 32 | 65537


def test_rows_committed_late_are_not_skipped(store_dsn: str) -> None:
    """A slower ingest transaction commits an *earlier* reading after a later one: the worker
    must wait for it instead of moving its watermark past it."""
    with psycopg.connect(store_dsn) as conn, psycopg.connect(store_dsn) as slow:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        now_us = int(row[0].timestamp() * S)
        conn.commit()
        # Devices and metric known beforehand, so the two writers do not queue on their names.
        write_columns(conn, device=["pump-1", "pump-2"], metric=["temperature_c"] * 2,
                      time=[now_us - 3600 * S] * 2, value=[70.0, 70.0])
        with slow.transaction():
            write_columns(slow, device=["pump-1"], metric=["temperature_c"],
                          time=[now_us - 200_000], value=[70.0])
            # The faster writer commits a later reading first.
            write_columns(conn, device=["pump-2"], metric=["temperature_c"],
                          time=[now_us], value=[71.0])
            worker = DetectWorker(conn, WorkerOptions(name="late", settle_s=1.5))
            worker.watermark_us = now_us - 2 * S
            worker.step()                    # only up to now - 1.5 s: neither reading yet
            assert worker.bank.channels == 0
        # Both committed; 2 s later on the database clock both would be settled. Instead of
        # sleeping, move the horizon those 2 s: the same step with settle_s 1.5 - 2.
        worker.options = replace(worker.options, settle_s=-0.5)
        run_until_caught_up(worker)
        assert sorted(worker.bank.keys()) == [("pump-1", "temperature_c"),
                                              ("pump-2", "temperature_c")]


@pytest.mark.broker
def test_outbox_is_published_on_mqtt_and_marked(store_conn: psycopg.Connection[Any],
                                                mosquitto: broker.BrokerFiles) -> None:
    write_fleet(store_conn)
    worker = DetectWorker(store_conn, WorkerOptions(name="pub", settle_s=0, max_span_s=600),
                          CONFIG)
    events = run_until_caught_up(worker)
    password = broker.service_password(DEVICE_SECRET, broker.SERVICE_USER)
    received: queue.Queue[bytes] = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="alert-listener")
    sub.username_pw_set(broker.SERVICE_USER, password)
    sub.on_connect = lambda c, *_: c.subscribe(ALERTS_TOPIC, qos=1)
    sub.on_message = lambda _c, _u, msg: received.put(msg.payload)
    subscribed = queue.Queue[int]()
    sub.on_subscribe = lambda *_: subscribed.put(1)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    try:
        subscribed.get(timeout=10)
        url = mqtt_url_for(mosquitto, broker.SERVICE_USER, password)

        async def publish() -> int:
            async with AlertPublisher(url) as pub:
                return await publish_pending(worker, pub)

        assert asyncio.run(publish()) == len(events)
        got = [AlertEvent.from_json(received.get(timeout=10)) for _ in events]
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got == events
    assert worker.pending() == []


@pytest.mark.broker
def test_detect_command_runs_until_caught_up_and_publishes(
        store_dsn: str, store_conn: psycopg.Connection[Any], mosquitto: broker.BrokerFiles,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from anomaly.detect import main

    write_fleet(store_conn)
    store_conn.commit()
    password = broker.service_password(DEVICE_SECRET, broker.SERVICE_USER)
    monkeypatch.setenv("DATABASE_URL", store_dsn)
    monkeypatch.setenv("EVENTS_URL", mqtt_url_for(mosquitto, broker.SERVICE_USER, password))
    assert main(["--once", "--settle-s", "0"]) == 0
    rows = store_conn.execute("SELECT count(*), count(published_at) FROM anomaly_outbox "
                              "WHERE worker = 'default'").fetchone()
    assert rows is not None
    assert rows[0] == rows[1] > 0


@pytest.mark.broker
def test_detection_goes_on_while_no_event_broker_answers(
        store_conn: psycopg.Connection[Any]) -> None:
    """No event broker node reachable: the worker keeps detecting into its outbox (publishing
    fails at once, marks nothing), and once a node answers the backlog goes out in order."""
    import uuid

    from tests.anomaly.test_publish import _drain, need_server
    from tests.support.relay import free_port

    need_server(5672, "RabbitMQ")
    write_fleet(store_conn)
    worker = DetectWorker(store_conn, WorkerOptions(name="nobroker", settle_s=0,
                                                    max_span_s=600), CONFIG)
    topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"
    dead = free_port()

    async def scenario() -> tuple[list[AlertEvent], int, list[bytes]]:
        url = f"amqp://guest:guest@127.0.0.1:{dead}/"
        async with AlertPublisher(url, topic=topic, partitions=1, first_wait_s=0) as pub:
            events = await asyncio.to_thread(run_until_caught_up, worker)
            sent_while_down = await publish_pending(worker, pub)
        cluster = f"amqp://guest:guest@127.0.0.1:{dead},127.0.0.1:5672/"
        async with AlertPublisher(cluster, topic=topic, partitions=1) as pub:
            sent = await publish_pending(worker, pub)
        assert sent == len(events)
        return events, sent_while_down, await _drain(topic)

    events, sent_while_down, got = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert events
    assert sent_while_down == 0
    assert [AlertEvent.from_json(p) for p in got] == events
    assert worker.pending() == []


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--learn-unknown-s", "-1", "must be at least 0, got -1"),
    ("--partitions", "0", "must be from 1 to 4096, got 0"),
    ("--step-s", "0", "must be above 0, got 0"),
    ("--poll-s", "nan", "not a finite number: 'nan'"),
    ("--lease-ttl-s", "-5", "must be above 0, got -5"),
    ("--settle-s", "soon", "not a number: 'soon'"),
])
def test_detect_refuses_bad_numbers_with_a_usage_error(
        flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Each would have reached a constructor (a traceback) or a worker that never sleeps.
    from anomaly.detect import main

    with pytest.raises(SystemExit) as exc:
        main([flag, value])
    assert exc.value.code == 2
    assert f"argument {flag}: {says}" in capsys.readouterr().err
