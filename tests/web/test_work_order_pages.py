"""The whole job visible (issue 15, item 2): after the engineer completes a work order the desk
sees the report, parts used (by name), time on site and the checklist items skipped, on a
work-order page the ticket links to; the ticket says whether its SLA was met or breached;
the engineer's job sheet shows the same record once done."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def _completed(world: ServedWorld, desk_agent: Any, engineer_user: Any, *,
               at: dt.datetime | None = None) -> m.WorkOrder:
    side = world.north
    start = world.now + dt.timedelta(minutes=5)
    wo = work_order_schedule(work_order=side.work_order, engineer=side.engineer, start=start,
                             end=start + dt.timedelta(hours=2), actor=desk_agent)
    work_order_start(work_order=wo, actor=engineer_user, now=at)
    wo.refresh_from_db()
    assert wo.checklist, "the world's failure mode has a checklist to skip"
    return work_order_complete(
        work_order=wo, actor=engineer_user, report="Replaced the drive-end bearing.",
        outcome="fault_confirmed", time_spent_min=95, now=at,
        parts=[PartUsed(part=world.part, warehouse=world.warehouse, quantity=2)])


def test_desk_work_order_page_shows_what_the_engineer_recorded(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, browser_client: Any) -> None:
    wo = _completed(world, desk_agent, field_engineer)
    body = browser_client(desk_agent).get(f"/desk/work-orders/{wo.pk}/").content.decode()
    assert "Replaced the drive-end bearing." in body
    assert "1 h 35 min" in body
    assert "Bearing 6205" in body  # the part's name, not only its code
    assert "Fault confirmed" in body
    skipped = [item["task"] for item in wo.checklist if not item.get("done")]
    assert skipped
    for task in skipped:
        assert f"<strong>Skipped:</strong> {task}" in body
    assert f"{len(skipped)} of {len(wo.checklist)} checklist item" in body


def test_ticket_links_work_order_and_says_sla_met(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, browser_client: Any) -> None:
    wo = _completed(world, desk_agent, field_engineer)
    body = browser_client(desk_agent).get(f"/desk/tickets/{wo.ticket_id}/").content.decode()
    assert f'href="/desk/work-orders/{wo.pk}/"' in body
    assert 'data-testid="sla-resolution">met<' in body
    assert "Replaced the drive-end bearing." in body


def test_ticket_says_sla_breached_when_resolved_late(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, browser_client: Any) -> None:
    ticket = world.north.ticket
    late = ticket.resolution_due + dt.timedelta(hours=3)
    wo = _completed(world, desk_agent, field_engineer, at=late)
    body = browser_client(desk_agent).get(f"/desk/tickets/{wo.ticket_id}/").content.decode()
    assert 'data-testid="sla-resolution">breached<' in body
    assert 'data-testid="sla-resolution">met<' not in body


def test_work_order_page_is_scoped(world: ServedWorld, desk_agent: Any, customer_user: Any,
                                   field_engineer: Any, browser_client: Any) -> None:
    wo = world.south.work_order
    assert browser_client(desk_agent).get(f"/desk/work-orders/{wo.pk}/").status_code == 200
    assert browser_client(customer_user).get(f"/desk/work-orders/{wo.pk}/").status_code == 403
    assert browser_client(desk_agent).get("/desk/work-orders/999999/").status_code == 404


def test_search_by_work_order_number_opens_it(world: ServedWorld, desk_agent: Any,
                                              browser_client: Any) -> None:
    wo = world.north.work_order
    response = browser_client(desk_agent).get("/desk/search/", {"q": f"WO-{wo.pk:06d}"})
    assert response.status_code == 302
    assert response["Location"] == f"/desk/work-orders/{wo.pk}/"


def test_field_job_sheet_shows_the_record_once_done(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, browser_client: Any) -> None:
    wo = _completed(world, desk_agent, field_engineer)
    body = browser_client(field_engineer).get(f"/field/work-orders/{wo.pk}/").content.decode()
    assert 'data-testid="wo-record"' in body
    assert "Bearing 6205" in body
    assert "1 h 35 min" in body


def test_field_job_sheet_links_the_site_to_the_phones_maps(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, browser_client: Any) -> None:
    from urllib.parse import quote

    side = world.north
    start = world.now + dt.timedelta(minutes=5)
    wo = work_order_schedule(work_order=side.work_order, engineer=side.engineer, start=start,
                             end=start + dt.timedelta(hours=2), actor=desk_agent)
    body = browser_client(field_engineer).get(f"/field/work-orders/{wo.pk}/").content.decode()
    site = side.asset.site
    assert f'href="geo:0,0?q={quote(site.address + ", " + site.city)}' in body


def test_record_times_are_the_sites_local_time_with_zone(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, browser_client: Any) -> None:
    from zoneinfo import ZoneInfo

    wo = _completed(world, desk_agent, field_engineer)
    assert wo.started_at is not None
    local = wo.started_at.astimezone(ZoneInfo(world.north.asset.site.timezone))
    expected = f'data-testid="wo-started">{local:%Y-%m-%d %H:%M} {local.tzname()}<'
    for url in (f"/desk/work-orders/{wo.pk}/", f"/field/work-orders/{wo.pk}/"):
        user = desk_agent if url.startswith("/desk") else field_engineer
        assert expected in browser_client(user).get(url).content.decode(), url
