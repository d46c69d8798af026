"""Work orders: proposed by the automation, scheduled, started and completed by engineers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from service_crm.models import (
    Engineer,
    SparePart,
    Stock,
    Ticket,
    Warehouse,
    WorkOrder,
    WorkOrderPart,
)
from service_crm.models.choices import TicketStatus, WorkOrderStatus
from service_crm.selectors.engineers import engineer_is_free, engineer_match
from service_crm.services import notifications
from service_crm.services.audit import audit_record, interaction_record, snapshot
from service_crm.services.entitlements import work_order_charge_internal
from service_crm.services.tickets import ticket_transition_internal
from service_crm.services.webhooks import outbox_emit

W = WorkOrderStatus


def _notify_engineer(work_order: WorkOrder, now: dt.datetime) -> None:
    notifications.notify("work_order.assigned", now=now, work_order_id=work_order.pk)


def work_order_propose_internal(*, ticket: Ticket, now: dt.datetime) -> WorkOrder:
    """Propose a visit: the failure mode's skill, the site's region, the first free engineer."""
    fm = ticket.episode.failure_mode if ticket.episode else None
    skill = fm.required_skill if fm else ticket.asset.equipment_model.equipment_type
    duration = dt.timedelta(hours=float(fm.labour_hours) if fm else 2.0)
    # Aim to be on site by the response deadline, but not before an hour from now.
    start = max(ticket.response_due or now, now + dt.timedelta(hours=1))
    start = start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    end = start + duration
    engineer = engineer_match(skill=skill, region=ticket.asset.site.region, start=start, end=end)
    checklist = [{"task": t.name, "done": False}
                 for t in ticket.asset.equipment_model.service_tasks.all()]
    if fm is not None:
        checklist.insert(0, {"task": f"Diagnose: {fm.name}", "done": False})
    wo = WorkOrder.objects.create(ticket=ticket, engineer=engineer, status=W.PROPOSED,
                                  scheduled_start=start, scheduled_end=end, checklist=checklist)
    audit_record(actor=None, action="work_order.propose", obj=wo, before=None, at=now)
    who = str(engineer) if engineer else f"no free engineer with skill {skill!r} in region " \
                                          f"{ticket.asset.site.region!r}: desk to assign"
    interaction_record(account=ticket.account, asset=ticket.asset, ticket=ticket, at=now,
                       summary=f"{wo} proposed for {start:%Y-%m-%d %H:%M} UTC: {who}")
    if engineer is not None:
        _notify_engineer(wo, now)
    return wo


@transaction.atomic(durable=True)
def work_order_schedule(
    *, work_order: WorkOrder, engineer: Engineer, start: dt.datetime, end: dt.datetime,
    actor: AbstractBaseUser | None, now: dt.datetime | None = None,
) -> WorkOrder:
    """Book the engineer; the ticket becomes scheduled (triaged first if it was new)."""
    now = now or timezone.now()
    wo = WorkOrder.objects.select_for_update().select_related("ticket").get(pk=work_order.pk)
    if wo.status not in (W.PROPOSED, W.SCHEDULED):
        raise ValidationError({"status": f"A {wo.status} work order cannot be scheduled."})
    if end <= start:
        raise ValidationError({"scheduled_end": "The window must end after it starts."})
    Engineer.objects.select_for_update().get(pk=engineer.pk)  # serialise bookings per engineer
    region = Ticket.objects.filter(pk=wo.ticket_id).values_list(
        "asset__site__region", flat=True).first()
    if region is not None and engineer.region != region:
        # Field engineers see their own region only: one booked elsewhere could not open
        # the asset's history or telemetry on the job.
        raise ValidationError({"engineer": f"{engineer} works in {engineer.region}, "
                                           f"the site is in {region}."})
    if not engineer_is_free(engineer=engineer, start=start, end=end) and not (
            wo.engineer_id == engineer.pk and wo.status == W.SCHEDULED):
        raise ValidationError({"engineer": f"{engineer} is not free in that window."})
    before = snapshot(wo)
    wo.engineer, wo.scheduled_start, wo.scheduled_end = engineer, start, end
    wo.status = W.SCHEDULED
    wo.full_clean()
    wo.save()
    audit_record(actor=actor, action="work_order.schedule", obj=wo, before=before, at=now)
    ticket = Ticket.objects.select_for_update().get(pk=wo.ticket_id)
    if ticket.status == TicketStatus.NEW:
        ticket_transition_internal(ticket=ticket, to=TicketStatus.TRIAGED, now=now, actor=actor)
    if ticket.status == TicketStatus.TRIAGED:
        ticket_transition_internal(ticket=ticket, to=TicketStatus.SCHEDULED, now=now, actor=actor)
    interaction_record(account=ticket.account, asset=ticket.asset, ticket=ticket, at=now, by=actor,
                       summary=f"{wo} scheduled with {engineer} {start:%Y-%m-%d %H:%M} UTC")
    _notify_engineer(wo, now)
    return wo


@transaction.atomic(durable=True)
def work_order_start(
    *, work_order: WorkOrder, actor: AbstractBaseUser | None, now: dt.datetime | None = None
) -> WorkOrder:
    now = now or timezone.now()
    wo = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    if wo.status != W.SCHEDULED:
        raise ValidationError({"status": "Only a scheduled work order can be started."})
    before = snapshot(wo)
    wo.status, wo.started_at = W.IN_PROGRESS, now
    wo.save()
    audit_record(actor=actor, action="work_order.start", obj=wo, before=before, at=now)
    ticket = Ticket.objects.select_for_update().get(pk=wo.ticket_id)
    ticket_transition_internal(ticket=ticket, to=TicketStatus.IN_PROGRESS, now=now, actor=actor)
    interaction_record(account=ticket.account, asset=ticket.asset, ticket=ticket, at=now,
                       kind="visit", by=actor, summary=f"{wo} started on site")
    return wo


@dataclass(frozen=True)
class PartUsed:
    part: SparePart
    warehouse: Warehouse
    quantity: int


@transaction.atomic(durable=True)
def work_order_complete(
    *, work_order: WorkOrder, actor: AbstractBaseUser | None, report: str, outcome: str,
    time_spent_min: int, parts: list[PartUsed] | None = None, now: dt.datetime | None = None,
) -> WorkOrder:
    """Close the job: take parts from stock, resolve the ticket with its outcome, and watch the
    episode for the watch period in case the anomaly returns."""
    now = now or timezone.now()
    wo = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    errors: dict[str, str] = {}
    if wo.status != W.IN_PROGRESS:
        errors["status"] = "Only a work order in progress can be completed."
    if not report.strip():
        errors["completion_report"] = "Write what was found and done."
    if time_spent_min <= 0:
        errors["time_spent_min"] = "Record the time spent on site."
    if errors:
        raise ValidationError(errors)
    before = snapshot(wo)
    for used in parts or []:
        if used.quantity <= 0:
            raise ValidationError({"parts": f"{used.part.sku}: quantity must be positive."})
        taken = (Stock.objects.filter(part=used.part, warehouse=used.warehouse,
                                      quantity__gte=used.quantity)
                 .update(quantity=F("quantity") - used.quantity))
        if taken != 1:
            raise ValidationError(
                {"parts": f"{used.part.sku}: not enough stock in {used.warehouse.code}."})
        WorkOrderPart.objects.create(work_order=wo, part=used.part, warehouse=used.warehouse,
                                     quantity=used.quantity)
    wo.status, wo.completed_at = W.COMPLETED, now
    wo.completion_report, wo.time_spent_min = report, time_spent_min
    wo.save()
    audit_record(actor=actor, action="work_order.complete", obj=wo, before=before, at=now)
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("contract").get(
        pk=wo.ticket_id)
    charges = work_order_charge_internal(work_order=wo, ticket=ticket)
    ticket_transition_internal(ticket=ticket, to=TicketStatus.RESOLVED, now=now, actor=actor,
                               outcome=outcome)
    interaction_record(account=ticket.account, asset=ticket.asset, ticket=ticket, at=now,
                       kind="visit", by=actor,
                       summary=f"{wo} completed ({ticket.get_outcome_display()})", body=report)
    billable = sum((c.amount for c in charges if not c.covered), Decimal(0))
    if billable:
        interaction_record(account=ticket.account, asset=ticket.asset, ticket=ticket, at=now,
                           summary=f"{wo}: {billable} EUR billable (not covered)")
    outbox_emit(topic="work_order.completed", now=now, data={
        "work_order_id": wo.pk, "ticket": ticket.number, "account_id": ticket.account_id,
        "asset_serial": ticket.asset.serial, "coverage": ticket.coverage,
        "contract": ticket.contract.number if ticket.contract else None,
        "outcome": ticket.outcome, "time_spent_min": wo.time_spent_min,
        "completed_at": now, "billable_total": billable,
        "charges": [{"kind": c.kind, "description": c.description, "quantity": c.quantity,
                     "unit_price": c.unit_price, "amount": c.amount, "covered": c.covered}
                    for c in charges],
    })
    notifications.notify("work_order.report", now=now, work_order_id=wo.pk)
    return wo
