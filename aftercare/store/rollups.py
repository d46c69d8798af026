"""Rollups of the telemetry store: the one query of the ``readings_1m`` / ``readings_1h`` views
(:func:`rollup_sql`, ``%s`` parameters for any DB-API connection) and :func:`rollup_query`, which
runs it on a psycopg connection. On the native backend rows reflect the last
:func:`aftercare.store.maintain`, on TimescaleDB the aggregates are real-time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aftercare.store import Conn, Resolution


@dataclass(frozen=True)
class RollupRow:
    bucket: datetime
    device: str
    metric: str
    min: float | None
    max: float | None
    mean: float | None
    last: float | None
    count: int


def rollup_sql(
    *,
    devices: list[str],
    metrics: list[str] | None,
    start: datetime,
    end: datetime,
    resolution: Resolution = "1m",
    order: Literal["device", "time"] = "device",
) -> tuple[str, list[Any]]:
    """The one query of rollup rows (:class:`RollupRow` columns) for devices (and optionally
    metrics) in [start, end), oldest first per device and metric (`order` "device") or across
    them ("time"), with ``%s`` parameters: run it on any DB-API connection (psycopg's, or
    Django's for the web).

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> sql, params = rollup_sql(devices=["d"], metrics=None, start=t, end=t, order="time")
    >>> sql.split(" WHERE ")[1]
    'device = ANY(%s) AND bucket >= %s AND bucket < %s ORDER BY bucket, device, metric'
    """
    if resolution not in ("1m", "1h"):
        raise ValueError(f"`resolution` must be '1m' or '1h', got {resolution!r}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("`start` and `end` must be timezone-aware")
    view = "readings_1m" if resolution == "1m" else "readings_1h"
    sql = (f"SELECT {', '.join(RollupRow.__dataclass_fields__)} FROM {view} "
           "WHERE device = ANY(%s) AND bucket >= %s AND bucket < %s")
    params: list[Any] = [devices, start, end]
    if metrics is not None:
        sql += " AND metric = ANY(%s)"
        params.append(metrics)
    sql += " ORDER BY " + ("device, metric, bucket" if order == "device"
                           else "bucket, device, metric")
    return sql, params


def rollup_query(
    conn: Conn,
    *,
    devices: list[str],
    metrics: list[str] | None,
    start: datetime,
    end: datetime,
    resolution: Resolution = "1m",
) -> list[RollupRow]:
    """Rollup rows for devices (and optionally metrics) in [start, end), oldest first.

    The same call on both backends; on the native backend rows reflect the last
    :func:`maintain`, on TimescaleDB the aggregates are real-time.
    """
    sql, params = rollup_sql(devices=devices, metrics=metrics, start=start, end=end,
                             resolution=resolution)
    with conn.cursor() as cur:
        return [RollupRow(*row) for row in cur.execute(sql, params).fetchall()]
