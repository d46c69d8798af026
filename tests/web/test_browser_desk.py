"""Desk basics in real Chromium (issue 15, item 8): the header's search box opens the asset by
serial, a bad filter says so, detaching asks first, and a 404 keeps the site's header; on a
desktop and a 390x844 phone. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests.support.web import ARTIFACTS, desk_page
from tests.support.web import browser_login as _login
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]


@pytest.mark.parametrize(("name", "viewport"), [
    ("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})])
def test_desk_search_filters_detach_and_404(browser: Any, live_server: Any, live_world: ServedWorld,
                                            desk_agent: Any, name: str,
                                            viewport: dict[str, int]) -> None:
    world = live_world
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport=viewport, is_mobile=name == "phone")

    page.fill("header form.search input[name=q]", world.north.asset.serial)
    page.press("header form.search input[name=q]", "Enter")
    page.wait_for_url(f"{live_server.url}/desk/assets/{world.north.asset.pk}/")

    page.click("text=Detach cmp-n1")
    page.wait_for_selector("[data-testid=detach-confirm]")
    page.screenshot(path=ARTIFACTS / f"desk-detach-confirm-{name}.png", full_page=True)
    assert m.DeviceLink.objects.filter(device_key="cmp-n1").exists()
    page.click("text=Cancel")
    page.wait_for_url(f"{live_server.url}/desk/assets/{world.north.asset.pk}/")

    response = page.goto(f"{live_server.url}/desk/tickets/?status=bogus")
    assert response is not None
    assert response.status == 400
    assert "Unknown status" in page.inner_text("[data-testid=bad-filter]")
    page.screenshot(path=ARTIFACTS / f"desk-bad-filter-{name}.png", full_page=True)

    page.goto(f"{live_server.url}/desk/alerts/")
    assert world.north.asset.serial in page.inner_text("table.list")
    page.screenshot(path=ARTIFACTS / f"desk-alerts-{name}.png", full_page=True)

    response = page.goto(f"{live_server.url}/desk/tickets/999999/")
    assert response is not None
    assert response.status == 404
    assert page.is_visible("header.top nav")
    page.screenshot(path=ARTIFACTS / f"desk-404-{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert errors == []
    context.close()


def test_completed_work_order_seen_by_desk_and_on_phone(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        field_engineer: Any) -> None:
    from tests.web.test_work_order_pages import _completed

    world = live_world
    wo = _completed(world, desk_agent, field_engineer)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live_server.url, "desk")
    page.wait_for_url(f"{live_server.url}/desk/")
    page.goto(f"{live_server.url}/desk/tickets/{wo.ticket_id}/")
    assert page.inner_text("[data-testid=sla-resolution]") == "met"
    page.screenshot(path=ARTIFACTS / "desk-ticket-completed.png", full_page=True)
    page.click(f"a[href='/desk/work-orders/{wo.pk}/'] >> nth=0")
    page.wait_for_selector("[data-testid=wo-record]")
    assert "Replaced the drive-end bearing." in page.inner_text("[data-testid=wo-report]")
    assert "Bearing 6205" in page.inner_text("[data-testid=wo-parts]")
    assert page.inner_text("[data-testid=wo-time]") == "1 h 35 min"
    page.screenshot(path=ARTIFACTS / "desk-work-order.png", full_page=True)
    context.close()

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    _login(page, live_server.url, "jana")
    page.goto(f"{live_server.url}/field/work-orders/{wo.pk}/")
    page.wait_for_selector("[data-testid=wo-record]")
    assert "Bearing 6205" in page.inner_text("[data-testid=wo-parts]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "field-work-order-done.png", full_page=True)
    context.close()
