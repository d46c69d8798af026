"""The offer journey over HTTP (issue 15, item 3): the desk drafts an offer from an episode or a
contract up for renewal, prices and sends it; the email links the portal; the customer sees the
total in its currency, accepts with a purchase-order number after confirming (or declines);
the desk sees who answered, the order and the PO on the offer and the account timeline."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.core import mail

from service_crm import models as m
from tests import factories as f
from tests.support.personas import user as _user
from tests.support.world import ServedWorld
from web.roles import Role, assign_role

pytestmark = pytest.mark.db


def _expected_total(offer: m.Offer) -> Decimal:
    """Subtotal minus discount, each rounded half up to the cent as printed."""
    cent = Decimal("0.01")
    gross = sum((ln.quantity * ln.unit_price for ln in offer.lines.all()), Decimal(0))
    gross = gross.quantize(cent, ROUND_HALF_UP)
    return gross - (gross * offer.discount_pct / 100).quantize(cent, ROUND_HALF_UP)


def _money(d: Decimal) -> str:
    return f"{d:,.2f} EUR"


def _draft_from_covered_episode(world: ServedWorld, client: Any) -> m.Offer:
    response = client.post(f"/desk/episodes/{world.north.episode.pk}/offer/")
    assert response.status_code == 302
    offer = m.Offer.objects.get(episode=world.north.episode)
    assert response["Location"] == f"/desk/offers/{offer.pk}/"
    return offer


def test_desk_drafts_offer_from_episode_with_parts_and_labour(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    page = client.get(f"/desk/episodes/{world.north.episode.pk}/").content.decode()
    assert "Draft an offer for this repair" in page
    offer = _draft_from_covered_episode(world, client)
    kinds = sorted(offer.lines.values_list("kind", flat=True))
    # The asset is under contract: the repair's part and labour, no contract line.
    assert kinds == ["labour", "part"]
    assert offer.status == "draft"
    assert offer.created_by_id == desk_agent.pk
    audit = m.AuditLog.objects.get(action="offer.draft", object_id=str(offer.pk))
    assert audit.actor_id == desk_agent.pk
    page = client.get(f"/desk/offers/{offer.pk}/").content.decode()
    assert _money(_expected_total(offer)) in page
    assert f"drafted by {desk_agent.username}" in page


def test_uncovered_episode_offer_adds_a_contract_and_one_open_offer_per_episode(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    pump_episode = world.north.offer.episode
    assert pump_episode is not None
    refused = client.post(f"/desk/episodes/{pump_episode.pk}/offer/")
    assert refused.status_code == 400
    assert f"Offer {world.north.offer.number} for this episode is still sent" in (
        refused.content.decode())
    m.Offer.objects.filter(pk=world.north.offer.pk).update(status="declined")
    assert client.post(f"/desk/episodes/{pump_episode.pk}/offer/").status_code == 302
    fresh = m.Offer.objects.filter(episode=pump_episode, status="draft").get()
    assert "contract" in set(fresh.lines.values_list("kind", flat=True))


@pytest.mark.parametrize("who", ["customer_user", "field_engineer"])
def test_only_office_roles_draft_offers(world: ServedWorld, browser_client: Any, who: str,
                                        request: pytest.FixtureRequest) -> None:
    client = browser_client(request.getfixturevalue(who))
    assert client.post(f"/desk/episodes/{world.north.episode.pk}/offer/").status_code == 403
    assert not m.Offer.objects.filter(episode=world.north.episode).exists()


def test_sales_manager_drafts_and_discounts(world: ServedWorld, browser_client: Any) -> None:
    user = _user("sales")
    assign_role(user=user, role=Role.SALES_MANAGER)
    client = browser_client(f.fresh(user))
    offer = _draft_from_covered_episode(world, client)
    response = client.post(f"/desk/offers/{offer.pk}/discount/", {"discount_pct": "5"})
    assert response.status_code == 302
    offer.refresh_from_db()
    assert offer.discount_pct == Decimal("5.00")
    page = client.get(f"/desk/offers/{offer.pk}/").content.decode()
    gross = sum((ln.total for ln in offer.lines.all()), Decimal(0))
    discount = (gross * Decimal("0.05")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert f"\u2212{discount:,.2f} EUR" in page
    assert _money(_expected_total(offer)) in page


@pytest.mark.parametrize("value", ["-1", "101", "abc", ""])
def test_bad_discount_is_a_field_error(world: ServedWorld, desk_agent: Any, browser_client: Any,
                                       value: str) -> None:
    client = browser_client(desk_agent)
    offer = _draft_from_covered_episode(world, client)
    response = client.post(f"/desk/offers/{offer.pk}/discount/", {"discount_pct": value})
    assert response.status_code == 400
    assert response.context["discount_form"].errors["discount_pct"]
    assert m.Offer.objects.get(pk=offer.pk).discount_pct == 0


def test_sent_offer_discount_cannot_change(world: ServedWorld, desk_agent: Any,
                                           browser_client: Any) -> None:
    response = browser_client(desk_agent).post(
        f"/desk/offers/{world.north.offer.pk}/discount/", {"discount_pct": "3"})
    assert response.status_code == 400
    assert "Only a draft" in response.content.decode()


def test_sent_email_links_the_portal_and_states_the_total(
        world: ServedWorld, desk_agent: Any, browser_client: Any,
        django_capture_on_commit_callbacks: Any, settings: Any) -> None:
    settings.AFTERCARE_PUBLIC_URL = "https://service.example.com"
    client = browser_client(desk_agent)
    offer = _draft_from_covered_episode(world, client)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/desk/offers/{offer.pk}/send/").status_code == 302
    assert m.Offer.objects.get(pk=offer.pk).status == "sent"
    [email] = mail.outbox
    assert email.to == [world.north.buyer.email]
    assert f"https://service.example.com/portal/offers/{offer.pk}/" in email.body
    assert f"Total: {_money(_expected_total(offer))}" in email.body
    assert "purchase-order number" in email.body


def test_customer_sees_total_and_accepts_with_po_after_confirming(
        world: ServedWorld, customer_user: Any, desk_agent: Any, browser_client: Any) -> None:
    offer = world.north.offer
    client = browser_client(customer_user)
    page = client.get(f"/portal/offers/{offer.pk}/").content.decode()
    total = _money(_expected_total(offer))
    assert total in page
    assert "purchase-order number" in page
    url = f"/portal/offers/{offer.pk}/decide/"
    asked = client.post(url, {"accepted": "yes", "po_reference": "PO-4711"})
    assert asked.status_code == 200
    body = asked.content.decode()
    assert "Please confirm your order" in body
    assert total in body
    assert "PO-4711" in body
    assert m.Offer.objects.get(pk=offer.pk).status == "sent"  # nothing decided yet
    done = client.post(url, {"accepted": "yes", "po_reference": "PO-4711", "confirm": "on"})
    assert done.status_code == 302
    assert m.Offer.objects.get(pk=offer.pk).status == "accepted"
    order = m.SalesOrder.objects.get(offer=offer)
    assert order.po_reference == "PO-4711"
    page = client.get(f"/portal/offers/{offer.pk}/").content.decode()
    assert order.number in page
    # The desk: who answered, on the offer and on the account timeline.
    entry = m.Interaction.objects.filter(account=world.north.account,
                                         summary__contains="accepted").get()
    assert entry.summary == f"Offer {offer.number} accepted by Petra Einkauf (portal), PO PO-4711"
    assert entry.kind == "note"
    assert entry.contact_id == world.north.buyer.pk
    desk = browser_client(desk_agent)
    account_page = desk.get(f"/desk/accounts/{world.north.account.pk}/").content.decode()
    assert entry.summary in account_page
    assert '<span class="badge">Customer</span>' in account_page
    offer_page = desk.get(f"/desk/offers/{offer.pk}/").content.decode()
    assert "customer PO <strong>PO-4711</strong>" in offer_page


def test_too_long_po_number_is_refused_and_nothing_decided(
        world: ServedWorld, customer_user: Any, browser_client: Any) -> None:
    response = browser_client(customer_user).post(
        f"/portal/offers/{world.north.offer.pk}/decide/",
        {"accepted": "yes", "po_reference": "P" * 61, "confirm": "on"})
    assert response.status_code == 400
    assert response.context["form"].errors["po_reference"]
    assert m.Offer.objects.get(pk=world.north.offer.pk).status == "sent"


def test_answered_offer_cannot_be_answered_again(world: ServedWorld, customer_user: Any,
                                                 browser_client: Any) -> None:
    client = browser_client(customer_user)
    url = f"/portal/offers/{world.north.offer.pk}/decide/"
    assert client.post(url, {"accepted": "no", "confirm": "on"}).status_code == 302
    for data in ({"accepted": "yes"}, {"accepted": "yes", "confirm": "on"}):
        response = client.post(url, data)
        assert response.status_code == 400
    assert m.Offer.objects.get(pk=world.north.offer.pk).status == "declined"
    assert not m.SalesOrder.objects.filter(offer=world.north.offer).exists()


def test_renewal_offer_drafted_from_the_renewals_page(world: ServedWorld, desk_agent: Any,
                                                      browser_client: Any) -> None:
    ending = f.ContractFactory(account=world.north.account, auto_renew=False,
                               start=(world.now - dt.timedelta(days=330)).date(),
                               end=(world.now + dt.timedelta(days=30)).date())
    client = browser_client(desk_agent)
    page = client.get("/desk/renewals/").content.decode()
    assert f"/desk/contracts/{ending.pk}/renewal-offer/" in page
    response = client.post(f"/desk/contracts/{ending.pk}/renewal-offer/")
    assert response.status_code == 302
    offer = m.Offer.objects.get(renews=ending)
    assert response["Location"] == f"/desk/offers/{offer.pk}/"
    page = client.get("/desk/renewals/").content.decode()
    assert f"/desk/offers/{offer.pk}/" in page
    assert f"/desk/contracts/{ending.pk}/renewal-offer/" not in page
    # A second click (another tab) does not draft a second renewal.
    again = client.post(f"/desk/contracts/{ending.pk}/renewal-offer/", follow=True)
    assert f"Renewal offer {offer.number} for {ending.number} is still draft" in (
        again.content.decode())
    assert m.Offer.objects.filter(renews=ending).count() == 1


def test_customers_cannot_draft_renewal_offers(world: ServedWorld, customer_user: Any,
                                               browser_client: Any) -> None:
    own = m.MaintenanceContract.objects.filter(account=world.north.account).get()
    response = browser_client(customer_user).post(f"/desk/contracts/{own.pk}/renewal-offer/")
    assert response.status_code == 403
    assert not m.Offer.objects.filter(renews=own).exists()
