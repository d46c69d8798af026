"""Alert events: what the anomaly worker publishes and the service CRM consumes.

One condition on one device is one alert (``alert_id``), published as it opens, each time it
materially changes, and once when it clears. Consumers are idempotent by
(``alert_id``, ``revision``): a redelivered event changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import orjson

from aftercare.config import EVENT_TRANSPORTS, ConfigError, Transport
from aftercare.contract import ALERTS_TOPIC as ALERTS_TOPIC


def transport_of(url: str) -> Transport:
    """Which event transport an ``EVENTS_URL`` names (MQTT, NATS or RabbitMQ).

    >>> transport_of("amqp://guest:guest@127.0.0.1:5672/")
    'rabbit'
    """
    scheme = urlsplit(url).scheme
    try:
        return EVENT_TRANSPORTS[scheme]
    except KeyError:
        raise ConfigError(f"EVENTS_URL scheme {scheme!r} is not supported "
                          f"(use one of {', '.join(EVENT_TRANSPORTS)})") from None


def node_urls(url: str) -> list[str]:
    """One URL per node of ``scheme://user:pw@host1:port1,host2:port2/path?query`` (a broker
    cluster, the same spelling as ``MQTT_URL``), in order; a one-node URL is itself.

    >>> node_urls("amqp://u:p@h1:5672,h2:5673/vh")
    ['amqp://u:p@h1:5672/vh', 'amqp://u:p@h2:5673/vh']
    """
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes = [h for h in hosts.split(",") if h]
    if len(nodes) <= 1:
        return [url]
    return [urlunsplit(parts._replace(netloc=f"{userinfo}{at}{h}")) for h in nodes]


def node_name(url: str) -> str:
    """``host:port`` of a one-node URL, for logs: never the credentials.

    >>> node_name("amqp://u:secret@h1:5672/vh"), node_name("nats://h2"), node_name("x")
    ('h1:5672', 'h2', 'x')
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def event_broker(url: str, **options: Any) -> Any:
    """A FastStream broker for ``EVENTS_URL``; `options` go to the transport's broker class.

    The one place that maps a URL to a transport, so the publisher (anomaly) and the consumer
    (service CRM) cannot drift apart on which schemes exist.
    """
    kind = transport_of(url)
    if kind == "mqtt":
        from faststream.mqtt import MQTTBroker

        return MQTTBroker(url, **options)
    if kind == "nats":
        from faststream.nats import NatsBroker

        return NatsBroker(url, **options)
    from faststream.rabbit import RabbitBroker

    return RabbitBroker(url, **options)


def nats_subject(topic: str) -> str:
    """NATS spelling of an MQTT-style topic (NATS separates subject parts with dots).

    >>> nats_subject(ALERTS_TOPIC)
    'aftercare.alerts'
    """
    return topic.replace("/", ".")

AlertState = Literal["open", "update", "clear"]
Severity = Literal["info", "warning", "critical"]
AlertKind = Literal["equipment", "device"]
_STATES = ("open", "update", "clear")
_SEVERITIES = ("info", "warning", "critical")
_KINDS = ("equipment", "device")


class EventError(ValueError):
    """An alert event that breaks the schema; the message names the field."""


@dataclass(frozen=True)
class Evidence:
    """Why the detector believes it: one channel's value against its baseline."""

    metric: str
    detector: str
    score: float
    value: float | None = None
    baseline: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class AlertEvent:
    alert_id: str
    revision: int
    state: AlertState
    device: str
    kind: AlertKind
    severity: Severity
    failure_mode: str
    score: float
    opened_at: datetime
    at: datetime
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    detectors: dict[str, float] = field(default_factory=dict)
    # False: the evidence comes from a metric the device's equipment model does not name (or a
    # device with no model), so `failure_mode` is only a guess from the metric's name; the desk
    # classifies it (and may save that into the model). Absent in older events: classified.
    classified: bool = True

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> AlertEvent:
        try:
            raw = orjson.loads(data) if isinstance(data, bytes | str) else dict(data)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"not json: {exc}") from None
        if not isinstance(raw, dict):
            raise EventError("event must be a JSON object")

        def need(name: str) -> Any:
            if name not in raw or raw[name] is None:
                raise EventError(f"{name}: required")
            return raw[name]

        def when(name: str, value: Any) -> datetime:
            try:
                dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise EventError(f"{name}: not an ISO 8601 time") from None
            if dt.tzinfo is None:
                raise EventError(f"{name}: needs a time zone offset")
            return dt

        state = need("state")
        if state not in _STATES:
            raise EventError(f"state: must be one of {', '.join(_STATES)}")
        severity = need("severity")
        if severity not in _SEVERITIES:
            raise EventError(f"severity: must be one of {', '.join(_SEVERITIES)}")
        kind = need("kind")
        if kind not in _KINDS:
            raise EventError(f"kind: must be one of {', '.join(_KINDS)}")
        try:
            score = float(need("score"))
            revision = int(need("revision"))
        except (TypeError, ValueError):
            raise EventError("score/revision: must be numbers") from None
        if not 0.0 <= score <= 1.0:
            raise EventError("score: must be within [0, 1]")
        classified = raw.get("classified", True)
        if not isinstance(classified, bool):
            raise EventError("classified: must be true or false")
        evidence = []
        for i, e in enumerate(raw.get("evidence") or ()):
            try:
                evidence.append(Evidence(
                    metric=str(e["metric"]), detector=str(e["detector"]), score=float(e["score"]),
                    value=None if e.get("value") is None else float(e["value"]),
                    baseline=None if e.get("baseline") is None else float(e["baseline"]),
                    window_start=None if e.get("window_start") is None
                    else when(f"evidence[{i}].window_start", e["window_start"]),
                    window_end=None if e.get("window_end") is None
                    else when(f"evidence[{i}].window_end", e["window_end"]),
                ))
            except (KeyError, TypeError, ValueError) as exc:
                raise EventError(f"evidence[{i}]: {exc}") from None
        return cls(
            alert_id=str(need("alert_id")), revision=revision, state=state,
            device=str(need("device")), kind=kind, severity=severity,
            failure_mode=str(need("failure_mode")), score=score,
            opened_at=when("opened_at", need("opened_at")), at=when("at", need("at")),
            evidence=tuple(evidence),
            detectors={str(k): float(v) for k, v in (raw.get("detectors") or {}).items()},
            classified=classified,
        )
