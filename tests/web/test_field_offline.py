"""The field pages' offline support over HTTP: manifest and service worker served with the
right types and scope, and the JSON answers to start, progress and completion replayed from
a phone's offline queue, including the conflicts (reassigned, cancelled, completed meanwhile,
checklist changed) and another engineer's work order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule, work_order_start
from tests.support.world import ServedWorld, Side
from web.field.views import offline_base

pytestmark = pytest.mark.db
JSON = {"HTTP_ACCEPT": "application/json"}


def _scheduled(world: ServedWorld, side: Side, desk_agent: Any) -> m.WorkOrder:
    start = world.now + dt.timedelta(minutes=5)
    return work_order_schedule(work_order=side.work_order, engineer=side.engineer, start=start,
                               end=start + dt.timedelta(hours=2), actor=desk_agent)


def _completion(wo: m.WorkOrder, **extra: str) -> dict[str, str]:
    return {"report": "Replaced the bearing", "outcome": "fault_confirmed",
            "time_spent_min": "45", "check_0": "on", "notes": "done offline",
            "offline_base": offline_base(wo), **extra}


def test_manifest_and_service_worker_are_served_for_the_field_scope(client: Any,
                                                                    db: None) -> None:
    manifest = client.get("/field/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest["Content-Type"] == "application/manifest+json"
    body = manifest.json()
    assert (body["start_url"], body["scope"], body["display"]) == ("/field/", "/field/",
                                                                   "standalone")
    assert {i["sizes"] for i in body["icons"]} >= {"192x192", "512x512"}
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200, icon
    sw = client.get("/field/sw.js?u=7")
    assert sw.status_code == 200
    assert sw["Content-Type"].startswith("application/javascript")
    assert sw["Service-Worker-Allowed"] == "/field/"
    assert "no-cache" in sw["Cache-Control"]
    assert b"addEventListener(\"fetch\"" in sw.content


def test_job_pages_link_manifest_and_carry_the_offline_base(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = _scheduled(world, world.north, desk_agent)
    client = browser_client(field_engineer)
    today = client.get("/field/").content.decode()
    assert 'rel="manifest" href="/field/manifest.webmanifest"' in today
    assert f'data-sw-url="/field/sw.js?u={field_engineer.pk}"' in today
    sheet = client.get(f"/field/work-orders/{wo.pk}/").content.decode()
    assert f'name="offline_base" value="{offline_base(wo)}"' in sheet
    # Scheduled: the completion sheet is sent along, hidden, for a start made offline.
    assert 'id="complete"' in sheet
    assert 'data-offline-kind="start"' in sheet


def test_replayed_start_then_completion_apply(world: ServedWorld, field_engineer: Any,
                                              desk_agent: Any, browser_client: Any) -> None:
    wo = _scheduled(world, world.north, desk_agent)
    client = browser_client(field_engineer)
    start = client.post(f"/field/work-orders/{wo.pk}/start/",
                        {"offline_base": offline_base(wo)}, **JSON)
    assert start.status_code == 200
    assert start.json()["status"] == "in_progress"
    done = client.post(f"/field/work-orders/{wo.pk}/complete/", _completion(wo), **JSON)
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "completed"
    wo.refresh_from_db()
    assert wo.status == "completed"
    assert wo.notes == "done offline"
    assert wo.checklist[0]["done"] is True
    # The same completion sent twice (its answer was lost): no error, nothing changes.
    again = client.post(f"/field/work-orders/{wo.pk}/complete/", _completion(wo), **JSON)
    assert again.status_code == 200
    assert "already completed" in again.json()["message"]


def test_replayed_completion_of_cancelled_work_order_is_a_conflict(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = work_order_start(work_order=_scheduled(world, world.north, desk_agent),
                          actor=desk_agent)
    m.WorkOrder.objects.filter(pk=wo.pk).update(status="cancelled")
    response = browser_client(field_engineer).post(
        f"/field/work-orders/{wo.pk}/complete/", _completion(wo), **JSON)
    assert response.status_code == 409
    assert "cancelled on the server" in response.json()["conflict"]
    assert m.WorkOrder.objects.get(pk=wo.pk).status == "cancelled"


def test_replay_after_checklist_changed_is_a_conflict(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = work_order_start(work_order=_scheduled(world, world.north, desk_agent),
                          actor=desk_agent)
    base = offline_base(wo)
    m.WorkOrder.objects.filter(pk=wo.pk).update(
        checklist=[{"task": "New first step", "done": False}, *wo.checklist])
    response = browser_client(field_engineer).post(
        f"/field/work-orders/{wo.pk}/progress/", {"check_0": "on", "offline_base": base},
        **JSON)
    assert response.status_code == 409
    assert "checklist" in response.json()["conflict"]
    assert m.WorkOrder.objects.get(pk=wo.pk).checklist[0]["done"] is False


def test_replay_for_work_order_reassigned_away_is_404_with_a_message(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = work_order_start(work_order=_scheduled(world, world.north, desk_agent),
                          actor=desk_agent)
    base = offline_base(wo)
    other = m.Engineer.objects.create(name="Engineer north 2", region="north")
    m.WorkOrder.objects.filter(pk=wo.pk).update(engineer=other)
    response = browser_client(field_engineer).post(
        f"/field/work-orders/{wo.pk}/complete/", _completion(wo, offline_base=base), **JSON)
    assert response.status_code == 404
    assert "no longer assigned to you" in response.json()["conflict"]
    assert m.WorkOrder.objects.get(pk=wo.pk).status == "in_progress"
    # A desk agent replaying from a sheet made before the reassignment is told who has it.
    desk = browser_client(desk_agent).post(
        f"/field/work-orders/{wo.pk}/complete/", _completion(wo, offline_base=base), **JSON)
    assert desk.status_code == 409
    assert "reassigned to Engineer north 2" in desk.json()["conflict"]


def test_other_regions_work_order_cannot_be_replayed(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = _scheduled(world, world.south, desk_agent)
    client = browser_client(field_engineer)
    for verb, data in (("start", {}), ("progress", {"check_0": "on"}),
                       ("complete", _completion(wo))):
        response = client.post(f"/field/work-orders/{wo.pk}/{verb}/", data, **JSON)
        assert response.status_code == 404, verb
        assert "WO-" not in response.content.decode()  # nothing about it is revealed
    assert m.WorkOrder.objects.get(pk=wo.pk).status == "scheduled"


@pytest.mark.parametrize("persona", ["customer_user", "other_customer_user"])
def test_customers_cannot_replay_field_actions(
        world: ServedWorld, desk_agent: Any, browser_client: Any, request: pytest.FixtureRequest,
        persona: str) -> None:
    wo = _scheduled(world, world.north, desk_agent)
    client = browser_client(request.getfixturevalue(persona))
    assert client.post(f"/field/work-orders/{wo.pk}/start/", {}, **JSON).status_code == 403
    assert client.get("/field/").status_code == 403
