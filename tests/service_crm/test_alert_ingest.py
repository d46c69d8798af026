"""Alert → episode → triage, through the real services on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from service_crm import models as m
from service_crm.models.choices import (
    Coverage,
    EpisodeStatus,
    OfferLineKind,
    Outcome,
    Priority,
    TicketStatus,
    WorkOrderStatus,
)
from service_crm.services import alerts
from service_crm.services.alerts import alert_ingest
from service_crm.services.work_orders import (
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_contract_alert_opens_ticket_with_sla_and_proposes_matched_engineer(
        world: World, django_capture_on_commit_callbacks) -> None:
    world.cover_by_contract()
    f.EngineerFactory(name="Wrong region", region="south")
    f.EngineerFactory(name="Wrong skill", region="north", skills=["chiller"])
    f.EngineerFactory(name="On leave", region="north", available=False)
    with django_capture_on_commit_callbacks(execute=True):
        res = alert_ingest(event=make_event(severity="critical"), now=NOW)

    assert res.outcome is alerts.Outcome.TICKET
    ticket = m.Ticket.objects.get(pk=res.ticket_id)
    assert ticket.coverage == Coverage.CONTRACT
    assert ticket.priority == Priority.P1
    # P1 gold: respond in 4 business hours, resolve in 16: Mon 10-17 + Tue 8-17 Berlin.
    assert ticket.response_due == NOW + dt.timedelta(hours=4)
    assert ticket.resolution_due == dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
    wo = m.WorkOrder.objects.get(pk=res.work_order_id)
    assert wo.engineer == world.engineer
    assert wo.status == WorkOrderStatus.PROPOSED
    assert wo.checklist[0] == {"task": "Diagnose: Bearing wear", "done": False}
    to_engineer = [e for e in mail.outbox if e.to == [world.engineer.email]]
    assert len(to_engineer) == 1
    ics_name, ics, ics_type = to_engineer[0].attachments[0]
    assert ics_name.endswith(".ics")
    assert "BEGIN:VEVENT" in ics
    assert ics_type.startswith("text/cal")
    # Proactive notice goes to the technical contact.
    assert any(e.to == [world.technical.email] for e in mail.outbox)


def test_engineer_already_booked_in_the_window_is_not_proposed(world: World) -> None:
    world.cover_by_contract()
    busy = world.engineer
    other = f.EngineerFactory(name="Second north engineer", region="north")
    m.Unavailability.objects.create(engineer=busy, starts_at=NOW,
                                    ends_at=NOW + dt.timedelta(days=3))
    res = alert_ingest(event=make_event(), now=NOW)
    assert m.WorkOrder.objects.get(pk=res.work_order_id).engineer == other


def test_an_engineer_free_between_two_absences_and_two_jobs_is_proposed(world: World) -> None:
    # An absence that ended before the window and another that starts after it, a job that
    # ended before it and another booked after it: free (engineer_is_free agrees). Matching
    # across any absence or job row instead of the same one never proposed her.
    from service_crm.selectors.engineers import engineer_is_free, engineer_match

    world.cover_by_contract()
    her, day = world.engineer, dt.timedelta(days=1)
    for days in (-10, 9):
        m.Unavailability.objects.create(engineer=her, starts_at=NOW + days * day,
                                        ends_at=NOW + (days + 1) * day)
    res = alert_ingest(event=make_event(), now=NOW)
    proposed = m.WorkOrder.objects.get(pk=res.work_order_id)
    assert proposed.engineer == her
    for days in (-5, 6):
        m.WorkOrder.objects.create(ticket=proposed.ticket, engineer=her,
                                   status=WorkOrderStatus.SCHEDULED,
                                   scheduled_start=NOW + days * day,
                                   scheduled_end=NOW + days * day + dt.timedelta(hours=2))
    start, end = NOW + day, NOW + day + dt.timedelta(hours=2)
    assert engineer_is_free(engineer=her, start=start, end=end)
    assert engineer_match(skill=world.failure_mode.required_skill, region=her.region,
                          start=start, end=end) == her
    # ... and one that does overlap the window still rules her out.
    m.WorkOrder.objects.create(ticket=proposed.ticket, engineer=her,
                               status=WorkOrderStatus.SCHEDULED, scheduled_start=start,
                               scheduled_end=end)
    assert engineer_match(skill=world.failure_mode.required_skill, region=her.region,
                          start=start, end=end) is None


def test_no_free_engineer_leaves_work_order_unassigned_for_the_desk(world: World) -> None:
    world.cover_by_contract()
    m.Engineer.objects.update(available=False)
    res = alert_ingest(event=make_event(), now=NOW)
    assert m.WorkOrder.objects.get(pk=res.work_order_id).engineer is None
    assert m.Interaction.objects.filter(summary__contains="desk to assign").exists()


def test_warranty_alert_opens_warranty_ticket_without_offer(world: World) -> None:
    world.asset.warranty_end = dt.date(2027, 1, 10)
    world.asset.save()
    res = alert_ingest(event=make_event(), now=NOW)
    ticket = m.Ticket.objects.get(pk=res.ticket_id)
    assert ticket.coverage == Coverage.WARRANTY
    assert ticket.contract is None
    assert res.offer_id is None
    assert res.work_order_id is None
    assert not m.Offer.objects.exists()


def test_coverage_is_judged_at_alert_time_not_now(world: World) -> None:
    world.cover_by_contract(start=dt.date(2026, 1, 1), end=dt.date(2026, 11, 20))
    late = make_event(at=NOW)  # contract ended three days before the alert opened
    res = alert_ingest(event=late, now=NOW)
    assert m.Ticket.objects.get(pk=res.ticket_id).coverage == Coverage.NONE
    early = make_event(failure_mode="motor_overheat",
                       at=dt.datetime(2026, 11, 19, 9, tzinfo=dt.UTC))
    res = alert_ingest(event=early, now=NOW)
    assert m.Ticket.objects.get(pk=res.ticket_id).coverage == Coverage.CONTRACT


def test_uncovered_alert_opens_desk_ticket_and_draft_offer_from_bom(world: World) -> None:
    res = alert_ingest(event=make_event(), now=NOW)
    ticket = m.Ticket.objects.get(pk=res.ticket_id)
    assert ticket.coverage == Coverage.NONE
    assert ticket.response_due is None
    offer = m.Offer.objects.get(pk=res.offer_id)
    assert offer.status == "draft"
    assert offer.account == world.account
    lines = {ln.kind: ln for ln in offer.lines.all()}
    assert lines[OfferLineKind.PART].part == world.part
    assert lines[OfferLineKind.PART].quantity == 2
    assert lines[OfferLineKind.LABOUR].quantity == Decimal("3.0")
    assert lines[OfferLineKind.CONTRACT].unit_price == Decimal("1800.00")
    assert mail.outbox == []  # a draft is not sent to anyone


def test_redelivered_event_changes_nothing(world: World) -> None:
    world.cover_by_contract()
    ev = make_event()
    first = alert_ingest(event=ev, now=NOW)
    counts = [m.Ticket.objects.count(), m.WorkOrder.objects.count(),
              m.Interaction.objects.count(), m.AuditLog.objects.count()]
    again = alert_ingest(event=ev, now=NOW)
    assert again.outcome is alerts.Outcome.DUPLICATE
    assert again.episode_id == first.episode_id
    assert counts == [m.Ticket.objects.count(), m.WorkOrder.objects.count(),
                      m.Interaction.objects.count(), m.AuditLog.objects.count()]


def test_older_revision_arriving_late_is_ignored(world: World) -> None:
    alert_ingest(event=make_event(alert_id="x", revision=3, severity="critical"), now=NOW)
    res = alert_ingest(event=make_event(alert_id="x", revision=2, severity="info"), now=NOW)
    assert res.outcome is alerts.Outcome.DUPLICATE
    stored = m.Alert.objects.get(alert_id="x")
    assert (stored.revision, stored.severity) == (3, "critical")


def test_later_alerts_attach_to_the_open_episode(world: World) -> None:
    first = alert_ingest(event=make_event(alert_id="x", severity="warning"), now=NOW)
    upd = alert_ingest(event=make_event(alert_id="x", revision=2, state="update",
                                        severity="critical"), now=NOW)
    other = alert_ingest(event=make_event(alert_id="y"), now=NOW)
    assert upd.outcome is other.outcome is alerts.Outcome.ATTACHED
    assert first.episode_id == upd.episode_id == other.episode_id
    assert m.Episode.objects.get().peak_severity == "critical"
    assert m.Ticket.objects.count() == 1


def test_different_failure_mode_is_a_separate_episode(world: World) -> None:
    a = alert_ingest(event=make_event(failure_mode="bearing_wear"), now=NOW)
    b = alert_ingest(event=make_event(failure_mode="valve_leak"), now=NOW)
    assert a.episode_id != b.episode_id
    assert m.Episode.objects.get(pk=b.episode_id).failure_mode is None  # unknown to the model


def test_unclaimed_device_alert_is_stored_without_ticket(world: World) -> None:
    res = alert_ingest(event=make_event(device="cmp-9999"), now=NOW)
    assert res.outcome is alerts.Outcome.UNCLAIMED
    assert m.Alert.objects.get().asset is None
    assert not m.Episode.objects.exists()
    assert not m.Ticket.objects.exists()


def test_clear_event_updates_alert_and_opens_nothing(world: World) -> None:
    alert_ingest(event=make_event(alert_id="x"), now=NOW)
    res = alert_ingest(event=make_event(alert_id="x", revision=2, state="clear"), now=NOW)
    assert res.outcome is alerts.Outcome.CLEARED
    assert m.Alert.objects.get().state == "clear"
    assert m.Ticket.objects.count() == 1


def _through_repair(world: World, *, outcome: str = Outcome.FAULT_CONFIRMED) -> m.Ticket:
    world.cover_by_contract()
    res = alert_ingest(event=make_event(alert_id="first"), now=NOW)
    wo = m.WorkOrder.objects.get(pk=res.work_order_id)
    start = NOW + dt.timedelta(hours=2)
    work_order_schedule(work_order=wo, engineer=world.engineer, start=start,
                        end=start + dt.timedelta(hours=3), actor=None, now=NOW)
    work_order_start(work_order=wo, actor=None, now=start)
    return m.Ticket.objects.get(pk=res.ticket_id)


def test_alert_during_work_in_progress_attaches_silently(world: World) -> None:
    ticket = _through_repair(world)
    interactions = m.Interaction.objects.count()
    res = alert_ingest(event=make_event(failure_mode="motor_overheat"), now=NOW)
    same = alert_ingest(event=make_event(), now=NOW)
    assert res.outcome is same.outcome is alerts.Outcome.SILENT
    assert m.Ticket.objects.count() == 1
    assert same.episode_id == ticket.episode_id
    assert m.Interaction.objects.count() == interactions


def test_anomaly_returning_in_watch_period_reopens_episode(world: World) -> None:
    ticket = _through_repair(world)
    wo = ticket.work_orders.get()
    done = NOW + dt.timedelta(hours=5)
    work_order_complete(work_order=wo, actor=None, report="Replaced bearings",
                        outcome=Outcome.FAULT_CONFIRMED, time_spent_min=150, now=done)
    ep = m.Episode.objects.get()
    assert ep.status == EpisodeStatus.WATCHING
    assert ep.watch_until == done + dt.timedelta(hours=72)

    res = alert_ingest(event=make_event(at=done + dt.timedelta(hours=24)), now=done)
    assert res.outcome is alerts.Outcome.TICKET
    assert res.episode_id == ep.pk
    ep.refresh_from_db()
    assert ep.status == EpisodeStatus.OPEN
    assert ep.reopened_count == 1
    assert m.Ticket.objects.get(pk=res.ticket_id).summary.startswith("Recurring:")


def test_anomaly_after_watch_period_starts_a_new_episode(world: World) -> None:
    ticket = _through_repair(world)
    done = NOW + dt.timedelta(hours=5)
    work_order_complete(work_order=ticket.work_orders.get(), actor=None, report="ok",
                        outcome=Outcome.FAULT_CONFIRMED, time_spent_min=60, now=done)
    res = alert_ingest(event=make_event(at=done + dt.timedelta(days=10)), now=done)
    assert res.episode_id != ticket.episode_id
    assert m.Episode.objects.get(pk=ticket.episode_id).status == EpisodeStatus.CLOSED
    assert m.Ticket.objects.get(pk=res.ticket_id).status == TicketStatus.NEW


def test_every_automated_step_lands_on_the_account_timeline(world: World) -> None:
    world.cover_by_contract()
    alert_ingest(event=make_event(), now=NOW)
    summaries = list(m.Interaction.objects.filter(account=world.account)
                     .values_list("summary", flat=True))
    assert any(s.startswith("Alert warning: bearing_wear") for s in summaries)
    assert any(s.startswith("Ticket T-") for s in summaries)
    assert any("proposed" in s for s in summaries)
    actions = set(m.AuditLog.objects.values_list("action", flat=True))
    assert {"episode.open", "ticket.open", "work_order.propose"} <= actions


def test_new_alert_audit_and_timeline_rows_come_in_the_order_of_the_steps(world: World) -> None:
    # The rows of one event are written together at its end (audit.records_batched): ids and
    # the timeline's order must still follow the steps, and each audit entry's `after` is the
    # object as it was when that step recorded it.
    world.cover_by_contract()
    res = alert_ingest(event=make_event(), now=NOW)
    audit = list(m.AuditLog.objects.order_by("pk"))
    assert [(a.action, a.object_id) for a in audit] == [
        ("episode.open", str(res.episode_id)), ("ticket.open", str(res.ticket_id)),
        ("work_order.propose", str(res.work_order_id))]
    assert [(a.after or {}).get("status") for a in audit[:2]] == [EpisodeStatus.OPEN,
                                                                   TicketStatus.NEW]
    assert all(a.at == NOW and a.actor_label == "automation" for a in audit)
    timeline = [i.summary for i in m.Interaction.objects.filter(account=world.account)]
    assert len(timeline) == 3  # newest first: (-at, -pk)
    assert timeline[0].startswith("WO-")
    assert "proposed" in timeline[0]
    assert timeline[1].startswith("Ticket T-")
    assert timeline[2].startswith("Alert warning: bearing_wear")


def test_watch_period_expiry_closes_the_episode(world: World) -> None:
    from service_crm.services.episodes import episode_close_expired_watches

    ticket = _through_repair(world)
    done = NOW + dt.timedelta(hours=5)
    work_order_complete(work_order=ticket.work_orders.get(), actor=None, report="ok",
                        outcome=Outcome.FAULT_CONFIRMED, time_spent_min=60, now=done)
    assert episode_close_expired_watches(now=done + dt.timedelta(hours=71)) == 0
    assert episode_close_expired_watches(now=done + dt.timedelta(hours=73)) == 1
    assert m.Episode.objects.get().status == EpisodeStatus.CLOSED


def test_detector_wording_of_failure_mode_matches_the_catalogue(world: World) -> None:
    # The anomaly worker says "bearing wear"; the catalogue and simulator say bearing_wear.
    a = alert_ingest(event=make_event(failure_mode="Bearing wear"), now=NOW)
    b = alert_ingest(event=make_event(failure_mode="bearing_wear"), now=NOW)
    assert a.episode_id == b.episode_id
    assert m.Episode.objects.get().failure_mode == world.failure_mode
    assert alerts.failure_mode_code("leak or blockage") == "leak_or_blockage"
    assert alerts.failure_mode_code("  ") == "unknown"
