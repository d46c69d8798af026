"""The job sheet saves checklist ticks and notes as the engineer goes, not only on completion."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule, work_order_start
from tests.support.world import ServedWorld, Side

pytestmark = pytest.mark.db
JSON = {"HTTP_ACCEPT": "application/json"}


def _started(world: ServedWorld, side: Side, desk_agent: Any) -> m.WorkOrder:
    start = world.now + dt.timedelta(minutes=5)
    wo = work_order_schedule(work_order=side.work_order, engineer=side.engineer, start=start,
                             end=start + dt.timedelta(hours=2), actor=desk_agent)
    return work_order_start(work_order=wo, actor=desk_agent)


def _url(wo: m.WorkOrder) -> str:
    return f"/field/work-orders/{wo.pk}/progress/"


def test_ticks_and_notes_saved_as_the_engineer_goes(world: ServedWorld, field_engineer: Any,
                                                    desk_agent: Any, browser_client: Any) -> None:
    wo = _started(world, world.north, desk_agent)
    client = browser_client(field_engineer)
    response = client.post(_url(wo), {"check_1": "on", "notes": "Belt worn at the edge."}, **JSON)
    assert response.status_code == 200
    assert "saved_at" in response.json()
    wo.refresh_from_db()
    assert [i["done"] for i in wo.checklist] == [False, True]
    assert wo.notes == "Belt worn at the edge."
    sheet = client.get(f"/field/work-orders/{wo.pk}/").content.decode()
    assert 'name="check_1" data-progress checked' in sheet
    assert "Belt worn at the edge.</textarea>" in sheet


def test_save_button_without_javascript_comes_back_to_the_sheet(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = _started(world, world.north, desk_agent)
    response = browser_client(field_engineer).post(_url(wo), {"check_0": "on", "notes": ""})
    assert response.status_code == 302
    assert response["Location"] == f"/field/work-orders/{wo.pk}/"
    wo.refresh_from_db()
    assert wo.checklist[0]["done"] is True


def test_progress_on_a_job_not_started_is_refused_with_the_reason(
        world: ServedWorld, field_engineer: Any, browser_client: Any) -> None:
    wo = world.north.work_order  # proposed, not started
    m.WorkOrder.objects.filter(pk=wo.pk).update(engineer=world.north.engineer)
    response = browser_client(field_engineer).post(_url(wo), {"check_0": "on"}, **JSON)
    assert response.status_code == 400
    assert "start it first" in response.json()["errors"]["__all__"][0]["message"]


def test_other_engineers_work_order_is_404(world: ServedWorld, field_engineer: Any,
                                           desk_agent: Any, browser_client: Any) -> None:
    wo = _started(world, world.south, desk_agent)
    response = browser_client(field_engineer).post(_url(wo), {"notes": "hijack"}, **JSON)
    assert response.status_code == 404
    wo.refresh_from_db()
    assert wo.notes == ""


def test_notes_kept_even_when_completion_is_refused(world: ServedWorld, field_engineer: Any,
                                                    desk_agent: Any, browser_client: Any) -> None:
    wo = _started(world, world.north, desk_agent)
    response = browser_client(field_engineer).post(
        f"/field/work-orders/{wo.pk}/complete/",
        {"notes": "Waiting for a bearing.", "check_0": "on", "outcome": "fault_confirmed"})
    assert response.status_code == 400  # no report, no time: not completed
    wo.refresh_from_db()
    assert wo.status == "in_progress"
    assert wo.notes == "Waiting for a bearing."
    assert wo.checklist[0]["done"] is True
