"""Server-rendered pages over HTTP: login and its rate limit, headers, each workspace, the
permission sweep, and the workflow forms calling the CRM services."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule, work_order_start
from tests.support.personas import PASSWORD
from tests.support.world import ServedWorld, Side

pytestmark = pytest.mark.db


def _desk_urls(side: Side) -> list[str]:
    return [f"/desk/episodes/{side.episode.pk}/", f"/desk/tickets/{side.ticket.pk}/",
            f"/desk/accounts/{side.account.pk}/", f"/desk/assets/{side.asset.pk}/",
            f"/desk/offers/{side.offer.pk}/"]


def _wo(side: Side) -> str:
    return f"WO-{side.work_order.pk:06d}"


def _schedule_today(world: ServedWorld, side: Side, actor: Any) -> m.WorkOrder:
    start = world.now + dt.timedelta(minutes=5)
    if start.date() != world.now.date():  # just before midnight: keep it "today"
        start = world.now - dt.timedelta(minutes=5)
    return work_order_schedule(work_order=side.work_order, engineer=side.engineer, start=start,
                               end=start + dt.timedelta(hours=2), actor=actor)


# --- login, rate limit, headers ----------------------------------------------------------

def test_login_lands_desk_agent_on_dashboard(world: ServedWorld,
        desk_agent: Any, client: Client) -> None:
    response = client.post("/login/", {"username": "desk", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/desk/"


def test_login_lands_customer_in_portal(world: ServedWorld, customer_user: Any,
                                        client: Client) -> None:
    response = client.post("/login/", {"username": "nordwerk", "password": PASSWORD},
                           follow=True)
    assert response.redirect_chain[-1][0] == "/portal/"
    assert "Nordwerk Foods GmbH" in response.content.decode()


def test_login_is_rate_limited_after_five_failures(world: ServedWorld, desk_agent: Any,
                                                   client: Client) -> None:
    for _ in range(5):
        r = client.post("/login/", {"username": "desk", "password": "nope"})
        assert r.status_code == 200
    blocked = client.post("/login/", {"username": "desk", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed log-ins" in blocked.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_ends_session_and_clears_browser_storage(world: ServedWorld, desk_agent: Any,
                                                         client: Client) -> None:
    client.post("/login/", {"username": "desk", "password": PASSWORD})
    assert client.get("/desk/").status_code == 200
    response = client.post("/logout/")
    assert response["Clear-Site-Data"] == '"cache", "storage"'
    assert client.get("/desk/").status_code == 302


def test_login_form_needs_csrf_token(world: ServedWorld, desk_agent: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "desk", "password": PASSWORD})
    assert response.status_code == 403


def test_security_headers(client: Client, db: None) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_need_login(client: Client, db: None) -> None:
    for url in ("/desk/", "/field/", "/portal/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


# --- permission sweep --------------------------------------------------------------------

@pytest.mark.parametrize("persona", ["customer_user", "field_engineer"])
def test_desk_pages_closed_to_customers_and_engineers(
        world: ServedWorld, browser_client: Any, request: pytest.FixtureRequest,
        persona: str) -> None:
    client = browser_client(request.getfixturevalue(persona))
    for url in ["/desk/", "/desk/panel/", "/desk/tickets/", "/desk/devices/unclaimed/",
                "/desk/dispatch/", "/desk/renewals/", "/desk/reports/", "/desk/episodes/",
                "/desk/accounts/", "/desk/offers/",
                *_desk_urls(world.north), *_desk_urls(world.south)]:
        assert client.get(url).status_code == 403, url


def test_engineer_work_order_page_404_for_other_engineer(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    _schedule_today(world, world.north, desk_agent)
    _schedule_today(world, world.south, desk_agent)
    client = browser_client(field_engineer)
    assert client.get(f"/field/work-orders/{world.north.work_order.pk}/").status_code == 200
    assert client.get(f"/field/work-orders/{world.south.work_order.pk}/").status_code == 404
    assert client.post(
        f"/field/work-orders/{world.south.work_order.pk}/start/").status_code == 404


def test_portal_offer_404_for_other_account(world: ServedWorld, customer_user: Any,
                                            browser_client: Any) -> None:
    client = browser_client(customer_user)
    assert client.get(f"/portal/offers/{world.north.offer.pk}/").status_code == 200
    assert client.get(f"/portal/offers/{world.south.offer.pk}/").status_code == 404
    decide = client.post(f"/portal/offers/{world.south.offer.pk}/decide/", {"accepted": "yes"})
    assert decide.status_code == 404
    assert m.Offer.objects.get(pk=world.south.offer.pk).status == "sent"


def test_portal_closed_to_desk_agent(world: ServedWorld, desk_agent: Any,
                                     browser_client: Any) -> None:
    assert browser_client(desk_agent).get("/portal/").status_code == 403


# --- service desk ------------------------------------------------------------------------

def test_dashboard_shows_fleet_episodes_sla_and_todays_work(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    _schedule_today(world, world.north, desk_agent)
    m.Ticket.objects.filter(pk=world.south.ticket.pk).update(resolution_breached=True)
    client = browser_client(desk_agent)
    page = client.get("/desk/").content.decode()
    assert 'data-poll-url="/desk/panel/"' in page
    panel = client.get("/desk/panel/").content.decode()
    assert '<span class="figure" data-testid="assets-total">4</span>' in panel
    assert '<span class="figure" data-testid="devices-online">4</span>' in panel
    assert '<span class="figure" data-testid="devices-unclaimed">0</span>' in panel
    assert '<span class="figure" data-testid="episodes-warning">4</span>' in panel
    assert world.south.ticket.number in panel.split("SLA breached")[1].split("SLA at risk")[0]
    assert _wo(world.north) in panel.split("Today's work orders")[1]


def test_dashboard_lists_ticket_at_risk(world: ServedWorld, desk_agent: Any,
                                        browser_client: Any) -> None:
    # 10 % of the resolution time left: under the 25 % at-risk threshold.
    m.Ticket.objects.filter(pk=world.north.ticket.pk).update(
        opened_at=world.now - dt.timedelta(hours=9),
        resolution_due=world.now + dt.timedelta(hours=1))
    panel = browser_client(desk_agent).get("/desk/panel/").content.decode()
    at_risk = panel.split("SLA at risk")[1].split("Today's work orders")[0]
    assert world.north.ticket.number in at_risk
    assert world.south.ticket.number not in at_risk


def test_desk_pages_render(world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    for url in ["/desk/episodes/", "/desk/tickets/", "/desk/accounts/", "/desk/offers/",
                "/desk/devices/unclaimed/", *_desk_urls(world.north)]:
        response = client.get(url)
        assert response.status_code == 200, url
    asset_page = client.get(f"/desk/assets/{world.north.asset.pk}/").content.decode()
    assert f"/api/v1/assets/{world.north.asset.pk}/telemetry/" in asset_page
    assert "vendor/uplot/uPlot.iife.min.js" in asset_page
    account_page = client.get(f"/desk/accounts/{world.north.account.pk}/").content.decode()
    assert "Ticket " + world.north.ticket.number + " opened" in account_page  # timeline


def test_ticket_workflow_form_moves_ticket_and_shows_rule_by_field(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    url = f"/desk/tickets/{world.north.ticket.pk}/transition/"
    refused = client.post(url, {"to": "closed"})
    assert refused.status_code == 400
    assert "cannot go from new to closed" in refused.content.decode()
    ok = client.post(url, {"to": "triaged"})
    assert ok.status_code == 302
    assert m.Ticket.objects.get(pk=world.north.ticket.pk).status == "triaged"


def test_dispatch_schedules_engineer(world: ServedWorld, desk_agent: Any,
                                     browser_client: Any) -> None:
    start = (world.now + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0)
    response = browser_client(desk_agent).post(
        f"/desk/work-orders/{world.north.work_order.pk}/schedule/",
        {"engineer": world.north.engineer.pk, "start": start.strftime("%Y-%m-%dT%H:%M"),
         "end": (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302, response.content.decode()[:2000]
    wo = m.WorkOrder.objects.get(pk=world.north.work_order.pk)
    assert wo.status == "scheduled"
    assert wo.scheduled_start == start
    assert m.Ticket.objects.get(pk=world.north.ticket.pk).status == "scheduled"


def test_offer_approval_flow(world: ServedWorld, desk_agent: Any, service_manager: Any,
                             browser_client: Any) -> None:
    m.Offer.objects.filter(pk=world.north.offer.pk).update(status="draft", sent_at=None)
    desk, manager = browser_client(desk_agent), browser_client(service_manager)
    base = f"/desk/offers/{world.north.offer.pk}"
    assert desk.post(f"{base}/request-approval/").status_code == 302
    assert desk.post(f"{base}/approve/").status_code == 403
    assert manager.post(f"{base}/approve/").status_code == 302
    assert m.Offer.objects.get(pk=world.north.offer.pk).approved_by_id == service_manager.pk


def test_unclaimed_devices_page_lists_only_unclaimed(world: ServedWorld, desk_agent: Any,
                                                     browser_client: Any) -> None:
    from tests.factories import store_device

    store_device("stray-7")
    page = browser_client(desk_agent).get("/desk/devices/unclaimed/").content.decode()
    assert "stray-7" in page
    assert "cmp-n1" not in page


# --- field engineer ----------------------------------------------------------------------

def test_engineer_today_lists_own_jobs_only(world: ServedWorld, field_engineer: Any,
                                            desk_agent: Any, browser_client: Any) -> None:
    _schedule_today(world, world.north, desk_agent)
    _schedule_today(world, world.south, desk_agent)
    page = browser_client(field_engineer).get("/field/").content.decode()
    assert _wo(world.north) in page
    assert _wo(world.south) not in page


def test_engineer_completes_with_parts_and_stock_goes_down(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = _schedule_today(world, world.north, desk_agent)
    work_order_start(work_order=wo, actor=field_engineer)
    stock = m.Stock.objects.get(part=world.part, warehouse=world.warehouse)
    client = browser_client(field_engineer)
    url = f"/field/work-orders/{wo.pk}/complete/"
    missing = client.post(url, {"outcome": "fault_confirmed"})
    assert missing.status_code == 400
    response = client.post(url, {"report": "Bearing replaced", "outcome": "fault_confirmed",
                                 "time_spent_min": "75", "check_0": "on",
                                 "stock_0": str(stock.pk), "qty_0": "2"})
    assert response.status_code == 302, response.content.decode()[:3000]
    wo.refresh_from_db()
    assert wo.status == "completed"
    assert "Checklist done: Diagnose" in wo.completion_report
    assert m.Stock.objects.get(pk=stock.pk).quantity == stock.quantity - 2
    assert m.WorkOrderPart.objects.filter(work_order=wo, quantity=2).exists()


# --- customer portal ---------------------------------------------------------------------

def test_portal_shows_own_assets_and_tickets_only(world: ServedWorld, customer_user: Any,
                                                  browser_client: Any) -> None:
    page = browser_client(customer_user).get("/portal/").content.decode()
    assert world.north.asset.serial in page
    assert world.north.ticket.number in page
    assert world.south.asset.serial not in page
    assert world.south.ticket.number not in page
    assert "being handled" in page


def test_customer_declines_offer(world: ServedWorld, customer_user: Any,
                                 browser_client: Any) -> None:
    client = browser_client(customer_user)
    url = f"/portal/offers/{world.north.offer.pk}/decide/"
    asked = client.post(url, {"accepted": "no"})
    assert asked.status_code == 200
    assert "Decline this offer?" in asked.content.decode()
    assert m.Offer.objects.get(pk=world.north.offer.pk).status == "sent"
    response = client.post(url, {"accepted": "no", "confirm": "on"})
    assert response.status_code == 302
    assert m.Offer.objects.get(pk=world.north.offer.pk).status == "declined"


def test_personal_data_download_holds_own_data_only(world: ServedWorld, customer_user: Any,
                                                    browser_client: Any) -> None:
    response = browser_client(customer_user).get("/portal/personal-data/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["contact"]["name"] == "Petra Einkauf"
    assert [o["number"] for o in data["offers_received"]] == [world.north.offer.number]
    assert "Sabine Kauf" not in response.content.decode()


def test_admin_login_goes_through_rate_limited_form(client: Client, db: None) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fadmin%2F"
    evil = client.get("/admin/login/?next=https://evil.example/")
    assert evil["Location"] == "/login/?next=%2Fadmin%2F"


def test_customer_reports_problem_for_own_asset_only(world: ServedWorld, customer_user: Any,
                                                     browser_client: Any) -> None:
    client = browser_client(customer_user)
    other = client.post("/portal/tickets/report/", {"asset": world.south.asset.pk,
                                                    "summary": "Leaking"})
    assert other.status_code == 400
    assert not m.Ticket.objects.filter(summary="Leaking").exists()
    own = client.post("/portal/tickets/report/", {"asset": world.north.asset.pk,
                                                  "summary": "Leaking"})
    assert own.status_code == 302
    ticket = m.Ticket.objects.get(summary="Leaking")
    assert (ticket.source, ticket.account_id) == ("portal", world.north.account.pk)


def test_dispatch_board_lists_proposed_work_orders_by_engineer(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    page = browser_client(desk_agent).get("/desk/dispatch/").content.decode()
    assert _wo(world.north) in page
    assert _wo(world.south) in page
    assert "Jana Petersen" in page
    assert "Sven Richter" in page


def test_reports_show_sla_compliance_and_alert_precision(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, browser_client: Any) -> None:
    wo = _schedule_today(world, world.north, desk_agent)
    work_order_start(work_order=wo, actor=field_engineer)
    from service_crm.services.work_orders import work_order_complete

    work_order_complete(work_order=wo, actor=field_engineer, report="Bearing replaced",
                        outcome="fault_confirmed", time_spent_min=60)
    page = browser_client(desk_agent).get("/desk/reports/").content.decode()
    assert '<span class="figure" data-testid="sla-met-pct">100.0 %</span>' in page
    assert "<td>zscore</td><td>bearing_wear</td><td>1</td><td>0</td><td>100 %</td>" in page


def test_renewals_lists_contract_ending_soon(world: ServedWorld, desk_agent: Any,
                                             browser_client: Any) -> None:
    m.MaintenanceContract.objects.filter(account=world.south.account).update(
        end=(world.now + dt.timedelta(days=30)).date())
    page = browser_client(desk_agent).get("/desk/renewals/").content.decode()
    assert "Südhof Logistik AG" in page
    assert "Nordwerk Foods GmbH" not in page


def test_pause_and_resume_sla_clock(world: ServedWorld, desk_agent: Any,
                                    browser_client: Any) -> None:
    client = browser_client(desk_agent)
    base = f"/desk/tickets/{world.north.ticket.pk}"
    assert client.post(f"{base}/pause/", {"reason": ""}).status_code == 400
    assert client.post(f"{base}/pause/", {"reason": "Waiting for site access"}).status_code == 302
    assert m.Ticket.objects.get(pk=world.north.ticket.pk).paused_at is not None
    assert client.post(f"{base}/resume/").status_code == 302
    assert m.Ticket.objects.get(pk=world.north.ticket.pk).paused_at is None
    again = client.post(f"{base}/resume/")
    assert again.status_code == 400
    assert "not paused" in again.content.decode()


def test_deletion_request_goes_on_own_account_timeline(world: ServedWorld, customer_user: Any,
                                                       browser_client: Any) -> None:
    response = browser_client(customer_user).post("/portal/personal-data/deletion/")
    assert response.status_code == 302
    note = m.Interaction.objects.get(summary__contains="asked for their personal data")
    assert (note.account_id, note.contact_id) == (world.north.account.pk,
                                                  world.north.buyer.pk)
