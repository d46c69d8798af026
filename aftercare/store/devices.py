"""The store's device registry (``devices``, written by ingest as devices appear and report
their status), read by the tools and the CRM. Every function takes any DB-API connection and
leaves transaction control to the caller."""

from __future__ import annotations

from typing import Any


def device_keys(conn: Any) -> list[str]:
    """Every device id the store has seen, sorted."""
    with conn.cursor() as cur:
        cur.execute("SELECT device_key FROM devices ORDER BY device_key")
        return [str(r[0]) for r in cur.fetchall()]


def device_lock(conn: Any, device_key: str) -> bool:
    """Lock the device's row until the caller's transaction ends; False if the store has
    never seen the device."""
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM devices WHERE device_key = %s FOR UPDATE", [device_key])
        return cur.fetchone() is not None
