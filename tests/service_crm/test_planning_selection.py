"""A planning pass looks only at the contracts it has work for (issue 16, item 6): those that
changed since they were planned, or have a new due date coming into the horizon, not every
contract on every pass."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.models.choices import AssetStatus, PlannedVisitStatus, RenewalStatus
from service_crm.services.planned_maintenance import (
    contract_ids_due_for_planning,
    planned_visits_generate,
)
from tests import factories as f
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
TODAY = NOW.date()  # Monday 23 Nov 2026
LAST = TODAY + dt.timedelta(days=30)


def _due() -> list[int]:
    return contract_ids_due_for_planning(today=TODAY, last=LAST)


def _contract(world: World, **kw: Any) -> m.MaintenanceContract:
    """From 1 Nov 2026 every 30 days: due 16 Nov, 16 Dec, 15 Jan, ..."""
    kw = {"start": dt.date(2026, 11, 1), "end": dt.date(2027, 10, 31), "interval_days": 30} | kw
    return world.cover_by_contract(**kw)


def test_a_planned_contract_is_not_looked_at_again_until_something_is_due(world: World) -> None:
    contract = _contract(world)
    assert _due() == [contract.pk]  # never planned
    planned_visits_generate(now=NOW)
    assert _due() == []
    contract.refresh_from_db()
    assert contract.visits_planned_through == LAST
    # 16 Dec was planned; 15 Jan enters a 30-day horizon on 16 Dec, not before.
    assert contract_ids_due_for_planning(today=dt.date(2026, 12, 15),
                                         last=dt.date(2027, 1, 14)) == []
    assert contract_ids_due_for_planning(today=dt.date(2026, 12, 16),
                                         last=dt.date(2027, 1, 15)) == [contract.pk]
    # a longer horizon reaches it at once
    assert contract_ids_due_for_planning(today=TODAY, last=dt.date(2027, 1, 20)) == [contract.pk]


def test_every_change_the_plan_depends_on_selects_the_contract(world: World) -> None:
    contract = _contract(world)
    planned_visits_generate(now=NOW)
    changes = [
        lambda: m.MaintenanceContract.objects.filter(pk=contract.pk).update(interval_days=60),
        lambda: m.MaintenanceContract.objects.filter(pk=contract.pk).update(
            end=dt.date(2027, 12, 31)),
        lambda: m.MaintenanceContract.objects.filter(pk=contract.pk).update(
            start=dt.date(2026, 10, 1)),
        lambda: m.MaintenanceContract.objects.filter(pk=contract.pk).update(
            renewal_status=RenewalStatus.LAPSED),
        lambda: contract.assets.add(f.AssetFactory(site=world.asset.site,
                                                   equipment_model=world.asset.equipment_model)),
        lambda: m.Asset.objects.filter(pk=world.asset.pk).update(
            status=AssetStatus.DECOMMISSIONED),
    ]
    for change in changes:
        change()
        assert _due() == [contract.pk]
        planned_visits_generate(now=NOW)  # brought in line, and remembered
        assert _due() == []


def test_a_contract_that_ended_with_nothing_planned_is_left_alone(world: World) -> None:
    _contract(world, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))
    assert _due() == []


def test_lapse_cancels_the_planned_visit_through_the_selection(world: World) -> None:
    contract = _contract(world)
    planned_visits_generate(now=NOW)
    m.MaintenanceContract.objects.filter(pk=contract.pk).update(
        renewal_status=RenewalStatus.LAPSED)
    assert planned_visits_generate(now=NOW).cancelled == 1
    assert m.PlannedVisit.objects.get().status == PlannedVisitStatus.CANCELLED


def test_contracts_without_a_visit_plan_are_only_planned_once(world: World) -> None:
    contract = _contract(world, interval_days=None, visits_per_year=0)
    assert _due() == [contract.pk]
    assert planned_visits_generate(now=NOW).planned == 0
    assert _due() == []
