"""Benchmark: the planning pass and invoice-draft generation at 10 k contracts.

Creates a scratch database on the PostgreSQL of ``DATABASE_URL`` (dropped afterwards), runs
the Django migrations and bulk-loads ``--contracts`` maintenance contracts (one asset each,
``--accounts`` accounts, start dates spread over the last year, intervals of 30 to 365 days),
then times, with the real services:

1. ``planned_visits_generate`` (30-day horizon):
   a. the first pass (every contract is new, so every one is planned and the visits due in the
      horizon become work orders);
   b. a second pass a few minutes later (nothing changed: the selection finds no contract);
   c. the next day's pass (only contracts whose next due date enters the horizon);
   d. for comparison, what the same "nothing changed" pass costs when it visits every contract
      (``contract_plan_visits`` called for every id, as the pass did before the selection);
   e. a pass after ``--changed`` contracts were edited (interval changed).
2. ``invoice_drafts_build``: ``--jobs`` completed work orders with two billable lines each
   (a part and labour), bulk-loaded over the accounts, gathered into one draft per account;
   then a second pass with nothing new.

    .venv/bin/python bench/bench_ops.py --contracts 10000 --accounts 1000 --jobs 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._scratch import django_scratch_database  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contracts", type=int, default=10_000)
    ap.add_argument("--accounts", type=int, default=1_000)
    ap.add_argument("--jobs", type=int, default=10_000,
                    help="completed work orders with billable lines")
    ap.add_argument("--changed", type=int, default=100, help="contracts edited before pass e")
    ap.add_argument("--full-sample", type=int, default=2_000,
                    help="contracts visited in pass d (scaled up to all; 0 = all)")
    args = ap.parse_args()

    with django_scratch_database():
        return run(args)


def seed(args: argparse.Namespace, now: dt.datetime) -> None:
    import numpy as np
    from django.db import connection

    from service_crm import models as m

    rng = np.random.default_rng(42)
    cal = m.BusinessCalendar.objects.create(name="Germany", workdays=[1, 2, 3, 4, 5])
    model = m.EquipmentModel.objects.create(name="Screw compressor SC-1",
                                            equipment_type="compressor",
                                            contract_list_price=1800)
    m.ServiceTask.objects.create(equipment_model=model, name="Check belt tension")
    regions = ["north", "south", "east", "west"]
    m.Engineer.objects.bulk_create([
        m.Engineer(name=f"Engineer {i}", email=f"e{i}@bench.test", skills=["compressor"],
                   region=regions[i % 4]) for i in range(48)])
    accounts = m.Account.objects.bulk_create([
        m.Account(name=f"Account {i:05d}") for i in range(args.accounts)])
    sites = m.Site.objects.bulk_create([
        m.Site(account=a, name=f"Plant {a.pk}", region=regions[i % 4])
        for i, a in enumerate(accounts)])
    assets = m.Asset.objects.bulk_create([
        m.Asset(serial=f"SN-{i:06d}", equipment_model=model, site=sites[i % len(sites)],
                install_date=dt.date(2022, 1, 1)) for i in range(args.contracts)])
    today = now.date()
    starts = rng.integers(0, 365, size=args.contracts)
    intervals = rng.choice([30, 60, 91, 182, 365], size=args.contracts)
    contracts = m.MaintenanceContract.objects.bulk_create([
        m.MaintenanceContract(
            account_id=assets[i].site.account_id, number=f"MC-{i:06d}", tier="silver",
            calendar=cal, start=today - dt.timedelta(days=int(starts[i])),
            end=today - dt.timedelta(days=int(starts[i])) + dt.timedelta(days=364),
            interval_days=int(intervals[i]), covers_parts=False, covers_labour=False,
            price=1800) for i in range(args.contracts)])
    through = m.MaintenanceContract.assets.through
    through.objects.bulk_create([through(maintenancecontract_id=c.pk, asset_id=a.pk)
                                 for c, a in zip(contracts, assets, strict=True)])
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def seed_jobs(args: argparse.Namespace, now: dt.datetime) -> None:
    from decimal import Decimal

    from service_crm import models as m

    part = m.SparePart.objects.create(sku="BRG-6205", name="Bearing 6205", price="84.50")
    assets = list(m.Asset.objects.select_related("site").order_by("pk")[: args.jobs])
    done = now - dt.timedelta(days=1)
    tickets = m.Ticket.objects.bulk_create([
        m.Ticket(account_id=a.site.account_id, asset=a, coverage="none", source="phone",
                 status="resolved", summary="Noise", opened_at=done - dt.timedelta(hours=3),
                 resolved_at=done) for a in assets])
    wos = m.WorkOrder.objects.bulk_create([
        m.WorkOrder(ticket=t, status="completed", completed_at=done, time_spent_min=60)
        for t in tickets])
    lines = []
    for wo in wos:
        lines.append(m.WorkOrderCharge(work_order=wo, kind="part", part=part,
                                       description="BRG-6205 Bearing 6205",
                                       quantity=Decimal(1), unit_price=Decimal("84.50"),
                                       covered=False))
        lines.append(m.WorkOrderCharge(work_order=wo, kind="labour",
                                       description="Engineer labour", quantity=Decimal(1),
                                       unit_price=Decimal("95.00"), covered=False))
    m.WorkOrderCharge.objects.bulk_create(lines, batch_size=5000)


def timed(label: str, fn: object) -> object:
    t0 = time.perf_counter()
    result = fn()  # type: ignore[operator]
    print(f"{label}: {time.perf_counter() - t0:.2f} s -> {result}", flush=True)
    return result


def run(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.core.management import call_command

    from service_crm import models as m
    from service_crm.services.billing import invoice_drafts_build
    from service_crm.services.planned_maintenance import (
        contract_ids_due_for_planning,
        contract_plan_visits,
        horizon_days,
        planned_visits_generate,
    )

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("migrate", verbosity=0)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    seed(args, now)
    print(f"seeded {args.contracts} contracts / {args.accounts} accounts in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)

    def due(at: dt.datetime) -> int:
        return len(contract_ids_due_for_planning(
            today=at.date(), last=at.date() + dt.timedelta(days=horizon_days())))

    later, tomorrow = now + dt.timedelta(minutes=5), now + dt.timedelta(days=1)
    print(f"1a. selected for the first pass: {due(now)}")
    timed("1a. first planning pass", lambda: planned_visits_generate(now=now))
    print(f"    work orders proposed: {m.WorkOrder.objects.count()}")
    print(f"1b. selected 5 min later: {due(later)}")
    timed("1b. second pass, nothing changed", lambda: planned_visits_generate(now=later))
    timed("    (the selection query alone)", lambda: due(later))
    print(f"1c. selected the next day: {due(tomorrow)}")
    timed("1c. next day's pass", lambda: planned_visits_generate(now=tomorrow))
    ids = list(m.MaintenanceContract.objects.order_by("pk").values_list("pk", flat=True))
    sample = ids if not args.full_sample else ids[: args.full_sample]

    def every_contract() -> str:
        for cid in sample:
            contract_plan_visits(contract_id=cid, now=tomorrow)
        return f"{len(sample)} contracts visited"

    t0 = time.perf_counter()
    timed("1d. visiting every contract (the old pass), nothing changed", every_contract)
    per = (time.perf_counter() - t0) / len(sample)
    print(f"    = {per * 1000:.1f} ms per contract, {per * len(ids):.1f} s for all {len(ids)}")
    m.MaintenanceContract.objects.filter(pk__in=ids[: args.changed]).update(interval_days=45)
    print(f"1e. selected after {args.changed} contracts changed: {due(tomorrow)}")
    timed("1e. pass after the change", lambda: planned_visits_generate(now=tomorrow))

    t0 = time.perf_counter()
    seed_jobs(args, now)
    print(f"seeded {args.jobs} completed work orders, {2 * args.jobs} billable lines in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    timed("2a. invoice drafts built (lines added)", lambda: invoice_drafts_build(now=now))
    print(f"    drafts: {m.Invoice.objects.count()}")
    timed("2b. again, nothing new (lines added)", lambda: invoice_drafts_build(now=now))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
