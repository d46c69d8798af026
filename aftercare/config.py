"""Configuration from environment variables, with working defaults for a local machine.

Every variable is declared once in :data:`VARIABLES`; the README's configuration table is
generated from it (``aftercare config``). A bad value stops start-up with a message naming
the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


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
             "FastStream broker for alert events (mqtt://, nats://, amqp://); empty = MQTT_URL"),
    Variable("AFTERCARE_STORE_BACKEND", "auto",
             "auto (TimescaleDB when the extension is available), timescaledb, or native"),
    Variable("AFTERCARE_RETENTION_DAYS", "365", "Raw telemetry older than this is dropped"),
    Variable("AFTERCARE_COMPRESS_AFTER_DAYS", "7", "TimescaleDB: compress chunks older than this"),
    Variable("AFTERCARE_PARTITIONS_AHEAD_DAYS", "7",
             "Native backend: daily partitions created ahead of time"),
    Variable("INGEST_BATCH_SIZE", "5000",
             "Most messages per batch transaction (also capped by --receive-maximum)"),
    Variable("INGEST_BATCH_MS", "250", "Longest wait before a partial batch is written"),
    Variable("INGEST_CLIENT_ID", "",
             "Stable MQTT client id of an ingest worker (default: aftercare-ingest-HOST-0)"),
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
    Variable("AFTERCARE_DATA_DIR", ".aftercare",
             "Where local runs keep broker config, logs and PGlite data"),
)
_BY_NAME = {v.name: v for v in VARIABLES}


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


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable; raise :class:`ConfigError` naming the bad one."""
    debug = _parse("DJANGO_DEBUG", _bool, env)
    secret = raw("DJANGO_SECRET_KEY", env)
    mqtt_url = _parse("MQTT_URL", _url(("mqtt", "mqtts")), env)
    events = raw("EVENTS_URL", env) or mqtt_url
    try:
        _url(("mqtt", "mqtts", "nats", "amqp", "amqps", "redis"))(events)
    except ValueError as exc:
        raise ConfigError(f"EVENTS_URL={events!r}: {exc}") from None
    host = raw("WEB_HOST", env)
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", host):
        raise ConfigError(f"WEB_HOST={host!r}: not a host name or address")
    return Settings(
        database_url=_parse("DATABASE_URL", _url(("postgresql", "postgres")), env),
        mqtt_url=mqtt_url,
        events_url=events,
        store_backend=_parse(
            "AFTERCARE_STORE_BACKEND", _choice("auto", "timescaledb", "native"), env
        ),
        retention_days=_parse("AFTERCARE_RETENTION_DAYS", _positive_int, env),
        compress_after_days=_parse("AFTERCARE_COMPRESS_AFTER_DAYS", _positive_int, env),
        partitions_ahead_days=_parse("AFTERCARE_PARTITIONS_AHEAD_DAYS", _positive_int, env),
        ingest_batch_size=_parse("INGEST_BATCH_SIZE", _positive_int, env),
        ingest_batch_ms=_parse("INGEST_BATCH_MS", _positive_int, env),
        ingest_client_id=raw("INGEST_CLIENT_ID", env),
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
