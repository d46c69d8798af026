"""Configuration from environment variables, with working defaults for a local machine.

Every variable is declared once in :data:`VARIABLES`; the README's configuration table is
generated from it (``aftercare config``). A bad value stops start-up with a message naming
the variable. The service CRM's tunables (``AFTERCARE_*`` below ``AFTERCARE_DESK_EMAIL``) reach
Django as settings of the same name (``web/settings.py``), read by ``service_crm.conf``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# Alert-event transports by EVENTS_URL scheme: the one list both this check and
# aftercare.events (which builds the broker) use.
Transport = Literal["mqtt", "nats", "rabbit"]
EVENT_TRANSPORTS: dict[str, Transport] = {"mqtt": "mqtt", "mqtts": "mqtt", "nats": "nats",
                                          "amqp": "rabbit", "amqps": "rabbit"}


class ConfigError(ValueError):
    """A configuration variable holds a value the program cannot use."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    help: str


VARIABLES: tuple[Variable, ...] = (
    Variable("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/aftercare",
             "PostgreSQL for telemetry and CRM (one database, so both can be joined)"),
    Variable("MQTT_URL", "mqtt://127.0.0.1:1883",
             "Broker devices publish to; mqtt:// or mqtts://, credentials in the URL; a "
             "cluster as host1:port1,host2:port2 (clients fail over between the nodes); "
             "?protocol=3.1.1 for a broker without MQTT 5"),
    Variable("EVENTS_URL", "",
             "FastStream broker for alert events (mqtt://, nats://, amqp://, or the mqtts://, "
             "amqps:// TLS forms); a cluster as host1:port1,host2:port2 (the detect worker's "
             "publisher and the CRM consumer move to the next node when theirs stops "
             "answering); empty = MQTT_URL"),
    Variable("EVENTS_PARTITIONS", "1",
             "Alert events split by asset (a device no asset claimed: by device) into this many "
             "queues, each with a single active consumer, so several CRM consumers share them "
             "in order (amqp:// only)"),
    Variable("AFTERCARE_STORE_BACKEND", "auto",
             "auto (TimescaleDB when the extension is available), timescaledb, or native"),
    Variable("AFTERCARE_RETENTION_DAYS", "365", "Raw telemetry older than this is dropped"),
    Variable("AFTERCARE_COMPRESS_AFTER_DAYS", "7", "TimescaleDB: compress chunks older than this"),
    Variable("AFTERCARE_PARTITIONS_AHEAD_DAYS", "7",
             "Native backend: daily partitions created ahead of time"),
    Variable("INGEST_BATCH_SIZE", "5000",
             "Most messages per batch transaction, counted in whole spool chunks (what the "
             "spooler fsyncs at once, up to 2000), so a batch may exceed it by one chunk; also "
             "at most ~8 MB of payload. --receive-maximum does not bound it"),
    Variable("INGEST_BATCH_MS", "250", "Longest wait before a partial batch is written"),
    Variable("INGEST_CLIENT_ID", "",
             "Stable MQTT client id of an ingest worker (default: aftercare-ingest-HOST-0)"),
    Variable("INGEST_AMQP_URL", "",
             "RabbitMQ cluster: ingest workers consume one quorum queue over AMQP as competing "
             "consumers (amqp://u:p@h1:5672,h2:5672/) instead of each holding an MQTT session "
             "that receives everything; empty = MQTT_URL"),
    Variable("INGEST_METRICS_PORT", "9108", "Prometheus metrics port of an ingest worker (0=off)"),
    Variable("INGEST_SPOOL_DIR", "",
             "Durable local spool of an ingest worker (default: DATA_DIR/spool/CLIENT_ID)"),
    Variable("INGEST_SPOOL_MAX_MB", "2048",
             "Spool capacity: a database outage is absorbed until it is full (see README)"),
    Variable("INGEST_MAX_FUTURE_S", "300",
             "Readings further ahead than this (device clock skew) are rejected"),
    Variable("INGEST_DEVICE_MAX_READINGS_PER_S", "1000",
             "Sustained readings per second one device may send (burst: 6 h of it); 0 = no limit"),
    Variable("WEB_HOST", "127.0.0.1", "Address the web app listens on"),
    Variable("WEB_PORT", "8000", "Port the web app listens on"),
    Variable("WEB_WORKERS", "0",
             "Web server processes sharing the port (0 = one per CPU core), 8 threads each"),
    Variable("DJANGO_SECRET_KEY", "",
             "Secret for sessions and tokens; empty = a random key kept in AFTERCARE_DATA_DIR"),
    Variable("DJANGO_DEBUG", "false", "Django debug mode (never in production)"),
    Variable("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost", "Comma-separated host names"),
    Variable("AFTERCARE_DEVICE_SECRET", "dev-device-secret",
             "Derives per-device MQTT passwords when devices are provisioned"),
    Variable("EMAIL_URL", "",
             "smtp://user:pass@host:587 (STARTTLS) or smtps://...:465; empty = write emails "
             "as files under AFTERCARE_DATA_DIR/mail"),
    Variable("DEFAULT_FROM_EMAIL", "aftercare@localhost", "Sender of every notification"),
    Variable("AFTERCARE_DESK_EMAIL", "service-desk@aftercare.local",
             "Where SLA-at-risk and desk notices go"),
    Variable("AFTERCARE_PUBLIC_URL", "",
             "Where customers reach the web app, for links in emails (http:// or https://); "
             "empty = http://127.0.0.1:WEB_PORT"),
    Variable("AFTERCARE_CURRENCY", "EUR",
             "ISO 4217 code of every price in offers and orders (one currency per installation)"),
    Variable("AFTERCARE_LABOUR_RATE_EUR", "95.00", "Price of one engineer hour in offers"),
    Variable("AFTERCARE_DISCOUNT_APPROVAL_PCT", "10",
             "Offer discounts above this percentage need a manager's approval"),
    Variable("AFTERCARE_OFFER_VALID_DAYS", "30", "Days a sent offer stays open"),
    Variable("AFTERCARE_RENEWAL_OFFER_DAYS", "60",
             "Days before its end a contract that does not renew itself gets a renewal offer "
             "drafted (0 = off)"),
    Variable("AFTERCARE_WATCH_PERIOD_H", "72",
             "Hours an episode is watched after its repair before it counts as fixed"),
    Variable("AFTERCARE_SLA_AT_RISK_FRACTION", "0.25",
             "A ticket is at risk once less than this fraction of its resolution time is left"),
    Variable("AFTERCARE_PLANNED_HORIZON_DAYS", "30",
             "How far ahead planned visits become work orders"),
    Variable("AFTERCARE_DEFAULT_PHONE_REGION", "DE",
             "Country a phone number without + is read in when the account has no site"),
    Variable("AFTERCARE_WEBHOOK_ALLOW_HTTP", "false",
             "Allow plain http:// webhook receivers (tests, a receiver on the same host)"),
    Variable("AFTERCARE_WEBHOOK_MAX_ATTEMPTS", "12",
             "Webhook delivery attempts before it is given up (it can still be replayed)"),
    Variable("AFTERCARE_WEBHOOK_BACKOFF_S", "30",
             "Wait after a failed delivery, doubling per attempt, at most 6 h"),
    Variable("AFTERCARE_WEBHOOK_TIMEOUT_S", "5", "HTTP timeout of one webhook delivery"),
    Variable("AFTERCARE_LOGIN_MAX_FAILURES_USER", "5",
             "Wrong passwords per (user name, client address) before the log-in is blocked"),
    Variable("AFTERCARE_LOGIN_MAX_FAILURES_IP", "30",
             "Wrong passwords per client address before the log-in is blocked"),
    Variable("AFTERCARE_LOGIN_WINDOW_S", "900", "Idle seconds after which failures are forgotten"),
    Variable("AFTERCARE_LOGIN_BACKOFF_S", "60",
             "First log-in block, doubling with each further failure"),
    Variable("AFTERCARE_LOGIN_MAX_BACKOFF_S", "3600", "Longest log-in block"),
    Variable("AFTERCARE_DASHBOARD_CACHE_S", "5",
             "Seconds the desk dashboard's fleet counts are cached for all users (0 = off)"),
    Variable("AFTERCARE_DASHBOARD_POLL_S", "15", "How often an open desk dashboard refreshes"),
    Variable("AFTERCARE_DATA_DIR", ".aftercare",
             "Where local runs keep broker config, logs and PGlite data"),
)
_BY_NAME = {v.name: v for v in VARIABLES}


def default(name: str) -> str:
    """The variable's declared default, for code that takes the same setting as an argument.

    >>> default("INGEST_MAX_FUTURE_S")
    '300'
    """
    return _BY_NAME[name].default


def raw(name: str, env: Mapping[str, str] | None = None) -> str:
    """The variable's value, or its declared default."""
    source = os.environ if env is None else env
    var = _BY_NAME[name]
    value = source.get(name, "")
    return value if value != "" else var.default


def _parse(name: str, parse: Callable[[str], T], env: Mapping[str, str] | None) -> T:
    value = raw(name, env)
    try:
        return parse(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}={value!r}: {exc}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("must be an integer") from None


def _positive_int(text: str) -> int:
    n = _int(text)
    if n <= 0:
        raise ValueError("must be a positive integer")
    return n


def _non_negative_int(text: str) -> int:
    n = _int(text)
    if n < 0:
        raise ValueError("must be 0 or a positive integer")
    return n


def _number(low: float, high: float = float("inf"), *, low_open: bool = False,
            high_open: bool = False) -> Callable[[str], float]:
    """A finite number within [low, high] (an end excluded where it is open)."""
    def check(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(x):
            raise ValueError("must be a finite number")
        if not (x > low if low_open else x >= low) or not (x < high if high_open else x <= high):
            raise ValueError(f"must be within {'(' if low_open else '['}{low:g}, {high:g}"
                             f"{')' if high_open else ']'}")
        return x

    return check


def _decimal(low: Decimal, high: Decimal) -> Callable[[str], Decimal]:
    def check(text: str) -> Decimal:
        try:
            d = Decimal(text.strip())
        except InvalidOperation:
            raise ValueError("must be a decimal number") from None
        if not d.is_finite() or not low <= d <= high:
            raise ValueError(f"must be within [{low}, {high}]")
        return d

    return check


def _code(length: int, what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not re.fullmatch(f"[A-Z]{{{length}}}", text):
            raise ValueError(f"must be {what} ({length} capital letters)")
        return text

    return check


def _port(text: str) -> int:
    n = _int(text)
    if not 0 <= n <= 65535:
        raise ValueError("must be a port number 0..65535")
    return n


def _workers(text: str) -> int:
    n = _int(text)
    if not 0 <= n <= 64:
        raise ValueError("must be 0 (one per CPU core) .. 64")
    return n


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in {"1", "true", "yes", "on"}:
        return True
    if t in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(text: str) -> str:
        parts = urlsplit(text)
        if parts.scheme not in schemes:
            raise ValueError(f"scheme must be one of {', '.join(schemes)}")
        # A broker cluster is a node list, host1:port1,host2:port2 (aftercare.mqtt.endpoints).
        nodes = parts.netloc.rpartition("@")[2].split(",") if "," in parts.netloc else [""]
        for node in nodes:
            one = urlsplit(f"{parts.scheme}://{node}") if node else parts
            if not one.hostname and parts.scheme not in {"postgresql", "postgres"}:
                raise ValueError("needs a host")
            try:
                _ = one.port
            except ValueError as exc:
                raise ValueError(f"bad port ({exc})") from None
        return text

    return check


def _optional(check: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: text if text == "" else check(text)


def _email(text: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", text):
        raise ValueError("not an email address")
    return text


def _choice(*options: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return check


@dataclass(frozen=True)
class Settings:
    database_url: str
    mqtt_url: str
    events_url: str
    store_backend: str
    retention_days: int
    compress_after_days: int
    partitions_ahead_days: int
    ingest_batch_size: int
    ingest_batch_ms: int
    ingest_client_id: str
    ingest_amqp_url: str
    ingest_metrics_port: int
    ingest_spool_dir: str
    ingest_spool_max_mb: int
    ingest_max_future_s: int
    ingest_device_max_readings_per_s: int
    web_host: str
    web_port: int
    web_workers: int
    debug: bool
    secret_key: str
    allowed_hosts: tuple[str, ...]
    device_secret: str
    data_dir: str
    email_url: str
    from_email: str
    desk_email: str
    public_url: str
    currency: str
    labour_rate: Decimal
    discount_approval_pct: Decimal
    offer_valid_days: int
    renewal_offer_days: int
    watch_period_h: float
    sla_at_risk_fraction: float
    planned_horizon_days: int
    default_phone_region: str
    webhook_allow_http: bool
    webhook_max_attempts: int
    webhook_backoff_s: float
    webhook_timeout_s: float
    login_max_failures_user: int
    login_max_failures_ip: int
    login_window_s: int
    login_backoff_s: int
    login_max_backoff_s: int
    dashboard_cache_s: float
    dashboard_poll_s: float
    events_partitions: int = 1


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable; raise :class:`ConfigError` naming the bad one."""
    debug = _parse("DJANGO_DEBUG", _bool, env)
    secret = raw("DJANGO_SECRET_KEY", env)
    mqtt_url = _parse("MQTT_URL", _url(("mqtt", "mqtts")), env)
    events = raw("EVENTS_URL", env) or mqtt_url
    try:
        _url(tuple(EVENT_TRANSPORTS))(events)
    except ValueError as exc:
        raise ConfigError(f"EVENTS_URL={events!r}: {exc}") from None
    events_partitions = _parse("EVENTS_PARTITIONS", _positive_int, env)
    if events_partitions > 1 and not events.startswith(("amqp://", "amqps://")):
        raise ConfigError(f"EVENTS_PARTITIONS={events_partitions}: partitions need an amqp:// "
                          "EVENTS_URL (RabbitMQ)")
    host = raw("WEB_HOST", env)
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", host):
        raise ConfigError(f"WEB_HOST={host!r}: not a host name or address")
    return Settings(
        database_url=_parse("DATABASE_URL", _url(("postgresql", "postgres")), env),
        mqtt_url=mqtt_url,
        events_url=events,
        events_partitions=events_partitions,
        store_backend=_parse(
            "AFTERCARE_STORE_BACKEND", _choice("auto", "timescaledb", "native"), env
        ),
        retention_days=_parse("AFTERCARE_RETENTION_DAYS", _positive_int, env),
        compress_after_days=_parse("AFTERCARE_COMPRESS_AFTER_DAYS", _positive_int, env),
        partitions_ahead_days=_parse("AFTERCARE_PARTITIONS_AHEAD_DAYS", _positive_int, env),
        ingest_batch_size=_parse("INGEST_BATCH_SIZE", _positive_int, env),
        ingest_batch_ms=_parse("INGEST_BATCH_MS", _positive_int, env),
        ingest_client_id=raw("INGEST_CLIENT_ID", env),
        ingest_amqp_url=_parse("INGEST_AMQP_URL", _optional(_url(("amqp", "amqps"))), env),
        ingest_metrics_port=_parse("INGEST_METRICS_PORT", _port, env),
        ingest_spool_dir=raw("INGEST_SPOOL_DIR", env),
        ingest_spool_max_mb=_parse("INGEST_SPOOL_MAX_MB", _positive_int, env),
        ingest_max_future_s=_parse("INGEST_MAX_FUTURE_S", _positive_int, env),
        ingest_device_max_readings_per_s=_parse("INGEST_DEVICE_MAX_READINGS_PER_S", _int, env),
        web_host=host,
        web_port=_parse("WEB_PORT", _port, env),
        web_workers=_parse("WEB_WORKERS", _workers, env),
        debug=debug,
        secret_key=secret,
        allowed_hosts=tuple(h.strip() for h in raw("DJANGO_ALLOWED_HOSTS", env).split(",") if h),
        device_secret=raw("AFTERCARE_DEVICE_SECRET", env),
        data_dir=raw("AFTERCARE_DATA_DIR", env),
        email_url=_parse("EMAIL_URL", _optional(_url(("smtp", "smtps"))), env),
        from_email=_parse("DEFAULT_FROM_EMAIL", _email, env),
        desk_email=_parse("AFTERCARE_DESK_EMAIL", _email, env),
        public_url=_parse("AFTERCARE_PUBLIC_URL", _optional(_url(("http", "https"))), env),
        currency=_parse("AFTERCARE_CURRENCY", _code(3, "an ISO 4217 currency code"), env),
        labour_rate=_parse("AFTERCARE_LABOUR_RATE_EUR",
                           _decimal(Decimal(0), Decimal(100_000)), env),
        discount_approval_pct=_parse("AFTERCARE_DISCOUNT_APPROVAL_PCT",
                                     _decimal(Decimal(0), Decimal(100)), env),
        offer_valid_days=_parse("AFTERCARE_OFFER_VALID_DAYS", _positive_int, env),
        renewal_offer_days=_parse("AFTERCARE_RENEWAL_OFFER_DAYS", _non_negative_int, env),
        watch_period_h=_parse("AFTERCARE_WATCH_PERIOD_H", _number(0, low_open=True), env),
        sla_at_risk_fraction=_parse("AFTERCARE_SLA_AT_RISK_FRACTION",
                                    _number(0, 1, high_open=True), env),
        planned_horizon_days=_parse("AFTERCARE_PLANNED_HORIZON_DAYS", _positive_int, env),
        default_phone_region=_parse("AFTERCARE_DEFAULT_PHONE_REGION",
                                    _code(2, "an ISO 3166 country code"), env),
        webhook_allow_http=_parse("AFTERCARE_WEBHOOK_ALLOW_HTTP", _bool, env),
        webhook_max_attempts=_parse("AFTERCARE_WEBHOOK_MAX_ATTEMPTS", _positive_int, env),
        webhook_backoff_s=_parse("AFTERCARE_WEBHOOK_BACKOFF_S", _number(0, low_open=True), env),
        webhook_timeout_s=_parse("AFTERCARE_WEBHOOK_TIMEOUT_S", _number(0, low_open=True), env),
        login_max_failures_user=_parse("AFTERCARE_LOGIN_MAX_FAILURES_USER", _positive_int, env),
        login_max_failures_ip=_parse("AFTERCARE_LOGIN_MAX_FAILURES_IP", _positive_int, env),
        login_window_s=_parse("AFTERCARE_LOGIN_WINDOW_S", _positive_int, env),
        login_backoff_s=_parse("AFTERCARE_LOGIN_BACKOFF_S", _positive_int, env),
        login_max_backoff_s=_parse("AFTERCARE_LOGIN_MAX_BACKOFF_S", _positive_int, env),
        dashboard_cache_s=_parse("AFTERCARE_DASHBOARD_CACHE_S", _number(0), env),
        dashboard_poll_s=_parse("AFTERCARE_DASHBOARD_POLL_S", _number(1), env),
    )


def as_table() -> str:
    """Markdown table of every variable, its default and meaning (for the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.help} |" for v in VARIABLES]
    return "\n".join(rows)


def describe(settings: Settings) -> dict[str, Any]:
    """Settings with secrets masked, for logs and ``doctor``."""
    out = dict(settings.__dict__)
    for key in ("secret_key", "device_secret"):
        out[key] = "***" if out[key] else ""
    parts = urlsplit(out["email_url"])
    if parts.password:
        out["email_url"] = out["email_url"].replace(f":{parts.password}@", ":***@")
    return out
