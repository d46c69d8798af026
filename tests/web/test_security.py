"""Regression tests for the outside probe's findings (issue 14), over HTTP on the real
PostgreSQL: reserved device ids, API tokens, log-in limiting, offer decisions, list bounds."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests.factories import store_device
from tests.web.conftest import World

pytestmark = pytest.mark.db


# --- 1. reserved service identities ---------------------------------------------------------

@pytest.mark.parametrize("key", ["aftercare-service", "aftercare-ingest"])
def test_api_claim_of_a_service_account_name_is_a_400(world: World, desk_agent: Any, api: Any,
                                                      key: str) -> None:
    store_device(key)  # the store may hold such a row (a service account published under it)
    response = api(desk_agent).post(f"/api/v1/devices/{key}/claim/",
                                    {"asset": world.north.pump.pk}, format="json")
    assert response.status_code == 400, response.content
    assert "reserved" in " ".join(response.json()["errors"]["device_key"])
    assert not m.DeviceLink.objects.filter(device_key=key).exists()


def test_desk_claim_of_a_service_account_name_is_refused(world: World, desk_agent: Any,
                                                         browser_client: Any) -> None:
    store_device("aftercare-service")
    response = browser_client(desk_agent).post("/desk/devices/aftercare-service/claim/",
                                               {"asset": world.north.pump.serial})
    assert response.status_code == 400, response.status_code
    assert "reserved for Aftercare" in response.content.decode()
    assert not m.DeviceLink.objects.filter(device_key="aftercare-service").exists()
