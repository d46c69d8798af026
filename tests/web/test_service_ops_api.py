"""API for contract execution and webhooks: planned visits, work-order charges and the webhook
delivery log with replay, over HTTP with tokens; each persona sees only its part."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from service_crm import models as m
from service_crm.models.choices import DeliveryStatus, Outcome
from service_crm.services.planned_maintenance import planned_visits_generate
from service_crm.services.webhooks import outbox_emit
from service_crm.services.work_orders import (
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def _plan(world: ServedWorld) -> None:
    for side in (world.north, world.south):
        c = m.MaintenanceContract.objects.get(account=side.account)
        c.start, c.interval_days = world.now.date() - dt.timedelta(days=10), 30
        c.save()
    planned_visits_generate(now=world.now)


def test_planned_visits_scoped_by_persona(world: ServedWorld, api: Any, desk_agent: Any,
                                          customer_user: Any, other_customer_user: Any) -> None:
    _plan(world)
    everything = api(desk_agent).get("/api/v1/planned-visits/").json()
    assert everything["count"] == 2
    mine = api(customer_user).get("/api/v1/planned-visits/").json()["results"]
    assert [v["asset"] for v in mine] == [world.north.asset.pk]
    south_visit = m.PlannedVisit.objects.get(asset=world.south.asset)
    assert api(customer_user).get(f"/api/v1/planned-visits/{south_visit.pk}/").status_code == 404
    assert api(desk_agent).get("/api/v1/planned-visits/?status=bogus").status_code == 400


def test_work_order_charges_show_what_is_billable(world: ServedWorld, api: Any, desk_agent: Any,
                                                  other_customer_user: Any) -> None:
    wo, now = world.north.work_order, world.now
    work_order_schedule(work_order=wo, engineer=world.north.engineer,
                        start=now + dt.timedelta(hours=1), end=now + dt.timedelta(hours=3),
                        actor=None, now=now)
    work_order_start(work_order=wo, actor=None, now=now + dt.timedelta(hours=1))
    work_order_complete(work_order=wo, actor=None, report="Done", time_spent_min=30,
                        outcome=Outcome.FAULT_CONFIRMED, now=now + dt.timedelta(hours=2))
    rows = api(desk_agent).get(f"/api/v1/work-order-charges/?work_order={wo.pk}").json()
    assert [(r["kind"], r["amount"], r["covered"]) for r in rows["results"]] == [
        ("labour", "47.50", True)]  # the contract factory covers labour
    assert api(desk_agent).get("/api/v1/work-order-charges/?covered=false").json()["count"] == 0
    assert api(other_customer_user).get("/api/v1/work-order-charges/").json()["count"] == 0


def test_webhook_log_and_replay_for_managers_only(world: ServedWorld, api: Any, desk_agent: Any,
                                                  service_manager: Any,
                                                  customer_user: Any) -> None:
    m.WebhookEndpoint.objects.create(name="ERP", url="https://erp.invalid/hook")
    with transaction.atomic():
        outbox_emit(topic="contract.lapsed", data={"contract": "MC-1"}, now=world.now)
    d = m.WebhookDelivery.objects.get()
    m.WebhookDelivery.objects.filter(pk=d.pk).update(status=DeliveryStatus.DEAD, attempts=12)

    assert api(desk_agent).get("/api/v1/webhook-deliveries/").json()["count"] == 0
    assert api(customer_user).get("/api/v1/webhook-deliveries/").json()["count"] == 0
    assert api(desk_agent).post(f"/api/v1/webhook-deliveries/{d.pk}/replay/").status_code == 403
    log = api(service_manager).get("/api/v1/webhook-deliveries/?status=dead").json()
    assert [(r["topic"], r["endpoint"], r["attempts"]) for r in log["results"]] == [
        ("contract.lapsed", "ERP", 12)]
    resp = api(service_manager).post(f"/api/v1/webhook-deliveries/{d.pk}/replay/")
    assert resp.status_code == 200, resp.content
    assert (resp.json()["status"], resp.json()["attempts"]) == ("pending", 0)
    assert m.AuditLog.objects.get(action="webhook.replay").actor_label == "manager"


def test_customer_accepts_offer_with_a_po_reference(world: ServedWorld, api: Any,
                                                    customer_user: Any) -> None:
    url = f"/api/v1/offers/{world.north.offer.pk}/decide/"
    long = api(customer_user).post(url, {"accepted": True, "po_reference": "x" * 61},
                                   format="json")
    assert long.status_code == 400
    assert "po_reference" in long.json()["errors"]
    resp = api(customer_user).post(url, {"accepted": True, "po_reference": "PO-2026-118"},
                                   format="json")
    assert resp.status_code == 200, resp.content
    order = m.SalesOrder.objects.get(offer=world.north.offer)
    assert order.po_reference == "PO-2026-118"
