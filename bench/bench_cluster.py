"""Benchmark: ingest through a 3-node RabbitMQ cluster (MQTT plugin, quorum queues) with a node
killed mid-flood.

Starts the cluster (``tests/support/rabbit_cluster.py``), a scratch store database on the
PostgreSQL of ``DATABASE_URL`` (dropped at the end) and ``--workers`` ingest workers (each its own
persistent session, so each receives every reading; the store keeps each once), floods
``--devices`` QoS 1 publishers at ``--rate`` msg/s (8 metrics per message would be the
contract's; the flood sends 2) for ``--seconds``, kills the node the workers are connected to
halfway, and counts: published, acknowledged, stored, lost, duplicated, and the time for the
store to catch up. Prints one table row.

    .venv/bin/python bench/bench_cluster.py --rate 2000 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    import psycopg

    from aftercare import broker, store
    from bench.bench_ingest import cpu_s
    from ingest.amqp import declare_queue
    from tests.ingest.chaos import TABLE_HEAD, Flood, WorkerProcess, tally
    from tests.support.rabbit_cluster import rabbit_cluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=2000.0, help="messages per second in all")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-kill", action="store_true", help="no node killed (the baseline)")
    ap.add_argument("--amqp", action="store_true",
                    help="workers as competing AMQP consumers of one quorum queue "
                         "(INGEST_AMQP_URL) instead of one MQTT session each")
    args = ap.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    name = f"aftercare_bench_cluster_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    dsn = urlunsplit(parts._replace(path="/" + name))
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute(f'CREATE DATABASE "{name}"')
    directory = Path(tempfile.mkdtemp(prefix="aftercare-bench-cluster-"))
    devices = [f"bc-{i:03d}" for i in range(args.devices)]
    try:
        with psycopg.connect(dsn) as conn:
            store.migrate(conn, requested_backend="native")
        t0 = time.perf_counter()
        with rabbit_cluster(directory / "rmq", devices) as rc:
            print(f"cluster of 3 up in {time.perf_counter() - t0:.1f} s; load average "
                  f"{os.getloadavg()[0]:.1f}")
            extra: tuple[str, ...] = ()
            if args.amqp:
                amqp = rc.cluster_amqp_url(rc.nodes, user=broker.INGEST_USER)
                declare_queue(amqp)
                extra = ("--amqp-url", amqp)
            workers = [WorkerProcess(directory, dsn=dsn, mqtt_url=rc.url(broker.INGEST_USER),
                                     client_id=f"bench-ingest-{i}", extra=extra)
                       for i in range(args.workers)]
            for w in workers:
                w.start()
            for w in workers:
                w.wait_subscribed(60)
            flood = Flood(rc, devices, args.rate)
            flood.start()
            try:
                time.sleep(args.seconds / 2)
                if not args.no_kill:
                    rc.kill(rc.nodes[0])
                time.sleep(args.seconds / 2)
            finally:
                flood.stop()
            t = tally(dsn, flood, workers, 0.0, settle_s=120)
            cpu = [cpu_s(w.proc.pid) if w.proc else float("nan") for w in workers]
            for w in workers:
                w.stop()
            took = [re.findall(r"stopped: (\d+) messages", w.log.read_text())[-1:]
                    for w in workers]
        fault = "none" if args.no_kill else "node kill -9 x1"
        mode = "AMQP competing consumers" if args.amqp else "MQTT sessions"
        print(f"acknowledged {t.acknowledged / args.seconds:,.0f} msg/s of {args.rate:,.0f} "
              f"offered, {args.workers} worker(s) ({mode}), {args.devices} devices")
        print("per worker: messages taken " + ", ".join(x[0] if x else "?" for x in took)
              + "; CPU s " + ", ".join(f"{c:.1f}" for c in cpu))
        print(TABLE_HEAD)
        print(t.row(fault))
    finally:
        with psycopg.connect(admin, autocommit=True) as a:
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(directory, ignore_errors=True)
    return 0



if __name__ == "__main__":
    sys.exit(main())
