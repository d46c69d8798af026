"""A batch the database refuses is split until the message at fault is alone: that message
becomes a reject with the store's reason, every other message of the batch is stored."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import psycopg
import pytest

from ingest import writer
from ingest.spool import Record
from ingest.worker import IngestWorker

pytestmark = [pytest.mark.db]


def test_message_the_store_refuses_is_isolated_and_the_rest_stored(
    store_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A metric catalogue with room for 4 names: the message bringing the 5th is refused.
    monkeypatch.setitem(writer.MAX_METRIC_NAMES, 4, 4)
    w = IngestWorker(database_url=store_dsn, mqtt_url="mqtt://127.0.0.1:1", client_id="iso",
                     spool_dir=tmp_path / "spool")
    now_ms = int(time.time() * 1000)
    now_us = now_ms * 1000
    names = [["a_c", "b_c"], ["a_c"], ["c_c", "d_c"], ["e_c"], ["a_c", "d_c"], ["b_c"]]
    records = [Record("devices/iso-1/telemetry",
                      orjson.dumps({"ts": now_ms - 1000 + i, "metrics": dict.fromkeys(n, 1.0)}),
                      now_us, f"iso:{i}") for i, n in enumerate(names)]
    assert w.process(records)
    with psycopg.connect(store_dsn) as conn:
        rejects = conn.execute(
            "SELECT source_key, reason FROM ingest_rejects ORDER BY id").fetchall()
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert rejects == [("iso:3", "metric catalogue full")]
    assert stored == (sum(len(n) for i, n in enumerate(names) if i != 3),)
    assert w.counters.isolated == 1
    assert w.counters.messages == len(records)


def test_a_device_over_its_reading_rate_is_rejected_with_the_reason(
    store_dsn: str, tmp_path: Path
) -> None:
    # 0.001 readings/s sustained, a burst of 21.6: the first 20 readings pass, the next don't.
    w = IngestWorker(database_url=store_dsn, mqtt_url="mqtt://127.0.0.1:1", client_id="rate",
                     spool_dir=tmp_path / "spool", device_max_readings_per_s=0.001)
    now_ms = int(time.time() * 1000)
    metrics = {f"m{i}_c": 1.0 for i in range(20)}
    records = [Record(f"devices/{dev}/telemetry",
                      orjson.dumps({"ts": now_ms - 1000 + i, "metrics": metrics}),
                      now_ms * 1000, f"rate:{dev}:{i}") for dev in ("r-1", "r-2")
               for i in range(2)]
    assert w.process(records)
    with psycopg.connect(store_dsn) as conn:
        rejects = conn.execute(
            "SELECT source_key, reason FROM ingest_rejects ORDER BY source_key").fetchall()
        per_device = dict(conn.execute(
            "SELECT device, count(*) FROM readings GROUP BY 1").fetchall())
    assert rejects == [("rate:r-1:1", "device rate limit"), ("rate:r-2:1", "device rate limit")]
    assert per_device == {"r-1": 20, "r-2": 20}  # one device's excess never costs another
