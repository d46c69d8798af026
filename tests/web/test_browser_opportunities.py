"""The sales pipeline at the desk in real Chromium (issue 16, item 4): open an opportunity from
the account page, move it to propose, draft its quote with an equipment and a service line,
send it from the offer page; once the customer accepts, the opportunity is won; the forecast
page draws its charts. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.offers import offer_decide
from service_crm.services.opportunities import opportunity_create
from tests.support.web import ARTIFACTS
from tests.support.web import browser_login as _login
from tests.web.test_browser_a11y import AXE, _violations

pytestmark = [pytest.mark.browser, pytest.mark.db]

BLUE = """(sel) => {
  const c = document.querySelector(sel + " canvas");
  if (!c) { return -1; }
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - 0x0b) < 6 && Math.abs(d[i + 1] - 0x6b) < 6
        && Math.abs(d[i + 2] - 0xcb) < 6 && d[i + 3] > 200) { n++; }
  }
  return n;
}"""


def test_desk_opens_prices_and_wins_an_opportunity(
        browser: Any, live_server: Any, live_world: Any, desk_agent: Any,
        customer_user: Any) -> None:
    world, base = live_world, live_server.url
    # Another open opportunity, so the forecast has a bar after this one is won.
    opportunity_create(account=world.south.account, title="Pump retrofit", kind="retrofit",
                       value=Decimal("8000"), actor=desk_agent,
                       expected_close=world.now.date() + dt.timedelta(days=30))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, base, "desk")
    page.wait_for_url(f"{base}/desk/")

    page.goto(f"{base}/desk/accounts/{world.north.account.pk}/")
    page.click("[data-testid=opportunity-new]")
    page.fill("input[name=title]", "Second compressor for the new line")
    page.select_option("select[name=kind]", "new_equipment")
    page.fill("input[name=value]", "25000")
    page.fill("input[name=expected_close]", str(world.now.date() + dt.timedelta(days=45)))
    page.click("[data-testid=opportunity-create]")
    page.wait_for_selector("[data-testid=opportunity-stage]")
    opp = m.Opportunity.objects.get(account=world.north.account)
    assert page.url == f"{base}/desk/opportunities/{opp.pk}/"
    assert page.inner_text("[data-testid=opportunity-weighted]") == "2500.00 EUR"

    page.click("[data-testid=move-propose]")
    page.wait_for_selector("text=is in propose now")
    assert page.inner_text("[data-testid=opportunity-stage]") == "Propose"

    page.select_option("select[name=line-0-kind]", "equipment")
    page.fill("input[name=line-0-description]", "Screw compressor SK-22")
    page.fill("input[name=line-0-quantity]", "1")
    page.fill("input[name=line-0-unit_price]", "21000")
    page.select_option("select[name=line-1-kind]", "service")
    page.fill("input[name=line-1-description]", "Installation and commissioning")
    page.fill("input[name=line-1-quantity]", "2")
    page.fill("input[name=line-1-unit_price]", "1500")
    page.click("[data-testid=quote-create]")
    page.wait_for_selector("[data-testid=offer-opportunity]")
    offer = m.Offer.objects.get(opportunity=opp)
    assert page.url == f"{base}/desk/offers/{offer.pk}/"
    assert page.inner_text("[data-testid=offer-total]") == "24,000.00 EUR"
    page.click("[data-testid=offer-send]")
    page.wait_for_selector("[data-testid=offer-sent]")

    offer_decide(offer=offer, accepted=True, actor=customer_user, po_reference="PO-31")
    page.click("[data-testid=offer-opportunity]")
    page.wait_for_selector("[data-testid=opportunity-stage]")
    assert page.inner_text("[data-testid=opportunity-stage]") == "Won"
    assert page.inner_text("[data-testid=opportunity-value]") == "24000.00 EUR"
    assert "opportunity.won" in page.inner_text("[data-testid=opportunity-history]")
    page.screenshot(path=ARTIFACTS / "desk-opportunity-won.png", full_page=True)

    page.goto(f"{base}/desk/opportunities/forecast/")
    for chart in ("month", "stage"):
        sel = f"[data-testid=chart-forecast-{chart}]"
        page.wait_for_selector(f"{sel} .uplot canvas")
        assert int(page.get_attribute(sel, "data-drawn") or 0) > 0, chart
        assert int(page.evaluate(BLUE, sel)) > 50, chart
    assert page.inner_text("[data-testid=forecast-weighted-EUR]") == "800.00 EUR"
    if AXE.exists():  # axe is injected, so not under the app's CSP: a context of its own
        checked: dict[str, list[str]] = {}
        axe_ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        axe_page = axe_ctx.new_page()
        _login(axe_page, base, "desk")
        axe_page.wait_for_url(f"{base}/desk/")
        other = m.Opportunity.objects.get(account=world.south.account)
        for url in (f"/desk/opportunities/{other.pk}/", "/desk/opportunities/forecast/",
                    "/desk/opportunities/"):
            axe_page.goto(base + url)
            checked[url] = _violations(axe_page)
        assert all(not bad for bad in checked.values()), checked
        axe_ctx.close()
    page.screenshot(path=ARTIFACTS / "desk-forecast.png", full_page=True)
    assert errors == []
    context.close()
