"""What the detect worker keeps in the store: its checkpoint (watermark and detector state)
and its outbox of alert events (queued in the same transaction as the checkpoint, published
after). Every function takes any DB-API connection and leaves transaction control to the
caller, except that :func:`save_step` must run inside one transaction (it writes both)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any


def load_checkpoint(conn: Any, worker: str) -> tuple[datetime, bytes] | None:
    """The worker's watermark and state, or None before its first step."""
    with conn.cursor() as cur:
        cur.execute("SELECT watermark, state FROM anomaly_checkpoints WHERE worker = %s",
                    (worker,))
        row = cur.fetchone()
    return None if row is None else (row[0], bytes(row[1]))


def save_step(conn: Any, worker: str, events: Iterable[tuple[str, int, bytes]],
              watermark: datetime, state: bytes) -> None:
    """Queue the step's events ((alert_id, revision, payload); one already queued is kept)
    and store the new watermark and state."""
    with conn.cursor() as cur:
        for alert_id, revision, payload in events:
            cur.execute(
                "INSERT INTO anomaly_outbox (worker, alert_id, revision, payload) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (worker, alert_id, revision) DO NOTHING",
                (worker, alert_id, revision, payload))
        cur.execute(
            "INSERT INTO anomaly_checkpoints (worker, watermark, state) VALUES (%s, %s, %s) "
            "ON CONFLICT (worker) DO UPDATE SET watermark = EXCLUDED.watermark, "
            "state = EXCLUDED.state, updated_at = now()", (worker, watermark, state))


def outbox_pending(conn: Any, worker: str, limit: int = 1000) -> list[tuple[int, bytes]]:
    """The worker's queued events not yet published, oldest first: (id, payload)."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, payload FROM anomaly_outbox WHERE worker = %s "
                    "AND published_at IS NULL ORDER BY id LIMIT %s", (worker, limit))
        return [(int(i), bytes(p)) for i, p in cur.fetchall()]


def outbox_mark_published(conn: Any, ids: Sequence[int]) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE anomaly_outbox SET published_at = now() WHERE id = ANY(%s)",
                    (list(ids),))
