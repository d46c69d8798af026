"""A scratch database for a benchmark: created on the PostgreSQL of ``DATABASE_URL``, Django set
up on it, dropped afterwards (Ctrl-C included)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


def scratch_database(base_url: str) -> tuple[str, str, str]:
    """Create ``aftercare_bench_<random>``: (the admin DSN, its name, its URL)."""
    import psycopg

    name = f"aftercare_bench_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin, name, urlunsplit(parts._replace(path="/" + name))


@contextmanager
def django_scratch_database() -> Iterator[str]:
    """A scratch database with Django set up on it (``DATABASE_URL`` pointed at it); yields its
    URL and drops it on the way out."""
    import django
    import psycopg

    from aftercare import config

    admin_dsn, dbname, url = scratch_database(config.load().database_url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")
    django.setup()
    try:
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
