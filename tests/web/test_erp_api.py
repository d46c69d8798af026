"""Inbound ERP API (issue 16, item 3): prices and stock posted as idempotent batch upserts
with an API token; a wrong row refuses the batch with a 400 naming it; only administrators and
service managers post; the price list then prices charges, offers and invoice drafts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from service_crm import models as m
from service_crm.selectors.prices import labour_rate_on, part_price_on
from tests.support.web import billable_job
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db
H = dt.timedelta(hours=1)


def _prices(world: ServedWorld) -> dict[str, Any]:
    today = world.now.date()
    return {"prices": [
        {"kind": "part", "sku": "BRG-6205", "currency": "EUR", "unit_price": "91.20",
         "valid_from": str(today - dt.timedelta(days=10))},
        {"kind": "labour", "currency": "EUR", "unit_price": "110.00",
         "valid_from": str(today - dt.timedelta(days=10)),
         "valid_until": str(today + dt.timedelta(days=100))},
    ]}


def test_erp_posts_prices_idempotently(world: ServedWorld, api: Any, service_manager: Any) -> None:
    erp = api(service_manager)
    first = erp.post("/api/v1/erp/prices/", _prices(world), format="json")
    assert first.status_code == 200, first.content
    assert first.json() == {"created": 2, "updated": 0, "unchanged": 0}
    again = erp.post("/api/v1/erp/prices/", _prices(world), format="json")
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 2}
    body = _prices(world)
    body["prices"][0]["unit_price"] = "92.00"
    assert erp.post("/api/v1/erp/prices/", body, format="json").json() == {
        "created": 0, "updated": 1, "unchanged": 1}
    assert m.PriceListEntry.objects.count() == 2
    assert m.AuditLog.objects.filter(action="price.upsert").count() == 3
    today = world.now.date()
    assert part_price_on(part=world.part, on=today) == Decimal("92.00")
    assert labour_rate_on(on=today) == Decimal("110.00")
    assert labour_rate_on(on=today + dt.timedelta(days=101)) == Decimal("95.00")  # expired
    assert part_price_on(part=world.part, on=today - dt.timedelta(days=11)) == Decimal("84.50")
    listed = erp.get("/api/v1/prices/?kind=part").json()
    assert [(p["sku"], p["unit_price"]) for p in listed["results"]] == [("BRG-6205", "92.00")]


def test_a_wrong_row_refuses_the_batch_naming_it(world: ServedWorld, api: Any,
                                                 service_manager: Any) -> None:
    body = _prices(world)
    body["prices"].append({"kind": "part", "sku": "NOPE-1", "currency": "EUR",
                           "unit_price": "1.00", "valid_from": "2026-01-01"})
    body["prices"].append({"kind": "part", "sku": "BRG-6205", "currency": "eur",
                           "unit_price": 5, "valid_from": "2026-01-01"})
    resp = api(service_manager).post("/api/v1/erp/prices/", body, format="json")
    assert resp.status_code == 400
    errors = resp.json()["errors"]
    assert set(errors) == {"prices[3].currency", "prices[3].unit_price"}  # shape first
    del body["prices"][3]
    resp = api(service_manager).post("/api/v1/erp/prices/", body, format="json")
    assert resp.status_code == 400
    assert resp.json()["errors"] == {
        "prices[2].sku": ["No part with SKU 'NOPE-1' in the catalogue."]}
    assert not m.PriceListEntry.objects.exists()  # nothing half-imported
    bad_period = _prices(world)
    bad_period["prices"][1]["valid_until"] = "2000-01-01"
    resp = api(service_manager).post("/api/v1/erp/prices/", bad_period, format="json")
    assert set(resp.json()["errors"]) == {"prices[1].valid_until"}
    empty = api(service_manager).post("/api/v1/erp/prices/", {"prices": []}, format="json")
    assert empty.status_code == 400
    assert "prices" in empty.json()["errors"]


def test_only_managers_and_admins_post_to_the_erp_api(
        world: ServedWorld, api: Any, desk_agent: Any, customer_user: Any,
        field_engineer: Any) -> None:
    for user in (desk_agent, customer_user, field_engineer):
        resp = api(user).post("/api/v1/erp/prices/", _prices(world), format="json")
        assert resp.status_code == 403, user
        assert api(user).post("/api/v1/erp/stock/", {"stock": [
            {"sku": "BRG-6205", "warehouse": world.warehouse.code, "quantity": 1}]},
            format="json").status_code == 403
    assert api(customer_user).get("/api/v1/prices/").json()["count"] == 0
    from rest_framework.test import APIClient

    assert APIClient().post("/api/v1/erp/prices/", _prices(world),
                            format="json").status_code == 401
    assert not m.PriceListEntry.objects.exists()


def test_erp_sets_stock_levels(world: ServedWorld, api: Any, service_manager: Any) -> None:
    other = m.Warehouse.objects.create(code="WH-SOUTH", name="South van stock",
                                       region="south")
    body = {"stock": [{"sku": "BRG-6205", "warehouse": world.warehouse.code, "quantity": 12},
                      {"sku": "BRG-6205", "warehouse": "WH-SOUTH", "quantity": 0}]}
    erp = api(service_manager)
    assert erp.post("/api/v1/erp/stock/", body, format="json").json() == {
        "created": 1, "updated": 1, "unchanged": 0}
    assert erp.post("/api/v1/erp/stock/", body, format="json").json() == {
        "created": 0, "updated": 0, "unchanged": 2}
    assert m.Stock.objects.get(part=world.part, warehouse=world.warehouse).quantity == 12
    assert m.Stock.objects.get(part=world.part, warehouse=other).quantity == 0
    bad = erp.post("/api/v1/erp/stock/", {"stock": [
        {"sku": "BRG-6205", "warehouse": "WH-NOWHERE", "quantity": 3},
        {"sku": "BRG-6205", "warehouse": world.warehouse.code, "quantity": -1},
        {"sku": "BRG-6205", "warehouse": world.warehouse.code, "quantity": "7"}]},
        format="json")
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"stock[1].quantity", "stock[2].quantity"}
    bad = erp.post("/api/v1/erp/stock/", {"stock": [
        {"sku": "BRG-6205", "warehouse": "WH-NOWHERE", "quantity": 3}]}, format="json")
    assert bad.json()["errors"] == {"stock[0].warehouse": ["No warehouse with code "
                                                            "'WH-NOWHERE'."]}
    assert m.Stock.objects.get(part=world.part, warehouse=world.warehouse).quantity == 12


def test_charges_take_the_price_list_rates(world: ServedWorld, api: Any,
                                           service_manager: Any) -> None:
    assert api(service_manager).post("/api/v1/erp/prices/", _prices(world),
                                     format="json").status_code == 200
    wo = billable_job(world, minutes=30)
    charges = {c.kind: c.unit_price for c in m.WorkOrderCharge.objects.filter(work_order=wo)}
    assert charges == {"part": Decimal("91.20"), "labour": Decimal("110.00")}
