"""Benchmark: alert → ticket latency with 1 and 2 CRM consumer processes on partitioned alert
events (``EVENTS_PARTITIONS``, RabbitMQ).

Creates a scratch database on the PostgreSQL of ``DATABASE_URL`` (dropped afterwards), seeds
``--devices`` monitored assets with ``seed_demo``'s code (as ``bench/bench_crm.py`` does), then for
each consumer count starts that many ``aftercare crm-consumer`` processes splitting
``--partitions`` partitions of the RabbitMQ at ``--amqp`` between them, and publishes ``--paced``
*new* alerts (each on its own asset: alert, episode, ticket, work order or offer) at ``--rate``
per second through ``AlertPublisher``. Latency per alert: publish → its ticket visible in the
database (polled every 20 ms by this process, so up to 20 ms late). Prints p50/p99/max.

    .venv/bin/python bench/bench_crm_scaleout.py --devices 1200 --paced 500 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    from _scratch import django_scratch_database

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1200)
    ap.add_argument("--paced", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--consumers", default="1,2", help="consumer counts to run, in order")
    ap.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--emails", choices=("thread", "outbox"), default="thread",
                    help="thread: each consumer sends its emails (default); outbox: the "
                         "consumers leave them to one mail worker process (crm_mail), whose "
                         "email lag is reported too")
    ap.add_argument("--mail-elsewhere", action="store_true",
                    help="with --emails outbox: start the mail worker only once the alerts are "
                         "measured (as if it ran on another machine), then let it drain")
    args = ap.parse_args()
    counts = [int(c) for c in args.consumers.split(",")]
    if args.paced * len(counts) > args.devices:
        ap.error("--devices must be at least --paced x the number of runs (one asset each)")

    with django_scratch_database() as url:
        return run(args, url, counts)


def run(args: argparse.Namespace, url: str, counts: list[int]) -> int:
    from bench_crm import pct
    from django.core.management import call_command
    from django.db import connection

    from aftercare import store
    from aftercare.event_partitions import rabbit_queue
    from aftercare.events import AlertEvent
    from service_crm import models as m
    from service_crm.management.commands.seed_demo import seed

    connection.ensure_connection()
    store.migrate(connection.connection, requested_backend="native")
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    seed(assets=args.devices, prefixes=["cmp", "pmp", "chl", "cnc"], seed=42)
    keys = list(m.DeviceLink.objects.order_by("pk").values_list("device_key", flat=True))
    print(f"seeded {len(keys)} devices in {time.perf_counter() - t0:.1f} s; load average "
          f"{os.getloadavg()[0]:.1f}")
    connection.close()
    k = args.partitions

    async def purge() -> None:
        from faststream.rabbit import RabbitBroker

        async with RabbitBroker(args.amqp, logger=None) as b:
            for i in range(k):
                q = await b.declare_queue(rabbit_queue(i, k))
                await q.purge()

    for run_no, n in enumerate(counts):
        asyncio.run(purge())
        env = {**os.environ, "DATABASE_URL": url, "EVENTS_URL": args.amqp,
               "EVENTS_PARTITIONS": str(k), "PYTHONPATH": str(ROOT)}
        shares = [[p for p in range(k) if p % n == c] for c in range(n)]
        logdir = Path(tempfile.mkdtemp(prefix="bench-crm-scaleout-"))
        logs = [logdir / f"consumer-{c}.log" for c in range(n)]
        procs = []
        for share, log in zip(shares, logs, strict=True):
            with open(log, "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "aftercare_cli", "crm-consumer",
                     "--housekeeping-every-s", "0", "--emails", args.emails, "--partitions",
                     ",".join(map(str, share))], env=env, stdout=out, stderr=out))
        def start_mailer(logdir: Path = logdir, env: dict[str, str] = env
                         ) -> subprocess.Popen[bytes] | None:
            if args.emails != "outbox":
                return None
            with open(logdir / "mail.log", "ab") as out:
                return subprocess.Popen(
                    [sys.executable, "-m", "django", "crm_mail", "--every-s", "1"],
                    env={**env, "DJANGO_SETTINGS_MODULE": "web.settings"}, stdout=out,
                    stderr=out)
        mailer = None if args.mail_elsewhere else start_mailer()
        deadline = time.monotonic() + 60
        while not all("consuming" in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"consumers did not start: see {logs}")
            time.sleep(0.2)
        devices = keys[run_no * args.paced:(run_no + 1) * args.paced]
        now = dt.datetime.now(dt.UTC)
        events = [AlertEvent(alert_id=f"scale{n}-{i}", revision=1, state="open", device=d,
                             kind="equipment", severity=("warning", "critical")[i % 2],
                             failure_mode="bearing wear", score=0.8, opened_at=now, at=now,
                             detectors={"zscore": 0.8}) for i, d in enumerate(devices)]
        sent, seen = measure(url, args.amqp, k, args.rate, events)
        for p in procs:
            p.terminate()
            p.wait(30)
        lat = [seen[i] - sent[i] for i in sent if i in seen]
        if args.mail_elsewhere:
            mailer = start_mailer()
        where = " (worker started after)" if args.mail_elsewhere else ""
        print(f"{n} consumer(s), {k} partitions, {len(events)} new alerts at "
              f"{args.rate:g}/s, emails by {args.emails}{where}: ticketed {len(lat)}; "
              f"alert -> ticket "
              f"p50 {1000 * statistics.median(lat):.0f} ms, p99 {1000 * pct(lat, 0.99):.0f} ms, "
              f"max {1000 * max(lat):.0f} ms; load average {os.getloadavg()[0]:.1f}")
        print("  " + emails_report(url, mailer))
    return 0


def emails_report(url: str, mailer: subprocess.Popen[bytes] | None) -> str:
    """Emails owed and sent so far; with a mail worker, wait (up to 120 s) until it has sent
    every one, stop it, and give the lag from owed to sent."""
    import psycopg

    def counts() -> tuple[int, int, float | None, float | None]:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'pending'), "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - "
                "created_at)), max(extract(epoch FROM sent_at - created_at)) "
                "FROM service_crm_notification").fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), row[2], row[3]

    owed, pending, p50, worst = counts()
    if mailer is not None:
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            time.sleep(1)
            owed, pending, p50, worst = counts()
        mailer.terminate()
        mailer.wait(30)
    lag = "" if p50 is None else f"; owed -> sent p50 {p50:.1f} s, max {worst:.1f} s"
    return f"emails owed {owed}, still pending {pending}{lag}"


def measure(url: str, amqp: str, k: int, rate: float, events: list[Any]
            ) -> tuple[dict[str, float], dict[str, float]]:
    """Publish `events` at `rate`/s; (publish time, ticket-seen time) per alert id."""
    import psycopg

    from anomaly.publish import AlertPublisher

    seen: dict[str, float] = {}
    sent: dict[str, float] = {}
    ids = [e.alert_id for e in events]
    deadline = time.monotonic() + 600

    def poll() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while len(seen) < len(ids) and time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT a.alert_id FROM service_crm_alert a JOIN service_crm_ticket t "
                    "ON t.episode_id = a.episode_id WHERE a.alert_id = ANY(%s)",
                    ([i for i in ids if i not in seen],)).fetchall()
                t = time.time()
                for (a,) in rows:
                    seen.setdefault(a, t)
                time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()

    async def publish() -> None:
        async with AlertPublisher(amqp, partitions=k) as pub:
            start = time.perf_counter()
            for i, ev in enumerate(events):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[ev.alert_id] = time.time()
                await pub.send(ev.to_json())

    asyncio.run(publish())
    poller.join(620)
    return sent, seen


if __name__ == "__main__":
    sys.exit(main())
