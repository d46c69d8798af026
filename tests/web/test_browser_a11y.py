"""Accessibility (issue 15, proof): axe-core (npm package pinned in tests/web/axe/, `npm ci`
there) run in real Chromium on the desk, field and portal pages this issue touched, on a
desktop and a phone, and on the pages its later items added: no serious or critical
violations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from service_crm.services.work_orders import work_order_schedule, work_order_start
from tests import factories as f
from tests.support.web import browser_login as _login
from tests.support.web import session_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def _violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _scan(page: Any, base: str, urls: list[str], found: dict[str, list[str]], *,
          all_ok: bool = False) -> None:
    """Open each page (its chart loaded, if it has one) and note its serious violations;
    with `all_ok`, each must answer 200 (else error pages are checked too)."""
    for url in urls:
        response = page.goto(f"{base}{url}")
        assert response is not None
        assert not all_ok or response.status == 200, url
        if page.query_selector(".chart[data-telemetry-url]"):
            page.wait_for_selector(".chart[data-loaded='1']")
        bad = _violations(page)
        if bad:
            found[url] = bad


@pytest.fixture
def booked(live_world: ServedWorld, desk_agent: Any) -> Any:
    """The north work order booked five minutes from the world's now, for two hours (the
    test skips first where axe-core is not installed)."""
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing: run `npm ci` in tests/web/axe")
    world = live_world
    start = world.now + dt.timedelta(minutes=5)
    return work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                               start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)


VIEWPORTS = pytest.mark.parametrize(("name", "viewport"), [
    ("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})])


@VIEWPORTS
def test_pages_have_no_serious_accessibility_violations(
        browser: Any, live_server: Any, live_world: ServedWorld, booked: Any, desk_agent: Any,
        field_engineer: Any, customer_user: Any, name: str,
        viewport: dict[str, int]) -> None:
    world, wo = live_world, booked
    t0 = world.now.replace(minute=0, second=0) - dt.timedelta(hours=5)
    f.store_rollup_1h("cmp-n1", "temperature_c",
                      [(t0 + dt.timedelta(hours=i), 21.0 + i / 4) for i in range(5)])
    found: dict[str, list[str]] = {}
    # Playwright's script injection is an inline script: the page's CSP would refuse it.
    for who, pages in [
        ("desk", ["/desk/", f"/desk/assets/{world.north.asset.pk}/",
                  f"/desk/episodes/{world.north.episode.pk}/", "/desk/alerts/",
                  "/desk/search/?q=SN-", "/desk/tickets/?status=bogus",
                  f"/desk/tickets/{world.north.ticket.pk}/", f"/desk/work-orders/{wo.pk}/",
                  "/desk/accounts/", f"/desk/accounts/{world.north.account.pk}/",
                  "/desk/renewals/", "/desk/tickets/999999/",
                  "/desk/devices/cmp-n1/release/"]),
        ("jana", ["/field/", f"/field/work-orders/{wo.pk}/"]),
        ("nordwerk", ["/portal/"]),
    ]:
        context = browser.new_context(viewport=viewport, bypass_csp=True,
                                      is_mobile=name == "phone")
        page = context.new_page()
        _login(page, live_server.url, who)
        page.wait_for_load_state()
        _scan(page, live_server.url, pages, found)
        context.close()
    assert found == {}


# The pages issue 15's later items added: offer journey, portal asset and ticket, dispatch board,
# ticket list with bulk actions, job sheet with photos and the signature pad.
@VIEWPORTS
def test_later_pages_have_no_serious_accessibility_violations(
        browser: Any, live_server: Any, live_world: ServedWorld, booked: Any, desk_agent: Any,
        field_engineer: Any, customer_user: Any, name: str,
        viewport: dict[str, int]) -> None:
    world, wo = live_world, booked
    work_order_start(work_order=wo, actor=field_engineer)
    found: dict[str, list[str]] = {}
    for user, pages in [
        (desk_agent, ["/desk/dispatch/", "/desk/tickets/", f"/desk/offers/{world.north.offer.pk}/",
                      f"/desk/episodes/{world.north.episode.pk}/", "/desk/renewals/"]),
        (field_engineer, [f"/field/work-orders/{wo.pk}/"]),
        (customer_user, [f"/portal/offers/{world.north.offer.pk}/",
                         f"/portal/assets/{world.north.asset.pk}/",
                         f"/portal/tickets/{world.north.ticket.pk}/"]),
    ]:
        # bypass_csp: axe is injected as an inline script, which the site's CSP refuses.
        context, page = session_page(browser, live_server.url, user, None, viewport=viewport,
                                     bypass_csp=True, is_mobile=name == "phone")
        _scan(page, live_server.url, pages, found, all_ok=True)
        context.close()
    assert found == {}
