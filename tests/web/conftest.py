"""Personas and the served two-customer world (``tests.support.world.build_served_world``)
for the web tests, and real Chromium for the browser tests. The desk agent is the suite's one
(``tests/conftest.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from service_crm.services.api_tokens import api_token_create
from tests.support.personas import linked_user, user_with_role
from tests.support.web import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support.world import WORLD_DEVICES, ServedWorld, build_served_world
from web.roles import Role


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The production hasher is deliberately slow (about half a second per user here).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_login_limits(request: pytest.FixtureRequest) -> Iterator[None]:
    """The dashboard counts in the cache, which is in the database: no test inherits
    another's (tests without the database have no cache to clear). The log-in limiter's rows
    are in a CRM table, rolled back or flushed with the test's database."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("django_db") is None and not names & {
            "db", "transactional_db", "live_server"}:
        yield
        return
    request.getfixturevalue("transactional_db" if names & {"transactional_db", "live_server"}
                            else "db")
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(db: None) -> ServedWorld:
    return build_served_world()


@pytest.fixture
def service_manager(world: ServedWorld) -> Any:
    return user_with_role("manager", Role.SERVICE_MANAGER)


@pytest.fixture
def field_engineer(world: ServedWorld) -> Any:
    """Jana, the north engineer: her own work orders, sites in region north."""
    return linked_user("jana", world.north.engineer)


@pytest.fixture
def other_region_engineer(world: ServedWorld) -> Any:
    return linked_user("sven", world.south.engineer)


@pytest.fixture
def customer_user(world: ServedWorld) -> Any:
    """The Nordwerk buyer's portal login."""
    return linked_user("nordwerk", world.north.buyer)


@pytest.fixture
def other_customer_user(world: ServedWorld) -> Any:
    return linked_user("suedhof", world.south.buyer)


@pytest.fixture
def api() -> Any:
    """An API client that authenticates with a user's token, as integrations do."""

    def as_user(user: Any) -> APIClient:
        client = APIClient()
        issued = api_token_create(user=user, name="tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
        return client

    return as_user


@pytest.fixture
def browser_client() -> Any:
    """A Django test client logged in as a user (session auth, CSRF enforced)."""

    def as_user(user: Any) -> Client:
        client = Client(enforce_csrf_checks=False)
        client.force_login(user)
        return client

    return as_user


# --- real Chromium (browser tests) ---------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (skipped where it is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the tests make
    # between page actions are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def live_world(transactional_db: None, world: ServedWorld) -> Iterator[ServedWorld]:
    """The world, committed so the live server's thread sees it; the store's device rows
    (not Django-managed, so not flushed) are removed afterwards."""
    yield world
    with connection.cursor() as cur:
        cur.execute("DELETE FROM telemetry_1h")
        cur.execute("DELETE FROM devices WHERE device_key = ANY(%s)", [list(WORLD_DEVICES)])
