"""Shared fixtures: the real PostgreSQL, a private Mosquitto, PGlite+TimescaleDB, personas.

Isolation: the store schema is migrated once per session into a template database, and each
test that asks for ``store_dsn`` gets a fresh clone of it. Django tests use pytest-django's
test database (unique per run), with the store schema migrated into it too, so telemetry and
CRM rows can be joined in SQL as in production.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aftercare import broker, store
from tests.support.services import DEVICE_SECRET, dsn_for, mqtt_url_for, scratch_database

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"


def pytest_configure(config: pytest.Config) -> None:
    # Several test runs may share one server (developers, CI): give Django a unique test DB.
    from django.conf import settings

    settings.DATABASES["default"]["TEST"]["NAME"] = f"test_aftercare_{RUN_ID}"


# The fast lane, `pytest -m "not slow"` (README, "Tests"): the tests that need nothing but this
# process. Whatever a test says itself, it is slow if it needs a server (PostgreSQL, a broker,
# PGlite/TimescaleDB, a live web server, a browser) or injects faults; a test that takes
# seconds of its own carries @pytest.mark.slow.
_SLOW_FIXTURES = frozenset({
    "db", "transactional_db", "live_server", "browser", "store_template", "store_dsn",
    "store_conn", "empty_db", "any_store_dsn", "pglite_dsn", "timescale_store_dsn", "mosquitto",
    "ingest_mqtt_url", "device_mqtt_url",
})
_SLOW_MARKERS = ("db", "django_db", "broker", "browser", "chaos", "timescale")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (_SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or any(item.get_closest_marker(name) for name in _SLOW_MARKERS)):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def store_template() -> Iterator[str]:
    """A database with the native-backend store schema, used as a template for clones."""
    with scratch_database(f"aftercare_tpl_{RUN_ID}") as name:
        with psycopg.connect(dsn_for(name)) as conn:
            store.migrate(conn, requested_backend="native")
        yield name


@pytest.fixture
def store_dsn(store_template: str) -> Iterator[str]:
    """DSN of a fresh, migrated store database for this test alone."""
    with scratch_database(f"aftercare_t_{RUN_ID}", template=store_template) as name:
        yield dsn_for(name)


@pytest.fixture
def store_conn(store_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(store_dsn) as conn:
        yield conn


@pytest.fixture
def empty_db() -> Iterator[str]:
    """DSN of an empty database (for migration tests)."""
    with scratch_database(f"aftercare_e_{RUN_ID}") as name:
        yield dsn_for(name)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.BrokerFiles]:
    """A private Mosquitto with generated credentials and ACLs (no anonymous access)."""
    directory = tmp_path_factory.mktemp("mosquitto")
    devices = [f"dev-{i:03d}" for i in range(20)] + ["pump-1", "pump-2"]
    files = broker.write_broker_files(
        directory, port=broker.free_port(), users=broker.default_users(DEVICE_SECRET, devices)
    )
    with broker.run_mosquitto(files):
        yield files


@pytest.fixture(scope="session")
def ingest_mqtt_url(mosquitto: broker.BrokerFiles) -> str:
    return mqtt_url_for(
        mosquitto, broker.INGEST_USER, broker.service_password(DEVICE_SECRET, broker.INGEST_USER)
    )


@pytest.fixture(scope="session")
def device_mqtt_url(mosquitto: broker.BrokerFiles) -> Any:
    def url(device_id: str) -> str:
        return mqtt_url_for(mosquitto, device_id, broker.device_password(DEVICE_SECRET, device_id))

    return url


@pytest.fixture(scope="session")
def pglite_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PostgreSQL 17 + TimescaleDB 2.23 (PGlite) over the wire protocol, one session at a time."""
    from tests.support import pglite

    pglite.ensure_installed()
    with pglite.run_pglite(tmp_path_factory.mktemp("pglite")) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Pytest-django's test database, plus the telemetry store schema in it."""
    from django.db import connection

    with django_db_blocker.unblock():
        connection.ensure_connection()
        store.migrate(connection.connection, requested_backend="native")


@pytest.fixture(scope="session")
def timescale_store_dsn(pglite_dsn: str) -> str:
    """The store migrated onto TimescaleDB (PGlite): shared by the session, so tests use
    their own device names. Retention 30 days, compression after 7."""
    with psycopg.connect(pglite_dsn) as conn:
        store.migrate(conn, requested_backend="timescaledb", retention_days=30,
                      compress_after_days=7)
    return pglite_dsn


@pytest.fixture(params=["native", "timescaledb"])
def any_store_dsn(request: pytest.FixtureRequest) -> str:
    """Each store test runs on both backends: native PostgreSQL and TimescaleDB (PGlite)."""
    name: str = request.param
    fixture = "store_dsn" if name == "native" else "timescale_store_dsn"
    dsn: str = request.getfixturevalue(fixture)
    return dsn


@pytest.fixture
def desk_agent(db: None) -> Any:
    """The desk agent: user ``desk`` with the desk-agent role, who logs in with the tests'
    password (``tests.support.personas.PASSWORD``)."""
    from tests.support.personas import user_with_role
    from web.roles import Role

    return user_with_role("desk", Role.DESK_AGENT)
