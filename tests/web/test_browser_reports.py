"""Real Chromium: the reports page draws a chart per report for a service manager (desktop and
phone), and the dashboard's fleet-health chart redraws when an alert arrives, without a
reload. Screenshots go to test-artifacts/browser/ like the other browser tests'."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from service_crm.models.choices import Outcome
from service_crm.services.alerts import alert_ingest
from service_crm.services.tickets import ticket_transition
from tests import factories as f
from tests.support.web import ARTIFACTS, desk_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]

BAD_RGB = (0xB4, 0x23, 0x18)  # the "critical" / "breached" bar colour in web/desk/charts.py
BLUE_RGB = (0x0B, 0x6B, 0xCB)

# Pixels of one colour on the chart's canvas: proof that bars were drawn, not just a frame.
COUNT_PIXELS = """([sel, rgb]) => {
  const c = document.querySelector(sel + " canvas");
  if (!c) { return -1; }
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - rgb[0]) < 6 && Math.abs(d[i + 1] - rgb[1]) < 6
        && Math.abs(d[i + 2] - rgb[2]) < 6 && d[i + 3] > 200) { n++; }
  }
  return n;
}"""


def _pixels(page: Any, selector: str, rgb: tuple[int, int, int]) -> int:
    return int(page.evaluate(COUNT_PIXELS, [selector, list(rgb)]))


def _wait_pixels(page: Any, selector: str, rgb: tuple[int, int, int], more_than: int) -> None:
    """Wait (up to 15 s) until the chart's canvas has more than `more_than` pixels of `rgb`;
    the caller's assertion reports the count if it never does."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"args => ({COUNT_PIXELS})(args) > {more_than}",
                               arg=[selector, list(rgb)], timeout=15_000)


def test_reports_page_draws_a_chart_per_report(
        browser: Any, live_server: Any, live_world: ServedWorld,
        service_manager: Any) -> None:
    world = live_world
    for side, outcome in ((world.north, Outcome.FAULT_CONFIRMED),
                          (world.south, Outcome.NO_FAULT_FOUND)):
        ticket_transition(ticket=side.ticket, to="triaged", actor=None, now=world.now)
        ticket_transition(ticket=side.ticket, to="resolved", actor=None, outcome=outcome,
                          now=world.now)
    # An open critical episode puts north on the at-risk list.
    alert_ingest(event=f.alert_event("cmp-n1", at=world.now, severity="critical",
                                     failure_mode="seal leak"))
    for name, viewport in (("desk", {"width": 1280, "height": 900}),
                           ("phone", {"width": 390, "height": 844})):
        errors: list[str] = []
        context, page = desk_page(browser, live_server.url, errors,
                                  username="manager", viewport=viewport, is_mobile=name == "phone")
        page.goto(f"{live_server.url}/desk/reports/")
        for chart in ("sla-resolution", "sla-response", "mtbf", "precision", "risk"):
            sel = f"[data-testid=chart-{chart}]"
            page.wait_for_selector(f"{sel} .uplot canvas")
            assert int(page.get_attribute(sel, "data-drawn") or 0) > 0, chart
        assert _pixels(page, "[data-testid=chart-precision]", BLUE_RGB) > 100
        assert _pixels(page, "[data-testid=chart-mtbf]", BLUE_RGB) > 100
        assert _pixels(page, "[data-testid=chart-risk]", (0xB7, 0x79, 0x1F)) > 50
        assert page.inner_text("[data-testid=sla-met-pct]") == "100.0 %"
        if name == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=ARTIFACTS / f"reports-{name}.png", full_page=True)
        assert errors == []
        context.close()


def test_dashboard_fleet_chart_redraws_when_an_alert_arrives(
        browser: Any, live_server: Any, live_world: ServedWorld,
        desk_agent: Any, settings: Any) -> None:
    world = live_world
    settings.AFTERCARE_DASHBOARD_POLL_S = 0.5
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport={"width": 1280, "height": 900})
    fleet = "[data-testid=fleet-chart]"
    page.wait_for_selector(f"{fleet} .uplot canvas")
    assert page.get_attribute(f"{fleet} li[data-key=critical]", "data-total") == "0"
    assert page.get_attribute(f"{fleet} li[data-key=warning]", "data-total") == "4"
    assert _pixels(page, fleet, BAD_RGB) == 0
    page.screenshot(path=ARTIFACTS / "desk-fleet-before.png", full_page=True)
    url_before = page.url
    alert_ingest(event=f.alert_event("cmp-s1", at=world.now, severity="critical",
                                     failure_mode="seal leak"))
    page.wait_for_selector(f"{fleet} li[data-key=critical][data-total='1']", timeout=15_000)
    assert page.get_attribute(f"{fleet} li[data-key=warning]", "data-total") == "3"
    page.wait_for_selector(f"{fleet} .uplot canvas")
    # The severity chart redraws on the same poll but may finish after the fleet legend
    # changed: wait for its pixels (a rehearsal run read it mid-redraw), then assert.
    for chart in (fleet, "[data-testid=severity-chart]"):
        _wait_pixels(page, chart, BAD_RGB, 50)
    assert _pixels(page, fleet, BAD_RGB) > 50  # the critical bar is on the canvas
    assert _pixels(page, "[data-testid=severity-chart]", BAD_RGB) > 50
    assert page.url == url_before
    assert int(page.get_attribute("#dashboard-panel", "data-poll-count") or 0) >= 1
    page.screenshot(path=ARTIFACTS / "desk-fleet-after.png", full_page=True)
    assert errors == []
    context.close()
