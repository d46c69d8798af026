"""The demo-data command."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from service_crm import models as m
from service_crm.models.choices import ContractTier
from service_crm.selectors.coverage import coverage_at

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_seed_builds_a_fleet_matching_the_simulator_ids_and_is_rerunnable() -> None:
    out = io.StringIO()
    call_command("seed_demo", "--assets", "48", stdout=out)
    assert m.Asset.objects.exclude(equipment_model__name="Process line PL-1").count() == 48
    keys = set(m.DeviceLink.objects.values_list("device_key", flat=True))
    assert {"cmp-0001", "pmp-0001", "chl-0001", "cnc-0001", "cnc-0012"} <= keys
    assert set(m.MaintenanceContract.objects.values_list("tier", flat=True)) == \
        set(ContractTier.values)
    assert m.Engineer.objects.values("region").distinct().count() == 4
    assert m.Stock.objects.filter(quantity__gt=0).exists()
    assert m.Account.objects.values("industry").distinct().count() >= 5
    coverages = {coverage_at(asset=a, on=a.install_date).coverage for a in m.Asset.objects.all()}
    assert "warranty" in coverages
    assert "desk / desk-demo" in " ".join(out.getvalue().split())
    assert authenticate(username="manager", password="manager-demo") is not None
    before = [m.Asset.objects.count(), m.Account.objects.count(), m.Contact.objects.count(),
              m.MaintenanceContract.objects.count(), m.SparePart.objects.count()]
    call_command("seed_demo", "--assets", "48", stdout=io.StringIO())
    assert before == [m.Asset.objects.count(), m.Account.objects.count(),
                      m.Contact.objects.count(), m.MaintenanceContract.objects.count(),
                      m.SparePart.objects.count()]


def test_prefixes_and_count_are_parameters() -> None:
    call_command("seed_demo", "--assets", "6", "--prefixes", "pmp", stdout=io.StringIO())
    assert sorted(m.DeviceLink.objects.values_list("device_key", flat=True)) == \
        [f"pmp-{i:04d}" for i in range(1, 7)]
    with pytest.raises(CommandError, match="unknown"):
        call_command("seed_demo", "--prefixes", "xyz", stdout=io.StringIO())


def test_seed_demo_fills_the_sales_pipeline_once() -> None:
    from service_crm.selectors.opportunities import opportunity_forecast_get
    from tests.support.personas import user_with_role
    from web.roles import Role

    out = io.StringIO()
    call_command("seed_demo", "--assets", "48", stdout=out)
    stages = set(m.Opportunity.objects.values_list("stage", flat=True))
    assert stages == {"qualify", "propose", "negotiate", "won", "lost"}
    assert set(m.Opportunity.objects.values_list("source", flat=True)) == {
        "desk", "at_risk_account", "ageing_asset"}
    won = m.Opportunity.objects.get(stage="won")
    assert won.quotes.get().status == "accepted"
    fc = opportunity_forecast_get(user=user_with_role("viewer", Role.DESK_AGENT))
    assert len(fc.by_month) >= 3
    assert fc.totals[0].weighted > 0
    assert "pipeline: 7 opportunities" in out.getvalue()
    n = m.Opportunity.objects.count()
    call_command("seed_demo", "--assets", "48", stdout=io.StringIO())
    assert m.Opportunity.objects.count() == n


def test_seed_demo_gives_the_hygiene_pages_something_to_show() -> None:
    from service_crm.selectors.data_quality import data_quality_report
    from tests.support.personas import user_with_role
    from web.roles import Role

    out = io.StringIO()
    call_command("seed_demo", "--assets", "48", stdout=out)
    assert "master data: line LINE-" in out.getvalue()
    line = m.Asset.objects.get(equipment_model__name="Process line PL-1")
    assert line.children.count() >= 2
    checks = {c.key: c for c in data_quality_report(
        user=user_with_role("auditor", Role.DESK_AGENT))}
    assert {x.label for x in checks["account_duplicate"].findings} == {"NORDWERK FOODS"}
    assert any("Technicall at Hanse" in x.label for x in checks["contact_duplicate"].findings)
    assert checks["contact_invalid"].count == 1
    assert checks["account_no_site"].count == 1
    assert checks["asset_parent_other_site"].count >= 1
    again = io.StringIO()
    call_command("seed_demo", "--assets", "48", stdout=again)
    assert "master data" not in again.getvalue()
    assert m.Account.objects.filter(name="NORDWERK FOODS").count() == 1
