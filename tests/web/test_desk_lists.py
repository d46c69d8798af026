"""Desk lists (issue 15, item 8): the ticket list sorts by a column, downloads every filtered
row as CSV (cells that look like formulas made inert), and moves the ticked tickets in one go,
each through the ticket service (checked, audited, refused ones named); bad values are 400."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from service_crm import models as m
from service_crm.models.choices import Priority, TicketSource
from service_crm.services.tickets import ticket_open
from tests.support.world import ServedWorld
from web.desk.lists import csv_cell

pytestmark = pytest.mark.db


def _csv(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_sort_by_account_and_priority(world: ServedWorld, desk_agent: Any,
                                      browser_client: Any) -> None:
    client = browser_client(desk_agent)
    by_account = client.get("/desk/tickets/?sort=account").context["page"]
    names = [t.account.name for t in by_account]
    assert names == sorted(names)
    assert set(names) == {"Nordwerk Foods GmbH", "Südhof Logistik AG"}
    newest = [t.opened_at for t in client.get("/desk/tickets/?sort=-opened").context["page"]]
    assert newest == sorted(newest, reverse=True)


@pytest.mark.parametrize("query", ["sort=bogus", "format=xlsx"])
def test_unknown_sort_or_format_is_400(world: ServedWorld, desk_agent: Any, browser_client: Any,
                                       query: str) -> None:
    response = browser_client(desk_agent).get(f"/desk/tickets/?{query}")
    assert response.status_code == 400


def test_csv_has_every_filtered_row_and_inert_formulas(world: ServedWorld, desk_agent: Any,
                                                       browser_client: Any) -> None:
    ticket_open(asset=world.north.asset, summary="=HYPERLINK(\"http://evil\",\"x\")",
                source=TicketSource.PHONE, priority=Priority.P3, actor=desk_agent)
    response = browser_client(desk_agent).get("/desk/tickets/?status=open&sort=opened&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tickets-')
    rows = _csv(response)
    open_tickets = m.Ticket.objects.exclude(status__in=["resolved", "closed"])
    assert [r["ticket"] for r in rows] == [
        t.number for t in open_tickets.order_by("opened_at", "pk")]
    evil = next(r for r in rows if "HYPERLINK" in r["summary"])
    assert evil["summary"].startswith("'=")
    assert rows[0]["account"] in {"Nordwerk Foods GmbH", "Südhof Logistik AG"}


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+49 40 123", "'+49 40 123"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("Pump 3", "Pump 3"), (None, ""), (12, "12")])
def test_csv_cell(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_bulk_move_checks_each_ticket_and_names_the_refused(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    north, south = world.north.ticket, world.south.ticket
    m.Ticket.objects.filter(pk=south.pk).update(status="closed")  # cannot go to triaged
    response = client.post("/desk/tickets/bulk/", {
        "to": "triaged", "ticket": [north.pk, south.pk, 999999],
        "list_query": "status=open&sort=due"}, follow=True)
    assert response.redirect_chain[0][0] == "/desk/tickets/?status=open&sort=due"
    page = response.content.decode()
    page = page[page.index('<ul class="messages">'):page.index("</ul>", page.index(
        '<ul class="messages">'))]  # the messages, where the outcome is said
    assert f"1 moved to triaged: {north.number}" in page
    assert f"Not moved: {south.number} (A ticket cannot go from closed to triaged.)" in page
    assert "1 not found" in page
    assert m.Ticket.objects.get(pk=north.pk).status == "triaged"
    assert m.AuditLog.objects.filter(object_type="ticket", object_id=str(north.pk),
                                     actor_id=desk_agent.pk).exists()


@pytest.mark.parametrize("data", [{"to": "resolved", "ticket": ["1"]},
                                  {"to": "triaged"}, {"to": "triaged", "ticket": ["x"]}])
def test_bulk_refuses_unknown_target_or_nothing_ticked(world: ServedWorld, desk_agent: Any,
                                                       browser_client: Any,
                                                       data: dict[str, Any]) -> None:
    response = browser_client(desk_agent).post("/desk/tickets/bulk/", data, follow=True)
    assert response.status_code == 200
    assert m.Ticket.objects.filter(status="triaged").count() == 0


def test_bulk_is_for_desk_roles(world: ServedWorld, browser_client: Any,
                                customer_user: Any) -> None:
    response = browser_client(customer_user).post("/desk/tickets/bulk/", {
        "to": "triaged", "ticket": [world.north.ticket.pk]})
    assert response.status_code == 403
    assert m.Ticket.objects.get(pk=world.north.ticket.pk).status == "new"


def test_asset_csv_follows_the_search(world: ServedWorld, desk_agent: Any,
                                      browser_client: Any) -> None:
    response = browser_client(desk_agent).get("/desk/assets/?q=Nordwerk&format=csv")
    assert response.status_code == 200
    rows = _csv(response)
    assert sorted(r["serial"] for r in rows) == sorted(
        [world.north.asset.serial, world.north.pump.serial])
    by_serial = {r["serial"]: r for r in rows}
    assert by_serial[world.north.asset.serial]["devices"] == "cmp-n1"
    assert by_serial[world.north.asset.serial]["account"] == "Nordwerk Foods GmbH"


def test_asset_csv_is_for_staff(world: ServedWorld, customer_user: Any,
                                browser_client: Any) -> None:
    assert browser_client(customer_user).get("/desk/assets/?format=csv").status_code == 403
