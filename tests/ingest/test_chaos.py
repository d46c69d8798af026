"""Ingest under real faults, against a private PostgreSQL and Mosquitto of its own.

Each test floods QoS 1 device messages, injects a fault while they flow, and then counts:
every reading a device had acknowledged is stored, exactly once. The long versions (10 kills,
a 10-minute outage, 100,000 fuzzed payloads) are ``bench/chaos.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from tests.ingest.chaos import (
    POISON,
    Flood,
    PrivateMosquitto,
    PrivatePostgres,
    WorkerProcess,
    device_client,
    flood_with_faults,
    private_mosquitto,
    private_postgres,
    tally,
)
from tests.support.wait import wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker, pytest.mark.chaos]
DEVICES = [f"chaos-{i:02d}" for i in range(4)]


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    # Outside pytest's private (0700) temporary tree: the server runs as user postgres.
    directory = Path(tempfile.mkdtemp(prefix="aftercare-chaos-pg-"))
    try:
        with private_postgres(directory / "pg") as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def dsn(pg: PrivatePostgres) -> str:
    return pg.create_store(f"chaos_{int(time.time() * 1000) % 10**9}")


@pytest.fixture
def mosq(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    with private_mosquitto(tmp_path / "mosquitto", DEVICES) as m:
        yield m


def _worker(tmp_path: Path, dsn: str, mosq: PrivateMosquitto, **kw: Any) -> WorkerProcess:
    w = WorkerProcess(tmp_path, dsn=dsn, mqtt_url=mosq.url("aftercare-ingest"), **kw)
    w.start()
    w.wait_subscribed()
    return w


def _assert_exact(t: object, *, rejected: int = 0) -> None:
    from tests.ingest.chaos import Tally

    assert isinstance(t, Tally)
    assert t.acknowledged > 0
    assert t.lost == 0, t
    assert t.duplicated == 0, t
    assert t.rejected == rejected, t


def _alive(w: WorkerProcess, spool: Path) -> int:
    return subprocess.run([*w.cmd[:3], "ingest", "--spool-dir", str(spool), "--alive", "30"],
                          env=w.env, check=False).returncode


# Every batch written in pieces on two connections (gateway-sized batches are, by default):
# a kill or an outage between the pieces' commits must not lose or double a reading either.
PIECES = ("--copy-connections", "2", "--copy-split-rows", "1")


def test_kill_9_three_times_loses_nothing(tmp_path: Path, dsn: str,
                                         mosq: PrivateMosquitto) -> None:
    w = _worker(tmp_path, dsn, mosq, extra=PIECES)
    # The liveness probe a supervisor would use: fresh heartbeat yes, no worker no.
    assert _alive(w, w.spool) == 0
    assert _alive(w, tmp_path / "no-such-spool") == 1

    def kill() -> None:
        w.kill()
        w.start()

    try:
        _assert_exact(flood_with_faults(mosq, dsn, w, DEVICES, kill, times=3, every_s=1.5,
                                        rate=600))
    finally:
        w.stop()


@pytest.mark.parametrize("part", ["broker", "database"])
def test_restarts_of_broker_or_database_lose_nothing(
    part: str, tmp_path: Path, pg: PrivatePostgres, dsn: str, mosq: PrivateMosquitto
) -> None:
    w = _worker(tmp_path, dsn, mosq, extra=PIECES if part == "database" else ())
    restart = mosq.restart if part == "broker" else pg.restart
    try:
        _assert_exact(flood_with_faults(mosq, dsn, w, DEVICES, restart, times=3, every_s=1.5,
                                        rate=600))
        assert w.alive()
        assert w.starts == 1  # it rode through the restarts itself
    finally:
        w.stop()


def test_outage_longer_than_the_broker_queue_loses_nothing(
    tmp_path: Path, pg: PrivatePostgres, dsn: str
) -> None:
    # A broker that would queue only 200 messages for an absent subscriber: without the
    # spool, an outage of several seconds at 600 msg/s would overflow it many times over.
    with private_mosquitto(tmp_path / "small", DEVICES, max_queued_messages=200) as mosq:
        w = _worker(tmp_path, dsn, mosq)
        flood = Flood(mosq, DEVICES, rate_per_s=600)
        flood.start()
        try:
            time.sleep(1.0)
            pg.stop()
            time.sleep(6.0)   # ~3,600 messages arrive while the database is away
            assert w.alive()
            pg.start()
            time.sleep(1.0)
        finally:
            flood.stop()
        try:
            t = tally(dsn, flood, [w], w.rss_mb())
            _assert_exact(t)
            assert t.acknowledged > 3000
        finally:
            w.stop()




def test_poison_payloads_are_kept_as_rejects_and_ingest_goes_on(
    tmp_path: Path, pg: PrivatePostgres, dsn: str, mosq: PrivateMosquitto
) -> None:
    w = _worker(tmp_path, dsn, mosq)
    flood = Flood(mosq, DEVICES, rate_per_s=400)
    flood.start()
    many_names = [orjson.dumps({"ts": int(time.time() * 1000) - 1000 - k,
                                "metrics": {f"m{k}_{i}": 1.0 for i in range(1500)}})
                  for k in range(5)]
    try:
        with device_client(mosq, DEVICES[0]) as client:
            for p in [*POISON, *many_names]:
                client.publish(f"devices/{DEVICES[0]}/telemetry", p, qos=1).wait_for_publish(10)
        time.sleep(1.0)
    finally:
        flood.stop()
    try:
        t = tally(dsn, flood, [w], w.rss_mb())
        _assert_exact(t, rejected=len(POISON) + len(many_names))
        assert w.alive()
        assert w.starts == 1
        with psycopg.connect(dsn) as conn:
            reasons = dict(conn.execute(
                "SELECT reason, count(*) FROM ingest_rejects GROUP BY 1").fetchall())
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass"
            ).fetchone()
            sizes = conn.execute(
                "SELECT max(octet_length(payload)), max(payload_size) FROM ingest_rejects"
            ).fetchone()
        assert reasons.get("too many metric names") == len(many_names)
        assert sum(reasons.values()) == len(POISON) + len(many_names)
        # No partition outside the window: today's and the ones made ahead, nothing from 1900.
        assert parts is not None
        assert parts[0] <= 10
        assert sizes == (64 * 1024, 200 * 1024)
    finally:
        w.stop()


def test_stopped_worker_is_restarted_by_the_demo_supervisor(tmp_path: Path) -> None:
    from aftercare_cli.demo import Supervisor

    marker = tmp_path / "runs"
    script = f"import pathlib; p = pathlib.Path({str(marker)!r}); " \
             "p.write_text(p.read_text() + 'x' if p.exists() else 'x')"
    import sys

    sup = Supervisor(backoff_s=0.1)
    sup.add("flaky", [sys.executable, "-c", script], env=None, log_path=tmp_path / "f.log")
    stop = threading.Event()
    t = threading.Thread(target=sup.watch, args=(stop,), daemon=True)
    t.start()
    try:
        wait_for("three runs", lambda: marker.exists() and len(marker.read_text()) >= 3, 20)
    finally:
        stop.set()
        t.join(10)
        sup.stop_all()
