"""A large batch is written in pieces of whole devices on several connections at once; a
piece that fails after another committed is retried with the whole batch, and the unique key
keeps every reading once (issue 19: exactly once kept under redelivery)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from ingest import writer
from ingest.spool import Record
from ingest.worker import IngestWorker

pytestmark = [pytest.mark.db]

DEVICES, READINGS, METRICS = 6, 10, 3


NOW_MS = int(time.time() * 1000)


def _records(tag: str, now_ms: int = NOW_MS) -> list[Record]:
    return [Record(f"devices/{tag}-{d}/telemetry", orjson.dumps({"readings": [
        {"ts": now_ms - 60_000 + i * 100, "metrics": {f"m{k}_c": d * 1000 + i + k / 10
                                                     for k in range(METRICS)}}
        for i in range(READINGS)]}), now_ms * 1000, f"{tag}:{d}") for d in range(DEVICES)]


def _stored(dsn: str, tag: str) -> list[tuple[str, str, float]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT device, metric, value FROM readings WHERE device LIKE %s "
                            "ORDER BY 1, 2, 3", (f"{tag}-%",)).fetchall()


def _expected(tag: str) -> list[tuple[str, str, float]]:
    return sorted((f"{tag}-{d}", f"m{k}_c", d * 1000 + i + k / 10)
                  for d in range(DEVICES) for i in range(READINGS) for k in range(METRICS))


def _worker(store_dsn: str, tmp_path: Path, name: str, connections: int) -> IngestWorker:
    """A worker cutting any batch of 10 readings or more into pieces on `connections`."""
    return IngestWorker(database_url=store_dsn, mqtt_url="mqtt://127.0.0.1:1", client_id=name,
                        spool_dir=tmp_path / "spool", copy_connections=connections,
                        copy_split_rows=10)


def test_pieces_store_each_reading_once_and_a_redelivery_adds_nothing(
    store_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _worker(store_dsn, tmp_path, "par", 3)
    pieces: list[int] = []
    write_piece = w._write_piece

    def counted(i: int, piece: object) -> object:
        pieces.append(i)
        return write_piece(i, piece)  # type: ignore[arg-type]

    monkeypatch.setattr(w, "_write_piece", counted)
    assert w.process(_records("par"))
    assert sorted(pieces) == [1, 2]  # three pieces: two on the extra connections
    assert _stored(store_dsn, "par") == _expected("par")
    assert w.counters.readings_stored == DEVICES * READINGS * METRICS
    assert w.process(_records("par"))  # redelivered whole
    assert _stored(store_dsn, "par") == _expected("par")
    assert w.counters.duplicates == DEVICES * READINGS * METRICS


def test_a_piece_failing_after_another_committed_is_retried_once_stored(
    store_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _worker(store_dsn, tmp_path, "cut", 2)
    write_piece = w._write_piece
    failures = [psycopg.OperationalError("server closed the connection unexpectedly")]

    def flaky(i: int, piece: object) -> object:
        if failures:
            raise failures.pop()
        return write_piece(i, piece)  # type: ignore[arg-type]

    monkeypatch.setattr(w, "_write_piece", flaky)
    assert w.process(_records("cut"))
    assert w.counters.db_errors == 1
    assert _stored(store_dsn, "cut") == _expected("cut")
    # The first piece was committed before the other failed: on the retry its readings were
    # already there (counted as duplicates), the other piece's were stored.
    total = DEVICES * READINGS * METRICS
    assert 0 < w.counters.duplicates < total
    assert w.counters.readings_stored + w.counters.duplicates == total


def test_pieces_encoded_ahead_store_what_encoding_on_the_connection_stores(
    store_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _worker(store_dsn, tmp_path, "enc", 2)
    built: list[int] = []
    copy_buffer = writer.copy_buffer

    def counted(*args: Any, **kwargs: Any) -> bytes:
        built.append(len(args[0]))
        return copy_buffer(*args, **kwargs)

    monkeypatch.setattr(writer, "copy_buffer", counted)
    # Nothing known yet: the first batch is encoded on its connections, learning the ids.
    first = w._decode(_records("enc"))
    assert first.pieces is not None
    assert [p.encoded for p in first.pieces] == [None, None]
    assert w.process(_records("enc"), first)
    # Now every name has an id: the next batch comes encoded from the decoder, and writing it
    # builds nothing more.
    later = _records("enc", NOW_MS + 5_000)
    second = w._decode(later)
    assert second.pieces is not None
    assert all(p.encoded is not None and p.encoded[0] is w._ids for p in second.pieces)
    built.clear()
    assert w.process(later, second)
    assert built == []
    # After a reconnection the ids are learnt again, and data encoded before is not trusted.
    third_records = _records("enc", NOW_MS + 10_000)
    third = w._decode(third_records)
    assert len(built) == 2  # encoded ahead...
    built.clear()
    w._drop_conn()
    assert w.process(third_records, third)
    assert sorted(built) == sorted(len(p) for p in third.pieces or [])  # ...and again
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute("SELECT device, metric, time, value FROM readings "
                            "WHERE device LIKE 'enc-%' ORDER BY 1, 2, 3").fetchall()
    expected = sorted((f"enc-{d}", f"m{k}_c",
                       datetime.fromtimestamp((t0 - 60_000 + i * 100) / 1000, UTC),
                       d * 1000 + i + k / 10)
                      for t0 in (NOW_MS, NOW_MS + 5_000, NOW_MS + 10_000)
                      for d in range(DEVICES) for i in range(READINGS) for k in range(METRICS))
    assert rows == expected
    assert w.counters.duplicates == 0
