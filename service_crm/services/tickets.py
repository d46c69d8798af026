"""Tickets: opening with an SLA clock, the workflow, pauses, SLA monitoring and outcomes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm import conf
from service_crm.business_hours import add_business_time, business_time_between
from service_crm.models import (
    AlertOutcome,
    Asset,
    Episode,
    Ticket,
    TicketPause,
    WarrantySlaTarget,
)
from service_crm.models.choices import (
    Coverage,
    EpisodeStatus,
    Outcome,
    Priority,
    TicketSource,
    TicketStatus,
)
from service_crm.selectors.coverage import AssetCoverage, calendar_hours, ticket_sla_calendar
from service_crm.services import notifications
from service_crm.services.audit import audit_record, interaction_record, snapshot
from service_crm.services.webhooks import outbox_emit

S = TicketStatus
ALLOWED: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.TRIAGED}),
    S.TRIAGED: frozenset({S.SCHEDULED, S.RESOLVED}),
    S.SCHEDULED: frozenset({S.IN_PROGRESS, S.TRIAGED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED}),
    S.RESOLVED: frozenset({S.CLOSED, S.TRIAGED}),
    S.CLOSED: frozenset(),
}
SEVERITY_PRIORITY = {"critical": Priority.P1, "warning": Priority.P2, "info": Priority.P3}


def _hours(h: Decimal) -> dt.timedelta:
    return dt.timedelta(seconds=float(h) * 3600)


def ticket_open_internal(
    *,
    asset: Asset,
    summary: str,
    source: TicketSource,
    priority: Priority,
    cover: AssetCoverage,
    now: dt.datetime,
    episode: Episode | None = None,
    actor: AbstractBaseUser | None = None,
) -> Ticket:
    """Open a ticket inside the caller's transaction; SLA due times come from the contract."""
    ticket = Ticket(
        account=asset.site.account, asset=asset, episode=episode, contract=cover.contract,
        coverage=cover.coverage, source=source, priority=priority, summary=summary[:300],
        opened_at=now,
    )
    if cover.contract is not None:
        target = cover.contract.sla_targets.filter(priority=priority).first()
        if target is not None:
            hours = calendar_hours(cover.contract.calendar)
            ticket.response_due = add_business_time(hours, now, _hours(target.response_h))
            ticket.resolution_due = add_business_time(hours, now, _hours(target.resolution_h))
    elif cover.coverage == Coverage.WARRANTY:
        terms = WarrantySlaTarget.objects.filter(priority=priority).select_related(
            "calendar").first()
        if terms is not None:
            hours = calendar_hours(terms.calendar)
            ticket.response_due = add_business_time(hours, now, _hours(terms.response_h))
            ticket.resolution_due = add_business_time(hours, now, _hours(terms.resolution_h))
    # Field checks only: the related rows were just read under lock, so the per-FK existence
    # queries of full_clean() would cost four round trips per alert for nothing.
    ticket.clean_fields(exclude=["account", "asset", "episode", "contract", "assigned_to"])
    ticket.save()
    audit_record(actor=actor, action="ticket.open", obj=ticket, before=None, at=now)
    interaction_record(
        account=ticket.account, asset=asset, ticket=ticket, at=now,
        summary=f"Ticket {ticket.number} opened ({ticket.get_coverage_display()}, "
                f"{ticket.get_priority_display()}): {summary}",
        by=actor,
    )
    if cover.coverage != Coverage.NONE:
        notifications.notify("ticket.opened", now=now, ticket_id=ticket.pk)
    return ticket


@transaction.atomic(durable=True)
def ticket_open(
    *, asset: Asset, summary: str, source: TicketSource, priority: Priority,
    actor: AbstractBaseUser | None = None, now: dt.datetime | None = None,
) -> Ticket:
    """A ticket raised by a person (phone, portal, email), covered as the asset is today."""
    from service_crm.selectors.coverage import coverage_at

    now = now or timezone.now()
    if source == TicketSource.ALERT:
        raise ValidationError({"source": "Alert tickets are opened by the alert automation."})
    return ticket_open_internal(asset=asset, summary=summary, source=source, priority=priority,
                                cover=coverage_at(asset=asset, on=now.date()), now=now,
                                actor=actor)


def ticket_transition_internal(
    *, ticket: Ticket, to: str, now: dt.datetime, actor: AbstractBaseUser | None = None,
    outcome: str = "",
) -> Ticket:
    if to not in ALLOWED.get(ticket.status, frozenset()):
        raise ValidationError(
            {"status": f"A ticket cannot go from {ticket.status} to {to}."})
    if ticket.paused_at is not None and to != S.TRIAGED:
        raise ValidationError({"status": "Resume the paused ticket first."})
    before = snapshot(ticket)
    if to == S.RESOLVED:
        if outcome not in Outcome.values:
            raise ValidationError({"outcome": "Say whether the fault was confirmed or not found."})
        ticket.outcome = outcome
        ticket.resolved_at = now
        if ticket.resolution_due is not None and now > ticket.resolution_due:
            ticket.resolution_breached = True
    if ticket.responded_at is None and to != S.CLOSED:
        ticket.responded_at = now
        if ticket.response_due is not None and now > ticket.response_due:
            ticket.response_breached = True
    if to == S.CLOSED:
        ticket.closed_at = now
    if to == S.TRIAGED and ticket.status == S.RESOLVED:  # reopened
        ticket.resolved_at = None
        ticket.outcome = ""
    ticket.status = to
    ticket.save()
    audit_record(actor=actor, action=f"ticket.{to}", obj=ticket, before=before, at=now)
    if to == S.RESOLVED:
        _record_outcomes(ticket=ticket, now=now)
        _watch_episode(ticket=ticket, now=now, actor=actor)
    return ticket


def _watch_episode(*, ticket: Ticket, now: dt.datetime, actor: AbstractBaseUser | None) -> None:
    """After a fix (or a no-fault visit) the episode is watched: if the anomaly returns within
    the watch period, the same episode reopens instead of a new one starting."""
    if ticket.episode_id is None:
        return
    ep = Episode.objects.select_for_update().get(pk=ticket.episode_id)
    if ep.status != EpisodeStatus.OPEN:
        return
    before = snapshot(ep)
    ep.status, ep.watch_until = EpisodeStatus.WATCHING, now + conf.watch_period()
    ep.save()
    audit_record(actor=actor, action="episode.watch", obj=ep, before=before, at=now)


def _record_outcomes(*, ticket: Ticket, now: dt.datetime) -> None:
    """One verdict per detector that contributed to the ticket's episode (for precision)."""
    if ticket.episode is None:
        return
    detectors: set[str] = set()
    for alert in ticket.episode.alerts.all():
        detectors.update(alert.detectors.keys())
        detectors.update(e.get("detector", "") for e in alert.evidence if isinstance(e, dict))
    detectors.discard("")
    AlertOutcome.objects.filter(ticket=ticket).delete()
    AlertOutcome.objects.bulk_create([
        AlertOutcome(ticket=ticket, detector=d, failure_mode_code=ticket.episode.failure_mode_code,
                     outcome=ticket.outcome, recorded_at=now)
        for d in sorted(detectors)
    ])


@transaction.atomic(durable=True)
def ticket_transition(
    *, ticket: Ticket, to: str, actor: AbstractBaseUser | None, outcome: str = "",
    now: dt.datetime | None = None,
) -> Ticket:
    """Move a ticket along new → triaged → scheduled → in progress → resolved → closed."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    return ticket_transition_internal(ticket=ticket, to=to, now=now or timezone.now(),
                                      actor=actor, outcome=outcome)


@transaction.atomic(durable=True)
def ticket_pause(
    *, ticket: Ticket, reason: str, actor: AbstractBaseUser | None, now: dt.datetime | None = None
) -> Ticket:
    """Stop the SLA clock (e.g. waiting for the customer to give access)."""
    now = now or timezone.now()
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if not reason.strip():
        raise ValidationError({"reason": "Say why the clock stops."})
    if ticket.paused_at is not None:
        raise ValidationError({"paused_at": "The ticket is already paused."})
    if not ticket.is_open:
        raise ValidationError({"status": "Only open tickets can be paused."})
    before = snapshot(ticket)
    ticket.paused_at = now
    ticket.save(update_fields=["paused_at"])
    TicketPause.objects.create(ticket=ticket, started_at=now, reason=reason)
    audit_record(actor=actor, action="ticket.pause", obj=ticket, before=before, at=now)
    return ticket


@transaction.atomic(durable=True)
def ticket_resume(
    *, ticket: Ticket, actor: AbstractBaseUser | None, now: dt.datetime | None = None
) -> Ticket:
    """Restart the SLA clock; due times move by the business time the pause lasted."""
    now = now or timezone.now()
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related(
        "contract__calendar").get(pk=ticket.pk)
    if ticket.paused_at is None:
        raise ValidationError({"paused_at": "The ticket is not paused."})
    before = snapshot(ticket)
    calendar = ticket_sla_calendar(ticket=ticket)
    if calendar is not None:
        hours = calendar_hours(calendar)
        lost = business_time_between(hours, ticket.paused_at, now)
        if ticket.response_due is not None and ticket.responded_at is None:
            ticket.response_due = add_business_time(hours, ticket.response_due, lost)
        if ticket.resolution_due is not None:
            ticket.resolution_due = add_business_time(hours, ticket.resolution_due, lost)
    TicketPause.objects.filter(ticket=ticket, ended_at__isnull=True).update(ended_at=now)
    ticket.paused_at = None
    ticket.save()
    audit_record(actor=actor, action="ticket.resume", obj=ticket, before=before, at=now)
    return ticket


def _emit_breach(t: Ticket, which: str, due: dt.datetime, now: dt.datetime) -> None:
    outbox_emit(topic="ticket.sla_breached", now=now, data={
        "ticket": t.number, "ticket_id": t.pk, "account_id": t.account_id,
        "asset_id": t.asset_id, "priority": t.priority, "coverage": t.coverage,
        "breach": which, "due": due})


@dataclass(frozen=True)
class SlaCheck:
    breached: int
    at_risk: int


@transaction.atomic(durable=True)
def ticket_check_sla(*, now: dt.datetime | None = None) -> SlaCheck:
    """Flag breaches and warn the desk (once per ticket) when a resolution is at risk."""
    now = now or timezone.now()
    breached = at_risk = 0
    open_tickets = (Ticket.objects.open().select_for_update(skip_locked=True)
                    .filter(paused_at__isnull=True, resolution_due__isnull=False))
    # The at-risk rule is the ticket query set's, the same the desk's panel lists by.
    newly_at_risk = set(Ticket.objects.sla_at_risk_window(now).filter(at_risk_notified=False)
                        .values_list("pk", flat=True))
    for t in open_tickets:
        before = snapshot(t)
        changed = False
        if t.response_due and t.responded_at is None and now > t.response_due \
                and not t.response_breached:
            t.response_breached = changed = True
            _emit_breach(t, "response", t.response_due, now)
        if t.resolution_due is None:  # excluded by the filter; keeps the type checker honest
            continue
        if now > t.resolution_due and not t.resolution_breached:
            t.resolution_breached = changed = True
            breached += 1
            _emit_breach(t, "resolution", t.resolution_due, now)
        if not t.at_risk_notified and t.pk in newly_at_risk:
            t.at_risk_notified = changed = True
            at_risk += 1
            notifications.notify("ticket.sla_at_risk", now=now, ticket_id=t.pk)
            interaction_record(account=t.account, asset=t.asset, ticket=t, at=now,
                               summary=f"SLA at risk on {t.number}: desk notified")
        if changed:
            t.save()
            audit_record(actor=None, action="ticket.sla_check", obj=t, before=before, at=now)
    return SlaCheck(breached=breached, at_risk=at_risk)
