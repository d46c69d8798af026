"""The worker's receive path after the per-message cuts of issue 19 (no broker, no database).

- ``decode_batch`` decodes telemetry straight into the batch's columns: whatever the mix of
  messages, the columns stay aligned and hold exactly what decoding each message on its own
  gives (readings, rejects, the device rate limit);
- the spooler acknowledges a synced chunk with one packet of concatenated PUBACKs: exactly
  the MQTT encoding of one PUBACK per QoS 1 message of the current connection;
- a batch stays about ``BATCH_MAX_BYTES`` of payload however many syncs it is gathered from,
  and the batch read ahead (while one is written) starts where that one ends, only when the
  spool is behind.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import decode
from ingest.records import BadMessage
from ingest.spool import BATCH_MAX_BYTES, Record, Spool
from ingest.worker import DeviceRateLimit, Incoming, IngestWorker, decode_batch

NOW_MS = int(time.time() * 1000)

_good_metrics = st.dictionaries(st.sampled_from(["temp_c", "flow_m3h", "p_bar", "rpm"]),
                                st.floats(-1e6, 1e6), min_size=1, max_size=4)
_any_metrics = st.dictionaries(
    st.sampled_from(["temp_c", "flow_m3h", "Bad Name", "p_bar"]),
    st.one_of(st.floats(-1e6, 1e6), st.none(), st.text(max_size=3), st.booleans()),
    max_size=4)
_good_ts = st.integers(NOW_MS - 10_000, NOW_MS)
_reading = st.one_of(
    # Mostly good readings (so that the rate limit bites), then every kind of bad one.
    st.fixed_dictionaries({"ts": _good_ts, "metrics": _good_metrics}),
    st.fixed_dictionaries({"ts": _good_ts, "metrics": _good_metrics}),
    st.fixed_dictionaries(
        {"ts": st.one_of(_good_ts, st.just("yesterday"), st.just(NOW_MS + 10**9))},
        optional={"metrics": _any_metrics}),
)
_payload = st.one_of(
    _reading.map(orjson.dumps),
    _reading.map(orjson.dumps),
    st.lists(_reading, max_size=4).map(lambda rs: orjson.dumps({"readings": rs})),
    st.sampled_from([b"not json", b"[1, 2]", b'{"readings": 3}']),
)
_topic = st.sampled_from(["devices/d-1/telemetry", "devices/d-2/telemetry",
                          "devices/d-1/telemetry", "devices/d-2/telemetry",
                          "devices/bad id/telemetry", "devices/d-1/nonsense",
                          "elsewhere/telemetry"])
_messages = st.lists(st.tuples(_topic, _payload, st.integers(0, 3)), max_size=25)


def _reference(records: list[Record], limit: DeviceRateLimit | None
               ) -> tuple[list[tuple[str, str, int, float | None]], list[tuple[str, str | None]]]:
    """What the batch must hold: each message decoded on its own with decode_telemetry."""
    now_us = NOW_MS * 1000 + 1
    rows: list[tuple[str, str, int, float | None]] = []
    rejects: list[tuple[str, str | None]] = []
    for m in records:
        if not m.topic.endswith("/telemetry"):
            rejects.append(("bad topic", m.topic))
            continue
        d = decode.decode_telemetry(m.topic, m.payload, now_us=now_us, max_future_s=300)
        if limit is not None and d.metric and not limit.allow(m.key, d.device, len(d.metric),
                                                              m.received_us):
            rejects.append(("device rate limit", f"{len(d.metric)} readings over "
                                                 f"{limit.per_s:g}/s (burst {limit.burst:g})"))
            continue
        rows += [(d.device, *r) for r in zip(d.metric, d.time_us, d.value, strict=True)]
        if d.reject is not None:
            rejects.append((d.reject.reason, d.reject.detail))
    return rows, rejects


@settings(max_examples=150, deadline=None)
@given(_messages)
def test_a_batch_holds_exactly_what_each_message_decodes_to(
        messages: list[tuple[str, bytes, int]]) -> None:
    records = [Record(topic, payload, (NOW_MS - 5000 + gap * 1000) * 1000, f"t:{i}")
               for i, (topic, payload, gap) in enumerate(messages)]
    # A tight budget, so that some messages are over it (same budget for both sides).
    batch = decode_batch(records, max_future_s=300,
                         rate_limit=DeviceRateLimit(per_s=1, burst=6))
    rows, rejects = _reference(records, DeviceRateLimit(per_s=1, burst=6))
    assert len(batch.device) == len(batch.metric) == len(batch.time_us) == len(batch.value)
    got = list(zip(batch.device, batch.metric, batch.time_us, batch.value, strict=True))
    # The reference decodes with a fixed "now"; the windows are wide enough not to matter.
    assert got == rows
    assert [(b.reason, b.detail if b.reason != "bad topic" else b.topic)
            for b in batch.rejects] == [
        (r, d) for r, d in rejects]
    assert all(isinstance(b, BadMessage) and b.source_key and b.received_at
               for b in batch.rejects)


def test_a_chunk_is_acknowledged_with_one_packet_of_pubacks(tmp_path: Path) -> None:
    w = IngestWorker(database_url="postgresql://unused", mqtt_url="mqtt://127.0.0.1:1",
                     client_id="ack-test", spool_dir=tmp_path / "spool")
    w._generation = 2
    chunk = [Incoming("devices/d-1/telemetry", b"{}", mid, qos, generation, 0)
             for mid, qos, generation in [(1, 1, 2), (2, 0, 2), (65535, 1, 2), (7, 1, 1),
                                          (300, 1, 2)]]
    w._ack(chunk)
    packets = list(w._client._out_packet)
    assert len(packets) == 1
    # PUBACK (0x40), remaining length 2, packet id: QoS 0 and the old connection's left out.
    assert packets[0]["packet"] == b"".join(struct.pack("!BBH", 0x40, 2, mid)
                                            for mid in (1, 65535, 300))
    w._ack([Incoming("devices/d-1/telemetry", b"{}", 5, 1, 1, 0)])
    assert len(w._client._out_packet) == 1  # nothing to acknowledge: nothing queued


def test_a_batch_gathered_from_many_syncs_keeps_the_byte_bound(tmp_path: Path) -> None:
    w = IngestWorker(database_url="postgresql://unused", mqtt_url="mqtt://127.0.0.1:1",
                     client_id="bytes", spool_dir=tmp_path / "spool", batch_size=5000)
    payload = b"x" * (1 << 20)
    with Spool(tmp_path / "spool") as spool:
        for i in range(20):  # 20 chunks of one 1 MiB message, each synced on its own
            spool.append("devices/g-1/telemetry", payload, i)
            spool.sync()
        start = spool.committed
        records, end = w._next_batch(spool, start)
        # About 8 MiB (a read may end one chunk past it), not all 20 MiB that were waiting.
        size = sum(len(r.payload) for r in records)
        assert BATCH_MAX_BYTES <= size <= BATCH_MAX_BYTES + (1 << 20)
        assert [r.received_us for r in records] == list(range(len(records)))
        # The spool is behind: the next batch is read ahead from where this one ends...
        ahead = w._read_ahead(spool, end)
        assert ahead is not None
        assert ahead.records[0].received_us == len(records)
        assert ahead.decoding.result().rejects  # decoded (here: 1 MiB of "x" is no JSON)
        # ...but not when less than a batch is left and nothing more is synced: the next
        # turn waits for a fuller batch as usual.
        _, near_end = spool.read(start, max_records=17, max_bytes=1 << 40)
        assert w._read_ahead(spool, near_end) is None
        assert near_end < spool.synced
