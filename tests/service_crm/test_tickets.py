"""Ticket workflow, pauses and the SLA clock."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import Outcome, Priority, TicketSource, TicketStatus
from service_crm.services.alerts import alert_ingest
from service_crm.services.tickets import (
    ticket_check_sla,
    ticket_open,
    ticket_pause,
    ticket_resume,
    ticket_transition,
)
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
H = dt.timedelta(hours=1)


@pytest.fixture
def ticket(world: World) -> m.Ticket:
    world.cover_by_contract()
    res = alert_ingest(event=make_event(severity="critical"), now=NOW)  # P1: 4 h / 16 h
    return m.Ticket.objects.get(pk=res.ticket_id)


def test_workflow_refuses_skipping_steps(ticket: m.Ticket, desk_agent: object) -> None:
    with pytest.raises(ValidationError) as err:
        ticket_transition(ticket=ticket, to=TicketStatus.IN_PROGRESS, actor=None, now=NOW)
    assert "status" in err.value.message_dict
    assert m.Ticket.objects.get(pk=ticket.pk).status == TicketStatus.NEW


def test_resolving_needs_an_outcome(ticket: m.Ticket) -> None:
    ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=NOW)
    with pytest.raises(ValidationError) as err:
        ticket_transition(ticket=ticket, to=TicketStatus.RESOLVED, actor=None, now=NOW)
    assert "outcome" in err.value.message_dict


def test_triage_in_time_records_response_without_breach(ticket: m.Ticket) -> None:
    t = ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=NOW + H)
    assert t.responded_at == NOW + H
    assert not t.response_breached


def test_late_triage_flags_response_breach(ticket: m.Ticket) -> None:
    t = ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=NOW + 5 * H)
    assert t.response_breached


def test_pause_stops_the_clock_for_business_hours_only(ticket: m.Ticket) -> None:
    due = ticket.resolution_due
    assert due is not None
    ticket_pause(ticket=ticket, reason="Customer site closed for inspection", actor=None,
                 now=NOW + H)  # Mon 11:00 Berlin
    # Resumed Tue 11:00 Berlin: 9 business hours passed (Mon 11-17, Tue 8-11).
    t = ticket_resume(ticket=ticket, actor=None, now=NOW + 25 * H)
    assert t.paused_at is None
    assert t.resolution_due == dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC)  # Wed 17:00
    assert t.pauses.get().ended_at == NOW + 25 * H


def test_pause_needs_a_reason_and_cannot_pause_twice(ticket: m.Ticket) -> None:
    with pytest.raises(ValidationError) as err:
        ticket_pause(ticket=ticket, reason=" ", actor=None, now=NOW)
    assert "reason" in err.value.message_dict
    ticket_pause(ticket=ticket, reason="waiting for parts approval", actor=None, now=NOW)
    with pytest.raises(ValidationError) as err:
        ticket_pause(ticket=ticket, reason="again", actor=None, now=NOW)
    assert "paused_at" in err.value.message_dict


def test_sla_check_warns_desk_once_and_flags_breach(
        ticket: m.Ticket, django_capture_on_commit_callbacks) -> None:
    mail.outbox.clear()
    assert ticket.resolution_due is not None
    quiet = ticket_check_sla(now=NOW + H)
    assert (quiet.at_risk, quiet.breached) == (0, 0)
    with django_capture_on_commit_callbacks(execute=True):
        risk = ticket_check_sla(now=ticket.resolution_due - H)
        again = ticket_check_sla(now=ticket.resolution_due - H / 2)
    assert (risk.at_risk, again.at_risk) == (1, 0)
    assert [e.to for e in mail.outbox] == [["service-desk@aftercare.local"]]
    late = ticket_check_sla(now=ticket.resolution_due + H)
    t = m.Ticket.objects.get(pk=ticket.pk)
    assert late.breached == 1
    assert t.resolution_breached
    assert t.response_breached


def test_paused_ticket_is_not_flagged(ticket: m.Ticket) -> None:
    assert ticket.resolution_due is not None
    ticket_pause(ticket=ticket, reason="customer asked to wait", actor=None, now=NOW)
    assert ticket_check_sla(now=ticket.resolution_due + H).breached == 0


def test_manual_ticket_uses_todays_coverage(world: World, desk_agent: object) -> None:
    t = ticket_open(asset=world.asset, summary="Customer reports noise", source=TicketSource.PHONE,
                    priority=Priority.P3, actor=None, now=NOW)
    assert t.coverage == "none"
    assert t.response_due is None
    with pytest.raises(ValidationError) as err:
        ticket_open(asset=world.asset, summary="x", source=TicketSource.ALERT,
                    priority=Priority.P3, now=NOW)
    assert "source" in err.value.message_dict


def test_reopen_after_resolve_clears_outcome(ticket: m.Ticket) -> None:
    ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=NOW)
    ticket_transition(ticket=ticket, to=TicketStatus.RESOLVED, actor=None, now=NOW + H,
                      outcome=Outcome.NO_FAULT_FOUND)
    t = ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=NOW + 2 * H)
    assert t.outcome == ""
    assert t.resolved_at is None


def test_audit_log_records_who_and_before_after(ticket: m.Ticket, desk_agent: object) -> None:
    ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=desk_agent,  # type: ignore[arg-type]
                      now=NOW + H)
    entry = m.AuditLog.objects.get(action="ticket.triaged")
    assert entry.actor_label == "desk"
    assert entry.at == NOW + H
    assert entry.object_id == str(ticket.pk)
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["status"], entry.after["status"]) == ("new", "triaged")
    opened = m.AuditLog.objects.get(action="ticket.open")
    assert opened.actor_label == "automation"
    assert opened.before is None


def test_remote_resolution_puts_episode_under_watch(ticket: m.Ticket) -> None:
    ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=NOW)
    ticket_transition(ticket=ticket, to=TicketStatus.RESOLVED, actor=None, now=NOW + H,
                      outcome=Outcome.NO_FAULT_FOUND)
    ep = m.Episode.objects.get()
    assert ep.status == "watching"
    assert ep.watch_until == NOW + H + dt.timedelta(hours=72)


def test_the_desk_panel_lists_a_ticket_from_the_moment_the_sla_monitor_warns(
        ticket: m.Ticket) -> None:
    """One at-risk rule (the ticket query set's): the desk's panel and the SLA monitor agree on
    when a ticket becomes at risk, here once less than a quarter of its resolution time is left."""
    from service_crm.selectors.dashboard import tickets_at_risk

    start, due = ticket.opened_at, ticket.resolution_due
    assert due is not None
    instants = [start + (due - start) * i / 40 for i in range(1, 40)]
    first_listed = next(t for t in instants
                        if tickets_at_risk(m.Ticket.objects.all(), now=t).exists())
    first_warned = next(t for t in instants if ticket_check_sla(now=t).at_risk)
    assert first_listed == first_warned == instants[30]  # 31/40 of the time gone
    assert m.Ticket.objects.open().filter(pk=ticket.pk).exists()
    ticket_transition(ticket=ticket, to=TicketStatus.TRIAGED, actor=None, now=first_listed)
    ticket_transition(ticket=ticket, to=TicketStatus.RESOLVED, actor=None, now=first_listed,
                      outcome=Outcome.FAULT_CONFIRMED)
    assert not m.Ticket.objects.open().filter(pk=ticket.pk).exists()
    assert not tickets_at_risk(m.Ticket.objects.all(), now=instants[35]).exists()
