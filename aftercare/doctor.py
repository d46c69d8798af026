"""``aftercare doctor``: is each part there, reachable, and which store backend runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from aftercare import config, store


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def render(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name:<{width}}  {c.detail}" for c in self.checks]
        lines.append("all parts ok" if self.ok else "some parts need attention (FAIL above)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def ensure_database(url: str) -> str | None:
    """Create the database named in ``url`` if the server lacks it; returns its name if made."""
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        return None
    try:
        with psycopg.connect(url, connect_timeout=5):
            return None
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def check_database(report: Report, url: str) -> None:
    try:
        conn = psycopg.connect(url, connect_timeout=5)
    except psycopg.OperationalError as exc:
        report.add("database", False, f"{redact(url)}: {str(exc).strip().splitlines()[-1]}")
        report.add("store backend", False, "database unreachable")
        return
    with conn:
        version = conn.execute("SHOW server_version").fetchone()
        report.add("database", True, f"{redact(url)} (PostgreSQL {version[0] if version else '?'})")
        available = store.timescaledb_available(conn)
        installed = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        if installed:
            report.add("timescaledb", True, f"extension {installed[0]} installed")
        elif available:
            report.add("timescaledb", True,
                       "available, not yet created (run `aftercare db migrate`)")
        else:
            report.add("timescaledb", True,
                       "not installed on this server: the native partitioning backend is used")
        try:
            info = store.info(conn)
        except store.StoreError as exc:
            report.add("store backend", False, str(exc))
            return
        if info.backend == "timescaledb":
            detail = f"TimescaleDB {info.timescaledb_version} (hypertable, compression, caggs)"
        else:
            detail = "native PostgreSQL partitioning (daily partitions, BRIN, project rollups)"
        report.add("store backend", True, f"{detail}; schema version {info.schema_version}")


def check_broker(report: Report, url: str, timeout_s: float = 5.0) -> None:
    from aftercare.mqtt import endpoint, make_client

    parts = urlsplit(url)
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result["reason"] = reason
        done.set()

    client = make_client(url)
    client.on_connect = on_connect
    ep = endpoint(url)
    try:
        client.connect(ep.host, ep.port, keepalive=10)
    except OSError as exc:
        report.add("broker", False, f"{redact(url)}: {exc}")
        return
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            report.add("broker", False, f"{redact(url)}: no CONNACK within {timeout_s:.0f}s")
            return
        reason = result["reason"]
        if reason.is_failure:
            report.add("broker", False, f"{redact(url)}: connection refused ({reason})")
        else:
            who = f" as {unquote(parts.username)}" if parts.username else " (anonymous)"
            report.add("broker", True, f"{redact(url)} MQTT 5 connected{who}")
    finally:
        client.disconnect()
        client.loop_stop()


def run(settings: config.Settings) -> Report:
    report = Report()
    report.add("config", True, "environment variables valid")
    check_database(report, settings.database_url)
    check_broker(report, settings.mqtt_url)
    if settings.events_url != settings.mqtt_url:
        report.add("events broker", True, f"{redact(settings.events_url)} (not probed)")
    return report
