"""Benchmark: per-component costs for the capacity model (docs/scaling.md).

On a scratch database of the PostgreSQL at ``DATABASE_URL`` (native backend, dropped at the
end), a fleet of ``--devices`` devices with 8 metrics at one reading per ``--every-s`` seconds
over ``--hours``:

1. **store write**: ``ingest.writer.write_columns`` (the ingest worker's write path: binary COPY
   into a staging table, one idempotent insert), CPU seconds of this process and of its
   PostgreSQL backend per million readings; bytes per stored reading (table + indexes);
2. **detection**: one ``DetectWorker`` (grid ``--every-s``) from the first reading to the last,
   CPU of the worker and of its backend per million readings and per million channel-seconds;
3. **detection scaled out**: the same data analysed by ``aftercare detect --partitions 4`` in 1
   and then 2 processes (wall time to the end, and whether the alerts equal the single
   worker's).

CPU of the backend is read from ``/proc/<pid>/stat`` (same machine). Prints the figures.

    .venv/bin/python bench/bench_scaleout.py --devices 500 --hours 6
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METRICS = ["temperature_c", "flow_l_min", "pressure_bar", "current_a", "vibration_mm_s",
           "speed_rpm", "power_kw", "humidity_pct"]


def backend_cpu_s(conn: Any) -> float:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.commit()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    import numpy as np
    import psycopg

    from aftercare import store
    from anomaly.worker import DetectWorker, WorkerOptions
    from ingest.writer import write_columns

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--every-s", type=int, default=10)
    args = ap.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    name = f"aftercare_bench_scale_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    dsn = urlunsplit(parts._replace(path="/" + name))
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute(f'CREATE DATABASE "{name}"')
    print(f"load average {os.getloadavg()[0]:.1f}; {args.devices} devices x 8 metrics, one "
          f"reading per {args.every_s} s, {args.hours:g} h")
    try:
        with psycopg.connect(dsn) as conn:
            store.migrate(conn, requested_backend="native")
            conn.commit()
            n_t = int(args.hours * 3600 / args.every_s)
            start_us = (int(time.time()) - int(args.hours * 3600) - 7200) * 1_000_000
            t = start_us + np.arange(n_t, dtype=np.int64) * args.every_s * 1_000_000
            rng = np.random.default_rng(1)
            devices = [f"bench-{i:05d}" for i in range(args.devices)]
            total = 0
            cpu0, be0, w0 = time.process_time(), backend_cpu_s(conn), time.perf_counter()
            for chunk in range(0, len(devices), 50):
                devs = devices[chunk:chunk + 50]
                dev_col = np.repeat(np.array(devs, dtype=object), len(METRICS) * n_t)
                met_col = np.tile(np.repeat(np.array(METRICS, dtype=object), n_t), len(devs))
                time_col = np.tile(t, len(devs) * len(METRICS))
                vals = 50 + rng.normal(size=len(time_col))
                write_columns(conn, device=dev_col, metric=met_col, time=time_col, value=vals)
                total += len(time_col)
            cpu1, be1, w1 = time.process_time(), backend_cpu_s(conn), time.perf_counter()
            size = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                                "JOIN pg_inherits i ON i.inhrelid = c.oid "
                                "WHERE i.inhparent = 'telemetry'::regclass").fetchone()[0]
            conn.commit()
            per_m = 1e6 / total
            print(f"store write: {total:,} readings in {w1 - w0:.1f} s "
                  f"({total / (w1 - w0):,.0f}/s wall); CPU per million readings: "
                  f"writer {(cpu1 - cpu0) * per_m:.2f} s, PostgreSQL {(be1 - be0) * per_m:.2f} s; "
                  f"{int(size or 0) / total:.0f} bytes per reading (telemetry + indexes)")

            opts = WorkerOptions(name="bench", settle_s=0, step_s=args.every_s)
            cpu0, be0, w0 = time.process_time(), backend_cpu_s(conn), time.perf_counter()
            w = DetectWorker(conn, opts)
            events = 0
            while True:
                before = w.watermark_us
                events += len(w.step())
                conn.commit()
                if w.watermark_us == before:
                    break
            cpu1, be1, w1 = time.process_time(), backend_cpu_s(conn), time.perf_counter()
            ch_s = args.devices * len(METRICS) * args.hours * 3600
            print(f"detection, 1 worker: {w1 - w0:.1f} s wall, {events} events; CPU per "
                  f"million readings: worker {(cpu1 - cpu0) * per_m:.2f} s, PostgreSQL "
                  f"{(be1 - be0) * per_m:.2f} s; per million channel-seconds: "
                  f"{(cpu1 - cpu0 + be1 - be0) * 1e6 / ch_s:.3f} s")
            reference = sorted(conn.execute(
                "SELECT alert_id, revision FROM anomaly_outbox WHERE worker = 'bench'"
            ).fetchall())
            conn.commit()

            for procs in (1, 2):
                label = f"scaled{procs}"
                env = {**os.environ, "DATABASE_URL": dsn, "EVENTS_URL":
                       os.environ.get("BENCH_EVENTS_URL", "nats://127.0.0.1:4222"),
                       "PYTHONPATH": str(ROOT)}
                cmd = [sys.executable, "-m", "aftercare_cli", "detect", "--name", label,
                       "--partitions", "4", "--settle-s", "0", "--step-s", str(args.every_s),
                       "--poll-s", "0.2", "--lease-ttl-s", "5"]
                t0 = time.perf_counter()
                ps = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL) for _ in range(procs)]
                end = int(t[-1])
                try:
                    while True:
                        rows = conn.execute(
                            "SELECT (extract(epoch FROM watermark) * 1e6)::int8 FROM "
                            "anomaly_checkpoints WHERE worker LIKE %s", (f"{label}.p%",)
                        ).fetchall()
                        conn.commit()
                        if len(rows) == 4 and min(r[0] for r in rows) >= end:
                            break
                        if time.perf_counter() - t0 > 900:
                            raise TimeoutError(label)
                        time.sleep(0.2)
                    wall = time.perf_counter() - t0
                finally:
                    for p in ps:
                        p.terminate()
                        p.wait(30)
                got = sorted(conn.execute(
                    "SELECT alert_id, revision FROM anomaly_outbox WHERE worker LIKE %s",
                    (f"{label}.p%",)).fetchall())
                conn.commit()
                print(f"detection, 4 partitions in {procs} process(es): {wall:.1f} s wall "
                      f"(process start included); alerts equal to the single worker's: "
                      f"{got == reference} ({len(got)} events)")
    finally:
        with psycopg.connect(admin, autocommit=True) as a:
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
