"""Reports and fleet-health benchmark: what the report selectors and pages cost over a seeded
book, measured against the dashboard's own figures in the same process.

    python bench/bench_reports.py [--accounts 100 --assets 10000 --tickets 3000] [--quick]

1. Creates a scratch database ``aftercare_benchrep_<random>`` (dropped on exit unless
   ``--keep``), migrates it and seeds it with ``bench/_web_seed.py`` (``seed_demo`` + bulk
   assets + phone tickets through the ticket service).
2. Gives the book the shape the reports read (``--measure`` step, in-process Django): about
   60 % of the tickets resolved within the last 90 days with outcomes and breaches, a verdict
   per resolved ticket for two detectors, live episodes on ~5 % of the assets, and a
   ``devices`` row per device (~3 % offline). These are bulk writes of benchmark data, not
   the services' path.
3. Times each selector (1 warm-up, then the median of ``--repeat`` runs) and, through Django's
   test client, the reports page, the dashboard and its polled panel. Prints milliseconds and
   the ratio to ``dashboard_get`` (the panel's existing figures), and the load average before
   and after (the machine is shared: compare ratios, not absolute times).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("AFTERCARE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: connection, query plans, templates
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def measure(args: argparse.Namespace) -> int:
    """Runs inside the scratch database (DATABASE_URL set by the parent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import datetime as dt
    import random

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from service_crm import models as m
    from service_crm.models.choices import EpisodeStatus, Outcome, TicketStatus
    from service_crm.selectors import reports
    from service_crm.selectors.dashboard import dashboard_get

    rng = random.Random(args.seed)
    now = timezone.now()
    t0 = time.perf_counter()
    with transaction.atomic():
        tickets = list(m.Ticket.objects.only("pk", "opened_at", "asset_id"))
        resolved, outcomes = [], []
        for t in tickets:
            if rng.random() < 0.6:
                t.status = TicketStatus.RESOLVED
                t.resolved_at = now - dt.timedelta(hours=rng.randrange(1, 24 * 88))
                t.opened_at = t.resolved_at - dt.timedelta(hours=rng.randrange(1, 72))
                t.responded_at = t.opened_at + dt.timedelta(hours=1)
                t.resolution_breached = rng.random() < 0.15
                t.response_breached = rng.random() < 0.05
                t.outcome = Outcome.FAULT_CONFIRMED if rng.random() < 0.7 \
                    else Outcome.NO_FAULT_FOUND
                resolved.append(t)
                outcomes += [m.AlertOutcome(ticket=t, detector=d, failure_mode_code="bearing_wear",
                                            outcome=t.outcome, recorded_at=t.resolved_at)
                             for d in ("zscore", "spectral") if rng.random() < 0.8]
        m.Ticket.objects.bulk_update(
            resolved, ["status", "resolved_at", "opened_at", "responded_at",
                       "resolution_breached", "response_breached", "outcome"], batch_size=2000)
        m.AlertOutcome.objects.bulk_create(outcomes, batch_size=2000)
        assets = list(m.Asset.objects.values_list("pk", flat=True))
        live = rng.sample(assets, max(1, len(assets) // 20))
        m.Episode.objects.bulk_create([
            m.Episode(asset_id=a, failure_mode_code="bearing_wear", status=EpisodeStatus.OPEN,
                      opened_at=now - dt.timedelta(hours=3), last_alert_at=now,
                      peak_severity=rng.choice(["info", "warning", "warning", "critical"]))
            for a in live], batch_size=2000)
        keys = list(m.DeviceLink.objects.values_list("device_key", flat=True))
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO devices (device_key, last_seen, state) "
                "SELECT k, now(), CASE WHEN random() < 0.03 THEN 'offline' ELSE 'online' END "
                "FROM unnest(%s::text[]) AS k ON CONFLICT (device_key) DO NOTHING", [keys])
            cur.execute("ANALYZE")
    shape_s = time.perf_counter() - t0
    user = get_user_model().objects.get(username="desk")
    client = Client()
    client.force_login(user)

    def fresh() -> Any:  # a new user object per call: no per-request scope cache carried over
        return get_user_model().objects.get(pk=user.pk)

    load_before = os.getloadavg()
    rows: dict[str, float] = {}
    rows["dashboard_get (baseline)"] = _median_ms(
        lambda: dashboard_get(user=fresh(), now=timezone.now()), args.repeat)
    rows["fleet_health_get"] = _median_ms(lambda: reports.fleet_health_get(user=fresh()),
                                          args.repeat)
    rows["sla_compliance_by_week (90 d)"] = _median_ms(
        lambda: reports.sla_compliance_by_week(user=fresh(), now=timezone.now()), args.repeat)
    rows["mtbf_by_equipment_model (365 d)"] = _median_ms(
        lambda: reports.mtbf_by_equipment_model(user=fresh(), now=timezone.now()), args.repeat)
    rows["alert_precision_by_detector"] = _median_ms(
        lambda: reports.alert_precision_by_detector(user=fresh()), args.repeat)
    rows["account_list_at_risk"] = _median_ms(
        lambda: reports.account_list_at_risk(user=fresh(), now=timezone.now()), args.repeat)
    for path in ("/desk/panel/", "/desk/", "/desk/reports/"):
        def get(path: str = path) -> None:
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")
        rows[f"GET {path}"] = _median_ms(get, args.repeat)
    load_after = os.getloadavg()
    base = rows["dashboard_get (baseline)"]
    counts = {"accounts": m.Account.objects.count(), "assets": m.Asset.objects.count(),
              "tickets": m.Ticket.objects.count(), "resolved": len(resolved),
              "verdicts": len(outcomes), "live_episodes": len(live)}
    print(f"book: {counts}; shaping {shape_s:.1f} s")
    print(f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} / {load_after[1]:.2f} / "
          f"{load_after[2]:.2f} (2 cores, shared)")
    print(f"{'what':40} {'median ms':>10} {'x dashboard_get':>16}")
    for name, ms in rows.items():
        print(f"{name:40} {ms:10.1f} {ms / base:16.2f}")
    print(json.dumps({"counts": counts, "median_ms": rows,
                      "load_before": load_before, "load_after": load_after}))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--assets", type=int, default=10_000)
    p.add_argument("--tickets", type=int, default=3_000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true", help="20 accounts, 1,000 assets, 300 tickets")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        return measure(args)
    if args.quick:
        args.accounts, args.assets, args.tickets = 20, 1000, 300
    import psycopg

    name = f"aftercare_benchrep_{secrets.token_hex(4)}"
    url = f"{BASE_URL}/{name}"
    with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    print(f"scratch database {name}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_reports_"))
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "false",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(40), "AFTERCARE_DATA_DIR": str(workdir),
           "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "PYTHONPATH": str(ROOT)}
    aftercare = Path(sys.executable).with_name("aftercare")
    try:
        subprocess.run([str(aftercare), "db", "migrate"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        t = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "bench" / "_web_seed.py"),
                        "--accounts", str(args.accounts), "--assets", str(args.assets),
                        "--tickets", str(args.tickets), "--seed", str(args.seed)],
                       env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"seeded in {time.perf_counter() - t:.0f} s", flush=True)
        return subprocess.run([sys.executable, __file__, "--measure", "--repeat",
                               str(args.repeat), "--seed", str(args.seed)],
                              env=env, cwd=ROOT).returncode
    finally:
        if not args.keep:
            with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")


if __name__ == "__main__":
    raise SystemExit(main())
