"""Renewal opportunities ranked by account health."""

from __future__ import annotations

import datetime as dt

import pytest

from service_crm import models as m
from service_crm.models.choices import RenewalStatus
from service_crm.selectors.accounts import contract_list_renewal_opportunities
from service_crm.services.alerts import alert_ingest
from service_crm.services.contracts import contract_flag_renewals
from tests import factories as f
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_contracts_near_end_ranked_at_risk_first(world: World) -> None:
    ending = (NOW + dt.timedelta(days=30)).date()
    troubled = world.cover_by_contract(end=ending)
    # An open critical episode on Nordwerk: 15 points off its health (the at-risk report's
    # definition, the one every page uses).
    alert_ingest(event=make_event(severity="critical"), now=NOW)
    calm_account = f.AccountFactory(name="Calm Water AG")
    calm = f.ContractFactory(account=calm_account, end=ending)
    f.ContractFactory(account=calm_account, end=(NOW + dt.timedelta(days=200)).date())

    ranked = contract_list_renewal_opportunities(now=NOW, within_days=90)
    assert [o.contract for o in ranked] == [troubled, calm]
    # Both lose 20 for a contract ending unrenewed; Nordwerk 15 more for the critical episode.
    assert (ranked[0].health.score, ranked[1].health.score) == (65, 80)
    assert [o.contract for o in contract_list_renewal_opportunities(
        now=NOW, at_risk_first=False)] == [calm, troubled]


def test_flagging_renewals_is_idempotent_and_updates_health(world: World) -> None:
    contract = world.cover_by_contract(end=(NOW + dt.timedelta(days=30)).date())
    alert_ingest(event=make_event(), now=NOW)
    contract_flag_renewals(now=NOW)
    contract_flag_renewals(now=NOW)
    assert m.MaintenanceContract.objects.get(pk=contract.pk).renewal_status == \
        RenewalStatus.OPPORTUNITY
    assert m.Interaction.objects.filter(summary__contains="renewal opportunity").count() == 1
    # 100 - 20 for the contract ending unrenewed (a warning alert is not at-risk signal),
    # worked out as every page works it out and noted on the timeline.
    assert m.Interaction.objects.filter(summary__contains="(account health 80)").count() == 1
