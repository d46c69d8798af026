"""The dispatch board (issue 15, item 6): engineers by day, filtered by region and skill; jobs
waiting with the engineers who fit them (same region, the skill); bookings after the
resolution deadline, overlapping or during an absence flagged; the ticket's engineer list
limited to the site's region and a visit after the deadline refused unless accepted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule
from tests import factories as f
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M")


def _tomorrow_9(world: ServedWorld) -> dt.datetime:
    return (world.now + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0)


def test_board_lists_engineers_by_day_and_waiting_jobs_with_fitting_engineers(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    f.EngineerFactory(name="Pump-only north", region="north", skills=["pump"])
    response = browser_client(desk_agent).get("/desk/dispatch/")
    assert response.status_code == 200
    board = response.context["board"]
    assert len(board.days) == 7
    assert board.days[0] == world.now.date()
    names = [r.engineer.name for r in board.rows]
    assert {"Jana Petersen", "Sven Richter", "Pump-only north"} <= set(names)
    waiting = {w.booking.work_order.pk: w for w in board.waiting}
    north = waiting[world.north.work_order.pk]
    # Same region and the failure mode's skill: not the south engineer, not the pump-only one.
    assert [e.name for e in north.candidates] == ["Jana Petersen"]
    assert north.booking.skill == "compressor"


def test_board_filters_by_region_and_skill_and_day(world: ServedWorld, desk_agent: Any,
                                                   browser_client: Any) -> None:
    f.EngineerFactory(name="Pump-only north", region="north", skills=["pump"])
    client = browser_client(desk_agent)
    board = client.get("/desk/dispatch/?region=south").context["board"]
    assert [r.engineer.name for r in board.rows] == ["Sven Richter"]
    assert [w.booking.work_order.pk for w in board.waiting] == [world.south.work_order.pk]
    board = client.get("/desk/dispatch/?skill=pump").context["board"]
    assert [r.engineer.name for r in board.rows] == ["Pump-only north"]
    assert board.waiting == []  # both jobs need compressor
    board = client.get(f"/desk/dispatch/?view=day&start={world.now.date():%Y-%m-%d}"
                       ).context["board"]
    assert board.days == [world.now.date()]


@pytest.mark.parametrize("query", ["region=mars", "skill=juggling", "view=month",
                                   "start=yesterday", "start=1500-01-01"])
def test_bad_board_filter_is_400(world: ServedWorld, desk_agent: Any, browser_client: Any,
                                 query: str) -> None:
    response = browser_client(desk_agent).get(f"/desk/dispatch/?{query}")
    assert response.status_code == 400
    assert "data-testid=\"bad-filter\"" in response.content.decode()


def test_booking_after_deadline_overlap_and_absence_are_flagged(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    ticket = world.north.ticket
    assert ticket.resolution_due is not None
    late = ticket.resolution_due - dt.timedelta(hours=1)  # ends an hour after the deadline
    work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                        start=late, end=late + dt.timedelta(hours=2), actor=desk_agent)
    m.Unavailability.objects.create(engineer=world.north.engineer, starts_at=late,
                                    ends_at=late + dt.timedelta(hours=1), reason="Training")
    board = browser_client(desk_agent).get(
        f"/desk/dispatch/?start={late.date():%Y-%m-%d}&region=north").context["board"]
    [row] = [r for r in board.rows if r.engineer.pk == world.north.engineer.pk]
    [booking] = row.days[0]
    text = " | ".join(booking.conflicts)
    assert f"ends after {ticket.number}'s resolution deadline" in text
    assert "is absent then" in text
    assert board.conflicts == 1


def test_overlapping_bookings_flag_each_other(world: ServedWorld, desk_agent: Any,
                                             browser_client: Any) -> None:
    start = _tomorrow_9(world)
    work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                        start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    # A second job on the same engineer, overlapping: the service refuses such a booking,
    # so it is written as an import or an older version might have left it.
    other = m.WorkOrder.objects.create(ticket=world.north.ticket, engineer=world.north.engineer,
                                       status="scheduled",
                                       scheduled_start=start + dt.timedelta(hours=1),
                                       scheduled_end=start + dt.timedelta(hours=3))
    board = browser_client(desk_agent).get(
        f"/desk/dispatch/?start={start.date():%Y-%m-%d}&view=day").context["board"]
    [row] = [r for r in board.rows if r.engineer.pk == world.north.engineer.pk]
    by_wo = {b.work_order.pk: b.conflicts for b in row.days[0]}
    assert by_wo[world.north.work_order.pk] == [f"overlaps WO-{other.pk:06d}"]
    assert by_wo[other.pk] == [f"overlaps WO-{world.north.work_order.pk:06d}"]


def test_book_from_the_board_and_come_back_to_it(world: ServedWorld, desk_agent: Any,
                                                 browser_client: Any) -> None:
    start = _tomorrow_9(world)
    client = browser_client(desk_agent)
    response = client.post(f"/desk/work-orders/{world.north.work_order.pk}/schedule/", {
        "engineer": world.north.engineer.pk, "start": _fmt(start),
        "end": _fmt(start + dt.timedelta(hours=2)), "board": "region=north&view=week&x=1"})
    assert response.status_code == 302
    assert response["Location"] == "/desk/dispatch/?region=north&view=week"
    wo = m.WorkOrder.objects.get(pk=world.north.work_order.pk)
    assert (wo.status, wo.engineer_id, wo.scheduled_start) == (
        "scheduled", world.north.engineer.pk, start)
    page = client.get(response["Location"]).content.decode()
    assert "booked with Jana Petersen" in page


def test_ticket_lists_only_the_sites_region_engineers(world: ServedWorld, desk_agent: Any,
                                                      browser_client: Any) -> None:
    response = browser_client(desk_agent).get(f"/desk/tickets/{world.north.ticket.pk}/")
    choices = [str(e) for e in response.context["schedule_form"].fields["engineer"].queryset]
    assert choices == ["Jana Petersen (north)"]
    refused = browser_client(desk_agent).post(
        f"/desk/work-orders/{world.north.work_order.pk}/schedule/", {
            "engineer": world.south.engineer.pk, "start": _fmt(_tomorrow_9(world)),
            "end": _fmt(_tomorrow_9(world) + dt.timedelta(hours=1))})
    assert refused.status_code == 400
    assert refused.context["schedule_form"].errors["engineer"]


def test_visit_after_the_deadline_needs_book_anyway(world: ServedWorld, desk_agent: Any,
                                                    browser_client: Any) -> None:
    due = m.Ticket.objects.get(pk=world.north.ticket.pk).resolution_due
    assert due is not None
    start = due - dt.timedelta(hours=1)
    data = {"engineer": world.north.engineer.pk, "start": _fmt(start),
            "end": _fmt(start + dt.timedelta(hours=2))}
    client = browser_client(desk_agent)
    url = f"/desk/work-orders/{world.north.work_order.pk}/schedule/"
    refused = client.post(url, data)
    assert refused.status_code == 400
    assert "after the ticket's resolution deadline" in " ".join(
        refused.context["schedule_form"].errors["end"])
    assert 'name="accept_late"' in refused.content.decode()  # offered once it matters
    assert m.WorkOrder.objects.get(pk=world.north.work_order.pk).status == "proposed"
    assert client.post(url, {**data, "accept_late": "on"}).status_code == 302
    assert m.WorkOrder.objects.get(pk=world.north.work_order.pk).status == "scheduled"


@pytest.mark.parametrize("who", ["customer_user", "field_engineer"])
def test_board_is_for_office_roles(world: ServedWorld, browser_client: Any, who: str,
                                   request: pytest.FixtureRequest) -> None:
    client = browser_client(request.getfixturevalue(who))
    assert client.get("/desk/dispatch/").status_code == 403


def test_waiting_list_shows_the_most_urgent_fifty(world: ServedWorld, desk_agent: Any,
                                                  browser_client: Any) -> None:
    from service_crm.selectors.dispatch import WAITING_SHOWN

    m.WorkOrder.objects.bulk_create([m.WorkOrder(ticket=world.north.ticket, status="proposed")
                                     for _ in range(WAITING_SHOWN + 5)])
    response = browser_client(desk_agent).get("/desk/dispatch/")
    board = response.context["board"]
    assert board.waiting_total == WAITING_SHOWN + 7  # and the world's two proposed jobs
    assert len(board.waiting) == WAITING_SHOWN
    assert "due soonest are listed" in response.content.decode()
