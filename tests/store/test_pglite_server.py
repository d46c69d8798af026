"""The PGlite+TimescaleDB wire-protocol server (tools/pglite/server.mjs) seen through psycopg 3.

Everything the store relies on from TimescaleDB is exercised here: hypertables, binary and text
COPY, continuous aggregates, compression and retention policies run by hand (PGlite has no
background workers), and reopening a data directory.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import pglite

pytestmark = pytest.mark.timescale

UTC = dt.UTC
BASE = dt.datetime(2024, 1, 1, tzinfo=UTC)  # old enough for compression and retention policies


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pglite.ensure_installed()
    with pglite.run_pglite(tmp_path_factory.mktemp("pglite") / "data") as url:
        yield url


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=30)


def make_hypertable(conn: psycopg.Connection[Any], name: str, chunk: str = "1 day") -> None:
    conn.execute(
        f"CREATE TABLE {name} (time timestamptz NOT NULL, device int4 NOT NULL, value float8)"
    )
    conn.execute(f"SELECT create_hypertable('{name}', by_range('time', INTERVAL '{chunk}'))")


def copy_rows(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(
        f"COPY {table} (time, device, value) FROM STDIN (FORMAT BINARY)"
    ) as cp:
        cp.set_types(["timestamptz", "int4", "float8"])
        for row in rows:
            cp.write_row(row)


def scalar(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def test_timescaledb_is_installed_with_sane_session_settings(dsn: str) -> None:
    with connect(dsn) as conn:
        version = scalar(conn, "SELECT extversion FROM pg_extension WHERE extname='timescaledb'")
        assert version.startswith("2.")
        assert scalar(conn, "SHOW client_min_messages") == "notice"
        assert scalar(conn, "SHOW enable_seqscan") == "on"
        assert scalar(conn, "SHOW search_path") == '"$user", public'
        assert conn.info.parameter_status("server_version", ) is not None
        assert conn.info.parameter_status("TimeZone") == "UTC"
        assert conn.info.parameter_status("integer_datetimes") == "on"


def test_binary_copy_of_50k_rows_into_a_hypertable(dsn: str) -> None:
    rows = [(BASE + dt.timedelta(seconds=10 * i), i % 7, i * 0.5) for i in range(50_000)]
    with connect(dsn) as conn:
        make_hypertable(conn, "copy_bin")
        with conn.transaction():
            copy_rows(conn, "copy_bin", rows)
        count, total = conn.execute("SELECT count(*), sum(value) FROM copy_bin").fetchone() or ()
        assert count == 50_000
        assert total == sum(r[2] for r in rows)
        assert scalar(conn, "SELECT count(*) FROM timescaledb_information.chunks "
                            "WHERE hypertable_name = 'copy_bin'") == 6


def test_text_copy_and_copy_to_stdout(dsn: str) -> None:
    with connect(dsn) as conn:
        make_hypertable(conn, "copy_txt")
        with conn.cursor() as cur, cur.copy("COPY copy_txt (time, device, value) FROM STDIN") as cp:
            for i in range(1000):
                cp.write_row((BASE + dt.timedelta(minutes=i), i % 3, None if i % 10 == 0 else i))
        assert scalar(conn, "SELECT count(*) FROM copy_txt") == 1000
        assert scalar(conn, "SELECT count(*) FROM copy_txt WHERE value IS NULL") == 100
        with conn.cursor() as cur, cur.copy(
            "COPY (SELECT device, value FROM copy_txt ORDER BY time LIMIT 3) TO STDOUT"
        ) as cp:
            assert list(cp.rows()) == [("0", None), ("1", "1"), ("2", "2")]


def test_copy_inside_a_transaction_follows_commit_and_rollback(dsn: str) -> None:
    row = [(BASE, 1, 1.0)]
    with connect(dsn) as conn:
        make_hypertable(conn, "copy_tx")

        def abandon() -> None:
            with conn.transaction():
                conn.execute("INSERT INTO copy_tx VALUES (%s, 9, 9)", (BASE,))
                copy_rows(conn, "copy_tx", row)
                raise RuntimeError("abandon")

        with pytest.raises(RuntimeError, match="abandon"):
            abandon()
        assert scalar(conn, "SELECT count(*) FROM copy_tx") == 0
        with conn.transaction():
            conn.execute("INSERT INTO copy_tx VALUES (%s, 9, 9)", (BASE,))
            copy_rows(conn, "copy_tx", row)
            copy_rows(conn, "copy_tx", row)
        assert scalar(conn, "SELECT count(*) FROM copy_tx") == 3


def test_copy_payload_over_1_mib(dsn: str) -> None:
    payload = "".join(
        f"2024-02-01 00:00:00+00\t{i}\t{i}.{'5' * 40}\n" for i in range(40_000)
    ).encode()
    assert len(payload) > 1024 * 1024
    with connect(dsn) as conn:
        make_hypertable(conn, "copy_big")
        with conn.cursor() as cur, cur.copy("COPY copy_big (time, device, value) FROM STDIN") as cp:
            for start in range(0, len(payload), 256 * 1024):
                cp.write(payload[start:start + 256 * 1024])
        assert scalar(conn, "SELECT count(*) FROM copy_big") == 40_000
        # and more than 1 MiB back out
        with conn.cursor() as cur, cur.copy("COPY (SELECT * FROM copy_big) TO STDOUT") as cp:
            out = b"".join(bytes(block) for block in cp)
        assert out.count(b"\n") == 40_000
        assert len(out) > 1024 * 1024


def test_sql_error_in_a_transaction_reaches_the_client_and_rollback_recovers(dsn: str) -> None:
    with connect(dsn, autocommit=False) as conn:
        conn.execute("CREATE TABLE err_t (id int PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO err_t VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO err_t VALUES (1)")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert scalar(conn, "SELECT count(*) FROM err_t") == 0
        # A COPY that fails on bad data is an error too, and the session survives it.
        with pytest.raises(psycopg.errors.InvalidTextRepresentation), conn.cursor() as cur, \
                cur.copy("COPY err_t FROM STDIN") as cp:
            cp.write(b"2\nnot-a-number\n")
        conn.rollback()
        # Parameterised (extended protocol) statements after the error still work.
        for i in range(10):
            conn.execute("INSERT INTO err_t VALUES (%s)", (i,))
        conn.commit()
        assert scalar(conn, "SELECT count(*) FROM err_t") == 10


def test_sequential_connections_start_from_a_clean_session(dsn: str) -> None:
    with connect(dsn, autocommit=False) as first:
        for i in range(8):  # psycopg prepares statements server-side after 5 runs
            scalar(first, "SELECT %s::int", (i,))
        first.execute("CREATE TEMP TABLE scratch (x int)")
        first.execute("SET enable_seqscan = off")
        first.execute("INSERT INTO scratch VALUES (1)")  # transaction left open on purpose
    with connect(dsn) as second:
        for i in range(8):
            assert scalar(second, "SELECT %s::int", (i,)) == i
        assert scalar(second, "SELECT to_regclass('scratch') IS NULL") is True
        assert scalar(second, "SHOW enable_seqscan") == "on"


def test_a_concurrent_connection_waits_until_the_first_closes(dsn: str) -> None:
    first = connect(dsn)
    assert scalar(first, "SELECT 1") == 1
    result: dict[str, Any] = {}

    def second_client() -> None:
        try:
            with connect(dsn) as second:
                result["value"] = scalar(second, "SELECT 2")
                result["at"] = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=second_client, daemon=True)
    thread.start()
    thread.join(timeout=1.5)
    assert thread.is_alive(), f"second session was not queued: {result}"
    assert scalar(first, "SELECT 3") == 3  # the first session is unaffected by the waiter
    closed_at = time.monotonic()
    first.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert result.get("value") == 2, result
    assert result["at"] >= closed_at


def test_continuous_aggregate_refresh(dsn: str) -> None:
    # device 1: value = minute of the day over two hours, device 2: constant 5
    rows = [(BASE + dt.timedelta(minutes=m), 1, float(m)) for m in range(120)]
    rows += [(BASE + dt.timedelta(minutes=m), 2, 5.0) for m in range(0, 120, 2)]
    with connect(dsn) as conn:
        make_hypertable(conn, "cagg_src")
        copy_rows(conn, "cagg_src", rows)
        conn.execute(
            """
            CREATE MATERIALIZED VIEW cagg_hourly WITH (timescaledb.continuous) AS
            SELECT time_bucket('1 hour', time) AS bucket, device,
                   min(value) AS vmin, max(value) AS vmax, avg(value) AS vavg,
                   last(value, time) AS vlast, count(*) AS n
            FROM cagg_src GROUP BY bucket, device WITH NO DATA
            """
        )
        assert scalar(conn, "SELECT count(*) FROM cagg_hourly") == 0
        conn.execute("CALL refresh_continuous_aggregate('cagg_hourly', NULL, NULL)")
        got = conn.execute(
            "SELECT bucket, device, vmin, vmax, vavg, vlast, n FROM cagg_hourly "
            "ORDER BY bucket, device"
        ).fetchall()
    hour = dt.timedelta(hours=1)
    assert got == [
        (BASE, 1, 0.0, 59.0, pytest.approx(29.5), 59.0, 60),
        (BASE, 2, 5.0, 5.0, 5.0, 5.0, 30),
        (BASE + hour, 1, 60.0, 119.0, pytest.approx(89.5), 119.0, 60),
        (BASE + hour, 2, 5.0, 5.0, 5.0, 5.0, 30),
    ]


def test_compression_policy_run_by_hand(dsn: str) -> None:
    rows = [(BASE + dt.timedelta(minutes=5 * i), i % 4, float(i)) for i in range(3 * 288)]
    with connect(dsn) as conn:
        make_hypertable(conn, "comp")
        copy_rows(conn, "comp", rows)
        conn.execute(
            "ALTER TABLE comp SET (timescaledb.compress, timescaledb.compress_segmentby = 'device')"
        )
        job = scalar(conn, "SELECT add_compression_policy('comp', compress_after => "
                           "INTERVAL '7 days')")
        conn.execute("CALL run_job(%s)", (job,))
        compressed = scalar(
            conn,
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'comp' AND is_compressed",
        )
        assert compressed == 3
        assert conn.execute("SELECT count(*), sum(value) FROM comp").fetchone() == (
            len(rows), sum(r[2] for r in rows)
        )
        assert scalar(conn, "SELECT max(value) FROM comp WHERE device = 3") == 863.0


def test_retention_policy_run_by_hand(dsn: str) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    old = [(BASE + dt.timedelta(days=d), 1, float(d)) for d in range(5)]
    recent = [(now - dt.timedelta(hours=h), 1, 100.0 + h) for h in range(3)]
    with connect(dsn) as conn:
        make_hypertable(conn, "retain")
        copy_rows(conn, "retain", old + recent)
        chunks_before = scalar(conn, "SELECT count(*) FROM show_chunks('retain')")
        job = scalar(
            conn, "SELECT add_retention_policy('retain', drop_after => INTERVAL '30 days')"
        )
        conn.execute("CALL run_job(%s)", (job,))
        assert scalar(conn, "SELECT count(*) FROM show_chunks('retain')") == chunks_before - 5
        assert scalar(conn, "SELECT count(*) FROM retain") == 3
        assert scalar(conn, "SELECT min(value) FROM retain") == 100.0


def test_restart_on_the_same_data_directory(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    rows = [(BASE + dt.timedelta(minutes=10 * i), i % 2, float(i)) for i in range(2 * 144)]
    pglite.ensure_installed()
    with pglite.run_pglite(datadir) as dsn, connect(dsn) as conn:
        make_hypertable(conn, "keep")
        copy_rows(conn, "keep", rows)
        conn.execute("ALTER TABLE keep SET (timescaledb.compress, "
                     "timescaledb.compress_segmentby = 'device')")
        conn.execute("SELECT compress_chunk(c) FROM show_chunks('keep') c")
    with pglite.run_pglite(datadir) as dsn, connect(dsn) as conn:
        assert scalar(conn, "SELECT count(*) FROM keep") == len(rows)
        assert scalar(
            conn,
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'keep' AND is_compressed",
        ) == 2
        # compression and continuous aggregates still work after the reopen
        copy_rows(conn, "keep", [(BASE + dt.timedelta(days=3), 0, 1.0)])
        job = scalar(conn, "SELECT add_compression_policy('keep', compress_after => "
                           "INTERVAL '7 days')")
        conn.execute("CALL run_job(%s)", (job,))
        assert scalar(
            conn,
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'keep' AND is_compressed",
        ) == 3
        conn.execute(
            "CREATE MATERIALIZED VIEW keep_daily WITH (timescaledb.continuous) AS "
            "SELECT time_bucket('1 day', time) AS day, count(*) AS n FROM keep GROUP BY day"
        )
        assert conn.execute("SELECT day, n FROM keep_daily ORDER BY day").fetchall() == [
            (BASE, 144), (BASE + dt.timedelta(days=1), 144), (BASE + dt.timedelta(days=3), 1)
        ]
