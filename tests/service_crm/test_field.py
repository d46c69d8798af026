"""The engineer's checklist ticks and notes, saved while the job is in progress."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.services.alerts import alert_ingest
from service_crm.services.field import NOTES_MAX_CHARS, work_order_progress_save
from service_crm.services.work_orders import work_order_schedule, work_order_start
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
H = dt.timedelta(hours=1)


def _scheduled(world: World) -> m.WorkOrder:
    world.cover_by_contract()
    res = alert_ingest(event=make_event(), now=NOW)
    wo = m.WorkOrder.objects.get(pk=res.work_order_id)
    return work_order_schedule(work_order=wo, engineer=world.engineer, start=NOW + H,
                               end=NOW + 4 * H, actor=None, now=NOW)


@pytest.fixture
def started(world: World) -> m.WorkOrder:
    return work_order_start(work_order=_scheduled(world), actor=None, now=NOW + H)


def test_ticks_are_saved_by_index_and_others_unticked(started: m.WorkOrder) -> None:
    assert [i["task"] for i in started.checklist] == ["Diagnose: Bearing wear",
                                                      "Check belt tension"]
    wo = work_order_progress_save(work_order=started, actor=None, done=[1], now=NOW + H)
    assert [i["done"] for i in m.WorkOrder.objects.get(pk=wo.pk).checklist] == [False, True]
    work_order_progress_save(work_order=started, actor=None, done=[0], now=NOW + H)
    assert [i["done"] for i in m.WorkOrder.objects.get(pk=wo.pk).checklist] == [True, False]


def test_notes_are_saved_and_checklist_left_alone_when_not_given(started: m.WorkOrder) -> None:
    work_order_progress_save(work_order=started, actor=None, done=[0], now=NOW + H)
    work_order_progress_save(work_order=started, actor=None, notes="Bearing noisy, DE side.",
                             now=NOW + H)
    wo = m.WorkOrder.objects.get(pk=started.pk)
    assert wo.notes == "Bearing noisy, DE side."
    assert [i["done"] for i in wo.checklist] == [True, False]


def test_each_change_is_audited_and_no_change_writes_nothing(started: m.WorkOrder) -> None:
    work_order_progress_save(work_order=started, actor=None, done=[0], notes="x", now=NOW + H)
    work_order_progress_save(work_order=started, actor=None, done=[0], notes="x", now=NOW + H)
    audits = m.AuditLog.objects.filter(action="work_order.progress")
    assert audits.count() == 1
    audit = audits.get()
    assert audit.before is not None
    assert audit.after is not None
    assert audit.before["notes"] == ""
    assert audit.after["notes"] == "x"


def test_rejects_unknown_checklist_item(started: m.WorkOrder) -> None:
    with pytest.raises(ValidationError) as err:
        work_order_progress_save(work_order=started, actor=None, done=[0, 7], now=NOW + H)
    assert "No checklist item 7" in err.value.message_dict["checklist"][0]
    assert not any(i["done"] for i in m.WorkOrder.objects.get(pk=started.pk).checklist)


def test_rejects_overlong_notes(started: m.WorkOrder) -> None:
    with pytest.raises(ValidationError) as err:
        work_order_progress_save(work_order=started, actor=None,
                                 notes="x" * (NOTES_MAX_CHARS + 1), now=NOW + H)
    assert "notes" in err.value.message_dict


def test_rejects_work_order_not_in_progress(world: World) -> None:
    wo = _scheduled(world)
    with pytest.raises(ValidationError) as err:
        work_order_progress_save(work_order=wo, actor=None, done=[0], now=NOW)
    assert "status" in err.value.message_dict
