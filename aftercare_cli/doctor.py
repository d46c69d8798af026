"""``aftercare doctor``: is each part there, reachable, and which store backend runs."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
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
    warning: bool = False  # works, but set up in a way known to lose data or fail later


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def warn(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail, warning=True))

    def render(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"{'FAIL' if not c.ok else 'warn' if c.warning else 'ok  '} "
                 f"{c.name:<{width}}  {c.detail}" for c in self.checks]
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


def _mosquitto_conf(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            out[key] = value.strip()
    return out


def check_broker_setup(report: Report, conf: Path | None) -> None:
    """Warn about Mosquitto settings known to lose acknowledged messages."""
    if conf is None or not conf.is_file():
        report.warn("broker set-up", "no Mosquitto config to check (pass --broker-conf FILE); "
                    "run ingest without --share on Mosquitto 2.0, which does not restore "
                    "$share subscriptions after a restart")
        return
    c = _mosquitto_conf(conf)
    problems = []
    queued = int(c.get("max_queued_messages", "1000") or 0)
    if 0 < queued < 100_000:
        problems.append(f"max_queued_messages {queued}: a worker away for "
                        f"{queued / 1500:.1f} s at 1,500 msg/s loses the rest (the default "
                        "1000 is a trap); `aftercare broker --out` writes 1,000,000")
    if c.get("persistence", "false").lower() != "true":
        problems.append("persistence off: a broker restart drops every queued message and "
                        "the ingest worker's session")
    if problems:
        report.warn("broker set-up", f"{conf}: " + "; ".join(problems))
    else:
        report.add("broker set-up", True, f"{conf}: persistence on, queue {queued:,} "
                   "messages; ingest subscribes without $share (safe across restarts)")


def check_spool(report: Report, settings: config.Settings) -> None:
    """The ingest spool absorbs database outages: is there room for what it may hold?"""
    spool = Path(settings.ingest_spool_dir or Path(settings.data_dir or ".aftercare") / "spool")
    probe = spool
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free / 2**20
    want = settings.ingest_spool_max_mb
    hours = want * 2**20 / (1500 * 200) / 3600  # 1,500 msg/s of ~200-byte records
    detail = (f"{spool}: cap {want:,} MB (~{hours:.1f} h of database outage at 1,500 msg/s), "
              f"{free_mb:,.0f} MB free")
    if free_mb < want:
        report.warn("ingest spool", detail + ": less free disk than the cap")
    else:
        report.add("ingest spool", True, detail)


def run(settings: config.Settings, *, broker_conf: Path | None = None) -> Report:
    report = Report()
    report.add("config", True, "environment variables valid")
    check_database(report, settings.database_url)
    check_broker(report, settings.mqtt_url)
    if broker_conf is None:
        default = Path(settings.data_dir or ".aftercare") / "mosquitto" / "mosquitto.conf"
        broker_conf = default if default.is_file() else None
    check_broker_setup(report, broker_conf)
    check_spool(report, settings)
    if settings.events_url != settings.mqtt_url:
        report.add("events broker", True, f"{redact(settings.events_url)} (not probed)")
    return report
