"""Property: whatever bytes arrive on whatever topic, ingest accounts for every message and
goes on. Decode + write run through the worker's own batch path against the real database.

For each message: if decoding finds a problem, exactly one reject row holds it (under its
spool position); every reading decoding accepted is in ``readings``, unless the store refused
the message, in which case that one message is a reject and the rest of the batch is stored.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import decode
from ingest.spool import Record
from ingest.worker import IngestWorker

pytestmark = [pytest.mark.db]

NOW_MS = int(time.time() * 1000)
DEVICES = ["fz-a", "fz-b", "fz.c_1"]

ts_values = st.one_of(
    st.integers(NOW_MS - 30 * 86_400_000, NOW_MS),              # inside the window
    st.integers(-(2**63), 2**63 - 1),                             # anything at all
    st.sampled_from([-9007199254740991, 9007199254740991, 0, 1]),
    st.text(max_size=40),
    st.sampled_from(["\x00", "2026-11-22T07:45:10Z", "0001-01-01T00:00:00+23:59",
                     "9999-12-31T23:59:59-23:59", "1900-01-01T00:00:00Z"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(), st.booleans(),
)
metric_names = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                         st.text(max_size=12), st.just("a\x00b"))
values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(),
                   st.none(), st.booleans(), st.text(max_size=5),
                   st.integers(-(2**70), 2**70))
reading_objects = st.fixed_dictionaries(
    {"ts": ts_values, "metrics": st.dictionaries(metric_names, values, max_size=6)},
    optional={"seq": st.one_of(st.integers(), st.text(max_size=3))},
)
documents = st.one_of(
    reading_objects,
    st.fixed_dictionaries({"readings": st.lists(reading_objects, max_size=5)}),
    st.fixed_dictionaries({"state": st.sampled_from(["online", "offline", "x"]),
                           "ts": ts_values}),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                 lambda kids: st.lists(kids, max_size=3)
                 | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=8),
)


def _dumps(doc: Any) -> bytes:
    try:
        # ensure_ascii writes lone surrogates as \\ud800 escapes: hostile, and valid JSON text
        return json.dumps(doc, ensure_ascii=True).encode()
    except (ValueError, OverflowError):
        return b"{}"


payloads = st.one_of(documents.map(_dumps), st.binary(max_size=300))
topics = st.one_of(
    st.builds(lambda d, k: f"devices/{d}/{k}", st.sampled_from(DEVICES),
              st.sampled_from(["telemetry", "telemetry", "telemetry", "status", "waveform"])),
    st.text(max_size=30),
)
messages = st.lists(st.tuples(topics, payloads), min_size=1, max_size=12)


@pytest.fixture
def worker(store_dsn: str, tmp_path: Path) -> IngestWorker:
    return IngestWorker(database_url=store_dsn, mqtt_url="mqtt://127.0.0.1:1",
                        client_id="fuzz", spool_dir=tmp_path / "spool")


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=messages)
def test_every_message_is_stored_or_rejected_and_ingest_goes_on(
    worker: IngestWorker, store_dsn: str, batch: list[tuple[str, bytes]]
) -> None:
    run = uuid.uuid4().hex[:8]
    now_us = int(time.time() * 1e6)
    records = [Record(topic, payload, now_us, f"{run}:{i}") for i, (topic, payload)
               in enumerate(batch)]
    assert worker.process(records)  # returns (never raises, never stops) whatever came in
    with psycopg.connect(store_dsn) as conn:
        rejects = dict(conn.execute(
            "SELECT source_key, reason FROM ingest_rejects WHERE source_key LIKE %s",
            (f"{run}:%",)).fetchall())
        stored = set(conn.execute(
            "SELECT device, metric, (extract(epoch FROM time) * 1e6)::bigint FROM readings "
            "WHERE device = ANY(%s)", (DEVICES,)).fetchall())
    for r in records:
        kind = r.topic.rsplit("/", 1)[-1]
        refused_by_store = rejects.get(r.key) in ("store refused", "metric catalogue full")
        if kind == "telemetry":
            d = decode.decode_telemetry(r.topic, r.payload, now_us=now_us)
            assert (r.key in rejects) == (d.reject is not None or refused_by_store), r
            if not refused_by_store:
                missing = {(x.device, x.metric, x.time_us) for x in d.readings} - stored
                assert not missing, (r, missing)
        else:
            try:
                if kind == "status":
                    decode.decode_status(r.topic, r.payload, now_us=now_us)
                elif kind == "waveform":
                    decode.decode_waveform(r.topic, r.payload, now_us=now_us)
                else:
                    decode.parse_topic(r.topic)
                    raise decode.Reject("bad topic")
                bad = False
            except decode.Reject:
                bad = True
            assert (r.key in rejects) == (bad or refused_by_store), r
    assert len(rejects) <= len(records)
