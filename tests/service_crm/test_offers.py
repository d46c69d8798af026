"""Offers: consent, discount approval, decisions, expiry and renewals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import OfferStatus, RenewalStatus
from service_crm.services.alerts import alert_ingest
from service_crm.services.offers import (
    offer_approve,
    offer_create_renewal,
    offer_decide,
    offer_expire_due,
    offer_request_approval,
    offer_send,
    offer_set_discount,
)
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


@pytest.fixture
def offer(world: World) -> m.Offer:
    return m.Offer.objects.get(pk=alert_ingest(event=make_event(), now=NOW).offer_id)


def test_offer_is_emailed_only_to_consenting_contacts(
        world: World, offer: m.Offer, django_capture_on_commit_callbacks) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sent = offer_send(offer=offer, actor=None, now=NOW)
    assert sent.status == OfferStatus.SENT
    assert [e.to for e in mail.outbox] == [[world.buyer.email]]
    assert list(sent.sent_to.all()) == [world.buyer]


def test_offer_without_any_consenting_contact_is_not_sent(world: World, offer: m.Offer) -> None:
    m.Contact.objects.update(offer_consent=False)
    with pytest.raises(ValidationError) as err:
        offer_send(offer=offer, actor=None, now=NOW)
    assert "sent_to" in err.value.message_dict
    assert m.Offer.objects.get(pk=offer.pk).status == OfferStatus.DRAFT


def test_discount_above_threshold_needs_manager_approval(
        world: World, offer: m.Offer, desk_agent: object, manager: object) -> None:
    offer_set_discount(offer=offer, discount_pct=Decimal("15"), actor=None, now=NOW)
    with pytest.raises(ValidationError) as err:
        offer_send(offer=offer, actor=None, now=NOW)
    assert "discount_pct" in err.value.message_dict
    offer_request_approval(offer=offer, actor=None, now=NOW)
    with pytest.raises(ValidationError) as err:
        offer_approve(offer=offer, approver=desk_agent, now=NOW)  # type: ignore[arg-type]
    assert "approved_by" in err.value.message_dict
    offer_approve(offer=offer, approver=manager, now=NOW)  # type: ignore[arg-type]
    assert offer_send(offer=offer, actor=None, now=NOW).status == OfferStatus.SENT


def test_discount_at_threshold_goes_out_without_approval(offer: m.Offer) -> None:
    offer_set_discount(offer=offer, discount_pct=Decimal("10"), actor=None, now=NOW)
    assert offer_send(offer=offer, actor=None, now=NOW).status == OfferStatus.SENT


def test_manager_cannot_approve_own_offer(world: World, manager: object) -> None:
    contract = world.cover_by_contract(end=(NOW + dt.timedelta(days=40)).date())
    offer = offer_create_renewal(contract=contract, actor=manager,  # type: ignore[arg-type]
                                 discount_pct=Decimal("20"), now=NOW)
    offer_request_approval(offer=offer, actor=None, now=NOW)
    with pytest.raises(ValidationError) as err:
        offer_approve(offer=offer, approver=manager, now=NOW)  # type: ignore[arg-type]
    assert "approved_by" in err.value.message_dict


def test_accept_and_expiry(world: World, offer: m.Offer) -> None:
    sent = offer_send(offer=offer, actor=None, now=NOW)
    assert offer_decide(offer=sent, accepted=True, actor=None, now=NOW).status == "accepted"
    with pytest.raises(ValidationError):
        offer_decide(offer=sent, accepted=False, actor=None, now=NOW)

    other = m.Offer.objects.get(pk=alert_ingest(
        event=make_event(failure_mode="valve_leak"), now=NOW).offer_id)
    offer_send(offer=other, actor=None, now=NOW)
    assert offer_expire_due(now=NOW + dt.timedelta(days=29)) == 0
    assert offer_expire_due(now=NOW + dt.timedelta(days=31)) == 1
    assert m.Offer.objects.get(pk=other.pk).status == OfferStatus.EXPIRED


def test_accepted_renewal_marks_contract_renewed(world: World) -> None:
    contract = world.cover_by_contract(end=(NOW + dt.timedelta(days=40)).date())
    offer = offer_create_renewal(contract=contract, actor=None, now=NOW)
    assert m.MaintenanceContract.objects.get().renewal_status == RenewalStatus.OFFERED
    assert offer.lines.get().unit_price == contract.price
    offer_send(offer=offer, actor=None, now=NOW)
    offer_decide(offer=offer, accepted=True, actor=None, now=NOW)
    assert m.MaintenanceContract.objects.get().renewal_status == RenewalStatus.RENEWED
    with pytest.raises(ValidationError) as err:
        offer_create_renewal(contract=contract, actor=None, now=NOW)
    assert "renews" in err.value.message_dict
