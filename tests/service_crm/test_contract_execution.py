"""Contracts that execute: planned visits, entitlements, warranty SLA, renewal and lapse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from service_crm import models as m
from service_crm.models.choices import (
    Coverage,
    Outcome,
    PlannedVisitStatus,
    Priority,
    RenewalStatus,
    TicketSource,
    TicketStatus,
    WorkOrderStatus,
)
from service_crm.services.alerts import alert_ingest
from service_crm.services.contracts import contract_expire_due, contract_flag_renewals
from service_crm.services.housekeeping import housekeeping_run
from service_crm.services.offers import offer_create_renewal, offer_decide, offer_send
from service_crm.services.planned_maintenance import (
    contract_plan_visits,
    contract_visit_dates,
    planned_visits_generate,
)
from service_crm.services.tickets import ticket_check_sla, ticket_open
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
H = dt.timedelta(hours=1)
TODAY = NOW.date()  # Monday 23 Nov 2026


def _planned_contract(world: World, **kw: Any) -> m.MaintenanceContract:
    """A contract from 1 Nov 2026 visiting every 30 days: due 16 Nov, 16 Dec, 15 Jan, ..."""
    kw = {"start": dt.date(2026, 11, 1), "end": dt.date(2027, 10, 31), "interval_days": 30} | kw
    return world.cover_by_contract(**kw)


def _complete(world: World, wo: m.WorkOrder, *, at: dt.datetime = NOW,
              parts: list[PartUsed] | None = None, minutes: int = 90) -> m.WorkOrder:
    work_order_schedule(work_order=wo, engineer=world.engineer, start=at + H, end=at + 4 * H,
                        actor=None, now=at)
    work_order_start(work_order=wo, actor=None, now=at + H)
    return work_order_complete(work_order=wo, actor=None, report="Bearings replaced",
                               outcome=Outcome.FAULT_CONFIRMED, time_spent_min=minutes,
                               parts=parts, now=at + 2 * H)


# --- the visit plan ---------------------------------------------------------------------------


def test_visit_dates_fall_mid_interval_within_the_contract() -> None:
    quarterly = m.MaintenanceContract(start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31),
                                      visits_per_year=4)
    assert list(contract_visit_dates(contract=quarterly, first=dt.date(2026, 1, 1),
                                     last=dt.date(2027, 6, 1))) == [
        dt.date(2026, 2, 15), dt.date(2026, 5, 17), dt.date(2026, 8, 16), dt.date(2026, 11, 15)]
    # interval_days wins over visits_per_year; the window cuts the series, not its phase
    monthly = m.MaintenanceContract(start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31),
                                    visits_per_year=4, interval_days=30)
    assert list(contract_visit_dates(contract=monthly, first=dt.date(2026, 3, 1),
                                     last=dt.date(2026, 4, 30))) == [
        dt.date(2026, 3, 17), dt.date(2026, 4, 16)]
    none = m.MaintenanceContract(start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31),
                                 visits_per_year=0)
    assert list(contract_visit_dates(contract=none, first=dt.date(2026, 1, 1),
                                     last=dt.date(2026, 12, 31))) == []


def test_planned_visit_becomes_a_work_order_once(world: World) -> None:
    contract = _planned_contract(world)
    first = planned_visits_generate(now=NOW)
    again = planned_visits_generate(now=NOW + dt.timedelta(hours=6))
    assert (first.planned, again.planned, again.skipped, again.cancelled) == (1, 0, 0, 0)

    visit = m.PlannedVisit.objects.get()
    assert (visit.contract, visit.asset) == (contract, world.asset)
    assert visit.due == dt.date(2026, 12, 16)
    assert visit.status == PlannedVisitStatus.PLANNED
    wo = visit.work_order
    assert wo is not None
    assert wo.status == WorkOrderStatus.PROPOSED
    assert wo.scheduled_start == dt.datetime(2026, 12, 16, 7, 0, tzinfo=dt.UTC)  # 08:00 Berlin
    assert wo.engineer == world.engineer
    assert wo.checklist == [{"task": "Check belt tension", "done": False}]
    ticket = wo.ticket
    assert (ticket.source, ticket.coverage, ticket.contract) == (
        TicketSource.PLANNED, Coverage.CONTRACT, contract)
    assert ticket.resolution_due is None  # the due date is the commitment, not an SLA clock
    assert m.Interaction.objects.filter(summary__startswith="Planned visit 2026-12-16").count() == 1
    # the next due date (15 Jan) enters the horizon a month later
    assert planned_visits_generate(now=NOW + dt.timedelta(days=30)).planned == 1


def test_asset_with_a_recent_visit_is_skipped(world: World) -> None:
    _planned_contract(world, interval_days=60)  # due 1 Dec; "recent" = since 1 Nov
    repair = m.WorkOrder.objects.get(pk=alert_ingest(event=make_event(), now=NOW).work_order_id)
    _complete(world, repair)

    report = planned_visits_generate(now=NOW)
    assert (report.planned, report.skipped) == (0, 1)
    visit = m.PlannedVisit.objects.get()
    assert visit.status == PlannedVisitStatus.SKIPPED
    assert visit.work_order is None
    assert visit.note == f"WO-{repair.pk:06d} completed 2026-11-23"
    assert planned_visits_generate(now=NOW).skipped == 0  # decided once


def test_changed_contract_reschedules_unstarted_visits(world: World) -> None:
    contract = _planned_contract(world)
    planned_visits_generate(now=NOW)
    old = m.PlannedVisit.objects.get()

    contract.interval_days = 60  # now due 1 Dec instead of 16 Dec
    contract.save()
    report = planned_visits_generate(now=NOW)
    assert (report.planned, report.cancelled) == (1, 1)
    old.refresh_from_db()
    assert old.status == PlannedVisitStatus.CANCELLED
    assert old.work_order is not None
    assert old.work_order.status == WorkOrderStatus.CANCELLED
    assert old.work_order.ticket.status == TicketStatus.CLOSED
    new = m.PlannedVisit.objects.get(status=PlannedVisitStatus.PLANNED)
    assert new.due == dt.date(2026, 12, 1)

    contract.assets.remove(world.asset)  # the asset leaves the contract: its visit goes too
    assert planned_visits_generate(now=NOW).cancelled == 1
    assert not m.PlannedVisit.objects.filter(status=PlannedVisitStatus.PLANNED).exists()
    assert m.AuditLog.objects.filter(action="planned_visit.cancel").count() == 2


def test_started_visit_is_not_cancelled_by_a_contract_change(world: World) -> None:
    contract = _planned_contract(world)
    planned_visits_generate(now=NOW)
    visit = m.PlannedVisit.objects.get()
    assert visit.work_order is not None
    work_order_schedule(work_order=visit.work_order, engineer=world.engineer,
                        start=NOW + H, end=NOW + 3 * H, actor=None, now=NOW)
    work_order_start(work_order=visit.work_order, actor=None, now=NOW + H)
    contract.assets.remove(world.asset)
    assert planned_visits_generate(now=NOW).cancelled == 0
    visit.refresh_from_db()
    assert visit.status == PlannedVisitStatus.PLANNED


@pytest.mark.django_db(transaction=True)
def test_concurrent_planning_makes_one_visit(world: World) -> None:
    from tests.support.crm import race

    contract = _planned_contract(world)
    results = race([lambda: contract_plan_visits(contract_id=contract.pk, now=NOW)] * 4)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert m.PlannedVisit.objects.count() == 1
    assert m.WorkOrder.objects.count() == 1


def test_housekeeping_plans_visits(world: World) -> None:
    _planned_contract(world)
    report = housekeeping_run(now=NOW)
    assert report.visits_planned == 1
    assert "planned visits proposed 1" in str(report)


# --- entitlements -----------------------------------------------------------------------------


def _charges(wo: m.WorkOrder) -> list[tuple[str, Decimal, bool]]:
    return [(c.kind, c.amount, c.covered) for c in wo.charges.order_by("kind")]


def test_contract_covering_labour_only_bills_the_parts(world: World) -> None:
    world.cover_by_contract(covers_parts=False, covers_labour=True)
    wo = m.WorkOrder.objects.get(pk=alert_ingest(event=make_event(), now=NOW).work_order_id)
    _complete(world, wo, parts=[PartUsed(world.part, world.warehouse, 2)], minutes=90)
    # 2 x 84.50 EUR parts billable; 1.5 h at 95 EUR covered
    assert _charges(wo) == [("labour", Decimal("142.50"), True), ("part", Decimal("169.00"), False)]
    assert wo.charges.get(kind="labour").covered_by == m.MaintenanceContract.objects.get().number
    assert m.Interaction.objects.filter(summary__endswith="169.00 EUR billable (not covered)") \
        .count() == 1


def test_contract_covering_parts_and_labour_bills_nothing(world: World) -> None:
    world.cover_by_contract(covers_parts=True, covers_labour=True)
    wo = m.WorkOrder.objects.get(pk=alert_ingest(event=make_event(), now=NOW).work_order_id)
    _complete(world, wo, parts=[PartUsed(world.part, world.warehouse, 1)])
    assert all(covered for _, _, covered in _charges(wo))
    assert not m.Interaction.objects.filter(summary__contains="billable").exists()


def test_uncovered_job_is_billable_and_warranty_job_is_free(world: World) -> None:
    ticket = ticket_open(asset=world.asset, summary="Noise", source=TicketSource.PHONE,
                         priority=Priority.P3, now=NOW)
    assert ticket.coverage == Coverage.NONE
    wo = m.WorkOrder.objects.create(ticket=ticket, status=WorkOrderStatus.PROPOSED)
    _complete(world, wo, minutes=60)
    assert _charges(wo) == [("labour", Decimal("95.00"), False)]

    new = f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model,
                         install_date=dt.date(2026, 6, 1), warranty_end=dt.date(2028, 6, 1))
    ticket = ticket_open(asset=new, summary="Leak", source=TicketSource.PHONE,
                         priority=Priority.P3, now=NOW + dt.timedelta(days=1))
    assert ticket.coverage == Coverage.WARRANTY
    wo = m.WorkOrder.objects.create(ticket=ticket, status=WorkOrderStatus.PROPOSED)
    _complete(world, wo, at=NOW + dt.timedelta(days=1),
              parts=[PartUsed(world.part, world.warehouse, 1)])
    assert _charges(wo) == [("labour", Decimal("142.50"), True), ("part", Decimal("84.50"), True)]
    assert {c.covered_by for c in wo.charges.all()} == {"warranty"}


# --- warranty SLA -----------------------------------------------------------------------------


def test_warranty_ticket_gets_an_sla_clock_from_the_warranty_terms(world: World) -> None:
    asset = f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model,
                           install_date=dt.date(2026, 6, 1), warranty_end=dt.date(2028, 6, 1))
    before_terms = ticket_open(asset=asset, summary="Noise", source=TicketSource.PHONE,
                               priority=Priority.P2, now=NOW)
    assert before_terms.resolution_due is None  # no warranty terms set up: no clock
    m.WarrantySlaTarget.objects.create(priority=Priority.P2, response_h=4, resolution_h=16,
                                       calendar=f.CalendarFactory())
    ticket = ticket_open(asset=asset, summary="Noise", source=TicketSource.PHONE,
                         priority=Priority.P2, now=NOW)
    # Monday 10:00 Berlin + 4 business hours = 14:00; + 16 h = Tuesday 17:00 (office 8-17)
    assert ticket.response_due == dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
    assert ticket.resolution_due == dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
    assert ticket_check_sla(now=NOW + dt.timedelta(days=2)).breached == 1
    assert m.Ticket.objects.get(pk=ticket.pk).resolution_breached


# --- renewal and lapse ------------------------------------------------------------------------


def test_accepted_renewal_extends_the_contract_by_a_year(world: World) -> None:
    contract = world.cover_by_contract(end=dt.date(2026, 12, 31))
    offer = offer_create_renewal(contract=contract, actor=None, now=NOW)
    offer_send(offer=offer, actor=None, now=NOW)
    offer_decide(offer=offer, accepted=True, actor=None, now=NOW)
    contract.refresh_from_db()
    assert (contract.end, contract.renewal_status) == (dt.date(2027, 12, 31),
                                                       RenewalStatus.RENEWED)
    assert m.AuditLog.objects.get(action="contract.renewed").before["end"] == "2026-12-31"
    assert m.Interaction.objects.filter(
        summary=f"Contract {contract.number} renewed until 2027-12-31 "
                f"(offer {offer.number} accepted)").exists()
    # a year on, the renewed contract is a renewal opportunity again
    assert contract_flag_renewals(now=NOW + dt.timedelta(days=365))
    contract.refresh_from_db()
    assert contract.renewal_status == RenewalStatus.OPPORTUNITY


def test_auto_renew_contract_renews_itself_on_its_last_day(world: World) -> None:
    contract = world.cover_by_contract(start=dt.date(2025, 11, 24), end=TODAY, auto_renew=True)
    assert contract_expire_due(now=NOW - dt.timedelta(days=1)).renewed == 0
    report = contract_expire_due(now=NOW)
    contract.refresh_from_db()
    assert (report.renewed, report.lapsed) == (1, 0)
    assert (contract.end, contract.renewal_status) == (dt.date(2027, 11, 23),
                                                       RenewalStatus.RENEWED)
    assert contract_expire_due(now=NOW).renewed == 0  # idempotent


def test_contract_not_renewed_lapses_with_timeline_and_desk_notice(
        world: World, django_capture_on_commit_callbacks: Any) -> None:
    contract = world.cover_by_contract(start=dt.date(2025, 11, 23),
                                       end=TODAY - dt.timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        report = contract_expire_due(now=NOW)
    assert report.lapsed == 1
    contract.refresh_from_db()
    assert contract.renewal_status == RenewalStatus.LAPSED
    assert m.AuditLog.objects.filter(action="contract.lapsed", object_id=str(contract.pk)).exists()
    assert m.Interaction.objects.filter(summary__startswith=f"Contract {contract.number} lapsed")
    assert [msg.subject for msg in mail.outbox] == [
        f"[Aftercare] Contract lapsed: {contract.number} (Nordwerk Foods GmbH)"]
    assert contract_expire_due(now=NOW + dt.timedelta(days=1)).lapsed == 0  # once
    assert planned_visits_generate(now=NOW).planned == 0  # a lapsed contract owes no visits
