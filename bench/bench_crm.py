"""Benchmark: alert events through the service automation.

Creates a scratch database on the PostgreSQL of ``DATABASE_URL`` (dropped afterwards), seeds a
demo book of business with ``--devices`` monitored assets, starts a private Mosquitto and the
real consumer, then:

1. throughput: ``--burst`` new alerts (each on a different asset, so each opens an episode, a
   ticket and a work order or offer) published at once; alerts/s = events / time until the last
   one committed;
2. latency: ``--paced`` alerts published at ``--rate``/s; per alert, the time from publish to
   the commit of its ticket (p50, p99). Commit times are taken right after ``alert_ingest``'s
   transaction returns in the consumer.

Also reports the service alone (``alert_ingest`` called in a loop, no broker).

    python bench/bench_crm.py --devices 10000 --burst 2000 --paced 600 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._scratch import django_scratch_database  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--paced", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50.0, help="paced alerts per second")
    ap.add_argument("--direct", type=int, default=300, help="alert_ingest calls without broker")
    ap.add_argument("--count-queries", type=int, default=20,
                    help="after the timed service-only run, this many more new alerts with "
                         "Django's query capture on: SQL statements per new alert")
    ap.add_argument("--profile", metavar="FILE",
                    help="cProfile the service-only run into FILE (pstats; slows it down)")
    ap.add_argument("--mail-delay-ms", type=float, default=0.0,
                    help="each email waits this long, as for a mail server's round trip "
                         "(bench/_slow_mail.py); 0 = in memory at once")
    args = ap.parse_args()
    if args.burst + args.paced + args.direct + args.count_queries > args.devices:
        ap.error("--devices must be at least --burst + --paced + --direct + --count-queries "
                 "(one asset each)")

    with django_scratch_database() as url:
        return run(args, url)


def run(args: argparse.Namespace, url: str) -> int:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from aftercare import broker, store
    from aftercare.events import ALERTS_TOPIC, AlertEvent
    from service_crm import models as m
    from service_crm.adapters import consumer as consumer_mod
    from service_crm.management.commands.seed_demo import seed
    from service_crm.services.alerts import alert_ingest

    # Emails go to memory: the bench measures the automation, not an SMTP server.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    if args.mail_delay_ms > 0:
        os.environ["BENCH_MAIL_DELAY_MS"] = str(args.mail_delay_ms)
        settings.EMAIL_BACKEND = "bench._slow_mail.EmailBackend"
    connection.ensure_connection()
    store.migrate(connection.connection, requested_backend="native")
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    counts = seed(assets=args.devices, prefixes=["cmp", "pmp", "chl", "cnc"], seed=42)
    print(f"seeded {counts} in {time.perf_counter() - t0:.1f} s")
    keys = list(m.DeviceLink.objects.order_by("pk").values_list("device_key", flat=True))
    covered = m.MaintenanceContract.objects.values("assets").distinct().count()
    print(f"{len(keys)} devices, {covered} under contract")
    key_iter = iter(keys)

    def events(n: int, tag: str) -> list[AlertEvent]:
        now = dt.datetime.now(dt.UTC)
        return [AlertEvent(alert_id=f"{tag}-{i}", revision=1, state="open", device=next(key_iter),
                           kind="equipment", severity=("warning", "critical")[i % 2],
                           failure_mode="bearing wear", score=0.8, opened_at=now, at=now,
                           detectors={"zscore": 0.8}) for i in range(n)]

    # 1. The service alone: wall-clock rate and this process's CPU time per new alert (the
    # database server's CPU is not in it), then the SQL statements per new alert.
    direct = events(args.direct, "direct")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    for ev in direct:
        alert_ingest(event=ev)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"service only: {len(direct) / wall:.0f} alerts/s, "
          f"{1000 * cpu / len(direct):.1f} ms CPU per new alert ({len(direct)} new alerts; "
          f"load average {load})")
    if args.count_queries:
        from django.test.utils import CaptureQueriesContext

        per_alert = []
        for ev in events(args.count_queries, "counted"):
            with CaptureQueriesContext(connection) as cq:
                alert_ingest(event=ev)
            per_alert.append(len(cq.captured_queries))
        print(f"SQL statements per new alert: mean {statistics.mean(per_alert):.1f}, "
              f"min {min(per_alert)}, max {max(per_alert)} ({len(per_alert)} new alerts)")
    if args.burst == 0 and args.paced == 0:
        return 0

    # 2. Through the broker and the consumer.
    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    secret = uuid.uuid4().hex  # throwaway broker, throwaway credentials
    files = broker.write_broker_files(tmp, port=broker.free_port(),
                                      users=broker.default_users(secret))
    pw = broker.service_password(secret, broker.SERVICE_USER)
    mqtt_url = f"mqtt://{broker.SERVICE_USER}:{pw}@127.0.0.1:{files.port}"
    committed: dict[str, float] = {}
    original = consumer_mod.handle_payload

    def timed(payload: bytes, stats: Any) -> Any:
        result = original(payload, stats)
        committed[AlertEvent.from_json(payload).alert_id] = time.time()
        return result

    consumer_mod.handle_payload = timed
    with broker.run_mosquitto(files):
        started = threading.Event()
        box: dict[str, Any] = {}

        def serve() -> None:
            async def go() -> None:
                box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()

                async def ready() -> None:
                    started.set()

                await consumer_mod.Consumer(mqtt_url, client_id="bench-crm").run(
                    box["stop"], on_started=ready)

            asyncio.run(go())

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        started.wait(30)

        async def publish(evs: list[AlertEvent], rate: float | None) -> dict[str, float]:
            from faststream.mqtt import MQTTBroker, QoS

            sent: dict[str, float] = {}
            async with MQTTBroker(mqtt_url, client_id="bench-pub") as pub:
                t_start = time.perf_counter()
                for i, ev in enumerate(evs):
                    if rate:
                        delay = t_start + i / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    sent[ev.alert_id] = time.time()
                    await pub.publish(ev.to_json(), ALERTS_TOPIC, qos=QoS.AT_LEAST_ONCE)
            return sent

        def wait_all(ids: list[str]) -> None:
            deadline = time.monotonic() + 600
            while not all(i in committed for i in ids):
                if time.monotonic() > deadline:
                    raise SystemExit("timed out waiting for the consumer")
                time.sleep(0.02)

        burst = events(args.burst, "burst")
        sent = asyncio.run(publish(burst, None))
        wait_all(list(sent))
        span = max(committed[i] for i in sent) - min(sent.values())
        burst_rate = len(burst) / span
        print(f"end to end burst: {burst_rate:.0f} alerts/s ({len(burst)} new alerts, "
              f"{span:.1f} s)")

        paced = events(args.paced, "paced")
        sent = asyncio.run(publish(paced, args.rate))
        wait_all(list(sent))
        lat = [committed[i] - sent[i] for i in sent]
        print(f"latency at {args.rate:.0f} alerts/s: p50 {1000 * statistics.median(lat):.0f} ms, "
              f"p99 {1000 * pct(lat, 0.99):.0f} ms, max {1000 * max(lat):.0f} ms "
              f"({len(lat)} alerts)")
        box["loop"].call_soon_threadsafe(box["stop"].set)
        th.join(60)
    tickets = m.Ticket.objects.count()
    print(f"tickets {tickets}, work orders {m.WorkOrder.objects.count()}, "
          f"offers {m.Offer.objects.count()}, episodes {m.Episode.objects.count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
