"""Planned maintenance: the visits each contract promises, generated ahead as work orders.

A contract with an interval of N days (``interval_days``, else 365 / ``visits_per_year``) is
due a visit on every asset at ``start + N/2``, ``start + 3N/2``, ... up to its end: mid-interval,
so a one-visit-a-year contract gets its visit in the middle of the year rather than on the day
it is signed. Each housekeeping pass looks ``horizon_days`` ahead and, per (contract, asset, due
date), once:

* proposes a work order on a "planned" ticket (no SLA clock: the due date is the commitment), or
* records the visit as skipped when the asset had a completed visit in the last half interval;

and cancels planned visits (their work order and ticket) that the contract no longer promises:
its interval, dates or assets changed, or it lapsed. Work already started is never cancelled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from service_crm import conf
from service_crm.models import (
    Asset,
    MaintenanceContract,
    PlannedVisit,
    Ticket,
    WorkOrder,
)
from service_crm.models.choices import (
    AssetStatus,
    Coverage,
    PlannedVisitStatus,
    Priority,
    RenewalStatus,
    TicketSource,
    TicketStatus,
    WorkOrderStatus,
)
from service_crm.selectors.access import Role, has_role
from service_crm.selectors.engineers import engineer_match
from service_crm.services.audit import audit_record, interaction_record, snapshot

V = PlannedVisitStatus
W = WorkOrderStatus
# Work orders in these states are still only on paper: a changed contract may drop them.
NOT_STARTED = (W.PROPOSED, W.SCHEDULED)


def horizon_days() -> int:
    """How far ahead planned visits become work orders (``AFTERCARE_PLANNED_HORIZON_DAYS``)."""
    return conf.planned_horizon_days()


@dataclass(frozen=True)
class PlanReport:
    planned: int = 0
    skipped: int = 0
    cancelled: int = 0

    def __add__(self, other: PlanReport) -> PlanReport:
        return PlanReport(self.planned + other.planned, self.skipped + other.skipped,
                          self.cancelled + other.cancelled)


def contract_visit_dates(*, contract: MaintenanceContract, first: dt.date,
                         last: dt.date) -> Iterator[dt.date]:
    """The contract's due dates between ``first`` and ``last`` (both included)."""
    step = contract.visit_interval_days
    if step is None or contract.renewal_status == RenewalStatus.LAPSED:
        return
    day = contract.start + dt.timedelta(days=step // 2)
    if day < first:
        day += dt.timedelta(days=step * ((first - day).days // step))
        if day < first:
            day += dt.timedelta(days=step)
    while day <= min(last, contract.end):
        yield day
        day += dt.timedelta(days=step)


def _in_plan(contract: MaintenanceContract, asset_ids: set[int], visit: PlannedVisit) -> bool:
    return visit.asset_id in asset_ids and any(
        contract_visit_dates(contract=contract, first=visit.due, last=visit.due))


def _recent_visit(*, asset: Asset, due: dt.date, step: int) -> WorkOrder | None:
    since = dt.datetime.combine(due - dt.timedelta(days=step // 2), dt.time(0), tzinfo=dt.UTC)
    return (WorkOrder.objects.filter(ticket__asset=asset, status=W.COMPLETED,
                                     completed_at__gte=since)
            .order_by("-completed_at").first())


def _propose(*, contract: MaintenanceContract, asset: Asset, due: dt.date,
             now: dt.datetime) -> WorkOrder:
    cal = contract.calendar
    start = dt.datetime.combine(due, cal.opens, tzinfo=ZoneInfo(cal.timezone)).astimezone(dt.UTC)
    tasks = list(asset.equipment_model.service_tasks.all())
    end = start + dt.timedelta(minutes=max(60, sum(t.duration_min for t in tasks)))
    ticket = Ticket(account=contract.account, asset=asset, contract=contract,
                    coverage=Coverage.CONTRACT, source=TicketSource.PLANNED, priority=Priority.P4,
                    summary=f"Planned maintenance of {asset.serial} ({contract.number}, due {due})",
                    opened_at=now)
    ticket.save()
    audit_record(actor=None, action="ticket.open", obj=ticket, before=None, at=now)
    engineer = engineer_match(skill=asset.equipment_model.equipment_type,
                              region=asset.site.region, start=start, end=end)
    wo = WorkOrder.objects.create(
        ticket=ticket, engineer=engineer, status=W.PROPOSED, scheduled_start=start,
        scheduled_end=end, checklist=[{"task": t.name, "done": False} for t in tasks])
    audit_record(actor=None, action="work_order.propose", obj=wo, before=None, at=now)
    who = str(engineer) if engineer else "no free engineer: desk to assign"
    interaction_record(account=contract.account, asset=asset, ticket=ticket, at=now,
                       summary=f"Planned visit {due} under {contract.number}: {wo} proposed "
                               f"({who})")
    return wo


def _cancel(*, visit: PlannedVisit, now: dt.datetime, why: str, actor: Any = None,
            status: str = V.CANCELLED) -> None:
    before = snapshot(visit)
    if visit.work_order_id is not None:
        wo = WorkOrder.objects.select_for_update().get(pk=visit.work_order_id)
        wo_before = snapshot(wo)
        wo.status = W.CANCELLED
        wo.save(update_fields=["status"])
        audit_record(actor=actor, action="work_order.cancel", obj=wo, before=wo_before, at=now)
        ticket = Ticket.objects.select_for_update().get(pk=wo.ticket_id)
        if ticket.is_open:
            t_before = snapshot(ticket)
            # A planned ticket that never became a job is withdrawn, not resolved: there was
            # no fault, and no outcome to record.
            ticket.status, ticket.closed_at = TicketStatus.CLOSED, now
            ticket.save(update_fields=["status", "closed_at"])
            audit_record(actor=actor, action="ticket.withdrawn", obj=ticket, before=t_before,
                         at=now)
    visit.status, visit.note = status, why[:200]
    visit.save(update_fields=["status", "note"])
    action = "planned_visit.cancel" if status == V.CANCELLED else "planned_visit.drop"
    audit_record(actor=actor, action=action, obj=visit, before=before, at=now)
    interaction_record(account=visit.contract.account, asset=visit.asset, at=now, by=actor,
                       summary=f"Planned visit {visit.due} under {visit.contract.number} "
                               f"cancelled: {why}")


# Who may drop a planned visit by hand: the desk and its managers.
CANCEL_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})


@transaction.atomic(durable=True)
def planned_visit_cancel(*, visit: PlannedVisit, actor: Any, reason: str,
                         now: dt.datetime | None = None) -> PlannedVisit:
    """The desk drops a planned visit (the customer declined it, the machine is down for a
    refit): its unstarted work order is cancelled and its ticket withdrawn; audited, with the
    reason on the account timeline. Work already started is never cancelled."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=CANCEL_ROLES):
        raise ValidationError({"actor": "Only the service desk cancels planned visits."})
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the visit is cancelled."})
    v = (PlannedVisit.objects.select_for_update().select_related("contract__account", "asset")
         .get(pk=visit.pk))
    if v.status != V.PLANNED:
        raise ValidationError({"status": f"The visit is already {v.get_status_display()}."})
    if v.work_order_id is not None and WorkOrder.objects.filter(
            pk=v.work_order_id).exclude(status__in=NOT_STARTED).exists():
        raise ValidationError({"status": "Its work order has started: complete or cancel "
                                         "the work order instead."})
    # DROPPED, not CANCELLED: the planning pass re-plans a visit the contract promises again,
    # but never one the desk dropped.
    _cancel(visit=v, now=now, why=f"dropped by the desk: {reason[:150]}", actor=actor,
            status=V.DROPPED)
    return v


@transaction.atomic(durable=True)
def contract_plan_visits(*, contract_id: int, now: dt.datetime,
                         horizon: int | None = None) -> PlanReport:
    """Bring one contract's planned visits in line with its visit plan (see the module doc)."""
    contract = (MaintenanceContract.objects.select_for_update(skip_locked=True)
                .select_related("calendar", "account").filter(pk=contract_id).first())
    if contract is None:  # another worker is planning it right now
        return PlanReport()
    today = now.date()
    last = today + dt.timedelta(days=horizon_days() if horizon is None else horizon)
    assets = {a.pk: a for a in contract.assets.exclude(status=AssetStatus.DECOMMISSIONED)
              .select_related("site", "equipment_model")}
    cancelled = 0
    open_visits = (PlannedVisit.objects.select_for_update().select_related("contract", "asset")
                   .filter(contract=contract, status=V.PLANNED, due__gte=today))
    for visit in open_visits:
        if _in_plan(contract, set(assets), visit):
            continue
        wo_status = None if visit.work_order_id is None else WorkOrder.objects.filter(
            pk=visit.work_order_id).values_list("status", flat=True).first()
        if wo_status is None or wo_status in NOT_STARTED:
            _cancel(visit=visit, now=now, why="no longer in the contract's visit plan")
            cancelled += 1
    planned = skipped = 0
    step = contract.visit_interval_days or 0
    existing = {(v.asset_id, v.due): v for v in PlannedVisit.objects.filter(
        contract=contract, due__gte=today, due__lte=last)}
    for due in contract_visit_dates(contract=contract, first=today, last=last):
        for asset_id, asset in assets.items():
            found = existing.get((asset_id, due))
            if found is not None and found.status != V.CANCELLED:
                continue  # already planned or skipped: nothing to do (idempotent)
            recent = _recent_visit(asset=asset, due=due, step=step)
            visit = found or PlannedVisit(contract=contract, asset=asset, due=due,
                                          created_at=now)
            before = snapshot(visit) if visit.pk else None
            if recent is not None:
                visit.status, visit.work_order = V.SKIPPED, None
                visit.note = f"WO-{recent.pk:06d} completed {recent.completed_at:%Y-%m-%d}"
                skipped += 1
            else:
                visit.status, visit.note = V.PLANNED, ""
                visit.work_order = _propose(contract=contract, asset=asset, due=due, now=now)
                planned += 1
            visit.save()
            audit_record(actor=None, action=f"planned_visit.{visit.status}", obj=visit,
                         before=before, at=now)
    _plan_mark(contract_id=contract.pk, through=last)
    return PlanReport(planned=planned, skipped=skipped, cancelled=cancelled)


def _plan_key_sql() -> str:
    """SQL for a contract row ``mc``'s plan key: a digest of everything its visit plan
    depends on (dates, interval, lapse, the assets still in service). Planning stores it; a
    contract whose key differs has changed since and must be planned again."""
    through = MaintenanceContract.assets.through._meta.db_table
    asset = Asset._meta.db_table
    return (
        f"md5(concat_ws('|', mc.start, mc.\"end\", ({_STEP_SQL}), "
        f"mc.renewal_status = '{RenewalStatus.LAPSED}', "
        f"(SELECT string_agg(a.id::text, ',' ORDER BY a.id) FROM {through} ca "
        f"JOIN {asset} a ON a.id = ca.asset_id WHERE ca.maintenancecontract_id = mc.id "
        f"AND a.status <> '{AssetStatus.DECOMMISSIONED}')))"
    )


# The visit interval in days, as MaintenanceContract.visit_interval_days computes it.
_STEP_SQL = ("CASE WHEN mc.interval_days > 0 THEN mc.interval_days "
             "WHEN mc.visits_per_year > 0 THEN GREATEST(1, 365 / mc.visits_per_year) END")


def _plan_mark(*, contract_id: int, through: dt.date) -> None:
    """Remember that the contract's plan is in line up to ``through``, and under which key."""
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {MaintenanceContract._meta.db_table} mc "  # noqa: S608
                    f"SET visits_planned_through = %s, visits_plan_key = {_plan_key_sql()} "
                    "WHERE mc.id = %s", [through, contract_id])


def contract_ids_due_for_planning(*, today: dt.date, last: dt.date) -> list[int]:
    """The contracts a planning pass has work for, in one query, instead of every contract:

    * its plan key changed since it was last planned (dates, interval, assets, lapse), or it
      was never planned; or
    * its next due date after the day it was planned through falls in ``[today, last]`` and
      before its end (a new visit comes into the horizon).

    Contracts that ended and have no planned visit left are not looked at at all."""
    mc_table = MaintenanceContract._meta.db_table
    pv_table = PlannedVisit._meta.db_table
    sql = f"""
        WITH c AS (
            SELECT mc.id, mc."end", mc.visits_plan_key AS stored_key,
                   {_plan_key_sql()} AS current_key, ({_STEP_SQL}) AS step,
                   mc.start + ({_STEP_SQL}) / 2 AS first_due,
                   GREATEST(mc.visits_planned_through + 1, %(today)s::date) AS after
            FROM {mc_table} mc
            WHERE mc."end" >= %(today)s::date
               OR EXISTS (SELECT 1 FROM {pv_table} pv WHERE pv.contract_id = mc.id
                          AND pv.status = %(planned)s AND pv.due >= %(today)s::date)
        )
        SELECT id FROM c
        WHERE stored_key IS DISTINCT FROM current_key
           OR (step IS NOT NULL AND
               CASE WHEN after <= first_due THEN first_due
                    ELSE first_due + ((after - first_due + step - 1) / step) * step END
               <= LEAST(%(last)s::date, "end"))
        ORDER BY id"""  # noqa: S608 (table names from the models, values bound)
    with connection.cursor() as cur:
        cur.execute(sql, {"today": today, "last": last, "planned": V.PLANNED})
        return [row[0] for row in cur.fetchall()]


def planned_visits_generate(*, now: dt.datetime | None = None,
                            horizon: int | None = None) -> PlanReport:
    """Plan the contracts that have work to do (see :func:`contract_ids_due_for_planning`);
    one transaction per contract, so one bad contract does not hold the others back."""
    now = now or timezone.now()
    today = now.date()
    last = today + dt.timedelta(days=horizon_days() if horizon is None else horizon)
    report = PlanReport()
    for cid in contract_ids_due_for_planning(today=today, last=last):
        report += contract_plan_visits(contract_id=cid, now=now, horizon=horizon)
    return report
