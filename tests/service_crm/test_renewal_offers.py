"""Offers the automation drafts (issue 16, item 2): a contract near its end gets its renewal
offer once; the uncovered work of a job becomes an offer instead of an invoice line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import (
    OfferLineKind,
    OfferStatus,
    RenewalStatus,
)
from service_crm.services.billing import invoice_drafts_build
from service_crm.services.housekeeping import housekeeping_run
from service_crm.services.offers import offer_decide, offer_send
from service_crm.services.renewal_offers import (
    offer_create_for_uncovered_work,
    renewal_offers_draft_due,
)
from tests import factories as f
from tests.support.crm import completed_job
from tests.support.world import NOW, World
from web.roles import Role, assign_role

pytestmark = [pytest.mark.db, pytest.mark.django_db]
TODAY = NOW.date()
H = dt.timedelta(hours=1)


def _ending_in(world: World, days: int, **kw: Any) -> m.MaintenanceContract:
    return world.cover_by_contract(start=TODAY - dt.timedelta(days=300),
                                   end=TODAY + dt.timedelta(days=days), **kw)


def test_contract_near_its_end_gets_one_renewal_offer(world: World) -> None:
    contract = _ending_in(world, 45)
    report = housekeeping_run(now=NOW)
    assert report.renewal_offers_drafted == 1
    offer = m.Offer.objects.get(renews=contract)
    assert offer.status == OfferStatus.DRAFT  # the desk checks and sends it
    assert [ln.kind for ln in offer.lines.all()] == [OfferLineKind.RENEWAL]
    contract.refresh_from_db()
    assert contract.renewal_status == RenewalStatus.OFFERED
    assert m.AuditLog.objects.filter(action="offer.draft", actor_label="automation").count() == 1
    # Idempotent: later passes, and the offer being declined, draft no second one.
    assert renewal_offers_draft_due(now=NOW + H) == 0
    offer_send(offer=offer, actor=None, now=NOW)
    offer_decide(offer=offer, accepted=False, actor=None, now=NOW + H)
    assert renewal_offers_draft_due(now=NOW + 2 * H) == 0
    assert m.Offer.objects.filter(renews=contract).count() == 1


def test_no_renewal_offer_for_auto_renewing_far_or_lapsed_contracts(world: World,
                                                                     settings: Any) -> None:
    auto = _ending_in(world, 30, auto_renew=True)
    far = _ending_in(world, 100)
    lapsed = _ending_in(world, 10)
    m.MaintenanceContract.objects.filter(pk=lapsed.pk).update(
        renewal_status=RenewalStatus.LAPSED)
    assert renewal_offers_draft_due(now=NOW) == 0
    assert not m.Offer.objects.filter(renews__in=[auto, far, lapsed]).exists()
    assert renewal_offers_draft_due(now=NOW + dt.timedelta(days=45)) == 1  # far comes near
    settings.AFTERCARE_RENEWAL_OFFER_DAYS = 0
    _ending_in(world, 20)
    assert renewal_offers_draft_due(now=NOW) == 0  # switched off


def _desk() -> Any:
    user = f.UserFactory(username="desk2")
    assign_role(user=user, role=Role.DESK_AGENT)
    return f.fresh(user)


def test_uncovered_work_becomes_an_offer_instead_of_an_invoice(world: World) -> None:
    wo = completed_job(world)  # no contract: part and labour billable
    desk = _desk()
    offer = offer_create_for_uncovered_work(work_order=wo, actor=desk, now=NOW + 3 * H)
    assert [(ln.kind, ln.quantity, ln.unit_price) for ln in offer.lines.order_by("pk")] == [
        (OfferLineKind.PART, Decimal("1.00"), Decimal("84.50")),
        (OfferLineKind.LABOUR, Decimal("1.00"), Decimal("95.00"))]
    assert (offer.account_id, offer.asset_id, offer.created_by_id) == (
        world.account.pk, world.asset.pk, desk.pk)
    assert m.WorkOrderCharge.objects.filter(offer=offer).count() == 2
    assert invoice_drafts_build(now=NOW + 4 * H) == 0  # quoted lines are not invoiced too
    assert not m.Invoice.objects.exists()
    with pytest.raises(ValidationError) as err:
        offer_create_for_uncovered_work(work_order=wo, actor=desk, now=NOW + 4 * H)
    assert "work_order" in err.value.message_dict
    assert m.AuditLog.objects.filter(action="offer.draft", actor_label="desk2").count() == 1


def test_only_office_staff_quote_uncovered_work(world: World) -> None:
    wo = completed_job(world)
    nobody = f.UserFactory(username="nobody")
    with pytest.raises(ValidationError) as err:
        offer_create_for_uncovered_work(work_order=wo, actor=nobody, now=NOW + 3 * H)
    assert "actor" in err.value.message_dict
    assert invoice_drafts_build(now=NOW + 4 * H) == 2  # still billed as usual
