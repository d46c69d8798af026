"""The customer portal on a 390x844 phone in real Chromium (issue 15, item 5): Health and SLA
are on screen, an asset opens its health-trend chart, a ticket its SLA and visits; axe-core
finds no serious or critical violation on the new pages. Screenshots in
test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests import factories as f
from tests.support.web import ARTIFACTS, session_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def _serious(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def test_portal_on_a_phone(browser: Any, live_server: Any, live_world: ServedWorld,
                           customer_user: Any) -> None:
    world = live_world
    base = live_server.url
    t0 = world.now.replace(minute=0, second=0) - dt.timedelta(hours=30)
    f.store_rollup_1h("cmp-n1", "temperature_c",
                      [(t0 + dt.timedelta(hours=i), 21.0 + i / 8) for i in range(30)])
    errors: list[str] = []
    # bypass_csp: axe is injected as an inline script, which the site's CSP refuses.
    context, page = session_page(browser, base, customer_user, errors,
                                 viewport={"width": 390, "height": 844}, is_mobile=True,
                                 bypass_csp=True)
    page.goto(f"{base}/portal/")
    assert page.is_visible("[data-testid=portal-assets] .badge")  # Health, on the phone
    assert page.is_visible("[data-testid=portal-tickets] td:nth-child(3)")  # SLA
    page.screenshot(path=ARTIFACTS / "portal-home-phone.png", full_page=True)
    violations = {"/portal/": _serious(page)} if AXE.exists() else {}

    page.click(f"a[href='/portal/assets/{world.north.asset.pk}/']")
    page.wait_for_selector(".chart .uplot canvas")
    assert "temperature_c" in page.inner_text(".chart")
    assert "being handled" in page.inner_text("[data-testid=asset-health]")
    page.screenshot(path=ARTIFACTS / "portal-asset-phone.png", full_page=True)
    if AXE.exists():
        violations["asset"] = _serious(page)

    page.click(f"a[href='/portal/tickets/{world.north.ticket.pk}/']")
    page.wait_for_selector("[data-testid=ticket-sla]")
    assert "Resolution by" in page.inner_text("[data-testid=ticket-sla]")
    assert str(world.north.work_order) in page.inner_text("[data-testid=ticket-visits]")
    page.screenshot(path=ARTIFACTS / "portal-ticket-phone.png", full_page=True)
    if AXE.exists():
        violations["ticket"] = _serious(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    assert all(not v for v in violations.values()), violations
    context.close()
