"""API for activities and follow-up tasks (issue 16, item 5): office staff log and list;
a body naming what the caller may not see is a 400 naming the field; customers get nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def test_staff_log_a_visit_with_a_follow_up_and_list_it(
        world: ServedWorld, api: Any, desk_agent: Any, service_manager: Any) -> None:
    due = str(world.now.date() + dt.timedelta(days=2))
    resp = api(desk_agent).post("/api/v1/activities/", {
        "account": world.north.account.pk, "kind": "visit", "summary": "Walked the line",
        "contact": world.north.buyer.pk,
        "follow_up": {"title": "Quote the retrofit", "assignee": service_manager.pk,
                      "due": due}}, format="json")
    assert resp.status_code == 201, resp.content
    assert (resp.json()["kind"], resp.json()["by"]) == ("visit", desk_agent.pk)
    listed = api(desk_agent).get(
        f"/api/v1/activities/?account={world.north.account.pk}&kind=visit").json()
    assert [a["summary"] for a in listed["results"]] == ["Walked the line"]
    tasks = api(service_manager).get(
        f"/api/v1/tasks/?assignee={service_manager.pk}&open=true").json()["results"]
    assert [(t["title"], t["due"]) for t in tasks] == [("Quote the retrofit", due)]
    done = api(service_manager).post(f"/api/v1/tasks/{tasks[0]['id']}/done/")
    assert done.status_code == 200
    assert done.json()["done_by"] == service_manager.pk
    assert api(service_manager).get("/api/v1/tasks/?open=true").json()["count"] == 0


def test_bad_bodies_are_400s_naming_the_field(world: ServedWorld, api: Any,
                                             desk_agent: Any) -> None:
    client = api(desk_agent)
    resp = client.post("/api/v1/activities/", {
        "account": world.north.account.pk, "kind": "call", "summary": "x",
        "contact": world.south.buyer.pk}, format="json")
    assert resp.status_code == 400
    assert set(resp.json()["errors"]) == {"contact"}
    resp = client.post("/api/v1/activities/", {"account": 999_999, "kind": "call",
                                               "summary": "x"}, format="json")
    assert set(resp.json()["errors"]) == {"account"}
    resp = client.post("/api/v1/activities/", {"account": str(world.north.account.pk),
                                               "kind": "automation", "summary": 5},
                       format="json")
    assert set(resp.json()["errors"]) == {"account", "kind", "summary"}
    assert not m.Interaction.objects.filter(summary="x").exists()


def test_customers_and_engineers_get_nothing(world: ServedWorld, api: Any, customer_user: Any,
                                             field_engineer: Any) -> None:
    for user in (customer_user, field_engineer):
        client = api(user)
        assert client.get("/api/v1/activities/").json()["count"] == 0
        assert client.get("/api/v1/tasks/").json()["count"] == 0
        assert client.post("/api/v1/activities/", {
            "account": world.north.account.pk, "kind": "note", "summary": "x"},
            format="json").status_code == 403
