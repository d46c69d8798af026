"""The device contract, enforced in one place: every reason a payload can be refused."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# -- gateway lists: the plain path stores exactly what the exact path stores ---------------

_NAMES = st.sampled_from(["temperature_c", "flow_m3h", "p_bar", "Bad Name", "x" * 70])
_VALUES = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.none(),
                    st.integers(-(2**64) + 1, 2**64 - 1), st.booleans(), st.text(max_size=2))
TS_FORMS = [
    "2026-11-18T11:05:40.123Z", "2026-11-18T12:05:40+01:00", "2026-11-18t11:05:40z",
    "2026-11-18 11:05:40Z", "2026-11-18T11:05:40", "20261118T110540Z", "yesterday",
    "0001-01-01T00:00:00+01:00", "2026-11-18T11:05:40.123456789Z", "1900-01-01T00:00:00Z"]
_TS_TEXT = st.sampled_from(TS_FORMS)
_TS = st.one_of(
    _TS_TEXT,
    st.integers(TS_MS - 10**6, TS_MS + 10**6),  # around now, some beyond the 300 s skew
    st.integers(-(2**60), 2**60), st.booleans(), st.none(), st.floats())
_READING = st.fixed_dictionaries(
    {"metrics": st.one_of(st.dictionaries(_NAMES, _VALUES, max_size=4), st.just([1]))},
    optional={"ts": _TS, "seq": st.one_of(st.integers(-2, 2**70), st.booleans(), st.none(),
                                          st.just("7"))})
# Most lists are plain (one name set, good values), as gateways send them; the rest mix in
# every kind of trouble the exact path must name.
_PLAIN = st.builds(
    lambda n, ts0, names, vals: [{"ts": ts0 + i * 1000, "seq": i,
                                  "metrics": dict(zip(names, vals[i], strict=False))}
                                 for i in range(n)],
    st.integers(0, 6), st.integers(TS_MS - 10**5, TS_MS),
    st.lists(st.sampled_from(["temperature_c", "flow_m3h", "p_bar"]), min_size=1,
             max_size=3, unique=True),
    st.lists(st.lists(st.one_of(st.floats(-1e9, 1e9), st.integers(-10, 10), st.none()),
                      min_size=3, max_size=3), min_size=6, max_size=6))


def _decoded(payload: bytes, plain: bool, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[object, ...]:
    with monkeypatch.context() as m:
        if not plain:
            m.setattr(decode, "_readings_plain", lambda *a, **k: False)
        d = decode.decode_telemetry(TOPIC, payload, now_us=NOW_US, max_future_s=300)
    bad = None if d.reject is None else (d.reject.reason, d.reject.detail)
    return d.metric, d.time_us, d.value, [type(v) for v in d.value], bad


_FIELD = st.sampled_from(["ts", "seq", "value", "name", "metrics", "item"])
_ODD = {"ts": st.one_of(_TS_TEXT, _TS),
        "seq": st.one_of(st.integers(-2, 2**70), st.booleans(), st.just("7")),
        "value": _VALUES, "name": _NAMES, "metrics": st.just([1]), "item": st.just(7)}


@st.composite
def _one_odd(draw: st.DrawFn) -> list[Any]:
    """A plain list with one thing in one reading changed (each check on its own)."""
    readings: list[Any] = [dict(r, metrics=dict(r["metrics"])) for r in draw(_PLAIN)] or [
        {"ts": TS_MS, "metrics": {"p_bar": 1.0}}]
    i = draw(st.integers(0, len(readings) - 1))
    what = draw(_FIELD)
    odd = draw(_ODD[what])
    if what in ("ts", "seq", "metrics"):
        readings[i][what] = odd
    elif what == "value":
        readings[i]["metrics"]["p_bar"] = odd
    elif what == "name":
        readings[i]["metrics"][odd] = 1.0
    else:
        readings[i] = odd
    return readings


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_PLAIN, _one_odd(), st.lists(_READING, max_size=5)))
def test_a_plain_gateway_list_is_stored_as_the_exact_path_stores_it(
        monkeypatch: pytest.MonkeyPatch, readings: list[object]) -> None:
    payload = json.dumps({"readings": readings}).encode()  # (orjson stops at 64-bit ints)
    assert _decoded(payload, True, monkeypatch) == _decoded(payload, False, monkeypatch)


def test_a_gateway_list_of_good_readings_takes_the_plain_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    plain = decode._readings_plain

    def spy(*args: Any, **kwargs: Any) -> bool:
        taken.append(plain(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(decode, "_readings_plain", spy)
    good = [{"ts": TS_MS + i, "seq": i, "metrics": {"a_c": 1.5, "b_bar": i, "c": None}}
            for i in range(3)]
    d = tel({"readings": good})
    assert taken == [True]
    assert d.reject is None
    assert d.value == [1.5, 0.0, None, 1.5, 1.0, None, 1.5, 2.0, None]
    tel({"readings": [*good, {"ts": TS_MS, "metrics": {"a_c": "1"}}]})
    assert taken == [True, False]  # a string value: the exact path names it
    # Names are checked once per distinct set, and bounded over the whole list.
    many = [{"ts": TS_MS, "metrics": {f"m{k}_{i}": 1.0 for k in range(600)}} for i in (1, 2)]
    d = tel({"readings": many})
    assert taken[-1] is False
    assert d.metric == []
    assert d.reject is not None
    assert d.reject.reason == "too many metric names"


@pytest.mark.parametrize("ts", TS_FORMS)
def test_each_timestamp_form_is_judged_alike_on_both_paths(
        ts: str, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = orjson.dumps({"readings": [{"ts": TS_MS, "metrics": {"p_bar": 1.0}},
                                         {"ts": ts, "metrics": {"p_bar": 2.0}}]})
    assert _decoded(payload, True, monkeypatch) == _decoded(payload, False, monkeypatch)
