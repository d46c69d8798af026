"""Activities and follow-up tasks (issue 16, item 5): logged by office staff on an account,
guarded (someone else's contact refused), audited; due tasks emailed once; the pipeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import OfferLineKind, OfferStatus
from service_crm.selectors.activities import pipeline_get
from service_crm.services.activities import (
    FollowUp,
    activity_log,
    task_complete,
    tasks_remind_due,
)
from service_crm.services.housekeeping import housekeeping_run
from tests import factories as f
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
TODAY = NOW.date()


def test_call_with_a_follow_up(world: World, desk_agent: Any) -> None:
    entry = activity_log(account=world.account, kind="call", summary="Asked about a retrofit",
                         contact=world.buyer, actor=desk_agent, now=NOW,
                         follow_up=FollowUp("Send the retrofit quote", desk_agent,
                                            TODAY + dt.timedelta(days=3)))
    assert (entry.kind, entry.by_id, entry.contact_id) == ("call", desk_agent.pk, world.buyer.pk)
    task = m.FollowUpTask.objects.get()
    assert (task.activity_id, task.assignee_id, task.account_id) == (
        entry.pk, desk_agent.pk, world.account.pk)
    assert {a.action for a in m.AuditLog.objects.all()} >= {"activity.call", "task.create"}


def test_activity_rules(world: World, desk_agent: Any) -> None:
    other = f.ContactFactory(account=f.AccountFactory(name="Other AG"))
    customer = f.UserFactory(username="cust")
    with pytest.raises(ValidationError) as err:
        activity_log(account=world.account, kind="automation", summary=" ", contact=other,
                     actor=desk_agent, now=NOW, at=NOW + dt.timedelta(days=1),
                     follow_up=FollowUp("", customer, TODAY - dt.timedelta(days=1)))
    assert set(err.value.message_dict) == {
        "kind", "summary", "contact", "at", "follow_up_title", "follow_up_due",
        "follow_up_assignee"}
    with pytest.raises(ValidationError) as err:
        activity_log(account=world.account, kind="note", summary="x", actor=customer, now=NOW)
    assert "actor" in err.value.message_dict
    assert not m.Interaction.objects.filter(kind="note").exists()


def test_due_tasks_are_reminded_once_and_completed(
        world: World, desk_agent: Any, django_capture_on_commit_callbacks: Any) -> None:
    desk_agent.email = "desk@aftercare.test"
    desk_agent.save()
    activity_log(account=world.account, kind="meeting", summary="Annual review",
                 actor=desk_agent, now=NOW,
                 follow_up=FollowUp("Send minutes", desk_agent, TODAY + dt.timedelta(days=1)))
    assert tasks_remind_due(now=NOW) == 0  # not due yet
    with django_capture_on_commit_callbacks(execute=True):
        report = housekeeping_run(now=NOW + dt.timedelta(days=1))
    assert report.task_reminders == 1
    assert [msg.to for msg in mail.outbox if "Follow-up due" in msg.subject] == [
        ["desk@aftercare.test"]]
    assert tasks_remind_due(now=NOW + dt.timedelta(days=2)) == 0  # once
    task = m.FollowUpTask.objects.get()
    done = task_complete(task=task, actor=desk_agent, now=NOW + dt.timedelta(days=2))
    assert done.done_by_id == desk_agent.pk
    assert m.Interaction.objects.filter(summary="Follow-up done: Send minutes").exists()
    with pytest.raises(ValidationError):
        task_complete(task=task, actor=desk_agent, now=NOW + dt.timedelta(days=2))


def _offer(world: World, status: str, price: str, *, valid: dt.date,
           discount: str = "0") -> m.Offer:
    offer = m.Offer.objects.create(account=world.account, title="x", status=status,
                                   valid_until=valid, created_at=NOW,
                                   discount_pct=Decimal(discount),
                                   decided_at=NOW if status == OfferStatus.ACCEPTED else None)
    m.OfferLine.objects.create(offer=offer, kind=OfferLineKind.LABOUR, description="x",
                               quantity=Decimal(1), unit_price=Decimal(price))
    return offer


def test_pipeline_weights_open_offers_by_stage(world: World, desk_agent: Any) -> None:
    _offer(world, OfferStatus.DRAFT, "1000", valid=dt.date(2026, 12, 10))
    _offer(world, OfferStatus.SENT, "2000", valid=dt.date(2026, 12, 20), discount="10")
    _offer(world, OfferStatus.SENT, "500", valid=dt.date(2027, 1, 5))
    _offer(world, OfferStatus.ACCEPTED, "700", valid=dt.date(2026, 12, 1))
    _offer(world, OfferStatus.DECLINED, "9999", valid=dt.date(2026, 12, 1))
    p = pipeline_get(user=desk_agent, now=NOW)
    stages = {r.label: (r.count, r.value, r.weighted) for r in p.stages}
    assert stages["Draft"] == (1, Decimal("1000.00"), Decimal("100.00"))
    assert stages["Sent"] == (2, Decimal("2300.00"), Decimal("1150.00"))
    assert [(r.label, r.value, r.weighted) for r in p.forecast] == [
        ("2026-12", Decimal("2800.00"), Decimal("1000.00")),
        ("2027-01", Decimal("500.00"), Decimal("250.00"))]
    assert (p.won_90d.count, p.won_90d.value) == (1, Decimal("700.00"))
    nobody = pipeline_get(user=f.UserFactory(username="nobody"), now=NOW)
    assert all(r.count == 0 for r in nobody.stages)
    assert not nobody.forecast
