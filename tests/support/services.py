"""The real servers the suite runs against: PostgreSQL (an admin connection, DSNs of the
databases the fixtures create) and the private Mosquitto's credentials."""

from __future__ import annotations

import os
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


def mqtt_url_for(files: broker.BrokerFiles, user: str, password: str) -> str:
    return f"mqtt://{user}:{password}@127.0.0.1:{files.port}"
