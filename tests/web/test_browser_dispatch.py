"""The dispatch board in real Chromium (issue 15, item 6): a waiting job is booked from the
board with the one engineer who fits it, and shows up in that engineer's day; on a 390x844
phone the week grid scrolls inside its card, not the page. Screenshots in
test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from tests.support.web import ARTIFACTS, session_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]


@pytest.mark.parametrize(("name", "viewport"), [
    ("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})])
def test_book_a_waiting_job_from_the_board(browser: Any, live_server: Any, live_world: ServedWorld,
                                           desk_agent: Any, name: str,
                                           viewport: dict[str, int]) -> None:
    world = live_world
    base = live_server.url
    errors: list[str] = []
    context, page = session_page(browser, base, desk_agent, errors,
                                 viewport=viewport, is_mobile=name == "phone")
    page.goto(f"{base}/desk/dispatch/?region=north")
    row = f"[data-testid=dispatch-waiting] article[data-wo='{world.north.work_order.pk}']"
    options = page.eval_on_selector_all(f"{row} select[name=engineer] option",
                                        "els => els.map(e => e.textContent)")
    assert options == ["Jana Petersen"]
    start = (world.now + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0)
    page.fill(f"{row} input[name=start]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill(f"{row} input[name=end]", (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.click(f"{row} button[type=submit]")
    page.wait_for_selector("text=booked with Jana Petersen")
    grid_row = f"[data-testid=dispatch-grid] tr[data-engineer='{world.north.engineer.pk}']"
    assert "09:00–11:00" in page.inner_text(grid_row)
    page.screenshot(path=ARTIFACTS / f"desk-dispatch-{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert m.WorkOrder.objects.get(pk=world.north.work_order.pk).status == "scheduled"
    assert errors == []
    context.close()
