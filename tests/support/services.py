"""The real servers the suite runs against: PostgreSQL (an admin connection, DSNs of the
databases the fixtures create) and the private Mosquitto's credentials."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from aftercare import broker

ADMIN_DSN = os.environ.get("AFTERCARE_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
# The secret the private Mosquitto's device and service passwords are derived from.
DEVICE_SECRET = "test-device-secret"


def dsn_for(dbname: str) -> str:
    """The DSN of database ``dbname`` on the test server."""
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + dbname


def admin_connection() -> psycopg.Connection[Any]:
    """An autocommit connection to the test server's ``postgres`` database (to create and
    drop databases); ends the run with a clear message if the server is not there."""
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {ADMIN_DSN}: {exc}\n"
            "Run the tests through `make test`, which starts it.", returncode=3
        )


def drop_database(name: str) -> None:
    """Drop database ``name`` if it is there, whoever is still connected to it."""
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A database of its own (``prefix`` and a random suffix; a file copy of ``template``, or
    empty) for as long as the block runs, dropped afterwards; yields its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    clone = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"{clone}')
    try:
        yield name
    finally:
        drop_database(name)


def mqtt_url_for(files: broker.BrokerFiles, user: str, password: str) -> str:
    return f"mqtt://{user}:{password}@127.0.0.1:{files.port}"
