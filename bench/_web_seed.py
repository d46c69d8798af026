"""Seeding step of ``bench_web.py``, run as its own process with DATABASE_URL set.

``seed_demo`` makes about one account per 40 assets (at least 12), so it is asked for
``accounts * 40`` assets (the demo book: sites, contacts, contracts, engineers, parts, demo
logins); the remaining assets are added here with ``bulk_create`` on the same device-id scheme
(``cmp-0001``, ``pmp-0001``, ...). Then some phone tickets are opened through the ticket
service so the ticket lists are not empty. Prints one JSON object on the last line: each
device's key and metrics, and the account and asset ids.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from aftercare.events import AlertEvent, Evidence  # noqa: E402
from service_crm import models as m  # noqa: E402
from service_crm.management.commands.seed_demo import MODELS  # noqa: E402
from service_crm.models.choices import Priority, TicketSource  # noqa: E402
from service_crm.services.alerts import alert_ingest  # noqa: E402
from service_crm.services.tickets import ticket_open  # noqa: E402

PREFIXES = ["cmp", "pmp", "chl", "cnc"]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, required=True)
    p.add_argument("--assets", type=int, required=True)
    p.add_argument("--tickets", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--episodes", type=int, default=50,
                   help="equipment alerts ingested as the detect worker would send them")
    a = p.parse_args()
    rng = random.Random(a.seed)
    t0 = time.perf_counter()
    demo_assets = min(a.assets, a.accounts * 40)
    call_command("seed_demo", assets=demo_assets, prefixes=",".join(PREFIXES), seed=a.seed,
                 verbosity=0)
    t_demo = time.perf_counter() - t0
    print(f"seed_demo --assets {demo_assets}: {t_demo:.1f} s", file=sys.stderr, flush=True)

    models = {em.name: em for em in m.EquipmentModel.objects.all()}
    by_prefix = {pfx: models[MODELS[pfx].name] for pfx in PREFIXES}
    sites = list(m.Site.objects.order_by("pk"))
    today = timezone.now().date()
    with transaction.atomic():
        new_assets, keys = [], []
        for i in range(demo_assets, a.assets):
            prefix = PREFIXES[i % len(PREFIXES)]
            installed = today - dt.timedelta(days=rng.randrange(60, 6 * 365))
            new_assets.append(m.Asset(
                serial=f"{prefix.upper()}-{installed.year}-{i + 1:05d}",
                equipment_model=by_prefix[prefix], site=sites[rng.randrange(len(sites))],
                install_date=installed, warranty_end=installed + dt.timedelta(days=2 * 365)))
            keys.append(f"{prefix}-{i // len(PREFIXES) + 1:04d}")
        created = m.Asset.objects.bulk_create(new_assets, batch_size=2000)
        m.DeviceLink.objects.bulk_create(
            [m.DeviceLink(asset=asset, device_key=k) for asset, k in zip(created, keys,
                                                                        strict=True)],
            batch_size=2000)
    print(f"bulk assets +{len(new_assets)}: {time.perf_counter() - t0 - t_demo:.1f} s",
          file=sys.stderr, flush=True)

    t1 = time.perf_counter()
    asset_ids = list(m.Asset.objects.values_list("pk", flat=True))
    now = timezone.now()
    for n in range(a.tickets):
        asset = m.Asset.objects.select_related("site__account").get(
            pk=asset_ids[rng.randrange(len(asset_ids))])
        ticket_open(asset=asset, summary=f"Bench ticket {n + 1}: unusual noise reported",
                    source=rng.choice([TicketSource.PHONE, TicketSource.EMAIL]),
                    priority=rng.choice(list(Priority)),
                    now=now - dt.timedelta(hours=rng.randrange(0, 24 * 20)))
    print(f"tickets {a.tickets}: {time.perf_counter() - t1:.1f} s", file=sys.stderr, flush=True)

    # Episodes (and their tickets and work orders) through the real alert path, so the
    # episode pages and lists have something to show.
    t2 = time.perf_counter()
    links = list(m.DeviceLink.objects.select_related("asset__equipment_model")
                 .order_by("pk")[:5000])
    modes = {em: list(em.failure_modes.values_list("code", flat=True))
             for em in {ln.asset.equipment_model for ln in links}}
    for n in range(a.episodes):
        ln = links[rng.randrange(len(links))]
        codes = modes.get(ln.asset.equipment_model) or ["unclassified"]
        at = now - dt.timedelta(minutes=rng.randrange(10, 60 * 24 * 5))
        alert_ingest(event=AlertEvent(
            alert_id=f"bench-{n}", revision=1, state="open", device=ln.device_key,
            kind="equipment", severity=rng.choice(["warning", "critical"]),
            failure_mode=rng.choice(codes), score=0.9, opened_at=at, at=at,
            evidence=(Evidence(metric="vibration_rms_mm_s", detector="zscore", score=0.9,
                               value=7.1, baseline=2.8),), detectors={"zscore": 0.9}), now=at)
    print(f"episodes {a.episodes}: {time.perf_counter() - t2:.1f} s", file=sys.stderr,
          flush=True)

    metrics = {MODELS[pfx].name: [mt[0] for mt in MODELS[pfx].metrics] for pfx in PREFIXES}
    devices = [[k, metrics[name]] for k, name in m.DeviceLink.objects.order_by(
        "device_key").values_list("device_key", "asset__equipment_model__name")]
    accounts = list(m.Account.objects.annotate(n=Count("sites__assets")).order_by("pk")
                    .values_list("pk", "n"))
    print(json.dumps({
        "devices": devices, "accounts": accounts, "assets": asset_ids,
        "counts": {"accounts": m.Account.objects.count(), "assets": m.Asset.objects.count(),
                   "tickets": m.Ticket.objects.count(), "sites": m.Site.objects.count(),
                   "contracts": m.MaintenanceContract.objects.count()},
        "seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
