"""A line and its machines on the desk's asset and account pages and in the API."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests import factories as f
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def _line(world: ServedWorld) -> m.Asset:
    north = world.north
    line = f.AssetFactory(site=north.asset.site, serial="LINE-N1",
                          equipment_model=north.asset.equipment_model)
    m.Asset.objects.filter(pk=north.asset.pk).update(parent=line)
    return line


def test_desk_pages_show_parent_and_machines(world: ServedWorld, desk_agent: Any,
                                             browser_client: Any) -> None:
    line = _line(world)
    desk = browser_client(desk_agent)
    line_page = desk.get(f"/desk/assets/{line.pk}/").content.decode()
    assert f'href="/desk/assets/{world.north.asset.pk}/">{world.north.asset.serial}' in line_page
    machine = desk.get(f"/desk/assets/{world.north.asset.pk}/").content.decode()
    assert f'Part of <a href="/desk/assets/{line.pk}/">LINE-N1</a>' in machine
    account = desk.get(f"/desk/accounts/{world.north.account.pk}/").content.decode()
    assert f'part of <a href="/desk/assets/{line.pk}/">LINE-N1</a>' in account
    assert '<span data-testid="child-count">1 machine</span>' in account


def test_api_gives_parent_children_and_filters_by_parent(world: ServedWorld, desk_agent: Any,
                                                          api: Any) -> None:
    line = _line(world)
    client = api(desk_agent)
    got = client.get(f"/api/v1/assets/{line.pk}/").json()
    assert (got["parent"], got["children"]) == (None, [world.north.asset.pk])
    child = client.get(f"/api/v1/assets/{world.north.asset.pk}/").json()
    assert (child["parent"], child["parent_serial"]) == (line.pk, "LINE-N1")
    listed = client.get(f"/api/v1/assets/?parent={line.pk}").json()
    assert [a["id"] for a in listed["results"]] == [world.north.asset.pk]


def test_admin_picks_a_parent_by_searching_its_serial(world: ServedWorld, client: Any) -> None:
    """The admin's parent field is a search (autocomplete), not a select of every asset."""
    line = _line(world)
    client.force_login(f.UserFactory(username="root", is_superuser=True, is_staff=True))
    page = client.get(f"/admin/service_crm/asset/{world.north.asset.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="admin-autocomplete' in html
    assert 'name="parent"' in html
    found = client.get("/admin/autocomplete/", {"term": "LINE-N", "app_label": "service_crm",
                                                "model_name": "asset", "field_name": "parent"})
    assert found.status_code == 200, found.content
    assert [r["id"] for r in found.json()["results"]] == [str(line.pk)]
