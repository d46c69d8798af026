"""Decoding MQTT payloads into readings: the one place the device contract is enforced.

Each function takes one message and returns what to store: good readings plus at most one
:class:`BadMessage` that keeps the whole payload verbatim with the reason of its first problem.
A message that is half good is split, never dropped: its good readings are stored as usual.

>>> now_us = 1_795_000_000_000_000
>>> d = decode_telemetry("devices/pump-1/telemetry",
...                      b'{"ts": 1795000000000, "metrics": {"temp_c": 71.5, "flow_m3h": "x"}}',
...                      now_us=now_us)
>>> [(r.device, r.metric, r.value) for r in d.readings]
[('pump-1', 'temp_c', 71.5)]
>>> d.reject.reason, d.reject.detail
('value not a number', 'flow_m3h')
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, repeat
from typing import Any, Protocol

import numpy as np
import orjson

from aftercare import config
from aftercare.contract import DEVICE_ID as DEVICE_ID
from aftercare.contract import METRIC_NAME as METRIC_NAME
from aftercare.contract import TOPIC as TOPIC
from ingest.records import EPOCH, BadMessage, Reading, StatusChange, Waveform

MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_MAX_FUTURE_S = float(config.default("INGEST_MAX_FUTURE_S"))
# Older readings would be dropped by retention at once.
DEFAULT_MAX_AGE_S = float(config.default("AFTERCARE_RETENTION_DAYS")) * 86_400.0
MAX_READINGS_PER_MESSAGE = 100_000
# Distinct metric names one message may carry: a real device has tens; a flood of invented
# names would fill the metric catalogue that every reading refers to.
MAX_METRICS_PER_MESSAGE = 1_000

WAVEFORM_ENCODINGS = {"f32le-base64": "<f4"}


def printable(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters, with NUL, control characters and lone surrogates
    escaped, so that it can be stored in a PostgreSQL text column whatever a device sent.

    >>> print(printable("a" + chr(0) + "b" + chr(0xD800) + "c"))
    a\\x00b\\ud800c
    """
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                   else c.encode("unicode_escape").decode("ascii") for c in text)


class Reject(ValueError):
    """A payload (or part of one) that breaks the contract; ``reason`` is short and fixed.

    The detail quotes what the device sent, made safe to store (see :func:`printable`)."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        detail = None if detail is None else printable(detail)
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Decoded:
    """What one message yields: columns of good readings and at most one reject record.

    Columns rather than one object per value: a gateway payload carries thousands of values.
    """

    device: str = ""
    metric: list[str] = field(default_factory=list)
    time_us: list[int] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    reject: BadMessage | None = None

    @property
    def readings(self) -> list[Reading]:
        return [Reading(self.device, m, t, v)
                for m, t, v in zip(self.metric, self.time_us, self.value, strict=True)]


# Metric names already validated: a fleet uses few, and the regex is the costliest check.
_GOOD_METRICS: set[str] = set()
_GOOD_METRICS_MAX = 100_000


def _metric_ok(name: str) -> bool:
    if name in _GOOD_METRICS:
        return True
    if METRIC_NAME.fullmatch(name) is None:
        return False
    if len(_GOOD_METRICS) < _GOOD_METRICS_MAX:
        _GOOD_METRICS.add(name)
    return True


def parse_topic(topic: str) -> tuple[str, str]:
    """``devices/{id}/{kind}`` → (device id, kind), or raise :class:`Reject`.

    >>> parse_topic("devices/cmp-0001/telemetry")
    ('cmp-0001', 'telemetry')
    """
    m = TOPIC.fullmatch(topic)
    if m is None:
        raise Reject("bad topic", topic[:200])
    if DEVICE_ID.fullmatch(m.group(1)) is None:
        raise Reject("bad device id", m.group(1)[:200])
    return m.group(1), m.group(2)


def parse_ts(value: Any, *, now_us: int, max_future_s: float,
             max_age_s: float = DEFAULT_MAX_AGE_S) -> int:
    """A contract timestamp (RFC 3339 with offset, or integer epoch ms) → epoch microseconds.

    Only instants inside the store's window are accepted: no older than `max_age_s` (the
    retention: an older reading would be dropped at once, and would make the store create
    partitions for it) and no further ahead than `max_future_s` (clock skew).

    >>> now = 1795333600000000
    >>> parse_ts("2026-11-22T07:45:10.123Z", now_us=now, max_future_s=300)
    1795333510123000
    >>> parse_ts(1795333510123, now_us=now, max_future_s=300)
    1795333510123000
    >>> parse_ts("1900-01-01T00:00:00Z", now_us=now, max_future_s=300)
    Traceback (most recent call last):
    ...
    ingest.decode.Reject: ts too old: 1900-01-01T00:00:00Z
    """
    if isinstance(value, bool):
        raise Reject("bad ts", "boolean")
    if isinstance(value, int):
        if not -(2**53) < value < 2**53:
            raise Reject("bad ts", "epoch milliseconds out of range")
        t_us = value * 1000
    elif isinstance(value, str):
        if len(value) > 64:
            raise Reject("bad ts", "too long")
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            raise Reject("bad ts", value) from None
        if t.tzinfo is None or "T" not in value.upper():
            raise Reject("bad ts", f"{value} (RFC 3339 needs a date, a time and an offset)")
        try:
            t_us = (t - EPOCH) // _US
        except OverflowError:  # an offset that moves year 1 or 9999 outside datetime's range
            raise Reject("bad ts", value) from None
    else:
        raise Reject("bad ts", type(value).__name__)
    if t_us > now_us + max_future_s * 1e6:
        raise Reject("ts in future", str(value))
    if t_us < now_us - max_age_s * 1e6:
        raise Reject("ts too old", str(value))
    return t_us


_US = datetime.resolution  # one microsecond


def _number(value: Any, metric: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Reject("value not a number", metric)
    f = float(value)
    if not math.isfinite(f):
        raise Reject("value not finite", metric)
    return f


def _reading_object(obj: Any, *, now_us: int, max_future_s: float, max_age_s: float,
                    out: Columns) -> Reject | None:
    """Append the object's good readings to ``out``; return its first problem, if any."""
    if not isinstance(obj, dict):
        return Reject("bad shape", "a reading must be a JSON object")
    if "ts" not in obj:
        return Reject("missing ts")
    try:
        t_us = parse_ts(obj["ts"], now_us=now_us, max_future_s=max_future_s,
                        max_age_s=max_age_s)
    except Reject as exc:
        return exc
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        return Reject("bad seq", repr(seq)[:100])
    metrics = obj.get("metrics")
    if not isinstance(metrics, dict):
        return Reject("missing metrics")
    if len(metrics) > MAX_METRICS_PER_MESSAGE:
        return Reject("too many metric names", f"{len(metrics)} > {MAX_METRICS_PER_MESSAGE}")
    problem: Reject | None = None
    names, times, values = out.metric, out.time_us, out.value
    for name, raw in metrics.items():
        if not _metric_ok(name):
            problem = problem or Reject("bad metric name", name[:100])
            continue
        if type(raw) is float:  # the common case first
            if not math.isfinite(raw):
                problem = problem or Reject("value not finite", name)
                continue
            value: float | None = raw
        else:
            try:
                value = _number(raw, name)
            except Reject as exc:
                problem = problem or exc
                continue
        names.append(name)
        times.append(t_us)
        values.append(value)
    return problem


def _load(topic: str, payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Reject("payload too large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        # orjson refuses NaN/Infinity literals and invalid UTF-8, as JSON does.
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Reject("not json", str(exc)[:200]) from None


def _bad(topic: str, payload: bytes, exc: Reject) -> BadMessage:
    return BadMessage(topic=topic, payload=payload, reason=exc.reason, detail=exc.detail)


class Columns(Protocol):
    """Where decoded readings go: three parallel lists (:class:`Decoded`, a worker's batch)."""

    metric: list[str]
    time_us: list[int]
    value: list[float | None]


def decode_telemetry(topic: str, payload: bytes, *, now_us: int,
                     max_future_s: float = DEFAULT_MAX_FUTURE_S,
                     max_age_s: float = DEFAULT_MAX_AGE_S) -> Decoded:
    """Decode a ``devices/{id}/telemetry`` message (single or ``{"readings": [...]}``)."""
    out = Decoded()
    try:
        out.device = telemetry_device(topic)
    except Reject as exc:
        out.reject = _bad(topic, payload, exc)
        return out
    out.reject = telemetry_into(out, topic, payload, now_us=now_us, max_future_s=max_future_s,
                                max_age_s=max_age_s)
    return out


# Telemetry topics already validated → their device id (a fleet's topics repeat for ever).
_TELEMETRY_TOPICS: dict[str, str] = {}
_TELEMETRY_TOPICS_MAX = 1_000_000


def telemetry_device(topic: str) -> str:
    """The device id of a ``devices/{id}/telemetry`` topic, or raise :class:`Reject`."""
    device = _TELEMETRY_TOPICS.get(topic)
    if device is None:
        device, kind = parse_topic(topic)
        if kind != "telemetry":
            raise Reject("bad topic", topic)
        if len(_TELEMETRY_TOPICS) < _TELEMETRY_TOPICS_MAX:
            _TELEMETRY_TOPICS[topic] = device
    return device


def telemetry_into(out: Columns, topic: str, payload: bytes, *, now_us: int,
                   max_future_s: float = DEFAULT_MAX_FUTURE_S,
                   max_age_s: float = DEFAULT_MAX_AGE_S) -> BadMessage | None:
    """Append a telemetry payload's good readings to `out`'s columns (the topic checked by
    :func:`telemetry_device`); return the reject to keep for the rest, if any.

    The worker decodes straight into its batch's columns: no object per message."""
    try:
        doc = _load(topic, payload)
    except Reject as exc:
        return _bad(topic, payload, exc)
    if type(doc) is dict and "readings" not in doc:
        # One reading per message (the common case): no list, no per-message name check
        # (_reading_object bounds the names of one object).
        problem = _reading_object(doc, now_us=now_us, max_future_s=max_future_s,
                                  max_age_s=max_age_s, out=out)
        return None if problem is None else _bad(topic, payload, problem)
    if isinstance(doc, dict):
        items = doc["readings"]
        if not isinstance(items, list):
            return _bad(topic, payload, Reject("bad shape", "`readings` must be a list"))
        if len(items) > MAX_READINGS_PER_MESSAGE:
            return _bad(topic, payload, Reject("payload too large", f"{len(items)} readings"))
        if _readings_plain(items, out, now_us=now_us, max_future_s=max_future_s,
                           max_age_s=max_age_s):
            return None
    else:
        items = [doc]
    first: Reject | None = None
    bad_items = 0
    n_before = len(out.metric)
    for i, item in enumerate(items):
        problem = _reading_object(item, now_us=now_us, max_future_s=max_future_s,
                                  max_age_s=max_age_s, out=out)
        if problem is not None:
            bad_items += 1
            if first is None:
                where = f"readings[{i}]" if len(items) > 1 or doc is not item else ""
                detail = ", ".join(x for x in (where, problem.detail or "") if x)
                first = Reject(problem.reason, detail or None)
    if len(set(out.metric[n_before:])) > MAX_METRICS_PER_MESSAGE:
        # A gateway batch spreading invented names over many readings: refuse it whole.
        n_names = len(set(out.metric[n_before:]))
        del out.metric[n_before:], out.time_us[n_before:], out.value[n_before:]
        return _bad(topic, payload, Reject("too many metric names",
                                           f"{n_names} > {MAX_METRICS_PER_MESSAGE}"))
    if first is not None:
        if bad_items > 1:
            first = Reject(first.reason, f"{first.detail or ''} (+{bad_items - 1} more)".strip())
        return _bad(topic, payload, first)
    return None


_PLAIN_VALUES = frozenset({float, int, type(None)})


def _readings_plain(items: list[Any], out: Columns, *, now_us: int, max_future_s: float,
                    max_age_s: float) -> bool:
    """Append a gateway list whose every reading is plainly good, at C speed per value;
    return False, having appended nothing, at the first thing it does not settle itself.

    Each reading's names are checked once per distinct set (a gateway repeats one), its
    values by their types all at once, and its `ts` here without :func:`parse_ts`'s call.
    Whatever is not plain (a bad name, a string value, a bad `ts` or `seq`, a time outside
    the store's window) goes to the exact path in :func:`telemetry_into`, which keeps the good
    readings and names the problem. The two paths store the same (a Hypothesis test).
    """
    fromiso = datetime.fromisoformat
    names_of: list[tuple[str, ...]] = []
    stamps: list[int] = []
    dicts: list[dict[str, Any]] = []
    prev: tuple[str, ...] | None = None
    distinct: set[str] = set()
    for item in items:
        if type(item) is not dict:
            return False
        metrics = item.get("metrics")
        ts = item.get("ts")
        seq = item.get("seq")
        if type(metrics) is not dict or (seq is not None and (type(seq) is not int or seq < 0)):
            return False
        names = tuple(metrics)
        if names != prev:
            if len(names) > MAX_METRICS_PER_MESSAGE or not all(map(_metric_ok, names)):
                return False
            distinct.update(names)
            prev = names
        if type(ts) is str:
            if len(ts) > 64 or ("T" not in ts and "t" not in ts):
                return False
            try:
                t = fromiso(ts)
                if t.tzinfo is None:
                    return False
                stamps.append((t - EPOCH) // _US)
            except (ValueError, OverflowError):
                return False
        elif type(ts) is int and -(2**53) < ts < 2**53:
            stamps.append(ts * 1000)
        else:
            return False
        names_of.append(prev)
        dicts.append(metrics)
    if not stamps:
        return True  # an empty list: nothing to store, nothing wrong
    if len(distinct) > MAX_METRICS_PER_MESSAGE:
        return False
    if (max(stamps) > now_us + max_future_s * 1e6
            or min(stamps) < now_us - max_age_s * 1e6):
        return False
    values: list[Any] = list(chain.from_iterable(map(dict.values, dicts)))
    types = set(map(type, values))
    if not _PLAIN_VALUES.issuperset(types):
        return False  # orjson makes no NaN or infinity: a float or an int is a good value
    if int in types:
        values = [float(v) if type(v) is int else v for v in values]
    out.metric.extend(chain.from_iterable(names_of))
    out.time_us.extend(chain.from_iterable(map(repeat, stamps, map(len, names_of))))
    out.value.extend(values)
    return True


def _object(topic: str, payload: bytes, expected_kind: str) -> tuple[str, dict[str, Any]]:
    """The device id and JSON object of a ``devices/{id}/{expected_kind}`` message."""
    device, kind = parse_topic(topic)
    if kind != expected_kind:
        raise Reject("bad topic", topic)
    doc = _load(topic, payload)
    if not isinstance(doc, dict):
        raise Reject("bad shape", f"{expected_kind} must be a JSON object")
    return device, doc


def decode_status(topic: str, payload: bytes, *, now_us: int,
                  max_future_s: float = DEFAULT_MAX_FUTURE_S) -> StatusChange:
    """``devices/{id}/status`` → :class:`StatusChange`; a will message may omit ``ts``.

    No age limit: a will carries the time its device connected, which may be long ago, and
    status changes are not kept in time partitions."""
    device, doc = _object(topic, payload, "status")
    state = doc.get("state")
    if state not in ("online", "offline"):
        raise Reject("bad state", repr(state)[:100])
    t_us = now_us if doc.get("ts") is None else parse_ts(
        doc["ts"], now_us=now_us, max_future_s=max_future_s, max_age_s=math.inf)
    return StatusChange(device=device, state=str(state), time_us=t_us)


def decode_waveform(topic: str, payload: bytes, *, now_us: int,
                    max_future_s: float = DEFAULT_MAX_FUTURE_S,
                    max_age_s: float = DEFAULT_MAX_AGE_S) -> Waveform:
    """``devices/{id}/waveform`` → :class:`Waveform` (samples checked to be finite).

    Besides the contract's fields a burst may carry ``shaft_rpm``, the shaft speed while it
    was recorded (a positive number); the spectral check places the bearing defect
    frequencies with it."""
    device, doc = _object(topic, payload, "waveform")
    if "ts" not in doc:
        raise Reject("missing ts")
    t_us = parse_ts(doc["ts"], now_us=now_us, max_future_s=max_future_s, max_age_s=max_age_s)
    channel = doc.get("channel")
    if not isinstance(channel, str) or METRIC_NAME.fullmatch(channel) is None:
        raise Reject("bad channel", repr(channel)[:100])
    rate = doc.get("sample_rate_hz")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 1e7:
        raise Reject("bad sample rate", repr(rate)[:100])
    encoding = doc.get("encoding")
    if encoding not in WAVEFORM_ENCODINGS:
        raise Reject("bad encoding", repr(encoding)[:100])
    data = doc.get("data")
    if not isinstance(data, str):
        raise Reject("bad waveform data", "`data` must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise Reject("bad waveform data", "not base64") from None
    if len(raw) == 0 or len(raw) % 4:
        raise Reject("bad waveform data", f"{len(raw)} bytes is not a whole number of float32")
    if not np.isfinite(np.frombuffer(raw, dtype=WAVEFORM_ENCODINGS[encoding])).all():
        raise Reject("value not finite", channel)
    rpm = doc.get("shaft_rpm")   # optional: the shaft speed while the burst was recorded
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int | float)
                            or not 0 < rpm < 1e6):
        raise Reject("bad shaft speed", repr(rpm)[:100])
    return Waveform(device=device, time_us=t_us, channel=channel, sample_rate_hz=float(rate),
                    samples=raw, shaft_rpm=None if rpm is None else float(rpm))
