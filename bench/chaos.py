"""Ingest under faults, the long versions: prints one table of what was lost.

Run from the repository root:  .venv/bin/python bench/chaos.py [--quick] [--only NAME ...]

A private PostgreSQL (initdb in a temporary directory) and a private Mosquitto (the config
``aftercare broker --out`` writes) are started for the run and removed afterwards; the ingest
worker runs as a real process (``aftercare ingest``), devices are paho QoS 1 publishers whose
PUBACKs are counted. Scenarios (full / ``--quick``):

- kill: ``kill -9`` of the worker 10 / 3 times during a 1,500 msg/s flood;
- broker: graceful Mosquitto restart 5 / 2 times during the flood;
- database: PostgreSQL restart (fast shutdown) 5 / 2 times during the flood;
- outage: PostgreSQL stopped for 600 / 30 s during the flood, then the catch-up is timed;
- fuzz: 100,000 / 5,000 payloads, half valid and half hostile in known ways, through the
  broker: every valid one stored, every hostile one kept as a reject, the worker never down.

Columns: published (publish calls), acknowledged (PUBACKs), stored (acknowledged readings
found), lost (acknowledged, not stored), duplicated (rows beyond one per reading), rejected
(rows in ``ingest_rejects``), max RSS of the worker, recovery (end of the fault to every
acknowledged reading stored).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ingest.chaos import (  # noqa: E402
    TABLE_HEAD,
    Flood,
    PrivateMosquitto,
    PrivatePostgres,
    RssSampler,
    Tally,
    WorkerProcess,
    device_client,
    flood_with_faults,
    private_mosquitto,
    private_postgres,
    stored_keys,
    tally,
)

RATE = 1500.0
DEVICES = [f"chaos-{i:02d}" for i in range(10)]


def _start(tmp: Path, dsn: str, mosq: PrivateMosquitto) -> WorkerProcess:
    w = WorkerProcess(tmp, dsn=dsn, mqtt_url=mosq.url("aftercare-ingest"))
    w.start()
    w.wait_subscribed()
    return w


def run_repeated(tmp: Path, pg: PrivatePostgres, part: str, n: int) -> Tally:
    """A flood with `n` faults of one kind: kill (-9 the worker), broker or database restart."""
    dsn = pg.create_store(part)
    with private_mosquitto(tmp / f"m-{part}", DEVICES) as mosq:
        w = _start(tmp, dsn, mosq)

        def kill() -> None:
            w.kill()
            w.start()

        fault = {"kill": kill, "broker": mosq.restart, "database": pg.restart}[part]
        try:
            return flood_with_faults(
                mosq, dsn, w, DEVICES, fault, times=n, every_s=4.0, rate=RATE, settle_s=300,
                progress=lambda r: tqdm(r, desc=part, unit="fault"))
        finally:
            w.stop()


def run_outage(tmp: Path, pg: PrivatePostgres, outage_s: float) -> tuple[Tally, str]:
    dsn = pg.create_store("outage")
    with private_mosquitto(tmp / "m-outage", DEVICES) as mosq:
        w = _start(tmp, dsn, mosq)
        rss = RssSampler(w)
        flood = Flood(mosq, DEVICES, RATE)
        flood.start()
        try:
            time.sleep(3)
            pg.stop()
            for _ in tqdm(range(int(outage_s)), desc=f"database down {outage_s:.0f} s",
                          unit="s"):
                time.sleep(1)
            backlog = len(flood.acked)
            pg.start()
            t_back = time.monotonic()
            caught = float("nan")
            bar = tqdm(desc="catching up", unit="reading")
            while time.monotonic() - t_back < 1800:
                time.sleep(1)
                acked = set(flood.acked)
                keys, _ = stored_keys(dsn, flood.devices)
                missing = len(acked - keys)
                bar.n = len(keys)
                bar.refresh()
                if missing <= RATE * 1.5:  # within ~1 s of lag: caught up
                    caught = time.monotonic() - t_back
                    break
            bar.close()
            time.sleep(2)
        finally:
            flood.stop()
        t = tally(dsn, flood, [w], 0.0, settle_s=300)
        t.max_rss_mb = rss.stop()
        t.recovery_s = caught
        w.stop()
        rate = (backlog / caught + RATE) if caught == caught and caught > 0 else float("nan")
        note = (f"outage {outage_s:.0f} s at {RATE:,.0f} msg/s: backlog {backlog:,} readings "
                f"acknowledged while the database was down; caught up {caught:.0f} s after it "
                f"returned, i.e. {rate:,.0f} msg/s ({rate / RATE:.1f}x the incoming rate)")
        return t, note


def hostile(rng: random.Random, now_ms: int) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return b"\xff" + rng.randbytes(rng.randrange(200))
    if kind == 1:
        return b'{"ts": %d, "metrics": {"a\\u0000b": 1}}' % now_ms
    if kind == 2:
        return b'{"ts": "\\u0000", "metrics": {"a": 1}}'
    if kind == 3:
        return b'{"ts": %d, "metrics": {"a": 1}}' % rng.choice(
            [-9007199254740991, 9007199254740991, -(2**62), 1])
    if kind == 4:
        return orjson.dumps({"readings": [{"ts": f"19{y:02d}-06-01T00:00:00Z",
                                           "metrics": {"a": 1}} for y in range(50)]})
    if kind == 5:
        return orjson.dumps({"ts": now_ms, "metrics": {f"n{i}": 1 for i in range(1200)}})
    if kind == 6:
        return orjson.dumps([rng.random() for _ in range(10)])
    if kind == 7:
        return b'{"ts": %d, "metrics": {"a": "%s"}}' % (now_ms, b"x" * rng.randrange(50))
    if kind == 8:
        return orjson.dumps({"ts": "9999-12-31T23:59:59-23:59", "metrics": {"a": 1}})
    return b"x" * rng.randrange(1, 100_000)


def run_fuzz(tmp: Path, pg: PrivatePostgres, n: int) -> tuple[Tally, str]:
    dsn = pg.create_store("fuzz")
    rng = random.Random(42)  # noqa: S311 - test data
    with private_mosquitto(tmp / "m-fuzz", DEVICES) as mosq:
        w = _start(tmp, dsn, mosq)
        rss = RssSampler(w)
        base_ms = int(time.time() * 1000) - 3_600_000
        valid = hostile_n = 0
        with device_client(mosq, DEVICES[0]) as client:
            infos = []
            for i in tqdm(range(n), desc="fuzzed payloads", unit="msg"):
                if i % 2 == 0:
                    payload = orjson.dumps({"ts": base_ms + i, "metrics": {"temp_c": 1.0}})
                    valid += 1
                else:
                    payload = hostile(rng, int(time.time() * 1000))
                    hostile_n += 1
                infos.append((i, client.publish(f"devices/{DEVICES[0]}/telemetry", payload,
                                                qos=1)))
                if len(infos) >= 500:
                    for _, info in infos:
                        info.wait_for_publish(30)
                    infos.clear()
            for _, info in infos:
                info.wait_for_publish(30)
        # Every message accounted: the valid stored, the hostile rejected.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with psycopg.connect(dsn) as conn:
                row = conn.execute("SELECT count(*) FROM ingest_rejects").fetchone()
                rejects = int(row[0]) if row else 0
                row = conn.execute("SELECT count(*) FROM readings WHERE metric = 'temp_c'"
                                   ).fetchone()
                stored = int(row[0]) if row else 0
            if rejects >= hostile_n and stored >= valid:
                break
            time.sleep(1)
        t = Tally(published=n, acknowledged=n, stored=stored, lost=(valid - stored)
                  + (hostile_n - rejects), duplicated=0, rejected=rejects,
                  max_rss_mb=rss.stop(), recovery_s=float("nan"))
        alive = w.alive() and w.starts == 1
        w.stop()
        note = (f"fuzz: {valid:,} valid (stored {stored:,}), {hostile_n:,} hostile "
                f"(rejected {rejects:,}); worker {'never restarted' if alive else 'RESTARTED'}")
        return t, note


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short versions (a few minutes)")
    p.add_argument("--only", nargs="*", default=None,
                   choices=["kill", "broker", "database", "outage", "fuzz"])
    args = p.parse_args()
    q = args.quick
    only = set(args.only or ["kill", "broker", "database", "outage", "fuzz"])
    rows: list[str] = []
    notes: list[str] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="aftercare-chaos-") as d, \
            private_postgres(Path(d) / "pg") as pg:
        tmp = Path(d)
        for part, label, (quick_n, full_n) in (
                ("kill", "kill -9 worker", (3, 10)),
                ("broker", "Mosquitto restart", (2, 5)),
                ("database", "PostgreSQL restart", (2, 5))):
            if part in only:
                n = quick_n if q else full_n
                rows.append(run_repeated(tmp, pg, part, n).row(f"{label} x{n}"))
        if "outage" in only:
            s = 30.0 if q else 600.0
            t, note = run_outage(tmp, pg, s)
            rows.append(t.row(f"PostgreSQL down {s:.0f} s"))
            notes.append(note)
        if "fuzz" in only:
            n = 5_000 if q else 100_000
            t, note = run_fuzz(tmp, pg, n)
            rows.append(t.row(f"{n:,} fuzzed payloads"))
            notes.append(note)
    print(f"\nbench/chaos.py {'--quick ' if q else ''}{started}, flood {RATE:,.0f} msg/s from "
          f"{len(DEVICES)} devices\n")
    print(TABLE_HEAD)
    print("\n".join(rows))
    for n in notes:
        print(f"\n- {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
