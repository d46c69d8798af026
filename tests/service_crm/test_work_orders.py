"""Work orders: scheduling, completion, stock, outcomes and precision."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import Outcome, TicketStatus, WorkOrderStatus
from service_crm.selectors.outcomes import alert_precision_list
from service_crm.services.alerts import alert_ingest
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
H = dt.timedelta(hours=1)


def _started(world: World, **event_kw: object) -> m.WorkOrder:
    res = alert_ingest(event=make_event(**event_kw), now=NOW)  # type: ignore[arg-type]
    wo = m.WorkOrder.objects.get(pk=res.work_order_id)
    work_order_schedule(work_order=wo, engineer=world.engineer, start=NOW + H,
                        end=NOW + 4 * H, actor=None, now=NOW)
    return work_order_start(work_order=wo, actor=None, now=NOW + H)


@pytest.fixture
def covered(world: World) -> World:
    world.cover_by_contract()
    return world


def test_schedule_moves_ticket_to_scheduled(covered: World) -> None:
    res = alert_ingest(event=make_event(), now=NOW)
    wo = work_order_schedule(work_order=m.WorkOrder.objects.get(pk=res.work_order_id),
                             engineer=covered.engineer, start=NOW + H, end=NOW + 3 * H,
                             actor=None, now=NOW)
    assert wo.status == WorkOrderStatus.SCHEDULED
    assert m.Ticket.objects.get(pk=res.ticket_id).status == TicketStatus.SCHEDULED


def test_engineer_cannot_be_double_booked(covered: World) -> None:
    _started(covered)
    res = alert_ingest(event=make_event(device="cmp-0002"), now=NOW)  # unclaimed: no WO
    assert res.work_order_id is None
    other_asset = f.AssetFactory(site=covered.site, equipment_model=covered.asset.equipment_model,
                                 device="cmp-0003")
    m.MaintenanceContract.objects.get().assets.add(other_asset)
    res = alert_ingest(event=make_event(device="cmp-0003"), now=NOW)
    wo = m.WorkOrder.objects.get(pk=res.work_order_id)
    with pytest.raises(ValidationError) as err:
        work_order_schedule(work_order=wo, engineer=covered.engineer, start=NOW + 2 * H,
                            end=NOW + 5 * H, actor=None, now=NOW)
    assert "engineer" in err.value.message_dict


def test_complete_takes_parts_from_stock_and_resolves(covered: World) -> None:
    wo = _started(covered)
    work_order_complete(work_order=wo, actor=None, report="Replaced both bearings",
                        outcome=Outcome.FAULT_CONFIRMED, time_spent_min=140, now=NOW + 4 * H,
                        parts=[PartUsed(covered.part, covered.warehouse, 2)])
    assert m.Stock.objects.get().quantity == 3
    t = m.Ticket.objects.get()
    assert t.status == TicketStatus.RESOLVED
    assert t.outcome == Outcome.FAULT_CONFIRMED
    assert m.AlertOutcome.objects.get().detector == "zscore"


def test_not_enough_stock_rolls_back_everything(covered: World) -> None:
    wo = _started(covered)
    audit_before = m.AuditLog.objects.count()
    with pytest.raises(ValidationError) as err:
        work_order_complete(work_order=wo, actor=None, report="x", time_spent_min=10,
                            outcome=Outcome.FAULT_CONFIRMED, now=NOW + 4 * H,
                            parts=[PartUsed(covered.part, covered.warehouse, 1),
                                   PartUsed(covered.part, covered.warehouse, 9)])
    assert "parts" in err.value.message_dict
    assert m.Stock.objects.get().quantity == 5  # the first line was rolled back too
    assert m.WorkOrder.objects.get().status == WorkOrderStatus.IN_PROGRESS
    assert not m.WorkOrderPart.objects.exists()
    assert m.AuditLog.objects.count() == audit_before


def test_complete_validates_every_field_at_once(covered: World) -> None:
    wo = _started(covered)
    with pytest.raises(ValidationError) as err:
        work_order_complete(work_order=wo, actor=None, report="", outcome="",
                            time_spent_min=0, now=NOW)
    assert {"completion_report", "time_spent_min"} <= set(err.value.message_dict)


def test_precision_per_detector_and_failure_mode(covered: World) -> None:
    wo = _started(covered, detector="zscore")
    work_order_complete(work_order=wo, actor=None, report="ok", time_spent_min=30,
                        outcome=Outcome.FAULT_CONFIRMED, now=NOW + 4 * H)
    # A second asset's alert turned out to be nothing.
    a2 = f.AssetFactory(site=covered.site, equipment_model=covered.asset.equipment_model,
                        device="cmp-0002")
    m.MaintenanceContract.objects.get().assets.add(a2)
    res = alert_ingest(event=make_event(device="cmp-0002", detector="zscore"), now=NOW)
    wo2 = m.WorkOrder.objects.get(pk=res.work_order_id)
    work_order_schedule(work_order=wo2, engineer=covered.engineer, start=NOW + 5 * H,
                        end=NOW + 6 * H, actor=None, now=NOW)
    work_order_start(work_order=wo2, actor=None, now=NOW + 5 * H)
    work_order_complete(work_order=wo2, actor=None, report="nothing found", time_spent_min=30,
                        outcome=Outcome.NO_FAULT_FOUND, now=NOW + 6 * H)
    [p] = alert_precision_list(detector="zscore")
    assert (p.failure_mode_code, p.confirmed, p.no_fault_found) == ("bearing_wear", 1, 1)
    assert p.precision == 0.5
    assert alert_precision_list(detector="isolation_forest") == []


def test_engineer_from_another_region_cannot_be_scheduled(covered: World) -> None:
    res = alert_ingest(event=make_event(), now=NOW)
    south = f.EngineerFactory(region="south")
    with pytest.raises(ValidationError) as err:
        work_order_schedule(work_order=m.WorkOrder.objects.get(pk=res.work_order_id),
                            engineer=south, start=NOW + H, end=NOW + 3 * H, actor=None, now=NOW)
    assert "south" in err.value.message_dict["engineer"][0]
