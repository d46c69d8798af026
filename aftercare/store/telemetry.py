"""Reading the telemetry store by event time, as the detect worker does: the database clock, the
earliest reading (after a time), one slice of readings keyed by channel, the names behind those
keys, and the vibration bursts of a slice. Every function takes any DB-API connection (psycopg's
or Django's) and leaves transaction control to the caller.

A *channel key* is ``device_id << 32 | metric_id``: one int64 per (device, metric), the worker's
row index in its arrays. (Both ids are int4; metric ids reach 1,000,000, so the 16 bits once
given to them let the 65,537th metric name read as another device's channel.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

KEY_SHIFT = 32  # channel key = device_id << KEY_SHIFT | metric_id
_METRIC_MASK = (1 << KEY_SHIFT) - 1


def _rows(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()]


def db_now(conn: Any) -> datetime:
    """The database's clock (the clock the ingest transactions commit by)."""
    now: datetime = _rows(conn, "SELECT now()")[0][0]
    return now


def first_time(conn: Any, after: datetime | None = None) -> datetime | None:
    """The earliest reading's time (after `after`, if given); None on an empty store."""
    first: datetime | None = (
        _rows(conn, "SELECT min(time) FROM telemetry")[0][0] if after is None
        else _rows(conn, "SELECT min(time) FROM telemetry WHERE time > %s", (after,))[0][0])
    return first


def read_slice(conn: Any, lo: datetime, hi: datetime) -> list[tuple[int, int, float | None]]:
    """Every reading with ``lo < time <= hi``: (time in µs since the epoch, channel key, value
    or None), in no particular order."""
    rows: list[tuple[int, int, float | None]] = _rows(
        conn,
        "SELECT (extract(epoch FROM time) * 1000000)::int8, "
        f"       (device_id::int8 << {KEY_SHIFT}) | metric_id, value "
        "FROM telemetry WHERE time > %s AND time <= %s", (lo, hi))
    return rows


def channel_names(conn: Any, keys: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(device_key, metric name) of each channel key."""
    if not keys:
        return {}
    rows = _rows(conn, "SELECT k, d.device_key, m.name FROM unnest(%s::int8[]) AS k "
                       f"JOIN devices d ON d.id = (k >> {KEY_SHIFT})::int "
                       f"JOIN metrics m ON m.id = (k & {_METRIC_MASK})::int", (list(keys),))
    return {int(k): (str(d), str(m)) for k, d, m in rows}


def waveforms_between(conn: Any, lo: datetime, hi: datetime, channel: str
                      ) -> list[tuple[str, int, float, bytes, float | None]]:
    """The bursts of `channel` with ``lo < time <= hi``, oldest first: (device_key, time in
    µs, sample rate Hz, samples as little-endian float32 bytes, shaft rpm the device sent or
    None)."""
    rows = _rows(conn, "SELECT d.device_key, (extract(epoch FROM w.time) * 1000000)::int8, "
                       "       w.sample_rate_hz, w.samples, w.shaft_rpm "
                       "FROM waveforms w JOIN devices d ON d.id = w.device_id "
                       "WHERE w.time > %s AND w.time <= %s AND w.channel = %s ORDER BY w.time",
                 (lo, hi, channel))
    return [(str(d), int(t), float(fs), bytes(s), None if rpm is None else float(rpm))
            for d, t, fs, s, rpm in rows]
