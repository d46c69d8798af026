"""The sales pipeline (issue 16, item 4): opportunities move through their stages with a
probability by stage (overridable); a quote with equipment and service lines goes through the
offer approval rules and wins the opportunity when accepted; the weighted forecast; starting
from an account at risk or an ageing asset; who may see and change what; all audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from service_crm import models as m
from service_crm.models.choices import OfferLineKind, OfferStatus, OpportunityStage
from service_crm.selectors.opportunities import (
    asset_age_get,
    asset_list_ageing,
    opportunity_forecast_get,
    opportunity_get_for_user,
    opportunity_list_for_user,
)
from service_crm.services import offers as offer_services
from service_crm.services.opportunities import (
    QuoteLine,
    opportunity_create,
    opportunity_move,
    opportunity_quote_create,
    opportunity_start_from_account,
    opportunity_start_from_asset,
    opportunity_update,
)
from tests import factories as f
from tests.support.crm import NOW
from tests.support.personas import user_with_role
from web.roles import Role

pytestmark = [pytest.mark.db, pytest.mark.django_db]
TODAY = NOW.date()
S = OpportunityStage


def _opp(world: Any, actor: Any, value: str = "10000", close: dt.date | None = None,
         **kw: Any) -> m.Opportunity:
    return opportunity_create(account=world.account, title="Second compressor",
                              kind="new_equipment", value=Decimal(value),
                              expected_close=close or TODAY + dt.timedelta(days=30),
                              actor=actor, now=NOW, **kw)


def test_stages_move_by_the_rules_with_default_probabilities(world: Any,
                                                              desk_agent: Any) -> None:
    opp = _opp(world, desk_agent)
    assert (opp.stage, opp.probability_pct, opp.probability_manual) == (S.QUALIFY, 10, False)
    assert opp.currency == "EUR"
    assert opp.owner_id == desk_agent.pk
    with pytest.raises(ValidationError) as err:
        opportunity_move(opportunity=opp, to=S.NEGOTIATE, actor=desk_agent, now=NOW)
    assert "moves to propose, lost, not negotiate" in str(err.value)
    opp = opportunity_move(opportunity=opp, to=S.PROPOSE, actor=desk_agent, now=NOW)
    assert (opp.stage, opp.probability_pct) == (S.PROPOSE, 30)
    opp = opportunity_move(opportunity=opp, to=S.NEGOTIATE, actor=desk_agent, now=NOW,
                           probability_pct=75)
    assert (opp.stage, opp.probability_pct, opp.probability_manual) == (S.NEGOTIATE, 75, True)
    with pytest.raises(ValidationError) as err:
        opportunity_move(opportunity=opp, to=S.WON, actor=desk_agent, now=NOW)
    assert "accepts its quote" in str(err.value)
    with pytest.raises(ValidationError) as err:
        opportunity_move(opportunity=opp, to=S.LOST, actor=desk_agent, now=NOW)
    assert "lost_reason" in err.value.message_dict
    opp = opportunity_move(opportunity=opp, to=S.LOST, actor=desk_agent, now=NOW,
                           lost_reason="Bought from a competitor")
    assert (opp.stage, opp.probability_pct, opp.closed_at) == (S.LOST, 0, NOW)
    with pytest.raises(ValidationError):  # lost is final
        opportunity_move(opportunity=opp, to=S.QUALIFY, actor=desk_agent, now=NOW)
    actions = list(m.AuditLog.objects.filter(object_type="opportunity").order_by("pk")
                   .values_list("action", flat=True))
    assert actions == ["opportunity.create", "opportunity.stage", "opportunity.stage",
                       "opportunity.stage"]
    assert m.Interaction.objects.filter(
        account=world.account, summary__contains="moved from negotiate to lost").exists()
    lost = m.OutboxEvent.objects.get(topic="opportunity.lost")
    assert (lost.payload["opportunity"], lost.payload["lost_reason"]) == (
        opp.number, "Bought from a competitor")


def test_probability_override_and_reset(world: Any, desk_agent: Any) -> None:
    opp = _opp(world, desk_agent, probability_pct=40)
    assert (opp.probability_pct, opp.probability_manual) == (40, True)
    opp = opportunity_update(opportunity=opp, actor=desk_agent, probability_pct=55, now=NOW)
    assert opp.probability_pct == 55
    with pytest.raises(ValidationError) as err:
        opportunity_update(opportunity=opp, actor=desk_agent, probability_pct=120, now=NOW)
    assert "probability_pct" in err.value.message_dict
    opp = opportunity_update(opportunity=opp, actor=desk_agent, probability_reset=True, now=NOW)
    assert (opp.probability_pct, opp.probability_manual) == (10, False)
    before = m.AuditLog.objects.count()
    opportunity_update(opportunity=opp, actor=desk_agent, value=opp.value, now=NOW)
    assert m.AuditLog.objects.count() == before  # nothing changed, nothing audited


def test_forecast_weights_value_by_probability_per_month_and_stage(
        world: Any, desk_agent: Any) -> None:
    a = _opp(world, desk_agent, "10000", dt.date(2026, 12, 15))                 # 10 % -> 1000
    b = _opp(world, desk_agent, "20000", dt.date(2026, 12, 20))
    opportunity_move(opportunity=b, to=S.PROPOSE, actor=desk_agent, now=NOW)     # 30 % -> 6000
    c = _opp(world, desk_agent, "3333.33", dt.date(2027, 1, 5), probability_pct=33)  # 1100.00
    d = _opp(world, desk_agent, "5000", dt.date(2027, 1, 9), currency="USD")      # 10 % -> 500
    lost = _opp(world, desk_agent, "99999", dt.date(2026, 12, 1))
    opportunity_move(opportunity=lost, to=S.LOST, actor=desk_agent, now=NOW, lost_reason="x")
    fc = opportunity_forecast_get(user=desk_agent)
    assert [(r.label, r.currency, r.count, r.value, r.weighted) for r in fc.by_month] == [
        ("2026-12", "EUR", 2, Decimal("30000.00"), Decimal("7000.00")),
        ("2027-01", "EUR", 1, Decimal("3333.33"), Decimal("1100.00")),
        ("2027-01", "USD", 1, Decimal("5000.00"), Decimal("500.00"))]
    assert [(r.label, r.currency, r.count, r.weighted) for r in fc.by_stage] == [
        ("qualify", "EUR", 2, Decimal("2100.00")), ("qualify", "USD", 1, Decimal("500.00")),
        ("propose", "EUR", 1, Decimal("6000.00"))]
    assert [(r.currency, r.count, r.value, r.weighted) for r in fc.totals] == [
        ("EUR", 3, Decimal("33333.33"), Decimal("8100.00")),
        ("USD", 1, Decimal("5000.00"), Decimal("500.00"))]
    assert (a.weighted_value, c.weighted_value, d.weighted_value) == (
        Decimal("1000.00"), Decimal("1100.00"), Decimal("500.00"))
    nobody = opportunity_forecast_get(user=f.UserFactory(username="nobody"))
    assert (nobody.by_month, nobody.by_stage, nobody.totals) == ([], [], [])


def test_quote_goes_through_the_offer_approval_and_wins_when_accepted(
        world: Any, desk_agent: Any) -> None:
    boss = user_with_role("boss", Role.SERVICE_MANAGER)
    opp = _opp(world, desk_agent, asset=world.asset)
    lines = [QuoteLine(OfferLineKind.EQUIPMENT, "Screw compressor SK-22", Decimal(1),
                       Decimal("18000")),
             QuoteLine(OfferLineKind.SERVICE, "Installation and commissioning", Decimal(2),
                       Decimal("1000"))]
    offer = opportunity_quote_create(opportunity=opp, lines=lines, actor=desk_agent, now=NOW,
                                     discount_pct=Decimal("15"))
    opp.refresh_from_db()
    assert offer.opportunity_id == opp.pk
    assert offer.status == OfferStatus.DRAFT
    assert sorted(offer.lines.values_list("kind", flat=True)) == ["equipment", "service"]
    # 20 000 - 15 % = 17 000: the opportunity is valued at its quote, and is proposed now.
    assert (opp.value, opp.stage, opp.probability_pct) == (Decimal("17000.00"), S.PROPOSE, 30)
    with pytest.raises(ValidationError) as err:  # one open quote at a time
        opportunity_quote_create(opportunity=opp, lines=lines, actor=desk_agent, now=NOW)
    assert "still draft" in str(err.value)
    with pytest.raises(ValidationError) as err:  # the offer rule: 15 % needs a manager
        offer_services.offer_send(offer=offer, actor=desk_agent, now=NOW)
    assert "discount_pct" in err.value.message_dict
    offer_services.offer_request_approval(offer=offer, actor=desk_agent, now=NOW)
    offer_services.offer_approve(offer=offer, approver=boss, now=NOW)
    offer_services.offer_send(offer=offer, actor=desk_agent, now=NOW)
    offer_services.offer_decide(offer=offer, accepted=True, actor=desk_agent, now=NOW,
                                po_reference="PO-77")
    opp.refresh_from_db()
    assert (opp.stage, opp.probability_pct, opp.value, opp.closed_at) == (
        S.WON, 100, Decimal("17000.00"), NOW)
    assert m.SalesOrder.objects.filter(offer=offer, po_reference="PO-77").exists()
    assert m.AuditLog.objects.filter(action="opportunity.won", object_id=str(opp.pk)).exists()
    assert m.Interaction.objects.filter(
        summary__startswith=f"Opportunity {opp.number} won: quote {offer.number}").exists()
    won = m.OutboxEvent.objects.get(topic="opportunity.won")  # for the ERP / sales system
    assert (won.payload["opportunity"], won.payload["offer"], won.payload["value"]) == (
        opp.number, offer.number, "17000.00")
    assert won.payload["asset_serial"] == world.asset.serial


def test_declined_quote_leaves_the_opportunity_open_and_quote_rules(
        world: Any, desk_agent: Any) -> None:
    opp = _opp(world, desk_agent)
    with pytest.raises(ValidationError) as err:
        opportunity_quote_create(opportunity=opp, actor=desk_agent, now=NOW, lines=[
            QuoteLine(OfferLineKind.PART, "Bearing", Decimal(1), Decimal(10))])
    assert "equipment or service" in str(err.value)
    with pytest.raises(ValidationError):
        opportunity_quote_create(opportunity=opp, actor=desk_agent, now=NOW, lines=[])
    usd = _opp(world, desk_agent, currency="USD")
    with pytest.raises(ValidationError) as err:
        opportunity_quote_create(opportunity=usd, actor=desk_agent, now=NOW, lines=[
            QuoteLine(OfferLineKind.SERVICE, "Retrofit", Decimal(1), Decimal(10))])
    assert "currency" in err.value.message_dict
    offer = opportunity_quote_create(opportunity=opp, actor=desk_agent, now=NOW, lines=[
        QuoteLine(OfferLineKind.SERVICE, "Retrofit kit fitted", Decimal(1), Decimal(4000))])
    offer_services.offer_send(offer=offer, actor=desk_agent, now=NOW)
    offer_services.offer_decide(offer=offer, accepted=False, actor=desk_agent, now=NOW)
    opp.refresh_from_db()
    assert opp.stage == S.PROPOSE
    assert opp.is_open
    second = opportunity_quote_create(opportunity=opp, actor=desk_agent, now=NOW, lines=[
        QuoteLine(OfferLineKind.SERVICE, "Retrofit kit fitted", Decimal(1), Decimal(3600))])
    assert list(opp.quotes.order_by("pk")) == [offer, second]


def test_start_from_an_account_at_risk(world: Any, desk_agent: Any) -> None:
    with pytest.raises(ValidationError) as err:
        opportunity_start_from_account(account=world.account, actor=desk_agent, now=NOW)
    assert "no risk signal" in str(err.value)
    world.cover_by_contract(end=TODAY + dt.timedelta(days=30), auto_renew=False)
    opp = opportunity_start_from_account(account=world.account, actor=desk_agent, now=NOW,
                                         value=Decimal("4800"))
    assert (opp.source, opp.kind, opp.stage, opp.owner_id) == (
        "at_risk_account", "contract", S.QUALIFY, desk_agent.pk)
    assert opp.source_note == "at risk (score 20): contract ends within 90 days, not renewed"
    assert opp.expected_close == TODAY + dt.timedelta(days=90)
    with pytest.raises(ValidationError) as err:  # one open at a time
        opportunity_start_from_account(account=world.account, actor=desk_agent, now=NOW)
    assert f"{opp.number} for this account at risk is still open" in str(err.value)


def test_start_from_an_ageing_asset(world: Any, desk_agent: Any) -> None:
    asset = world.asset  # installed 2023-01-10: 3.9 years of 15
    assert not asset_age_get(asset=asset, on=TODAY).ageing
    assert not asset_list_ageing(user=desk_agent, on=TODAY).exists()
    with pytest.raises(ValidationError) as err:
        opportunity_start_from_asset(asset=asset, actor=desk_agent, now=NOW)
    assert "is not ageing: 3.9 of 15 years' expected life (26 %)" in str(err.value)
    model = asset.equipment_model
    model.expected_life_years = 4
    model.save()
    assert asset_age_get(asset=asset, on=TODAY).ageing  # 3.9 >= 0.8 x 4
    # The list's SQL draws the line on the same day as asset_age_get: 0.8 x 4 x 365.25 days.
    first_day = asset.install_date + dt.timedelta(days=1169)
    for day, ageing in ((first_day - dt.timedelta(days=1), False), (first_day, True)):
        assert asset_age_get(asset=asset, on=day).ageing is ageing
        assert list(asset_list_ageing(user=desk_agent, on=day)) == ([asset] if ageing else [])
    assert not asset_list_ageing(user=f.UserFactory(username="nobody"), on=TODAY).exists()
    with pytest.raises(ValidationError):
        opportunity_start_from_asset(asset=asset, actor=desk_agent, now=NOW, kind="contract")
    opp = opportunity_start_from_asset(asset=asset, actor=desk_agent, now=NOW, kind="retrofit")
    assert (opp.asset_id, opp.account_id, opp.kind, opp.source) == (
        asset.pk, world.account.pk, "retrofit", "ageing_asset")
    assert opp.title.startswith(f"Retrofit for {asset.serial}")
    assert not asset_list_ageing(user=desk_agent, on=TODAY).exists()  # it has one now
    with pytest.raises(ValidationError):
        opportunity_start_from_asset(asset=asset, actor=desk_agent, now=NOW)
    m.Asset.objects.filter(pk=asset.pk).update(status="decommissioned")
    asset.refresh_from_db()
    assert not asset_age_get(asset=asset, on=TODAY).ageing


def test_who_may_see_and_change(world: Any, desk_agent: Any) -> None:
    other_agent = user_with_role("desk2", Role.DESK_AGENT)
    sales = user_with_role("sales", Role.SALES_MANAGER)
    engineer = f.UserFactory(username="eng")
    m.Engineer.objects.filter(pk=world.engineer.pk).update(user=engineer)
    opp = _opp(world, desk_agent)
    assert list(opportunity_list_for_user(user=other_agent)) == [opp]
    for outsider in (f.fresh(engineer), f.UserFactory(username="nobody")):
        assert not opportunity_list_for_user(user=outsider).exists()
        with pytest.raises(Http404):
            opportunity_get_for_user(user=outsider, pk=opp.pk)
    with pytest.raises(ValidationError) as err:  # not the owner, not a manager
        opportunity_move(opportunity=opp, to=S.PROPOSE, actor=other_agent, now=NOW)
    assert "owner" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        opportunity_update(opportunity=opp, actor=desk_agent, owner=other_agent, now=NOW)
    assert "Only a manager" in str(err.value)
    with pytest.raises(ValidationError) as err:
        _opp(world, other_agent, owner=desk_agent)
    assert "Only a manager" in str(err.value)
    with pytest.raises(ValidationError) as err:
        _opp(world, f.fresh(engineer))
    assert "actor" in err.value.message_dict
    opportunity_move(opportunity=opp, to=S.PROPOSE, actor=sales, now=NOW)  # a manager may
    opp = opportunity_update(opportunity=opp, actor=sales, owner=other_agent, now=NOW)
    assert opp.owner_id == other_agent.pk
    entry = m.AuditLog.objects.filter(action="opportunity.update").get()
    assert (entry.actor_label, entry.before["owner"], entry.after["owner"]) == (
        "sales", desk_agent.pk, other_agent.pk)
