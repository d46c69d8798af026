"""The telemetry store: one schema, two physical backends.

With the TimescaleDB extension available, ``telemetry`` is a hypertable with compression,
retention and continuous aggregates. Without it, the same table is natively partitioned by
day (partitions created ahead and dropped by retention, BRIN on time), and the 1-minute and
1-hour rollups are kept by :func:`maintain`. Either way, analysts query the ``readings``,
``readings_1m`` and ``readings_1h`` views, and writers call ``telemetry_prepare_write(lo, hi)``
before each batch.

The backend is chosen at migrate time (``AFTERCARE_STORE_BACKEND=auto`` detects the
extension), recorded in ``store_meta`` and reported by ``aftercare doctor``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Literal

import psycopg

log = logging.getLogger(__name__)

Backend = Literal["timescaledb", "native"]
Resolution = Literal["1m", "1h"]
Conn = psycopg.Connection[Any]


class StoreError(RuntimeError):
    """The store cannot be used as asked (wrong backend, missing extension, ...)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str


@dataclass(frozen=True)
class StoreInfo:
    backend: Backend
    server_version: str
    timescaledb_version: str | None
    schema_version: int


def _migrations() -> list[Migration]:
    files = sorted(
        p.name for p in resources.files("aftercare.store").joinpath("sql").iterdir()
        if p.name.endswith(".sql")
    )
    seen: dict[int, str] = {}
    for name in files:
        version = int(name.split("_", 1)[0])
        stem = name.split(".", 1)[0]
        seen.setdefault(version, stem)
    return [Migration(v, seen[v]) for v in sorted(seen)]


def _sql_for(migration: Migration, backend: Backend) -> str:
    sql_dir = resources.files("aftercare.store").joinpath("sql")
    for candidate in (f"{migration.name}.{backend}.sql", f"{migration.name}.sql"):
        path = sql_dir.joinpath(candidate)
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise StoreError(f"migration {migration.name} has no SQL for backend {backend}")


def timescaledb_available(conn: Conn) -> bool:
    """Whether the server can load TimescaleDB (installed, or already created here)."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def recorded_backend(conn: Conn) -> Backend | None:
    if conn.execute("SELECT to_regclass('store_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM store_meta WHERE key = 'backend'").fetchone()
    return None if row is None else row[0]


def choose_backend(conn: Conn, requested: str) -> Backend:
    """Resolve ``auto``/``timescaledb``/``native`` against the server and what is recorded."""
    recorded = recorded_backend(conn)
    available = timescaledb_available(conn)
    if requested not in {"auto", "timescaledb", "native"}:
        raise StoreError(f"unknown backend {requested!r}")
    if recorded is not None:
        if requested not in ("auto", recorded):
            raise StoreError(
                f"this database already uses the {recorded} backend; AFTERCARE_STORE_BACKEND="
                f"{requested} would need a data migration (dump readings, recreate, reload)"
            )
        return recorded
    if requested == "timescaledb" and not available:
        raise StoreError(
            "AFTERCARE_STORE_BACKEND=timescaledb but the server has no timescaledb extension; "
            "install TimescaleDB (see README, 'Production') or use auto/native"
        )
    if requested == "native":
        return "native"
    return "timescaledb" if available else "native"


def migrate(
    conn: Conn,
    *,
    requested_backend: str = "auto",
    retention_days: int = 365,
    compress_after_days: int = 7,
    partitions_ahead_days: int = 7,
) -> StoreInfo:
    """Create or upgrade every store table, view and policy; idempotent.

    Runs in the connection's own transactions (one per migration) and serialises concurrent
    migrators with an advisory lock.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('aftercare_store_migrate'))")
        backend = choose_backend(conn, requested_backend)
        if backend == "timescaledb":
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS store_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS store_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO store_meta (key, value) VALUES ('backend', %s) ON CONFLICT DO NOTHING",
            (backend,),
        )
        done = {r[0] for r in conn.execute("SELECT version FROM store_migrations").fetchall()}
    for migration in _migrations():
        if migration.version in done:
            continue
        sql = (
            _sql_for(migration, backend)
            .replace("{retention_days}", str(int(retention_days)))
            .replace("{compress_after_days}", str(int(compress_after_days)))
        )
        # Continuous aggregates cannot be created inside a transaction block, so each
        # migration runs in autocommit as a script; the version row is written last.
        with psycopg.ClientCursor(conn) as cur:
            prev = conn.autocommit
            conn.autocommit = True
            try:
                cur.execute(sql.encode())
                cur.execute(
                    "INSERT INTO store_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            finally:
                conn.autocommit = prev
        log.info("store migration %s applied (%s)", migration.name, backend)
    if backend == "native":
        now = datetime.now(UTC)
        ahead = now + timedelta(days=partitions_ahead_days)
        ensure_partitions(conn, now - timedelta(days=1), ahead)
    with conn.transaction():
        return info(conn)


def info(conn: Conn) -> StoreInfo:
    backend = recorded_backend(conn)
    if backend is None:
        raise StoreError("the store is not migrated yet: run `aftercare db migrate`")
    server = conn.execute("SHOW server_version").fetchone()
    ts = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    schema = conn.execute("SELECT coalesce(max(version), 0) FROM store_migrations").fetchone()
    return StoreInfo(
        backend=backend,
        server_version=str(server[0]) if server else "?",
        timescaledb_version=None if ts is None else str(ts[0]),
        schema_version=int(schema[0]) if schema else 0,
    )


def ensure_partitions(conn: Conn, lo: datetime, hi: datetime) -> int:
    """Native backend: create the daily partitions covering [lo, hi]. Returns how many."""
    with conn.transaction():
        row = conn.execute("SELECT telemetry_ensure_partitions(%s, %s)", (lo, hi)).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class MaintenanceReport:
    backend: Backend
    partitions_created: int = 0
    partitions_dropped: int = 0
    rollup_ranges_refreshed: int = 0
    jobs_run: int = 0


def maintain(
    conn: Conn,
    *,
    retention_days: int,
    partitions_ahead_days: int,
    run_timescale_jobs: bool = False,
    now: datetime | None = None,
    rollup_chunk: timedelta = timedelta(days=1),
) -> MaintenanceReport:
    """Periodic upkeep: partitions ahead, retention, rollups.

    On TimescaleDB the background workers do this; ``run_timescale_jobs`` runs the
    project's policies at once instead (for servers without background workers, such as
    PGlite in tests).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise StoreError("maintain() needs a connection with no transaction open")
    now = now or datetime.now(UTC)
    with conn.transaction():
        backend = info(conn).backend
    if backend == "timescaledb":
        jobs = 0
        if run_timescale_jobs:
            with conn.transaction():
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT job_id FROM timescaledb_information.jobs "
                        "WHERE hypertable_name IN ('telemetry', 'telemetry_1m', 'telemetry_1h') "
                        "ORDER BY job_id"
                    ).fetchall()
                ]
            prev = conn.autocommit
            conn.autocommit = True
            try:
                for job_id in ids:
                    conn.execute("CALL run_job(%s)", (job_id,))
                    jobs += 1
            finally:
                conn.autocommit = prev
        # The refresh policies look back a fixed window (3 hours / 3 days); backfilled or very
        # late data older than that is materialised here, from TimescaleDB's own invalidation
        # log, so both backends give the same rollups for any history.
        prev = conn.autocommit
        conn.autocommit = True
        try:
            conn.execute("CALL refresh_continuous_aggregate('telemetry_1m', NULL, "
                         "date_trunc('minute', now()))")
            conn.execute("CALL refresh_continuous_aggregate('telemetry_1h', NULL, "
                         "date_trunc('hour', now()))")
        finally:
            conn.autocommit = prev
        return MaintenanceReport(backend=backend, jobs_run=jobs, rollup_ranges_refreshed=2)
    created = ensure_partitions(conn, now - timedelta(days=1),
                                now + timedelta(days=partitions_ahead_days))
    with conn.transaction():
        dropped_row = conn.execute(
            "SELECT telemetry_drop_partitions_before(%s)", (now - timedelta(days=retention_days),)
        ).fetchone()
    return MaintenanceReport(
        backend=backend,
        partitions_created=created,
        partitions_dropped=int(dropped_row[0]) if dropped_row else 0,
        rollup_ranges_refreshed=rollup_refresh(conn, chunk=rollup_chunk),
    )


def rollup_slices(lo: datetime, hi: datetime, chunk: timedelta) -> list[tuple[datetime, datetime]]:
    """Split the hour-aligned range [lo, hi) into consecutive slices of at most ``chunk``.

    Slice edges fall on multiples of ``chunk`` since the epoch (UTC midnights for a day), so
    the same bucket always lands in the same slice whatever range it was invalidated with.

    >>> from datetime import UTC, datetime, timedelta
    >>> d = datetime(2026, 1, 1, 22, tzinfo=UTC)
    >>> [(a.hour, b.hour) for a, b in rollup_slices(d, d + timedelta(hours=4), timedelta(days=1))]
    [(22, 0), (0, 2)]
    """
    hour = timedelta(hours=1)
    if chunk < hour or chunk % hour:
        raise ValueError(f"`chunk` must be a whole number of hours, got {chunk}")
    if hi <= lo:
        return []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    out: list[tuple[datetime, datetime]] = []
    start = lo
    while start < hi:
        edge = epoch + ((start - epoch) // chunk + 1) * chunk
        end = min(edge, hi)
        out.append((start, end))
        start = end
    return out


def rollup_refresh(conn: Conn, *, chunk: timedelta = timedelta(days=1)) -> int:
    """Native backend: recompute the rollup buckets of every write since the last refresh.

    The pending ranges are split into slices of ``chunk`` (a day by default), each refreshed
    in its own transaction and logged, so a big backfill neither holds one transaction for
    an hour nor hides its progress. Buckets are recomputed whole from raw rows, so running
    again, concurrently, or after a crash half-way gives the same rollups; the invalidation
    rows are deleted only once every slice of their range is done. Returns how many merged
    ranges were refreshed.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise StoreError("rollup_refresh() needs a connection with no transaction open")
    with conn.transaction():
        pending = conn.execute(
            "SELECT ids, lo, hi FROM telemetry_rollup_pending()"
        ).fetchall()
    if not pending:
        return 0
    slices = [(ids, s) for ids, lo, hi in pending for s in rollup_slices(lo, hi, chunk)]
    log.info("rollup refresh: %d range(s), %d slice(s) of at most %s",
             len(pending), len(slices), chunk)
    for n, (_, (lo, hi)) in enumerate(slices, 1):
        t0 = time.perf_counter()
        with conn.transaction():
            row = conn.execute(
                "SELECT telemetry_rollup_refresh_range(%s, %s)", (lo, hi)
            ).fetchone()
        log.info("rollup refresh: slice %d/%d [%s, %s): %d rollup rows in %.1f s",
                 n, len(slices), lo.isoformat(), hi.isoformat(), row[0] if row else 0,
                 time.perf_counter() - t0)
    with conn.transaction():
        conn.execute("DELETE FROM telemetry_invalidations WHERE id = ANY(%s)",
                     ([i for ids, _, _ in pending for i in ids],))
    return len(pending)


