"""Regression tests for the outside probe's findings (issue 14), over HTTP on the real
PostgreSQL: reserved device ids, API tokens, log-in limiting, offer decisions, list bounds."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from service_crm import models as m
from tests import factories as f
from tests.factories import store_device
from tests.web.conftest import PASSWORD, World

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


# --- 2. API tokens ----------------------------------------------------------------------------

def _get_token(client: Any, username: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/token/", {"username": username, "password": PASSWORD,
                                              **extra}, format="json")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_each_token_request_makes_a_new_named_expiring_token_stored_as_a_hash(
        world: World, desk_agent: Any) -> None:
    client = APIClient()
    one = _get_token(client, "desk", name="erp sync", expires_in_days=7)
    two = _get_token(client, "desk")
    assert one["token"] != two["token"]
    assert one["name"] == "erp sync"
    assert two["name"] == "api"
    stored = m.ApiToken.objects.get(pk=one["id"])
    assert one["token"] not in {stored.key_hash, stored.prefix}
    assert stored.key_hash == hashlib.sha256(one["token"].encode()).hexdigest()
    assert dt.timedelta(days=6, hours=23) < stored.expires_at - timezone.now() \
        <= dt.timedelta(days=7)
    listed = _with(one["token"]).get("/api/v1/tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"erp sync", "api"}
    assert all("token" not in t and "key_hash" not in t for t in listed)
    assert not any(one["token"] in str(a.after) or stored.key_hash in str(a.after)
                   for a in m.AuditLog.objects.filter(object_type="apitoken"))


def test_delete_token_revokes_the_token_used(world: World, desk_agent: Any) -> None:
    key = _get_token(APIClient(), "desk")["token"]
    other = _get_token(APIClient(), "desk")["token"]
    assert _with(key).get("/api/v1/accounts/").status_code == 200
    assert _with(key).delete("/api/v1/token/").status_code == 204
    assert _with(key).get("/api/v1/accounts/").status_code == 401
    assert _with(other).get("/api/v1/accounts/").status_code == 200


def test_expired_token_is_refused(world: World, desk_agent: Any) -> None:
    body = _get_token(APIClient(), "desk")
    m.ApiToken.objects.filter(pk=body["id"]).update(expires_at=timezone.now())
    response = _with(body["token"]).get("/api/v1/accounts/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_owner_revokes_and_rotates_but_not_anothers(world: World, desk_agent: Any,
                                                     customer_user: Any) -> None:
    desk = _get_token(APIClient(), "desk", name="script")
    cust = _get_token(APIClient(), "nordwerk")
    # Another user's token is invisible: 404, and it keeps working.
    assert _with(desk["token"]).delete(f"/api/v1/tokens/{cust['id']}/").status_code == 404
    assert _with(cust["token"]).get("/api/v1/accounts/").status_code == 200
    rotated = _with(desk["token"]).post(f"/api/v1/tokens/{desk['id']}/rotate/", {},
                                        format="json")
    assert rotated.status_code == 201, rotated.content
    new = rotated.json()
    assert new["name"] == "script"
    assert new["token"] != desk["token"]
    assert _with(desk["token"]).get("/api/v1/accounts/").status_code == 401
    assert _with(new["token"]).delete(f"/api/v1/tokens/{new['id']}/").status_code == 204
    assert _with(new["token"]).get("/api/v1/accounts/").status_code == 401


def test_admin_lists_and_revokes_anyones_token(world: World, customer_user: Any) -> None:
    boss = f.UserFactory(username="boss", is_superuser=True, is_staff=True)
    boss.set_password(PASSWORD)
    boss.save()
    cust = _get_token(APIClient(), "nordwerk")
    admin_key = _get_token(APIClient(), "boss")["token"]
    listed = _with(admin_key).get(f"/api/v1/tokens/?user={customer_user.pk}").json()["results"]
    assert [t["id"] for t in listed] == [cust["id"]]
    assert _with(admin_key).delete(f"/api/v1/tokens/{cust['id']}/").status_code == 204
    assert _with(cust["token"]).get("/api/v1/accounts/").status_code == 401
    audit = m.AuditLog.objects.get(action="api_token.revoke", object_id=str(cust["id"]))
    assert audit.actor_label == "boss"


def test_password_change_revokes_every_token(world: World, desk_agent: Any) -> None:
    keys = [_get_token(APIClient(), "desk")["token"] for _ in range(2)]
    desk_agent.set_password("a brand new passphrase")
    desk_agent.save()
    for key in keys:
        assert _with(key).get("/api/v1/accounts/").status_code == 401
    # Revoked for good: setting the old password back does not revive them.
    desk_agent.set_password(PASSWORD)
    desk_agent.save()
    assert _with(keys[0]).get("/api/v1/accounts/").status_code == 401
    assert m.ApiToken.objects.filter(revoked_reason="password changed").count() >= 1


def test_deactivation_in_the_admin_revokes_every_token(world: World, desk_agent: Any,
                                                       client: Any) -> None:
    key = _get_token(APIClient(), "desk")["token"]
    boss = f.UserFactory(username="boss", is_superuser=True, is_staff=True)
    client.force_login(boss)
    page = client.get(f"/admin/auth/user/{desk_agent.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "password"}
    data.update({"is_active": "", "groups": [g.pk for g in desk_agent.groups.all()],
                 "user_permissions": [], "date_joined_0": "2026-01-01",
                 "date_joined_1": "00:00:00", "last_login_0": "", "last_login_1": ""})
    data.pop("is_active")
    response = client.post(f"/admin/auth/user/{desk_agent.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert not m.ApiToken.objects.filter(user=desk_agent, revoked_at__isnull=True).exists()
    assert m.ApiToken.objects.get(user=desk_agent).revoked_reason == "owner deactivated"
    assert _with(key).get("/api/v1/accounts/").status_code == 401


def test_drf_tokens_are_imported_hashed_and_their_plain_keys_dropped(world: World,
                                                                      desk_agent: Any) -> None:
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("service_crm.migrations.0005_api_tokens")
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
                    "created timestamptz NOT NULL, user_id integer NOT NULL)")
        cur.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)",
                    ["0123456789abcdef0123456789abcdef01234567", desk_agent.pk])
    with connection.schema_editor() as editor:
        migration.import_drf_tokens(apps, editor)
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('authtoken_token')")
        assert cur.fetchone()[0] is None
    client = _with("0123456789abcdef0123456789abcdef01234567")
    assert client.get("/api/v1/accounts/").status_code == 200
    assert m.ApiToken.objects.get(user=desk_agent).name == "api"
