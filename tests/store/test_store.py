"""The store on both backends: schema, dedup, rollups, partitions, compression, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from aftercare import store
from aftercare.store import rollups
from ingest import writer
from ingest.records import EPOCH, BadMessage

pytestmark = pytest.mark.db


def us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def tag() -> str:
    return uuid.uuid4().hex[:8]


def write(conn: psycopg.Connection[Any], device: list[str], metric: list[str],
          time_us: np.ndarray, value: np.ndarray) -> writer.WriteResult:
    result = writer.write_columns(conn, device=device, metric=metric, time=time_us, value=value)
    conn.commit()
    return result


def refresh(conn: psycopg.Connection[Any]) -> None:
    store.maintain(conn, retention_days=365, partitions_ahead_days=3, run_timescale_jobs=True)


def test_migrate_is_idempotent_and_reports_the_backend(any_store_dsn: str) -> None:
    with psycopg.connect(any_store_dsn) as conn:
        first = store.migrate(conn, requested_backend="auto")
        again = store.migrate(conn, requested_backend="auto")
        assert first == again
        expected = "native" if first.timescaledb_version is None else "timescaledb"
        assert first.backend == expected
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'readings' ORDER BY ordinal_position"
        ).fetchall()
        assert columns == [("time", "timestamp with time zone"), ("device", "text"),
                           ("metric", "text"), ("value", "double precision")]
        reject_cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'ingest_rejects'").fetchall()}
        assert {"received_at", "topic", "payload", "reason"} <= reject_cols


def test_duplicates_are_stored_once_and_nulls_kept(any_store_dsn: str) -> None:
    dev = f"dup-{tag()}"
    t0 = us(datetime.now(UTC).replace(microsecond=0))
    times = np.array([t0, t0 + 1_000_000, t0 + 2_000_000], dtype=np.int64)
    values = np.array([1.5, np.nan, 3.5])
    with psycopg.connect(any_store_dsn) as conn:
        first = write(conn, [dev] * 3, ["temp_c"] * 3, times, values)
        again = write(conn, [dev] * 3, ["temp_c"] * 3, times, values + 100)
        assert (first.stored, first.duplicates) == (3, 0)
        assert (again.stored, again.duplicates) == (0, 3)
        rows = conn.execute(
            "SELECT value FROM readings WHERE device = %s ORDER BY time", (dev,)
        ).fetchall()
        assert rows == [(1.5,), (None,), (3.5,)]
        seen = conn.execute(
            "SELECT first_seen IS NOT NULL, last_reading_at FROM devices WHERE device_key = %s",
            (dev,),
        ).fetchone()
        assert seen == (True, EPOCH + timedelta(microseconds=int(times[-1])))


def expected_rollups(times: np.ndarray, values: np.ndarray, width_s: int) -> list[tuple[Any, ...]]:
    buckets = (times // 1_000_000 // width_s) * width_s
    out = []
    for b in np.unique(buckets):
        sel = buckets == b
        v = values[sel]
        last = v[np.argmax(times[sel])]
        out.append((EPOCH + timedelta(seconds=int(b)), float(v.min()), float(v.max()),
                    pytest.approx(float(v.mean())), float(last), int(sel.sum())))
    return out


def test_rollups_match_numpy_including_late_data(any_store_dsn: str) -> None:
    dev = f"roll-{tag()}"
    rng = np.random.default_rng(7)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    n = 3 * 3600 // 5
    times = us(start) + np.arange(n, dtype=np.int64) * 5_000_000
    values = np.round(rng.normal(50, 10, n), 3)
    # Leave minute 7 empty at first and deliver it late, after a refresh.
    late = (times >= us(start) + 7 * 60_000_000) & (times < us(start) + 8 * 60_000_000)
    with psycopg.connect(any_store_dsn) as conn:
        write(conn, [dev] * int((~late).sum()), ["flow_m3h"] * int((~late).sum()),
              times[~late], values[~late])
        refresh(conn)
        write(conn, [dev] * int(late.sum()), ["flow_m3h"] * int(late.sum()),
              times[late], values[late])
        refresh(conn)
        end = start + timedelta(hours=3)
        for resolution, width in (("1m", 60), ("1h", 3600)):
            rows = rollups.rollup_query(conn, devices=[dev], metrics=["flow_m3h"], start=start,
                                      end=end, resolution=resolution)  # type: ignore[arg-type]
            got = [(r.bucket, r.min, r.max, r.mean, r.last, r.count) for r in rows]
            assert got == expected_rollups(times, values, width), resolution


def test_rollup_query_rejects_bad_arguments(store_conn: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="resolution"):
        rollups.rollup_query(store_conn, devices=["x"], metrics=None, start=now, end=now,
                           resolution="5m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        rollups.rollup_query(store_conn, devices=["x"], metrics=None,
                           start=now.replace(tzinfo=None), end=now)


def test_rejects_are_kept_verbatim(any_store_dsn: str) -> None:
    topic = f"devices/rej-{tag()}/telemetry"
    payload = b'{"ts": "yesterday", \xff}'
    with psycopg.connect(any_store_dsn) as conn:
        result = writer.write_columns(
            conn, device=[], metric=[], time=np.array([], dtype=np.int64),
            value=np.array([]), rejects=[BadMessage(topic, payload, "not json", "byte 21")],
        )
        conn.commit()
        assert result.rejected == 1
        row = conn.execute(
            "SELECT payload, reason, detail FROM ingest_rejects WHERE topic = %s", (topic,)
        ).fetchone()
        assert row == (payload, "not json", "byte 21")


def test_native_partitions_ahead_brin_and_retention(store_conn: psycopg.Connection[Any]) -> None:
    conn = store_conn
    conn.commit()
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    write(conn, ["ret-1", "ret-1"], ["temp_c", "temp_c"],
          np.array([us(old), us(now)], dtype=np.int64), np.array([1.0, 2.0]))
    report = store.maintain(conn, retention_days=30, partitions_ahead_days=5, now=now)
    assert report.partitions_dropped == 1
    parts = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry'::regclass").fetchall()}
    for ahead in range(6):
        assert store_name(now + timedelta(days=ahead)) in parts
    assert store_name(old) not in parts
    assert conn.execute("SELECT array_agg(value) FROM readings").fetchone() == ([2.0],)
    brin = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'telemetry' AND indexdef ~* 'brin'"
    ).fetchone()
    assert brin == (1,)


def store_name(t: datetime) -> str:
    return "telemetry_p" + t.strftime("%Y%m%d")


def test_timescaledb_hypertable_compression_and_retention(timescale_store_dsn: str) -> None:
    dev = f"ts-{tag()}"
    now = datetime.now(UTC)
    times = np.array([us(now - timedelta(days=d)) for d in (45, 10, 9, 0)], dtype=np.int64)
    with psycopg.connect(timescale_store_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 'telemetry'").fetchone() == (1,)
        policies = {r[0] for r in conn.execute(
            "SELECT proc_name FROM timescaledb_information.jobs "
            "WHERE hypertable_name = 'telemetry'").fetchall()}
        assert {"policy_compression", "policy_retention"} <= policies
        caggs = {r[0] for r in conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates").fetchall()}
        assert {"telemetry_1m", "telemetry_1h"} <= caggs
        write(conn, [dev] * 4, ["temp_c"] * 4, times, np.array([1.0, 2.0, 3.0, 4.0]))
        refresh(conn)
        # 45 days old: dropped by retention (30 days); 9-10 days old: compressed, still readable.
        values = conn.execute(
            "SELECT array_agg(value ORDER BY time) FROM readings WHERE device = %s", (dev,)
        ).fetchone()
        assert values == ([2.0, 3.0, 4.0],)
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'telemetry' AND is_compressed "
            "AND range_end <= now() - interval '7 days'").fetchone()
        assert compressed is not None
        assert compressed[0] >= 2
        # Writing into a compressed chunk still deduplicates.
        again = write(conn, [dev], ["temp_c"], times[1:2], np.array([99.0]))
        assert again.duplicates == 1


def test_requesting_timescaledb_without_it_names_the_setting(
    empty_db: str,
) -> None:
    with psycopg.connect(empty_db) as conn:
        if store.timescaledb_available(conn):
            pytest.skip("this server has TimescaleDB")  # never on the CI machine
        with pytest.raises(store.StoreError, match="AFTERCARE_STORE_BACKEND"):
            store.migrate(conn, requested_backend="timescaledb")


def _rollup_snapshot(conn: psycopg.Connection[Any], dev: str) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for view in ("readings_1m", "readings_1h"):
        out[view] = conn.execute(
            # avg() sums in input order, which a sort need not keep: compare means to 1e-9.
            f"SELECT bucket, metric, min, max, round(mean::numeric, 9), last, count "
            f"FROM {view} "  # noqa: S608
            "WHERE device = %s ORDER BY metric, bucket", (dev,)
        ).fetchall()
    conn.commit()
    return out


def test_chunked_refresh_gives_the_same_rollups_as_one_refresh(
    store_conn: psycopg.Connection[Any],
) -> None:
    conn = store_conn
    dev = f"chunk-{tag()}"
    rng = np.random.default_rng(11)
    # 50 hours across two UTC midnights, two metrics, then a late hour after a refresh.
    start = datetime.now(UTC).replace(hour=20, minute=0, second=0, microsecond=0) - timedelta(
        days=3)
    n = 50 * 60
    times = us(start) + np.arange(n, dtype=np.int64) * 60_000_000 + 7_000_000
    values = np.round(rng.normal(20, 3, n), 3)
    late = (times >= us(start) + 30 * 3_600_000_000) & (times < us(start) + 31 * 3_600_000_000)
    for metric in ("temp_c", "flow_m3h"):
        write(conn, [dev] * int((~late).sum()), [metric] * int((~late).sum()),
              times[~late], values[~late])
    # Reference: the one-call SQL form, everything in one transaction.
    conn.execute("SELECT telemetry_rollup_refresh()")
    conn.commit()
    write(conn, [dev] * int(late.sum()), ["temp_c"] * int(late.sum()), times[late], values[late])
    conn.execute("SELECT telemetry_rollup_refresh()")
    conn.commit()
    one = _rollup_snapshot(conn, dev)
    # flow_m3h never gets its late hour.
    assert len(one["readings_1h"]) == 50 * 2 - 1
    assert conn.execute(
        "SELECT count(*) FROM telemetry_invalidations").fetchone() == (0,)
    assert [(r[0], r[2], r[3], float(r[4]), r[5], r[6]) for r in one["readings_1m"]
            if r[1] == "temp_c"] == expected_rollups(times, values, 60)

    # Throw the rollups away, invalidate the whole span again and refresh in 1-hour slices.
    conn.execute("DELETE FROM telemetry_1m; DELETE FROM telemetry_1h")
    conn.execute("SELECT telemetry_prepare_write(%s, %s)",
                 (start, start + timedelta(hours=50)))
    conn.commit()
    assert store.rollup_refresh(conn, chunk=timedelta(hours=5)) == 1
    assert _rollup_snapshot(conn, dev) == one
    # Consumed exactly once: nothing left to do, and running again changes nothing.
    assert store.rollup_refresh(conn) == 0
    conn.execute("SELECT telemetry_prepare_write(%s, %s)", (start, start + timedelta(hours=2)))
    conn.commit()
    assert store.rollup_refresh(conn) == 1
    assert _rollup_snapshot(conn, dev) == one
    # Stored clustered: each slice's 1-hour rows were inserted in (device, metric, bucket) order.
    lo, hi = store.rollup_slices(start, start + timedelta(hours=50), timedelta(hours=5))[2]
    ctids = conn.execute(
        "SELECT (r.ctid::text::point)[0], (r.ctid::text::point)[1] FROM telemetry_1h r "
        "JOIN devices d ON d.id = r.device_id WHERE d.device_key = %s AND r.bucket >= %s "
        "AND r.bucket < %s ORDER BY r.device_id, r.metric_id, r.bucket", (dev, lo, hi)).fetchall()
    assert len(ctids) == 10
    assert ctids == sorted(ctids)


def test_rollup_slices_follow_chunk_edges_and_reject_bad_chunks() -> None:
    d = datetime(2026, 1, 1, 22, tzinfo=UTC)
    assert store.rollup_slices(d, d + timedelta(hours=28), timedelta(days=1)) == [
        (d, d + timedelta(hours=2)), (d + timedelta(hours=2), d + timedelta(hours=26)),
        (d + timedelta(hours=26), d + timedelta(hours=28))]
    assert store.rollup_slices(d, d, timedelta(days=1)) == []
    for bad in (timedelta(minutes=30), timedelta(minutes=90)):
        with pytest.raises(ValueError, match="chunk"):
            store.rollup_slices(d, d + timedelta(hours=1), bad)


def test_refresh_range_rejects_unaligned_or_empty_ranges(
    store_conn: psycopg.Connection[Any],
) -> None:
    d = datetime(2026, 1, 1, 22, tzinfo=UTC)
    with pytest.raises(psycopg.errors.RaiseException, match="hour-aligned"):
        store_conn.execute("SELECT telemetry_rollup_refresh_range(%s, %s)",
                           (d + timedelta(minutes=5), d + timedelta(hours=1)))
    store_conn.rollback()
    with pytest.raises(psycopg.errors.RaiseException, match="lo < hi"):
        store_conn.execute("SELECT telemetry_rollup_refresh_range(%s, %s)", (d, d))
