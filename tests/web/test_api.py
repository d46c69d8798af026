"""REST API v1 over HTTP with token auth: scopes (404 outside them), filters, 400s, actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from tests import factories as f
from tests.support.personas import PASSWORD
from tests.support.world import ServedWorld, Side

pytestmark = pytest.mark.db


def _detail_urls(side: Side) -> dict[str, str]:
    return {
        "account": f"/api/v1/accounts/{side.account.pk}/",
        "asset": f"/api/v1/assets/{side.asset.pk}/",
        "telemetry": f"/api/v1/assets/{side.asset.pk}/telemetry/",
        "episode": f"/api/v1/episodes/{side.episode.pk}/",
        "alert": f"/api/v1/alerts/{side.alert.pk}/",
        "ticket": f"/api/v1/tickets/{side.ticket.pk}/",
        "work_order": f"/api/v1/work-orders/{side.work_order.pk}/",
        "offer": f"/api/v1/offers/{side.offer.pk}/",
        "device": f"/api/v1/devices/cmp-{'n1' if 'Nordwerk' in side.account.name else 's1'}/",
    }


ENDPOINTS = [
    "account", "asset", "telemetry", "episode", "alert", "ticket", "work_order", "offer",
    "device"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_customer_gets_404_for_another_accounts_object(
        world: ServedWorld, customer_user: Any, api: Any, endpoint: str) -> None:
    client = api(customer_user)
    own = client.get(_detail_urls(world.north)[endpoint])
    other = client.get(_detail_urls(world.south)[endpoint])
    assert own.status_code == 200, own.content
    assert other.status_code == 404, other.content
    assert other.json()["detail"]


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "offer"])
def test_engineer_gets_404_for_other_regions_object(
        world: ServedWorld, field_engineer: Any, api: Any, endpoint: str) -> None:
    m.WorkOrder.objects.filter(pk=world.north.work_order.pk).update(
        engineer=world.north.engineer)
    client = api(field_engineer)
    assert client.get(_detail_urls(world.north)[endpoint]).status_code == 200
    assert client.get(_detail_urls(world.south)[endpoint]).status_code == 404


def test_engineer_sees_no_offers(world: ServedWorld, field_engineer: Any, api: Any) -> None:
    client = api(field_engineer)
    assert client.get(f"/api/v1/offers/{world.north.offer.pk}/").status_code == 404
    assert client.get("/api/v1/offers/").json()["count"] == 0


def test_engineer_cannot_open_another_engineers_work_order_in_own_region(
        world: ServedWorld, field_engineer: Any, api: Any) -> None:
    colleague = f.EngineerFactory(name="Colleague", region="north")
    m.WorkOrder.objects.filter(pk=world.north.work_order.pk).update(engineer=colleague)
    response = api(field_engineer).get(f"/api/v1/work-orders/{world.north.work_order.pk}/")
    assert response.status_code == 404


def test_customer_does_not_see_draft_offers(world: ServedWorld, customer_user: Any,
                                            api: Any) -> None:
    m.Offer.objects.filter(pk=world.north.offer.pk).update(status="draft")
    response = api(customer_user).get(f"/api/v1/offers/{world.north.offer.pk}/")
    assert response.status_code == 404


@pytest.mark.parametrize("collection", ["accounts", "assets", "episodes", "alerts", "tickets",
                                        "work-orders", "offers", "devices"])
def test_customer_lists_hold_only_own_account(world: ServedWorld, customer_user: Any, api: Any,
                                              collection: str) -> None:
    body = api(customer_user).get(f"/api/v1/{collection}/").json()
    assert body["count"] >= 1
    text = str(body["results"])
    assert "Südhof" not in text
    assert "cmp-s1" not in text
    assert "pmp-s1" not in text
    if collection == "devices":
        assert {r["device_key"] for r in body["results"]} == {"cmp-n1", "pmp-n1"}
        return
    account_of = {"accounts": "id", "assets": "account", "episodes": "account",
                  "tickets": "account", "work-orders": "account", "offers": "account"}
    if collection == "alerts":
        assert {r["device_key"] for r in body["results"]} == {"cmp-n1", "pmp-n1"}
    else:
        assert {r[account_of[collection]] for r in body["results"]} == {world.north.account.pk}


def test_desk_agent_sees_both_accounts(world: ServedWorld, desk_agent: Any, api: Any) -> None:
    body = api(desk_agent).get("/api/v1/accounts/").json()
    assert {r["name"] for r in body["results"]} == {"Nordwerk Foods GmbH", "Südhof Logistik AG"}


def test_user_without_role_sees_nothing(world: ServedWorld, api: Any) -> None:
    nobody = f.UserFactory(username="nobody")
    client = api(nobody)
    assert client.get("/api/v1/tickets/").json()["count"] == 0
    assert client.get(f"/api/v1/tickets/{world.north.ticket.pk}/").status_code == 404


def test_anonymous_is_refused(world: ServedWorld, client: Any) -> None:
    assert client.get("/api/v1/tickets/").status_code == 401


def test_lists_are_paginated(world: ServedWorld, desk_agent: Any, api: Any) -> None:
    body = api(desk_agent).get("/api/v1/tickets/?limit=1").json()
    assert body["count"] == 4
    assert len(body["results"]) == 1
    assert "offset=1" in body["next"]


def test_filter_narrows_list(world: ServedWorld, desk_agent: Any, api: Any) -> None:
    client = api(desk_agent)
    body = client.get(f"/api/v1/tickets/?account={world.south.account.pk}").json()
    assert {r["account"] for r in body["results"]} == {world.south.account.pk}
    assert client.get("/api/v1/tickets/?status=closed").json()["count"] == 0


def test_bad_filter_value_answers_400_naming_the_parameter(
        world: ServedWorld, desk_agent: Any, api: Any) -> None:
    response = api(desk_agent).get("/api/v1/tickets/?status=sideways&account=abc")
    assert response.status_code == 400
    body = response.json()
    assert set(body["errors"]) == {"status", "account"}
    assert "status:" in body["detail"]
    assert "sideways" in body["detail"]


def test_unclaimed_devices_listed_for_desk_only(world: ServedWorld, desk_agent: Any,
                                                customer_user: Any, api: Any) -> None:
    f.store_device("stray-42")
    desk = api(desk_agent).get("/api/v1/devices/?unclaimed=true").json()
    assert [d["device_key"] for d in desk["results"]] == ["stray-42"]
    assert api(customer_user).get("/api/v1/devices/?unclaimed=true").json()["count"] == 0
    assert api(customer_user).get("/api/v1/devices/stray-42/").status_code == 404


def test_telemetry_returns_rollups_in_window(world: ServedWorld, customer_user: Any,
                                             api: Any) -> None:
    t0 = world.now.replace(minute=0, second=0) - dt.timedelta(hours=5)
    f.store_rollup_1h("cmp-n1", "temperature_c",
                      [(t0 + dt.timedelta(hours=i), 60.0 + i) for i in range(4)])
    f.store_rollup_1h("cmp-s1", "temperature_c", [(t0, 99.0)])
    start, end = t0.isoformat(), (t0 + dt.timedelta(hours=3)).isoformat()
    response = api(customer_user).get(
        f"/api/v1/assets/{world.north.asset.pk}/telemetry/",
        {"start": start, "end": end, "resolution": "1h", "metric": "temperature_c"})
    assert response.status_code == 200, response.content
    rows = response.json()
    assert [r["mean"] for r in rows] == [60.0, 61.0, 62.0]
    assert {r["device"] for r in rows} == {"cmp-n1"}
    assert rows[0]["min"] == 59.0
    assert rows[0]["max"] == 61.0


def test_telemetry_rejects_reversed_window(world: ServedWorld, desk_agent: Any, api: Any) -> None:
    response = api(desk_agent).get(
        f"/api/v1/assets/{world.north.asset.pk}/telemetry/",
        {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"})
    assert response.status_code == 400
    assert "start" in response.json()["errors"]


def test_ticket_transition_and_service_rule_as_400(world: ServedWorld, desk_agent: Any,
                                                   api: Any) -> None:
    client = api(desk_agent)
    url = f"/api/v1/tickets/{world.north.ticket.pk}/transition/"
    bad = client.post(url, {"to": "closed"}, format="json")
    assert bad.status_code == 400
    assert "status" in bad.json()["errors"]
    ok = client.post(url, {"to": "triaged"}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "triaged"


def test_customer_cannot_move_tickets(world: ServedWorld, customer_user: Any, api: Any) -> None:
    response = api(customer_user).post(
        f"/api/v1/tickets/{world.north.ticket.pk}/transition/", {"to": "triaged"}, format="json")
    assert response.status_code == 403


def test_customer_accepts_own_offer_but_not_anothers(
        world: ServedWorld, customer_user: Any, api: Any) -> None:
    client = api(customer_user)
    other = client.post(f"/api/v1/offers/{world.south.offer.pk}/decide/", {"accepted": True},
                        format="json")
    assert other.status_code == 404
    own = client.post(f"/api/v1/offers/{world.north.offer.pk}/decide/", {"accepted": True},
                      format="json")
    assert own.status_code == 200, own.content
    assert own.json()["status"] == "accepted"


def test_engineer_completes_own_work_order_and_stock_goes_down(
        world: ServedWorld, field_engineer: Any, desk_agent: Any, api: Any) -> None:
    from service_crm.services.work_orders import work_order_schedule

    start = world.now + dt.timedelta(hours=1)
    work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                        start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    client = api(field_engineer)
    url = f"/api/v1/work-orders/{world.north.work_order.pk}"
    assert client.post(f"{url}/start/").status_code == 200
    missing = client.post(f"{url}/complete/", {"outcome": "maybe"}, format="json")
    assert missing.status_code == 400
    assert {"report", "outcome", "time_spent_min"} <= set(missing.json()["errors"])
    done = client.post(f"{url}/complete/", {"report": "Bearing replaced",
                                            "outcome": "fault_confirmed",
                                            "time_spent_min": 90}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "completed"
    other = client.post(f"/api/v1/work-orders/{world.south.work_order.pk}/start/")
    assert other.status_code == 404


def test_only_a_service_manager_approves(world: ServedWorld, desk_agent: Any,
                                         service_manager: Any, api: Any) -> None:
    m.Offer.objects.filter(pk=world.north.offer.pk).update(status="pending_approval")
    url = f"/api/v1/offers/{world.north.offer.pk}/approve/"
    assert api(desk_agent).post(url).status_code == 403
    response = api(service_manager).post(url)
    assert response.status_code == 200, response.content
    assert response.json()["approved_at"] is not None


def test_staff_send_a_draft_offer_through_the_api_under_the_desks_rules(
        world: ServedWorld, desk_agent: Any, customer_user: Any, service_manager: Any,
        api: Any) -> None:
    from decimal import Decimal

    offer = world.north.offer
    m.Offer.objects.filter(pk=offer.pk).update(status="draft", sent_at=None,
                                               discount_pct=Decimal("25"))
    url = f"/api/v1/offers/{offer.pk}"
    assert api(customer_user).post(f"{url}/send/").status_code == 404  # drafts: not theirs
    refused = api(desk_agent).post(f"{url}/send/")  # 25 % needs a manager's approval first
    assert refused.status_code == 400, refused.content
    assert "discount_pct" in refused.json()["errors"]
    asked = api(desk_agent).post(f"{url}/request-approval/")
    assert asked.status_code == 200, asked.content
    assert asked.json()["status"] == "pending_approval"
    assert api(service_manager).post(f"{url}/approve/").status_code == 200
    sent = api(desk_agent).post(f"{url}/send/")
    assert sent.status_code == 200, sent.content
    assert sent.json()["status"] == "sent"
    assert m.AuditLog.objects.filter(action="offer.send", object_id=str(offer.pk)).exists()


def test_token_endpoint_issues_token_and_rate_limits(world: ServedWorld, desk_agent: Any,
                                                     client: Any) -> None:
    ok = client.post("/api/v1/token/", {"username": "desk", "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["token"]
    for _ in range(5):
        assert client.post("/api/v1/token/",
                           {"username": "desk", "password": "wrong"}).status_code == 400
    blocked = client.post("/api/v1/token/", {"username": "desk", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many" in blocked.json()["detail"]


def test_openapi_schema_is_served(world: ServedWorld, desk_agent: Any, api: Any) -> None:
    response = api(desk_agent).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for p in ("/api/v1/tickets/", "/api/v1/assets/{id}/telemetry/", "/api/v1/devices/",
              "/api/v1/offers/{id}/decide/", "/api/v1/work-orders/{id}/complete/"):
        assert p in paths


@pytest.mark.parametrize(("path", "body"), [
    ("tickets/{ticket}/transition/", {"to": "triaged"}),
    ("work-orders/{work_order}/start/", {}),
    ("work-orders/{work_order}/complete/", {"report": "x", "outcome": "no_fault_found",
                                            "time_spent_min": 5}),
    ("offers/{offer}/approve/", {}),
    ("offers/{offer}/decide/", {"accepted": False}),
    ("offers/{offer}/send/", {}),
    ("offers/{offer}/request-approval/", {}),
])
def test_actions_on_another_accounts_object_answer_404(
        world: ServedWorld, customer_user: Any, api: Any, path: str, body: dict[str, Any]) -> None:
    south = world.south
    url = "/api/v1/" + path.format(ticket=south.ticket.pk, work_order=south.work_order.pk,
                                   offer=south.offer.pk)
    response = api(customer_user).post(url, body, format="json")
    assert response.status_code == 404, response.content
    assert m.Ticket.objects.get(pk=south.ticket.pk).status == "new"
    assert m.Offer.objects.get(pk=south.offer.pk).status == "sent"


def test_customer_opens_portal_ticket_for_own_asset_only(
        world: ServedWorld, customer_user: Any, api: Any) -> None:
    client = api(customer_user)
    other = client.post("/api/v1/tickets/", {"asset": world.south.asset.pk,
                                             "summary": "Noise"}, format="json")
    assert other.status_code == 400
    assert "asset" in other.json()["errors"]
    own = client.post("/api/v1/tickets/", {"asset": world.north.asset.pk, "summary": "Noise",
                                           "source": "phone"}, format="json")
    assert own.status_code == 201, own.content
    assert own.json()["source"] == "portal"
    assert own.json()["account"] == world.north.account.pk


def test_engineer_cannot_open_tickets_via_api(world: ServedWorld, field_engineer: Any,
                                              api: Any) -> None:
    response = api(field_engineer).post(
        "/api/v1/tickets/", {"asset": world.north.asset.pk, "summary": "x"}, format="json")
    assert response.status_code == 403


def test_sales_manager_reads_everything_but_neither_approves_nor_moves_tickets(
        world: ServedWorld, api: Any) -> None:
    from web.roles import Role, assign_role

    user = f.UserFactory(username="sales")
    assign_role(user=user, role=Role.SALES_MANAGER)
    client = api(f.fresh(user))
    assert client.get("/api/v1/accounts/").json()["count"] == 2
    assert client.get(f"/api/v1/offers/{world.south.offer.pk}/").status_code == 200
    assert client.post(f"/api/v1/offers/{world.south.offer.pk}/approve/").status_code == 403
    moved = client.post(f"/api/v1/tickets/{world.south.ticket.pk}/transition/",
                        {"to": "triaged"}, format="json")
    assert moved.status_code == 403


def test_api_docs_page_uses_vendored_swagger_ui(world: ServedWorld, desk_agent: Any,
                                                browser_client: Any) -> None:
    client = browser_client(desk_agent)
    page = client.get("/api/v1/docs/").content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "cdn." not in page
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert "/api/v1/schema/" in script.content.decode()


def test_openapi_schema_validates_without_warnings(db: None, tmp_path: Any) -> None:
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    assert "/api/v1/work-orders/{id}/start/" in out.read_text()


def test_seed_demo_group_names_grant_roles(world: ServedWorld, api: Any) -> None:
    from django.contrib.auth.models import Group

    user = f.UserFactory(username="demo-desk")
    user.groups.add(Group.objects.get_or_create(name="Service desk")[0])
    assert api(f.fresh(user)).get("/api/v1/accounts/").json()["count"] == 2


def _telemetry_world(world: ServedWorld) -> tuple[dt.datetime, dt.datetime]:
    """14 hours of two metrics on the north asset's device, plus an hour with no readings."""
    from django.db import connection

    t0 = world.now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=20)
    t0 = t0.replace(hour=(t0.hour // 6) * 6)  # on a 6-hour edge
    f.store_rollup_1h("cmp-n1", "temperature_c",
                      [(t0 + dt.timedelta(hours=i), 60.0 + (i * 7) % 5 + 0.125) for i in range(14)])
    f.store_rollup_1h("cmp-n1", "pressure_bar", [(t0 + dt.timedelta(hours=i), 1.5 + i / 3)
                                                 for i in range(0, 14, 2)])
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO telemetry_1h (bucket, device_id, metric_id, min, max, mean, last, count) "
            "SELECT %s, d.id, m.id, NULL, NULL, NULL, NULL, 0 FROM devices d, metrics m "
            "WHERE d.device_key = 'cmp-n1' AND m.name = 'pressure_bar'",
            [t0 + dt.timedelta(hours=1)])
    return t0, t0 + dt.timedelta(hours=14)


def test_telemetry_json_equals_the_drf_serializers(world: ServedWorld, customer_user: Any,
                                                   api: Any) -> None:
    import json

    from rest_framework.renderers import JSONRenderer

    from service_crm.selectors import access
    from web.api.serializers import RollupSerializer

    start, end = _telemetry_world(world)
    response = api(customer_user).get(
        f"/api/v1/assets/{world.north.asset.pk}/telemetry/",
        {"start": start.isoformat(), "end": end.isoformat(), "resolution": "1h"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    rows = access.asset_telemetry_for_user(user=customer_user, pk=world.north.asset.pk,
                                           start=start, end=end, resolution="1h")
    old = json.loads(JSONRenderer().render(RollupSerializer(rows, many=True).data))
    assert len(old) == 14 + 7 + 1
    assert response.json() == old
    assert old[0]["bucket"].endswith("Z")
    assert any(r["mean"] is None for r in old)


def test_telemetry_columns_layout_regroups_the_same_rows(world: ServedWorld, customer_user: Any,
                                                         api: Any) -> None:
    start, end = _telemetry_world(world)
    url = f"/api/v1/assets/{world.north.asset.pk}/telemetry/"
    params = {"start": start.isoformat(), "end": end.isoformat(), "resolution": "1h"}
    rows = api(customer_user).get(url, params).json()
    cols = api(customer_user).get(url, {**params, "layout": "columns"}).json()
    assert cols["resolution"] == "1h"
    assert {(s["device"], s["metric"]) for s in cols["series"]} == {
        ("cmp-n1", "temperature_c"), ("cmp-n1", "pressure_bar")}
    for s in cols["series"]:
        mine = [r for r in rows if (r["device"], r["metric"]) == (s["device"], s["metric"])]
        assert s["t"] == [int(dt.datetime.fromisoformat(r["bucket"]).timestamp()) for r in mine]
        for k in ("min", "max", "mean", "last", "count"):
            assert s[k] == [r[k] for r in mine], k


def test_telemetry_6h_folds_the_hourly_rollups(world: ServedWorld, customer_user: Any,
                                               api: Any) -> None:
    start, end = _telemetry_world(world)
    response = api(customer_user).get(
        f"/api/v1/assets/{world.north.asset.pk}/telemetry/",
        {"start": start.isoformat(), "end": end.isoformat(), "resolution": "6h",
         "metric": "temperature_c"})
    assert response.status_code == 200, response.content
    got = response.json()
    means = [60.0 + (i * 7) % 5 + 0.125 for i in range(14)]
    parts = [means[0:6], means[6:12], means[12:14]]
    assert [r["bucket"] for r in got] == [
        (start + dt.timedelta(hours=6 * k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(3)]
    assert [r["count"] for r in got] == [60 * len(p) for p in parts]
    assert [r["mean"] for r in got] == pytest.approx([sum(p) / len(p) for p in parts])
    assert [r["min"] for r in got] == [min(p) - 1 for p in parts]
    assert [r["max"] for r in got] == [max(p) + 1 for p in parts]
    assert [r["last"] for r in got] == [p[-1] for p in parts]


def test_telemetry_names_a_bad_layout_or_resolution(world: ServedWorld, desk_agent: Any,
                                                    api: Any) -> None:
    url = f"/api/v1/assets/{world.north.asset.pk}/telemetry/"
    for params, field in (({"layout": "csv"}, "layout"), ({"resolution": "5m"}, "resolution")):
        response = api(desk_agent).get(url, params)
        assert response.status_code == 400
        assert field in response.json()["errors"]
