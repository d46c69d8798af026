"""The offer journey in real Chromium (issue 15, item 3): the desk drafts an offer from an
episode and sends it; the customer, on a 390x844 phone, sees the total in euros, accepts with
a purchase-order number after confirming; the desk reads the answer on the offer and the
account timeline. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service_crm import models as m
from tests.support.web import ARTIFACTS, session_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]


def test_desk_offer_to_customer_acceptance_and_back(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        customer_user: Any) -> None:
    world = live_world
    base = live_server.url
    errors: list[str] = []

    desk_ctx, desk = session_page(browser, base, desk_agent, errors,
                                  viewport={"width": 1280, "height": 900})
    desk.goto(f"{base}/desk/episodes/{world.north.episode.pk}/")
    desk.click("[data-testid=episode-offer-create]")
    desk.wait_for_selector("[data-testid=offer-status]")
    offer = m.Offer.objects.get(episode=world.north.episode)
    assert desk.url == f"{base}/desk/offers/{offer.pk}/"
    desk.fill("input[name=discount_pct]", "5")
    desk.click("text=Set discount")
    desk.wait_for_selector("text=discount set to 5")
    offer.refresh_from_db()
    gross = sum((ln.total for ln in offer.lines.all()), Decimal(0))
    total = gross - (gross * Decimal("0.05")).quantize(Decimal("0.01"))
    assert desk.inner_text("[data-testid=offer-total]") == f"{total:,.2f} EUR"
    desk.click("[data-testid=offer-send]")
    desk.wait_for_selector("[data-testid=offer-sent]")
    desk.screenshot(path=ARTIFACTS / "desk-offer-sent.png", full_page=True)
    assert m.Offer.objects.get(pk=offer.pk).status == "sent"

    phone_ctx, phone = session_page(browser, base, customer_user, errors,
                                    viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(f"{base}/portal/")
    phone.click(f"a[href$='/portal/offers/{offer.pk}/']")
    # The total is on the phone's screen, not hidden like a fourth column used to be.
    assert phone.is_visible("[data-testid=offer-total]")
    assert phone.inner_text("[data-testid=offer-total]") == f"{total:,.2f} EUR"
    phone.fill("input[name=po_reference]", "PO-2026-118")
    phone.click("text=Accept offer")
    phone.wait_for_selector("[data-testid=offer-confirm]")
    assert f"{total:,.2f} EUR" in phone.inner_text("[data-testid=offer-confirm]")
    phone.screenshot(path=ARTIFACTS / "portal-offer-confirm-phone.png", full_page=True)
    assert m.Offer.objects.get(pk=offer.pk).status == "sent"
    phone.click("[data-testid=offer-confirm-button]")
    phone.wait_for_selector("[data-testid=order-number]")
    phone.screenshot(path=ARTIFACTS / "portal-offer-accepted-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert m.SalesOrder.objects.get(offer=offer).po_reference == "PO-2026-118"

    desk.goto(f"{base}/desk/accounts/{world.north.account.pk}/")
    timeline = desk.inner_text("ol.timeline")
    assert f"Offer {offer.number} accepted by Petra Einkauf (portal), PO PO-2026-118" in timeline
    assert "Customer" in timeline
    desk.screenshot(path=ARTIFACTS / "desk-account-offer-accepted.png", full_page=True)
    desk.goto(f"{base}/desk/offers/{offer.pk}/")
    assert "PO-2026-118" in desk.inner_text("[data-testid=offer-outcome]")
    assert errors == []
    desk_ctx.close()
    phone_ctx.close()
