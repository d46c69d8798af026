"""Real Chromium (Debian's, driven by Playwright) against a live server: the desk agent's
login, dashboard, chart and ticket workflow; the engineer completing a job on a phone; the
customer accepting an offer and failing to reach another account. Screenshots are written
to test-artifacts/browser/ for people to look at."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.alerts import alert_ingest
from service_crm.services.work_orders import work_order_schedule
from tests import factories as f
from tests.support.web import ARTIFACTS, desk_page
from tests.support.web import browser_login as _login
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]

def test_desk_agent_dashboard_chart_and_ticket_workflow(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        settings: Any) -> None:
    from playwright.sync_api import expect

    world = live_world
    settings.AFTERCARE_DASHBOARD_POLL_S = 0.5
    t0 = world.now.replace(minute=0, second=0) - dt.timedelta(hours=6)
    f.store_rollup_1h("cmp-n1", "temperature_c",
                      [(t0 + dt.timedelta(hours=i), 60.0 + i) for i in range(6)])
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport={"width": 1280, "height": 900})
    assert page.inner_text("[data-testid=episodes-warning]") == "4"
    assert page.inner_text("[data-testid=episodes-critical]") == "0"
    # A fresh critical alert shows up on the open dashboard without a reload.
    alert_ingest(event=f.alert_event("cmp-s1", at=world.now, severity="critical",
                                     failure_mode="seal leak"))
    expect(page.locator("[data-testid=episodes-critical]")).to_have_text("1", timeout=15_000)
    page.screenshot(path=ARTIFACTS / "desk-dashboard.png", full_page=True)

    page.goto(f"{live_server.url}/desk/assets/{world.north.asset.pk}/")
    page.click("button[data-range-hours='168']")  # 7 days at 1 h: the rollups above
    page.wait_for_selector(".chart .uplot canvas")
    assert "temperature_c" in page.inner_text(".chart")
    page.screenshot(path=ARTIFACTS / "desk-asset-chart.png", full_page=True)

    page.goto(f"{live_server.url}/desk/tickets/{world.north.ticket.pk}/")
    page.select_option("select[name=to]", "triaged")
    page.click("form[action$='/transition/'] button")
    page.wait_for_selector("text=moved to triaged")
    assert page.inner_text("[data-testid=ticket-status]") == "Triaged"
    page.select_option("select[name=engineer]", str(world.north.engineer.pk))
    page.click("#dispatch button")
    page.wait_for_selector("text=scheduled with")
    assert page.inner_text("[data-testid=ticket-status]") == "Scheduled"
    page.screenshot(path=ARTIFACTS / "desk-ticket.png", full_page=True)
    assert errors == []
    context.close()


def test_engineer_completes_work_order_on_phone(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        field_engineer: Any) -> None:
    world = live_world
    start = world.now + dt.timedelta(minutes=5)
    if start.date() != world.now.date():
        start = world.now - dt.timedelta(minutes=5)
    work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                        start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    t0 = world.now.replace(minute=0, second=0) - dt.timedelta(hours=5)
    f.store_rollup_1h("cmp-n1", "vibration_rms_mm_s",
                      [(t0 + dt.timedelta(hours=i), 7.0 - i) for i in range(5)])
    stock = m.Stock.objects.get(part=world.part, warehouse=world.warehouse)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    _login(page, live_server.url, "jana")
    page.wait_for_url(f"{live_server.url}/field/")
    page.click(f"a.job[href$='/work-orders/{world.north.work_order.pk}/']")
    page.click("text=Start job")
    page.wait_for_selector("#complete")
    page.wait_for_selector(".chart .uplot canvas")  # recent telemetry, drawn on the phone
    page.check("input[name=check_0]")
    page.select_option("select[name=stock_0]", str(stock.pk))
    page.fill("input[name=qty_0]", "1")
    page.fill("textarea[name=report]", "Replaced the drive-end bearing; vibration back to 2.6")
    page.select_option("select[name=outcome]", "fault_confirmed")
    page.fill("input[name=time_spent_min]", "80")
    # The job sheet fits the phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "field-job-sheet.png", full_page=True)
    page.click("text=Complete job")
    page.wait_for_selector("text=completed.")
    page.screenshot(path=ARTIFACTS / "field-done.png", full_page=True)
    context.close()
    assert m.WorkOrder.objects.get(pk=world.north.work_order.pk).status == "completed"
    assert m.Stock.objects.get(pk=stock.pk).quantity == stock.quantity - 1


def test_customer_accepts_offer_and_cannot_reach_other_account(
        browser: Any, live_server: Any, live_world: ServedWorld, customer_user: Any) -> None:
    world = live_world
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    _login(page, live_server.url, "nordwerk")
    page.wait_for_url(f"{live_server.url}/portal/")
    page.click(f"a[href$='/portal/offers/{world.north.offer.pk}/']")
    page.fill("input[name=po_reference]", "PO-77")
    page.click("text=Accept offer")
    page.wait_for_selector("[data-testid=offer-confirm]")
    page.click("[data-testid=offer-confirm-button]")
    page.wait_for_selector("text=accepted")
    page.screenshot(path=ARTIFACTS / "portal-accepted.png", full_page=True)
    other = page.goto(f"{live_server.url}/portal/offers/{world.south.offer.pk}/")
    assert other is not None
    assert other.status == 404
    desk = page.goto(f"{live_server.url}/desk/tickets/{world.south.ticket.pk}/")
    assert desk is not None
    assert desk.status == 403
    context.close()
    assert m.Offer.objects.get(pk=world.north.offer.pk).status == "accepted"
    assert m.Offer.objects.get(pk=world.south.offer.pk).status == "sent"
