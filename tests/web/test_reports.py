"""Reports (SLA compliance, MTBF per equipment model, alert precision per detector, at-risk
accounts) and the dashboard's fleet-health figures: the selectors' arithmetic and scoping,
and the pages over HTTP with their permission sweep."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client

from service_crm import models as m
from service_crm.models.choices import Outcome
from service_crm.selectors import access, reports
from service_crm.selectors.dashboard import dashboard_counts_get
from service_crm.services.alerts import alert_ingest
from service_crm.services.tickets import ticket_check_sla, ticket_transition
from tests import factories as f
from tests.support.world import ServedWorld, Side
from web.roles import Role, assign_role

pytestmark = pytest.mark.db

H = dt.timedelta(hours=1)


def _resolve(side: Side, *, outcome: str, at: dt.datetime) -> m.Ticket:
    ticket_transition(ticket=side.ticket, to="triaged", actor=None, now=at - H)
    return ticket_transition(ticket=side.ticket, to="resolved", actor=None, outcome=outcome,
                             now=at)


def _verdicts(world: ServedWorld) -> dt.datetime:
    """North resolved in time with the fault confirmed, south late with no fault found;
    returns a `now` after both."""
    north_due = world.north.ticket.resolution_due
    south_due = world.south.ticket.resolution_due
    assert north_due is not None
    assert south_due is not None
    _resolve(world.north, outcome=Outcome.FAULT_CONFIRMED, at=world.now + 2 * H)
    _resolve(world.south, outcome=Outcome.NO_FAULT_FOUND, at=south_due + H)
    return max(south_due, world.now) + 2 * H


def _chart(page: str, element_id: str) -> Any:
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      page, re.S)
    assert found, element_id
    return json.loads(found.group(1))


# --- SLA compliance -----------------------------------------------------------------------

def test_sla_compliance_counts_met_and_breached_per_week(world: ServedWorld,
        desk_agent: Any) -> None:
    now = _verdicts(world)
    sla = reports.sla_compliance_by_week(user=desk_agent, now=now, days=90)
    assert (sla.resolution_total, sla.resolution_breached) == (2, 1)
    assert sla.resolution_met_pct == 50.0
    assert all(w.week_start.weekday() == 0 for w in sla.weeks)
    assert 13 <= len(sla.weeks) <= 15
    south_resolved = m.Ticket.objects.get(pk=world.south.ticket.pk).resolved_at
    assert south_resolved is not None
    [late_week] = [w for w in sla.weeks if w.resolution_breached]
    assert late_week.week_start <= south_resolved.date() < late_week.week_start + dt.timedelta(7)


def test_sla_compliance_is_scoped_to_the_engineers_region(
        world: ServedWorld, field_engineer: Any) -> None:
    now = _verdicts(world)
    sla = reports.sla_compliance_by_week(user=field_engineer, now=now)
    assert (sla.resolution_total, sla.resolution_breached) == (1, 0)


def test_sla_compliance_empty_and_bad_window(world: ServedWorld, desk_agent: Any) -> None:
    sla = reports.sla_compliance_by_week(user=desk_agent, now=world.now)
    assert sla.resolution_met_pct is None
    assert sla.response_met_pct is None
    assert sum(w.resolution_met for w in sla.weeks) == 0
    with pytest.raises(ValueError, match="days"):
        reports.sla_compliance_by_week(user=desk_agent, now=world.now, days=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        reports.sla_compliance_by_week(user=desk_agent, now=world.now.replace(tzinfo=None))


# --- MTBF ---------------------------------------------------------------------------------

def test_mtbf_is_operating_hours_per_confirmed_failure(world: ServedWorld, desk_agent: Any) -> None:
    now = _verdicts(world)
    rows = {r.equipment_model_id: r for r in
            reports.mtbf_by_equipment_model(user=desk_agent, now=now, days=365)}
    north = rows[world.north.asset.equipment_model_id]
    south = rows[world.south.asset.equipment_model_id]
    # Two assets each, installed long before the window: 365 days in service each.
    assert north.assets == 2
    assert north.in_service_h == pytest.approx(2 * 365 * 24)
    assert north.failures == 1  # the south verdict was "no fault found"
    ticket = m.Ticket.objects.get(pk=world.north.ticket.pk)
    assert ticket.resolved_at is not None
    repair_h = (ticket.resolved_at - ticket.opened_at).total_seconds() / 3600
    assert north.mtbf_h == pytest.approx(2 * 365 * 24 - repair_h)
    assert south.failures == 0
    assert south.mtbf_h is None
    # The least reliable model comes first; a model without failures last.
    ordered = reports.mtbf_by_equipment_model(user=desk_agent, now=now)
    assert ordered[0].equipment_model_id == north.equipment_model_id


def test_mtbf_counts_recently_installed_and_skips_decommissioned(
        world: ServedWorld, desk_agent: Any) -> None:
    model = world.north.asset.equipment_model
    f.AssetFactory(site=world.north.asset.site, equipment_model=model, device="new-n1",
                   install_date=world.now.date() - dt.timedelta(days=10))
    f.AssetFactory(site=world.north.asset.site, equipment_model=model, device="old-n1",
                   status="decommissioned")
    [row] = [r for r in reports.mtbf_by_equipment_model(user=desk_agent, now=world.now)
             if r.equipment_model_id == model.pk]
    assert row.assets == 3
    assert row.in_service_h == pytest.approx((2 * 365 + 10) * 24)


def test_mtbf_scoped_to_the_engineers_region(world: ServedWorld, field_engineer: Any) -> None:
    ids = {r.equipment_model_id for r in
           reports.mtbf_by_equipment_model(user=field_engineer, now=world.now)}
    assert ids == {world.north.asset.equipment_model_id}


# --- precision ----------------------------------------------------------------------------

def test_precision_per_detector_is_scoped(world: ServedWorld, desk_agent: Any,
                                          field_engineer: Any) -> None:
    _verdicts(world)
    [zscore] = reports.alert_precision_by_detector(user=desk_agent)
    assert (zscore.detector, zscore.confirmed, zscore.no_fault_found) == ("zscore", 1, 1)
    assert zscore.precision_pct == 50.0
    [mine] = reports.alert_precision_by_detector(user=field_engineer)
    assert (mine.confirmed, mine.no_fault_found) == (1, 0)


# --- at-risk accounts ---------------------------------------------------------------------

def test_at_risk_accounts_ranked_with_reasons(world: ServedWorld, desk_agent: Any) -> None:
    south_due = world.south.ticket.resolution_due
    assert south_due is not None
    ticket_check_sla(now=south_due + H)  # both compressor tickets breach their resolution
    alert_ingest(event=f.alert_event("cmp-n1", at=world.now, severity="critical",
                                     failure_mode="seal leak"), now=world.now)
    f.ContractFactory(account=world.north.account, start=world.now.date() - dt.timedelta(300),
                      end=world.now.date() + dt.timedelta(days=30))
    risks = reports.account_list_at_risk(user=desk_agent, now=south_due + 2 * H)
    assert [r.account_id for r in risks] == [world.north.account.pk, world.south.account.pk]
    north, south = risks
    assert (north.sla_breaches_90d, north.open_critical_episodes, north.expiring_contracts,
            north.score) == (1, 1, 1, 10 + 15 + 20)
    assert "1 open critical episode" in north.reasons
    assert "contract ends within 90 days, not renewed" in north.reasons
    assert (south.sla_breaches_90d, south.score) == (1, 10)
    assert south.reasons == ["1 SLA breach in 90 days"]


def test_dashboard_tile_counts_the_reports_at_risk_accounts(world: ServedWorld, desk_agent: Any,
                                                             settings: Any) -> None:
    settings.AFTERCARE_DASHBOARD_CACHE_S = 0
    assert dashboard_counts_get(user=desk_agent, now=world.now)["accounts_at_risk"] == 0
    for account in (world.north.account, world.south.account):
        f.ContractFactory(account=account, start=world.now.date() - dt.timedelta(300),
                          end=world.now.date() + dt.timedelta(days=30))
    listed = reports.account_list_at_risk(user=desk_agent, now=world.now)
    assert len(listed) == 2
    assert dashboard_counts_get(user=desk_agent, now=world.now)["accounts_at_risk"] == 2
    assert reports.account_count_at_risk(user=desk_agent, now=world.now) == 2


def test_at_risk_repeated_failures_count_per_asset(world: ServedWorld, desk_agent: Any) -> None:
    now = _verdicts(world)
    # A second confirmed failure on the north compressor (a phone ticket, resolved).
    t = m.Ticket.objects.create(account=world.north.account, asset=world.north.asset,
                                coverage="contract", source="phone", summary="Noisy again",
                                opened_at=now)
    ticket_transition(ticket=t, to="triaged", actor=None, now=now + H)
    ticket_transition(ticket=t, to="resolved", actor=None, outcome=Outcome.FAULT_CONFIRMED,
                      now=now + 2 * H)
    [north] = [r for r in reports.account_list_at_risk(user=desk_agent, now=now + 3 * H)
               if r.account_id == world.north.account.pk]
    assert north.repeat_failure_assets == 1
    assert north.points["repeat"] == 10


def test_no_risk_signal_no_row_and_scoped(world: ServedWorld, desk_agent: Any,
                                          customer_user: Any) -> None:
    assert reports.account_list_at_risk(user=desk_agent, now=world.now) == []
    f.ContractFactory(account=world.south.account, start=world.now.date() - dt.timedelta(300),
                      end=world.now.date() + dt.timedelta(days=30))
    assert [r.account_id for r in reports.account_list_at_risk(
        user=desk_agent, now=world.now)] == [world.south.account.pk]
    assert reports.account_list_at_risk(user=customer_user, now=world.now) == []
    with pytest.raises(ValueError, match="limit"):
        reports.account_list_at_risk(user=desk_agent, now=world.now, limit=0)


# --- fleet health -------------------------------------------------------------------------

def test_fleet_health_states(world: ServedWorld, desk_agent: Any, field_engineer: Any) -> None:
    assert reports.fleet_health_get(user=desk_agent).counts == {
        "ok": 0, "warning": 4, "critical": 0, "device_problem": 0, "offline": 0}
    alert_ingest(event=f.alert_event("cmp-s1", at=world.now, severity="critical",
                                     failure_mode="seal leak"))
    site = world.north.asset.site
    model = world.north.asset.equipment_model
    f.AssetFactory(site=site, equipment_model=model, device="quiet-n1")
    f.store_device("quiet-n1")
    f.AssetFactory(site=site, equipment_model=model, device="gone-n1")
    f.store_device("gone-n1", state="offline")
    f.AssetFactory(site=site, equipment_model=model, device="flaky-n1")
    f.store_device("flaky-n1")
    sensor = dataclasses.replace(f.alert_event("flaky-n1", at=world.now,
                                               failure_mode="sensor stuck"), kind="device")
    alert_ingest(event=sensor)
    assert reports.fleet_health_get(user=desk_agent).counts == {
        "ok": 1, "warning": 3, "critical": 1, "device_problem": 1, "offline": 1}
    # The north engineer sees the north assets only.
    assert reports.fleet_health_get(user=field_engineer).total == 5
    # A device that never said it went offline but fell silent: the detector's "device
    # offline" alert makes it offline for the desk, until the alert clears.
    f.AssetFactory(site=site, equipment_model=model, device="mute-n1")
    f.store_device("mute-n1")
    silent = dataclasses.replace(f.alert_event("mute-n1", at=world.now,
                                               failure_mode="device offline"), kind="device")
    alert_ingest(event=silent)
    assert reports.fleet_health_get(user=desk_agent).counts["offline"] == 2
    assert access.device_counts_for_user(user=desk_agent)["offline"] == 2
    alert_ingest(event=dataclasses.replace(silent, revision=2, state="clear"))
    assert reports.fleet_health_get(user=desk_agent).counts["offline"] == 1
    assert access.device_counts_for_user(user=desk_agent)["offline"] == 1


# --- pages --------------------------------------------------------------------------------

def test_reports_page_shows_charts_and_definitions(world: ServedWorld, service_manager: Any,
                                                   browser_client: Any) -> None:
    # Both resolved in time, as the page reads them at the real clock's now.
    _resolve(world.north, outcome=Outcome.FAULT_CONFIRMED, at=world.now)
    _resolve(world.south, outcome=Outcome.NO_FAULT_FOUND, at=world.now)
    page = browser_client(service_manager).get("/desk/reports/").content.decode()
    for chart in ("chart-sla-resolution", "chart-sla-response", "chart-mtbf",
                  "chart-precision", "chart-risk"):
        assert f'data-bars="{chart}"' in page
    precision = _chart(page, "chart-precision")
    assert precision["labels"] == ["zscore"]
    assert precision["series"][0]["values"] == [50.0]
    resolution = _chart(page, "chart-sla-resolution")
    assert [sum(s["values"]) for s in resolution["series"]] == [2, 0]
    assert '<span class="figure" data-testid="sla-met-pct">100.0 %</span>' in page
    mtbf = _chart(page, "chart-mtbf")
    assert mtbf["labels"] == [world.north.asset.equipment_model.name]
    assert "operating hours ÷ confirmed failures" in page
    assert "Risk score 0–100" in page


def test_dashboard_panel_has_fleet_chart_data(world: ServedWorld, desk_agent: Any,
                                              browser_client: Any) -> None:
    panel = browser_client(desk_agent).get("/desk/panel/").content.decode()
    fleet = _chart(panel, "fleet-chart-data")
    assert dict(zip(fleet["keys"], fleet["series"][0]["values"], strict=True)) == {
        "ok": 0, "warning": 4, "critical": 0, "device_problem": 0, "offline": 0}
    severity = _chart(panel, "severity-chart-data")
    assert severity["series"][0]["values"] == [0, 4, 0]


@pytest.mark.parametrize("persona", ["customer_user", "other_customer_user", "field_engineer",
                                     "other_region_engineer"])
def test_reports_and_panel_closed_to_customers_and_engineers(
        world: ServedWorld, browser_client: Any, request: pytest.FixtureRequest,
        persona: str) -> None:
    client = browser_client(request.getfixturevalue(persona))
    for url in ("/desk/reports/", "/desk/panel/", "/desk/"):
        assert client.get(url).status_code == 403, url


def test_reports_need_login(client: Client, db: None) -> None:
    response = client.get("/desk/reports/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_reports_open_to_sales_and_service_managers(world: ServedWorld, service_manager: Any,
                                                    browser_client: Any) -> None:
    sales = f.UserFactory(username="sales")
    assign_role(user=sales, role=Role.SALES_MANAGER)
    for user in (service_manager, f.fresh(sales)):
        assert browser_client(user).get("/desk/reports/").status_code == 200
