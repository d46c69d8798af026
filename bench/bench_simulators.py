"""Simulator throughput: generation, publishing (QoS 1, per-device logins), backfill.

Run: .venv/bin/python bench/bench_simulators.py [--quick]

Starts its own Mosquitto (credentials for every simulated device) and a scratch database
on the PostgreSQL at AFTERCARE_TEST_ADMIN_DSN (default postgresql://postgres@127.0.0.1/postgres),
both removed afterwards. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from aftercare import broker, store
from simulators import scenario as scenarios
from simulators.publisher import BrokerAddress, FleetPublisher
from simulators.run import LiveRun, backfill, group_messages, make_simulator

SECRET = "bench-device-secret"  # noqa: S105 - a throwaway broker's secret
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
ADMIN_DSN = os.environ.get("AFTERCARE_TEST_ADMIN_DSN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def bench_generate(n: int, steps: int) -> None:
    sim = make_simulator(scenarios.random_fleet(n), START)
    sim.generate(1)  # warm up
    t0 = time.perf_counter()
    chunk = sim.generate(steps)
    t_gen = time.perf_counter() - t0
    values = sum(g.values.size for g in chunk.groups)
    t0 = time.perf_counter()
    msgs = 0
    for g in chunk.groups:
        for _ in group_messages(g, chunk.t_us, chunk.step0):
            msgs += 1
    t_enc = time.perf_counter() - t0
    print(f"generate  {n:>6} devices x {steps} steps: {values / t_gen / 1e6:6.2f} M values/s "
          f"({n * steps / t_gen / 1e3:7.1f} k device-steps/s); with message building: "
          f"{msgs / (t_gen + t_enc) / 1e3:6.1f} k msgs/s, "
          f"{values / (t_gen + t_enc) / 1e6:5.2f} M values/s")


def bench_publish(n: int, steps: int, files: broker.BrokerFiles) -> None:
    sc = scenarios.random_fleet(n)
    pub = FleetPublisher(sc.device_ids, address=BrokerAddress("127.0.0.1", files.port),
                         password_for=lambda d: broker.device_password(SECRET, d),
                         max_connections=n, client_id_prefix=f"bench-{uuid.uuid4().hex[:4]}-")
    t0 = time.perf_counter()
    connected = pub.connect(wait_s=120)
    t_conn = time.perf_counter() - t0
    base = pub.stats.acked
    run = LiveRun(make_simulator(sc, START), pub, speed=0, max_chunk_steps=1)
    summary = run.run(duration_s=steps)
    st = pub.stats
    msgs = st.published  # telemetry and waveforms; retained status messages not counted
    print(f"publish   {n:>6} devices ({connected} connected in {t_conn:5.1f} s) x {steps} steps: "
          f"{msgs / summary.wall_s / 1e3:6.2f} k msgs/s acked QoS 1 "
          f"({st.acked - base} acks), {summary.readings / summary.wall_s / 1e3:6.2f} k readings/s, "
          f"{summary.values / summary.wall_s / 1e3:7.1f} k values/s, "
          f"{st.batches_sent} batch payloads")
    pub.close(announce_offline=False)


def bench_realtime(n: int, duration_s: int, interval_s: float,
                   files: broker.BrokerFiles) -> None:
    sc = scenarios.random_fleet(n)
    pub = FleetPublisher(sc.device_ids, address=BrokerAddress("127.0.0.1", files.port),
                         password_for=lambda d: broker.device_password(SECRET, d),
                         max_connections=n, publish_interval_s=interval_s,
                         client_id_prefix=f"bench-{uuid.uuid4().hex[:4]}-")
    pub.connect(wait_s=120)
    run = LiveRun(make_simulator(sc, START), pub, speed=1.0)
    summary = run.run(duration_s=duration_s)
    st = pub.stats
    print(f"real time {n:>6} devices at 1 Hz, batch every {interval_s:g} s: {duration_s} s "
          f"simulated in {summary.extra['wall_before_drain_s']:5.1f} s wall "
          f"(+{summary.wall_s - summary.extra['wall_before_drain_s']:4.1f} s final flush); "
          f"{summary.readings / summary.wall_s / 1e3:5.2f} k readings/s, "
          f"{summary.values / summary.wall_s / 1e3:6.1f} k values/s in {st.published} messages")
    pub.close(announce_offline=False)


def bench_backfill(n: int, steps: int) -> None:
    name = f"aftercare_bench_sim_{uuid.uuid4().hex[:8]}"
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dsn) as conn:
            store.migrate(conn, requested_backend="native")
            conn.commit()
            sim = make_simulator(scenarios.random_fleet(n), START)
            res = backfill(sim, conn, steps=steps, chunk_steps=max(1, 200_000 // n),
                           progress=False)
        print(f"backfill  {n:>6} devices x {steps} steps: {res.rows / res.wall_s / 1e3:7.1f} k "
              f"rows/s into the store ({res.rows} rows, native backend)")
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller runs")
    args = ap.parse_args()
    # Turn SIGTERM into an exception so the private broker and scratch database are removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    sizes = [(1_000, 60), (10_000, 10)] if not args.quick else [(1_000, 10), (10_000, 2)]
    for n, _ in sizes:
        bench_generate(n, 3600 if n == 1_000 else 360)
    with tempfile.TemporaryDirectory() as tmp:
        ids = scenarios.random_fleet(10_000).device_ids
        files = broker.write_broker_files(Path(tmp), port=broker.free_port(),
                                          users=broker.default_users(SECRET, ids),
                                          persistence=False)
        with broker.run_mosquitto(files):
            for n, steps in sizes:
                bench_publish(n, steps, files)
            bench_realtime(10_000, 30 if not args.quick else 10, 10.0, files)
    bench_backfill(1_000, 600 if not args.quick else 120)


if __name__ == "__main__":
    main()
