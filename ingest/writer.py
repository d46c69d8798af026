"""Batch writer: binary COPY into a staging table, then one idempotent insert.

One call is one transaction carrying the readings, the rejects and the devices' last-seen
times, so a batch is either wholly stored or not at all, and a redelivered batch is stored
once ((device, metric, time) is unique; duplicates are counted, not stored).

The COPY buffer is built with numpy rather than row by row: the measured ceiling on this
kind of machine is ~1 M rows/s into daily partitions this way, against ~240 k rows/s for
text COPY (1 M narrow rows in 50 k-row batches, PostgreSQL 15 on 2 shared cores; binary COPY
is limited by the server backend, text COPY by the client).
"""

from __future__ import annotations

import dataclasses
import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import psycopg
from numpy.typing import ArrayLike, NDArray

from ingest.decode import printable
from ingest.records import EPOCH, BadMessage, Reading, StatusChange, Waveform

Conn = psycopg.Connection[Any]

# PostgreSQL's binary timestamps count microseconds from 2000-01-01.
_PG_EPOCH_OFFSET_US = 946_684_800_000_000
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"


def _row_dtypes(metric_bytes: int) -> tuple[np.dtype[Any], np.dtype[Any]]:
    """Binary COPY row layouts (with a value, and with NULL) for a metric id of that width."""
    met = f">i{metric_bytes}"
    head = [("ncols", ">i2"), ("l_time", ">i4"), ("time", ">i8"), ("l_dev", ">i4"),
            ("dev", ">i4"), ("l_met", ">i4"), ("met", met), ("l_val", ">i4")]
    return np.dtype([*head, ("val", ">f8")]), np.dtype(head)


_ROWS = {2: _row_dtypes(2), 4: _row_dtypes(4)}
# Stores migrated before metric ids were widened keep smallint (TimescaleDB cannot retype a
# compressed hypertable): there the catalogue stops short of the type's end.
MAX_METRIC_NAMES = {2: 32_000, 4: 1_000_000}
# A reject keeps this much of its payload verbatim, plus the whole size and SHA-256: a flood
# of huge garbage cannot fill the disk.
REJECT_KEEP_BYTES = 64 * 1024


class Refused(ValueError):
    """The store refuses this data for good (not an outage): isolate the message, reject it."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class WriteResult:
    received: int
    stored: int
    rejected: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


@dataclass
class Ids:
    """Device and metric ids of one store, as this process knows them (names never change
    id). A worker's connections share one, so that a batch's COPY data can be built ahead,
    off the connection (:func:`encode`)."""

    devices: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    metric_bytes: int = 0  # width of telemetry.metric_id, read once


@dataclass
class _Cache:
    ids: Ids = field(default_factory=Ids)
    staging: bool = False  # this connection's temporary staging table exists


_caches: weakref.WeakKeyDictionary[Conn, _Cache] = weakref.WeakKeyDictionary()


def _cache(conn: Conn) -> _Cache:
    cache = _caches.get(conn)
    if cache is None:
        cache = _caches[conn] = _Cache()
    return cache


def share_ids(conn: Conn, ids: Ids) -> None:
    """Let `conn` use and fill `ids` (every connection given the same one shares it)."""
    _cache(conn).ids = ids


def _metric_bytes(conn: Conn, ids: Ids) -> int:
    if not ids.metric_bytes:
        with conn.transaction():
            row = conn.execute(
                "SELECT typlen FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = 'telemetry'::regclass AND a.attname = 'metric_id'"
            ).fetchone()
        ids.metric_bytes = int(row[0]) if row else 4
    return ids.metric_bytes


def _resolve(conn: Conn, table: str, column: str, names: Sequence[str],
             known: dict[str, int], *, cap: int | None = None) -> None:
    """Give every name an id, creating rows for new ones in a short transaction of its own.

    Ids are committed before the batch so a batch that rolls back leaves the cache valid.
    With `cap`, a batch that would grow the table past `cap` rows is :class:`Refused`.
    """
    missing = sorted({n for n in names if n not in known})
    if not missing:
        return
    with conn.transaction():
        if cap is not None:
            # Serialise catalogue growth so concurrent writers cannot overshoot the cap.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{table}_cap",))
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} <> ALL(%s)",  # noqa: S608
                (missing,),
            ).fetchone()
            if row is not None and int(row[0]) + len(missing) > cap:
                raise Refused("metric catalogue full",
                              f"{len(missing)} new names, {int(row[0])} of {cap} in use")
        conn.execute(
            f"INSERT INTO {table} ({column}) SELECT unnest(%s::text[]) ORDER BY 1 "
            "ON CONFLICT DO NOTHING",
            (missing,),
        )
        rows = conn.execute(
            f"SELECT {column}, id FROM {table} WHERE {column} = ANY(%s)", (missing,)
        ).fetchall()
    known.update({str(k): int(v) for k, v in rows})


def copy_buffer(time_us: NDArray[np.int64], device_id: NDArray[np.int32],
                metric_id: NDArray[np.integer[Any]], value: NDArray[np.float64], *,
                metric_bytes: int = 4) -> bytes:
    """PostgreSQL binary COPY data for (time, device_id, metric_id, value) rows.

    NaN values are written as NULL ("no reading"). `metric_bytes` is the width of the
    metric id column (4 for integer, 2 for a store created with smallint ids).

    >>> buf = copy_buffer(np.array([0]), np.array([1], np.int32), np.array([2], np.int32),
    ...                   np.array([np.nan]))
    >>> len(buf) == 19 + 2 + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 2
    True
    """
    null = np.isnan(value)
    parts = [_HEADER]
    row, row_null = _ROWS[metric_bytes]
    for mask, dtype in ((~null, row), (null, row_null)):
        n = int(mask.sum())
        if n == 0:
            continue
        rows = np.empty(n, dtype=dtype)
        rows["ncols"] = 4
        rows["l_time"] = 8
        rows["time"] = time_us[mask] - _PG_EPOCH_OFFSET_US
        rows["l_dev"] = 4
        rows["dev"] = device_id[mask]
        rows["l_met"] = metric_bytes
        rows["met"] = metric_id[mask]
        if dtype is row:
            rows["l_val"] = 8
            rows["val"] = value[mask]
        else:
            rows["l_val"] = -1
        parts.append(rows.tobytes())
    parts.append(_TRAILER)
    return b"".join(parts)


DAY_US = 86_400_000_000
_COPY_CHUNK = 1 << 20


def _copy(cur: psycopg.Cursor[Any], table: str, buf: bytes) -> None:
    with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as cp:
        # Servers such as PGlite take big COPY payloads better in pieces.
        for start in range(0, len(buf), _COPY_CHUNK):
            cp.write(buf[start:start + _COPY_CHUNK])


def _factorize(names: Any) -> tuple[list[str], NDArray[np.intp]]:
    """Distinct names in first-seen order and each row's index into them.

    Both passes run in C (``dict.fromkeys``, ``map`` of a dict lookup): a batch has few
    distinct names and hundreds of thousands of rows (a Python loop was 70 % of `prepare`).

    >>> _factorize(["b", "a", "b"])
    (['b', 'a'], array([0, 1, 0]))
    """
    distinct = list(dict.fromkeys(names))
    index = {x: i for i, x in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, names), dtype=np.intp, count=len(names))
    return distinct, codes


def _day_runs(t: NDArray[np.int64]) -> list[tuple[int, int]]:
    """[lo, hi] of each run of consecutive UTC days present in ``t`` (microseconds).

    A batch holding a reading from last month and one from today prepares two single-day
    ranges, not every day in between.

    >>> _day_runs(np.array([5, DAY_US * 3 + 1, DAY_US * 4 + 2, DAY_US]))
    [(5, 86400000000), (259200000001, 345600000002)]
    """
    lo, hi = int(t.min()), int(t.max())
    if hi // DAY_US - lo // DAY_US <= 1:
        return [(lo, hi)]  # nearly every batch: one day, or across midnight (no sort needed)
    day_of = t // DAY_US
    days = np.unique(day_of)
    breaks = np.flatnonzero(np.diff(days) > 1) + 1
    runs = []
    for group in np.split(days, breaks):
        sel = t[(day_of >= group[0]) & (day_of <= group[-1])]
        runs.append((int(sel.min()), int(sel.max())))
    return runs


NO_READING = np.iinfo(np.int64).min  # Columns.last_us of a device with no row


@dataclass(frozen=True)
class Columns:
    """Readings ready for the store, worked out without the database (so the ingest worker
    prepares the next batch on its decoder thread while this one is written): names
    factorised, rows in the unique index's order, the days they fall on, each device's
    newest reading."""

    dev_names: list[str]
    dev_code: NDArray[np.intp]  # per row, into dev_names
    met_names: list[str]
    met_code: NDArray[np.intp]  # per row, into met_names
    time_us: NDArray[np.int64]
    value: NDArray[np.float64]
    day_runs: list[tuple[int, int]]
    last_us: NDArray[np.int64]  # per dev_names entry
    # The COPY data, when built ahead by :func:`encode`, with the ids it was built from.
    encoded: tuple[Ids, bytes] | None = None

    def __len__(self) -> int:
        return int(self.time_us.shape[0])

    def split(self, parts: int) -> list[Columns]:
        """At most `parts` pieces of about equal rows, each holding whole devices (their
        last-seen rows are updated by one writer) and keeping the index order.

        >>> c = prepare(["a"] * 3 + ["b"] * 2 + ["c"], ["x"] * 6, range(6), [0.0] * 6)
        >>> [(p.dev_code.tolist(), (p.last_us != NO_READING).tolist()) for p in c.split(2)]
        [([0, 0, 0], [True, False, False]), ([1, 1, 2], [False, True, True])]
        """
        n = len(self)
        cuts = sorted({int(np.searchsorted(self.dev_code, self.dev_code[n * i // parts]))
                       for i in range(1, parts)} - {0}) if n else []
        pieces = []
        for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
            sel = slice(lo, hi)
            last = np.full_like(self.last_us, NO_READING)
            held = np.unique(self.dev_code[sel])
            last[held] = self.last_us[held]
            t = self.time_us[sel]
            pieces.append(Columns(self.dev_names, self.dev_code[sel], self.met_names,
                                  self.met_code[sel], t, self.value[sel], _day_runs(t), last))
        return pieces


class Runs(NamedTuple):
    """A column given as runs: `rows[i]` rows of `names[i]`, in row order.

    >>> _codes(Runs(["a", "b", "a"], [2, 1, 1]))
    (['a', 'b'], array([0, 0, 1, 0]))
    """

    names: Sequence[str]
    rows: Sequence[int]


def _column(x: Sequence[str] | NDArray[Any] | Runs) -> list[str] | NDArray[Any] | Runs:
    # Lists are factorised as they are (iterating an object array costs more).
    return x if isinstance(x, list | Runs) else np.asarray(x, dtype=object)


def _shape(x: list[str] | NDArray[Any] | Runs) -> tuple[int, ...]:
    if isinstance(x, Runs):
        return (int(sum(x.rows)),)
    return (len(x),) if isinstance(x, list) else x.shape


def _codes(column: list[str] | NDArray[Any] | Runs) -> tuple[list[str], NDArray[np.intp]]:
    """Distinct names in first-seen order and each row's index into them."""
    if isinstance(column, Runs):
        names, codes = _factorize(list(column.names))
        return names, np.repeat(codes, np.asarray(column.rows, dtype=np.intp))
    return _factorize(column)


def prepare(device: Sequence[str] | NDArray[Any] | Runs, metric: Sequence[str] | NDArray[Any],
            time: ArrayLike, value: ArrayLike) -> Columns:
    """Check and arrange columnar readings for :func:`write_prepared` (no database).

    `device` may be given as :class:`Runs` (a message's readings share one device).

    Rows are put in the unique index's order (device, metric, time): each btree leaf is then
    filled once, in sequence, instead of every reading of a gateway payload landing on its
    metric's leaf in turn (gateway batches: 475 k against 357 k rows/s, half the index size).

    >>> c = prepare(["b", "a", "b"], ["x", "x", "y"], [3, 1, 2], [0.5, 1.5, np.nan])
    >>> c.dev_names, c.dev_code.tolist(), c.time_us.tolist(), c.last_us.tolist()
    (['b', 'a'], [0, 0, 1], [3, 2, 1], [3, 1])
    """
    t = np.asarray(time, dtype=np.int64)
    v = np.asarray(value, dtype=np.float64)
    dev, met = _column(device), _column(metric)
    n = t.shape[0] if t.ndim == 1 else -1
    shapes = [_shape(x) for x in (dev, met)] + [t.shape, v.shape]
    if t.ndim != 1 or any(shape != (n,) for shape in shapes):
        raise ValueError("`device`, `metric`, `time` and `value` must be 1-D and of equal "
                         f"length, got {', '.join(map(str, shapes))}")
    dev_names, dev_inv = _codes(dev)
    met_names, met_inv = _codes(met)
    order = np.lexsort((t, met_inv, dev_inv))
    t, v, dev_inv, met_inv = t[order], v[order], dev_inv[order], met_inv[order]
    last = np.full(len(dev_names), NO_READING, dtype=np.int64)
    np.maximum.at(last, dev_inv, t)
    return Columns(dev_names, dev_inv, met_names, met_inv, t, v,
                   _day_runs(t) if n else [], last)


def encode(cols: Columns, ids: Ids) -> Columns:
    """`cols` with its COPY data built now, if `ids` knows every name; else `cols` as it is
    (:func:`write_prepared` builds the data then).

    The worker encodes the next batch on its decoder thread while this one is written: built
    in a writing thread, the data kept its connection idle in transaction, waiting for the
    interpreter lock (~23 % of the backends' time under gateway payloads).
    """
    if not ids.metric_bytes or not len(cols):
        return cols
    try:
        dev_ids = np.array([ids.devices[x] for x in cols.dev_names], dtype=np.int32)
        met_ids = np.array([ids.metrics[x] for x in cols.met_names], dtype=np.int32)
    except KeyError:
        return cols
    buf = copy_buffer(cols.time_us, dev_ids[cols.dev_code], met_ids[cols.met_code], cols.value,
                      metric_bytes=ids.metric_bytes)
    return dataclasses.replace(cols, encoded=(ids, buf))


def write_columns(
    conn: Conn,
    *,
    device: Sequence[str] | NDArray[Any],
    metric: Sequence[str] | NDArray[Any],
    time: ArrayLike,
    value: ArrayLike,
    rejects: Sequence[BadMessage] = (),
    status: Sequence[StatusChange] = (),
    waveforms: Sequence[Waveform] = (),
) -> WriteResult:
    """Store columnar readings, rejects, status changes and waveforms in one transaction.

    Parameters
    ----------
    device, metric : sequences of str, one per row
    time : int64 array of epoch microseconds (UTC)
    value : float64 array; NaN is stored as NULL
    rejects : bad messages to keep in the same transaction
    status, waveforms : device status transitions and vibration bursts, same transaction
    """
    return write_prepared(conn, prepare(device, metric, time, value), rejects=rejects,
                          status=status, waveforms=waveforms)


def write_prepared(
    conn: Conn,
    cols: Columns,
    *,
    rejects: Sequence[BadMessage] = (),
    status: Sequence[StatusChange] = (),
    waveforms: Sequence[Waveform] = (),
) -> WriteResult:
    """:func:`write_columns` for readings already :func:`prepare`d."""
    n = len(cols)
    cache = _cache(conn)
    ids = cache.ids
    dev_names, met_names = cols.dev_names, cols.met_names
    side_devices = {s.device for s in status} | {w.device for w in waveforms}
    _resolve(conn, "devices", "device_key", sorted(set(dev_names) | side_devices), ids.devices)
    metric_bytes = _metric_bytes(conn, ids)
    _resolve(conn, "metrics", "name", sorted(met_names), ids.metrics,
             cap=MAX_METRIC_NAMES[metric_bytes])
    dev_ids = np.array([ids.devices[x] for x in dev_names], dtype=np.int32)
    if cols.encoded is not None and cols.encoded[0] is ids:
        buf = cols.encoded[1]
    elif n:
        met_ids = np.array([ids.metrics[x] for x in met_names], dtype=np.int32)
        buf = copy_buffer(cols.time_us, dev_ids[cols.dev_code], met_ids[cols.met_code],
                          cols.value, metric_bytes=metric_bytes)

    stored = 0
    with conn.transaction():
        if n:
            for lo_us, hi_us in cols.day_runs:
                conn.execute(
                    "SELECT telemetry_prepare_write(%s, %s)",
                    (EPOCH + timedelta(microseconds=lo_us), EPOCH + timedelta(microseconds=hi_us)),
                )
            with conn.cursor() as cur:
                try:
                    # Fast path: COPY straight into the table, in a savepoint. Duplicates only
                    # come with redelivery (a crash, a lost ack) or overlapping backfills.
                    with conn.transaction():
                        _copy(cur, "telemetry", buf)
                    stored = n
                except psycopg.errors.UniqueViolation:
                    # Slow path: stage, then keep only what is new; the rest is counted.
                    if not cache.staging:
                        cur.execute(
                            "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging "
                            "(time timestamptz, device_id int4, metric_id int"
                            f"{metric_bytes}, value float8) "
                            "ON COMMIT DELETE ROWS"
                        )
                        cache.staging = True
                    _copy(cur, "telemetry_staging", buf)
                    cur.execute(
                        "INSERT INTO telemetry SELECT * FROM telemetry_staging "
                        "ON CONFLICT DO NOTHING"
                    )
                    stored = cur.rowcount
                    cur.execute("TRUNCATE telemetry_staging")
                # Last-seen per device, in id order so concurrent writers lock alike.
                last = cols.last_us
                order = np.argsort(dev_ids)
                order = order[last[order] != NO_READING]  # devices of another piece
                cur.execute(
                    "UPDATE devices d SET last_seen = now(), "
                    "last_reading_at = GREATEST(d.last_reading_at, v.t) "
                    "FROM (SELECT unnest(%s::int4[]) AS id, "
                    "       to_timestamp(unnest(%s::float8[])) AS t) v "
                    # Last-seen is kept to within 5 s: rewriting every device row on every
                    # batch would cost more than the COPY itself.
                    "WHERE d.id = v.id AND (d.last_reading_at IS NULL OR d.last_seen IS NULL "
                    "  OR v.t > d.last_reading_at + interval '5 seconds' "
                    "  OR d.last_seen < now() - interval '5 seconds')",
                    (dev_ids[order].tolist(), (last[order] / 1e6).tolist()),
                )
        if rejects:
            write_rejects(conn, rejects)
        if status:
            _write_status(conn, status, ids.devices)
        if waveforms:
            _write_waveforms(conn, waveforms, ids.devices)
    return WriteResult(received=n, stored=stored, rejected=len(rejects))


def _write_status(conn: Conn, changes: Sequence[StatusChange], ids: dict[str, int]) -> None:
    """Log transitions (idempotent) and move each device's state forward in time only."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO device_status_log (device_id, time, state) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(ids[c.device], c.time, c.state) for c in changes],
        )
        latest: dict[str, StatusChange] = {}
        for c in changes:
            if c.device not in latest or c.time_us >= latest[c.device].time_us:
                latest[c.device] = c
        cur.executemany(
            "UPDATE devices SET state = %s, state_changed_at = %s, last_seen = now() "
            "WHERE id = %s AND (state_changed_at IS NULL OR state_changed_at <= %s)",
            [(c.state, c.time, ids[c.device], c.time)
             for c in sorted(latest.values(), key=lambda c: ids[c.device])],
        )


def _write_waveforms(conn: Conn, waves: Sequence[Waveform], ids: dict[str, int]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO waveforms (device_id, time, channel, sample_rate_hz, samples, shaft_rpm) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(ids[w.device], w.time, w.channel, w.sample_rate_hz, w.samples, w.shaft_rpm)
             for w in waves],
        )


def write_rejects(conn: Conn, rejects: Sequence[BadMessage]) -> None:
    """Keep bad messages with their reason (inside the caller's transaction).

    The payload is kept verbatim up to :data:`REJECT_KEEP_BYTES`, with its full size and
    SHA-256; text fields are made safe to store whatever they hold. A message kept once
    under its ``source_key`` (a spooled message replayed after a crash) is not kept again.
    """
    now = datetime.now(UTC)
    conn.execute(
        "INSERT INTO ingest_rejects (received_at, topic, payload, reason, detail, payload_size, "
        "  payload_sha256, source_key) "
        "SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::bytea[], %s::text[], "
        "  %s::text[], %s::int4[], %s::bytea[], %s::text[]) "
        "ON CONFLICT (source_key) DO NOTHING",
        (
            [r.received_at or now for r in rejects],
            [printable(r.topic, 1024) for r in rejects],
            [r.payload[:REJECT_KEEP_BYTES] for r in rejects],
            [printable(r.reason, 200) for r in rejects],
            [None if r.detail is None else printable(r.detail, 1000) for r in rejects],
            [len(r.payload) for r in rejects],
            [hashlib.sha256(r.payload).digest() for r in rejects],
            [r.source_key for r in rejects],
        ),
    )


def write_batch(
    conn: Conn, readings: Sequence[Reading], rejects: Sequence[BadMessage] = ()
) -> WriteResult:
    """Store decoded readings and rejects in one transaction."""
    return write_columns(
        conn,
        device=[r.device for r in readings],
        metric=[r.metric for r in readings],
        time=np.fromiter((r.time_us for r in readings), dtype=np.int64, count=len(readings)),
        value=np.fromiter(
            (np.nan if r.value is None else r.value for r in readings),
            dtype=np.float64, count=len(readings),
        ),
        rejects=rejects,
    )
