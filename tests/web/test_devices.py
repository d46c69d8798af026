"""Attaching unclaimed devices to assets, on the desk page and through the API: who may, the
refusals shown by the field, and the other side's devices out of reach."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests import factories as f
from tests.support.world import ServedWorld
from web.roles import Role, assign_role

pytestmark = pytest.mark.db
STRAY = "stray-7"


@pytest.fixture
def stray(world: ServedWorld) -> str:
    f.store_device(STRAY)
    return STRAY


@pytest.fixture
def sales_manager(world: ServedWorld) -> Any:
    user = f.UserFactory(username="sales")
    assign_role(user=user, role=Role.SALES_MANAGER)
    return f.fresh(user)


def _row(page: str, device_key: str) -> str:
    """The unclaimed-devices table row of one device."""
    start = page.index(f'<tr data-device="{device_key}">')
    return page[start:page.index("</tr>", start)]


# --- desk page ---------------------------------------------------------------------------

def test_desk_agent_attaches_device_by_asset_serial(world: ServedWorld, stray: str, desk_agent: Any,
                                                    browser_client: Any) -> None:
    client = browser_client(desk_agent)
    page = client.get("/desk/devices/unclaimed/").content.decode()
    assert 'name="asset"' in _row(page, stray)
    response = client.post(f"/desk/devices/{stray}/claim/",
                           {"asset": world.north.pump.serial.lower()})
    assert response.status_code == 302
    assert response["Location"] == f"/desk/assets/{world.north.pump.pk}/"
    assert m.DeviceLink.objects.get(device_key=stray).asset_id == world.north.pump.pk
    assert f'data-device="{stray}"' not in client.get("/desk/devices/unclaimed/").content.decode()


def test_unknown_serial_is_shown_next_to_that_devices_field(
        world: ServedWorld, stray: str, desk_agent: Any, browser_client: Any) -> None:
    f.store_device("stray-8")
    response = browser_client(desk_agent).post(f"/desk/devices/{stray}/claim/",
                                               {"asset": "NO-SUCH-1"})
    assert response.status_code == 400
    page = response.content.decode()
    row = _row(page, stray)
    assert "No asset with serial &#x27;NO-SUCH-1&#x27;." in row
    assert 'value="NO-SUCH-1"' in row
    assert "No asset with serial" not in _row(page, "stray-8")
    assert not m.DeviceLink.objects.filter(device_key=stray).exists()


def test_device_of_another_asset_is_refused_by_the_field(world: ServedWorld, desk_agent: Any,
                                                         browser_client: Any) -> None:
    # The claim view is posted to directly (cmp-s1 is not listed as unclaimed).
    response = browser_client(desk_agent).post("/desk/devices/cmp-s1/claim/",
                                               {"asset": world.north.pump.serial})
    assert response.status_code == 400
    assert f"cmp-s1 is already attached to {world.south.asset.serial}." in \
        response.content.decode()
    assert m.DeviceLink.objects.get(device_key="cmp-s1").asset_id == world.south.asset.pk


def test_sales_manager_sees_unclaimed_devices_but_cannot_attach(
        world: ServedWorld, stray: str, sales_manager: Any, browser_client: Any) -> None:
    client = browser_client(sales_manager)
    page = client.get("/desk/devices/unclaimed/").content.decode()
    assert 'name="asset"' not in _row(page, stray)
    assert client.post(f"/desk/devices/{stray}/claim/",
                       {"asset": world.north.pump.serial}).status_code == 403
    assert not m.DeviceLink.objects.filter(device_key=stray).exists()


@pytest.mark.parametrize("persona", ["field_engineer", "customer_user"])
def test_engineers_and_customers_cannot_attach_devices(
        world: ServedWorld, stray: str, persona: str, request: pytest.FixtureRequest,
        browser_client: Any) -> None:
    client = browser_client(request.getfixturevalue(persona))
    response = client.post(f"/desk/devices/{stray}/claim/", {"asset": world.north.pump.serial})
    assert response.status_code == 403
    assert not m.DeviceLink.objects.filter(device_key=stray).exists()


def test_desk_agent_detaches_device_from_asset_page(world: ServedWorld, desk_agent: Any,
                                                    browser_client: Any) -> None:
    client = browser_client(desk_agent)
    page = client.get(f"/desk/assets/{world.north.asset.pk}/").content.decode()
    assert 'href="/desk/devices/cmp-n1/release/"' in page  # asks first (test_desk_basics)
    response = client.post("/desk/devices/cmp-n1/release/", {"confirm": "yes"})
    assert response.status_code == 302
    assert not m.DeviceLink.objects.filter(device_key="cmp-n1").exists()
    assert 'data-device="cmp-n1"' in client.get("/desk/devices/unclaimed/").content.decode()


def test_detaching_an_unclaimed_device_says_why(world: ServedWorld, stray: str, desk_agent: Any,
                                                browser_client: Any) -> None:
    response = browser_client(desk_agent).post(f"/desk/devices/{stray}/release/",
                                               {"confirm": "yes"}, follow=True)
    assert f"{stray} is not attached to any asset." in response.content.decode()


# --- REST API ----------------------------------------------------------------------------

def test_api_claim_attaches_device(world: ServedWorld, stray: str,
        desk_agent: Any, api: Any) -> None:
    response = api(desk_agent).post(f"/api/v1/devices/{stray}/claim/",
                                    {"asset": world.north.pump.pk}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["asset_id"] == world.north.pump.pk
    assert m.DeviceLink.objects.get(device_key=stray).asset_id == world.north.pump.pk


@pytest.mark.parametrize(("body", "field"), [
    ({}, "asset"), ({"asset": "pump"}, "asset"), ({"asset": 999_999}, "asset")])
def test_api_claim_bad_asset_is_400_naming_the_field(
        world: ServedWorld, stray: str, desk_agent: Any, api: Any, body: dict[str, Any],
        field: str) -> None:
    response = api(desk_agent).post(f"/api/v1/devices/{stray}/claim/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {field}
    assert response.json()["detail"].startswith(f"{field}:")


def test_api_claim_of_attached_device_is_400_naming_device_key(
        world: ServedWorld, desk_agent: Any, api: Any) -> None:
    response = api(desk_agent).post("/api/v1/devices/cmp-s1/claim/",
                                    {"asset": world.north.pump.pk}, format="json")
    assert response.status_code == 400
    assert "already attached" in response.json()["errors"]["device_key"][0]


@pytest.mark.parametrize("persona", ["field_engineer", "customer_user", "other_customer_user",
                                     "other_region_engineer"])
def test_api_claim_is_404_for_customers_and_engineers(
        world: ServedWorld, stray: str, persona: str, request: pytest.FixtureRequest,
        api: Any) -> None:
    client = api(request.getfixturevalue(persona))
    assert client.post(f"/api/v1/devices/{stray}/claim/", {"asset": world.north.pump.pk},
                       format="json").status_code == 404
    assert client.post(f"/api/v1/devices/{stray}/release/").status_code == 404
    assert not m.DeviceLink.objects.filter(device_key=stray).exists()


def test_api_other_sides_device_is_404_for_engineer(world: ServedWorld, field_engineer: Any,
                                                    api: Any) -> None:
    assert api(field_engineer).post("/api/v1/devices/cmp-s1/release/").status_code == 404
    assert m.DeviceLink.objects.filter(device_key="cmp-s1").exists()


def test_api_sales_manager_may_look_but_not_claim(world: ServedWorld, stray: str,
                                                  sales_manager: Any, api: Any) -> None:
    client = api(sales_manager)
    assert client.get(f"/api/v1/devices/{stray}/").status_code == 200
    assert client.post(f"/api/v1/devices/{stray}/claim/", {"asset": world.north.pump.pk},
                       format="json").status_code == 403


def test_api_release_detaches_device(world: ServedWorld, desk_agent: Any, api: Any) -> None:
    response = api(desk_agent).post("/api/v1/devices/cmp-n1/release/")
    assert response.status_code == 200
    assert response.json()["asset_id"] is None
    assert not m.DeviceLink.objects.filter(device_key="cmp-n1").exists()
