"""The device contract, enforced in one place: every reason a payload can be refused."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from ingest import decode

NOW_US = 1_795_000_000_000_000  # 2026-11-18T11:06:40Z
TOPIC = "devices/cmp-0001/telemetry"
TS_MS = NOW_US // 1000 - 60_000  # a minute ago, inside the accepted window


def tel(doc: object) -> decode.Decoded:
    payload = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return decode.decode_telemetry(TOPIC, payload, now_us=NOW_US)


def test_single_reading_with_rfc3339_offset_and_null() -> None:
    d = tel({"ts": "2026-11-18T12:06:40.5+01:00", "seq": 7,
             "metrics": {"temperature_c": 71.2, "pressure_bar": None}})
    assert d.reject is None
    assert [(r.device, r.metric, r.time_us, r.value) for r in d.readings] == [
        ("cmp-0001", "temperature_c", NOW_US + 500_000, 71.2),
        ("cmp-0001", "pressure_bar", NOW_US + 500_000, None),
    ]


def test_batch_payload_from_an_offline_device() -> None:
    d = tel({"readings": [{"ts": 1794999990000 + i * 1000, "metrics": {"a_c": i}}
                          for i in range(5)]})
    assert d.reject is None
    assert [r.value for r in d.readings] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json at all", "not json"),
    (b'{"ts": 1, "metrics": {"a": NaN}}', "not json"),
    (b"\xff\xfe", "not json"),
    ({"metrics": {"a": 1}}, "missing ts"),
    ({"ts": "yesterday", "metrics": {"a": 1}}, "bad ts"),
    ({"ts": "2026-11-18T08:00:00", "metrics": {"a": 1}}, "bad ts"),  # no offset
    ({"ts": True, "metrics": {"a": 1}}, "bad ts"),
    ({"ts": 1.5e12, "metrics": {"a": 1}}, "bad ts"),
    ({"ts": NOW_US // 1000 + 3_600_000, "metrics": {"a": 1}}, "ts in future"),
    ({"ts": TS_MS, "metrics": [1, 2]}, "missing metrics"),
    ({"ts": TS_MS, "metrics": {"a": "12"}}, "value not a number"),
    ({"ts": TS_MS, "metrics": {"a": True}}, "value not a number"),
    (b'{"ts": TS_MS, "metrics": {"a": 1e999}}', "not json"),  # orjson refuses overflow
    ({"ts": TS_MS, "metrics": {"Temp": 1}}, "bad metric name"),
    ({"ts": TS_MS, "seq": -1, "metrics": {"a": 1}}, "bad seq"),
    ([1, 2, 3], "bad shape"),
    ({"readings": {"ts": 1}}, "bad shape"),
    (b"{" + b" " * (300 * 1024) + b"}", "payload too large"),
])
def test_rejects_with_a_short_fixed_reason(payload: object, reason: str) -> None:
    d = tel(payload)
    assert d.readings == []
    assert d.reject is not None
    assert d.reject.reason == reason
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    assert d.reject.payload == raw  # verbatim


def test_half_good_message_is_split_not_dropped() -> None:
    d = tel({"readings": [
        {"ts": 1794999990000, "metrics": {"a_c": 1, "b_c": "x"}},
        {"ts": "bad", "metrics": {"a_c": 2}},
        {"ts": 1794999991000, "metrics": {"a_c": 3}},
    ]})
    assert [r.value for r in d.readings] == [1, 3]
    assert d.reject is not None
    assert d.reject.reason == "value not a number"
    assert d.reject.detail == "readings[0], b_c (+1 more)"


@pytest.mark.parametrize("topic", ["devices/a b/telemetry", "devices/x/other", "foo",
                                   "devices/" + "x" * 65 + "/telemetry"])
def test_bad_topics_are_rejected(topic: str) -> None:
    d = decode.decode_telemetry(topic, b"{}", now_us=NOW_US)
    assert d.reject is not None
    assert d.reject.reason in {"bad topic", "bad device id"}


def test_status_and_its_will_without_ts() -> None:
    s = decode.decode_status("devices/p-1/status", b'{"state": "offline"}', now_us=NOW_US)
    assert (s.device, s.state, s.time_us) == ("p-1", "offline", NOW_US)
    with pytest.raises(decode.Reject, match="bad state"):
        decode.decode_status("devices/p-1/status", b'{"state": "sleepy"}', now_us=NOW_US)


def test_waveform_decodes_float32_and_refuses_non_finite() -> None:
    samples = struct.pack("<4f", 0.0, 1.0, -1.0, 0.5)
    doc = {"ts": 1794999990000, "channel": "accel_x", "sample_rate_hz": 25600,
           "encoding": "f32le-base64", "data": base64.b64encode(samples).decode()}
    w = decode.decode_waveform("devices/p-1/waveform", orjson.dumps(doc), now_us=NOW_US)
    assert (w.channel, w.sample_rate_hz, w.samples) == ("accel_x", 25600.0, samples)
    doc["data"] = base64.b64encode(struct.pack("<2f", 1.0, float("inf"))).decode()
    with pytest.raises(decode.Reject, match="value not finite"):
        decode.decode_waveform("devices/p-1/waveform", orjson.dumps(doc), now_us=NOW_US)
    doc["data"] = "###"
    with pytest.raises(decode.Reject, match="bad waveform data"):
        decode.decode_waveform("devices/p-1/waveform", orjson.dumps(doc), now_us=NOW_US)


def test_waveform_shaft_speed_is_optional_and_checked() -> None:
    samples = struct.pack("<2f", 0.0, 1.0)
    doc: dict[str, object] = {"ts": 1794999990000, "channel": "accel_x",
                              "sample_rate_hz": 25600, "encoding": "f32le-base64",
                              "data": base64.b64encode(samples).decode()}
    assert decode.decode_waveform("devices/p-1/waveform", orjson.dumps(doc),
                                  now_us=NOW_US).shaft_rpm is None
    doc["shaft_rpm"] = 1480.5
    assert decode.decode_waveform("devices/p-1/waveform", orjson.dumps(doc),
                                  now_us=NOW_US).shaft_rpm == 1480.5
    for bad in (0, -3, "1500", True, 1e7):
        doc["shaft_rpm"] = bad
        with pytest.raises(decode.Reject, match="bad shaft speed"):
            decode.decode_waveform("devices/p-1/waveform", orjson.dumps(doc), now_us=NOW_US)
