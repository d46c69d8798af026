"""Fault harness for ingest: a private PostgreSQL and Mosquitto that can be restarted or
stopped, ingest workers as real processes that can be killed, and a flood of QoS 1 device
messages whose acknowledgements are counted.

Shared by the chaos tests (short runs, in CI) and ``bench/chaos.py`` (the long runs). Every
run ends in one :class:`Tally`: what devices had acknowledged against what the database holds.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import paho.mqtt.client as mqtt
import psycopg

from aftercare import broker, store
from aftercare.mqtt import connect_async, make_client
from tests.support.wait import wait_for

SECRET = "chaos-device-secret"
ROOT = Path(__file__).resolve().parents[2]


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    exe = shutil.which("pg_ctl")
    if exe is None:
        raise RuntimeError("pg_ctl not found: install the 'postgresql' package")
    return Path(exe).parent


class PrivatePostgres:
    """A throw-away PostgreSQL cluster of our own, so it can be stopped and restarted."""

    def __init__(self, directory: Path, settings: Mapping[str, str] | None = None) -> None:
        self.dir = directory
        self.data = directory / "pgdata"
        self.port = broker.free_port()
        self.bin = _pg_bin()
        # PostgreSQL refuses to run as root: use its own system user where we are root.
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            pw = pwd.getpwnam("postgres")
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, pw.pw_uid, pw.pw_gid)
            for parent in directory.parents:  # postgres must be able to reach it
                if parent == Path("/") or parent.stat().st_mode & 0o001:
                    continue
                os.chmod(parent, parent.stat().st_mode | 0o001)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        (self.data / "postgresql.auto.conf").write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{directory}'\nfsync = on\n"
            "shared_buffers = 64MB\nmax_connections = 50\n"
            + "".join(f"{k} = {v}\n" for k, v in (settings or {}).items()), encoding="utf-8")

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, name: str = "aftercare") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bin / tool), *args], check=False,
                              capture_output=True, cwd="/")
        if done.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): "
                               f"{done.stdout.decode()} {done.stderr.decode()}".strip())

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_store(self, name: str = "aftercare") -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.dsn(name)) as conn:
            store.migrate(conn, requested_backend="native")
        return self.dsn(name)


@contextmanager
def private_postgres(directory: Path, settings: Mapping[str, str] | None = None
                     ) -> Iterator[PrivatePostgres]:
    """A private cluster, started; `settings` are added to (or override) the defaults."""
    pg = PrivatePostgres(directory, settings)
    pg.start()
    try:
        yield pg
    finally:
        with suppress(RuntimeError):
            pg.stop("immediate")


class PrivateMosquitto:
    """A Mosquitto with generated credentials and ACLs that can be restarted on its port."""

    def __init__(self, directory: Path, devices: list[str], *,
                 max_queued_messages: int = broker.DEFAULT_MAX_QUEUED_MESSAGES) -> None:
        self.files = broker.write_broker_files(
            directory, port=broker.free_port(), users=broker.default_users(SECRET, devices),
            max_queued_messages=max_queued_messages)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.files.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker.wait_for_port(self.files.port, timeout_s=20)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: it saves its persistence file
            self.proc.wait(20)
            self.proc = None

    def restart(self, down_s: float = 0.5) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def url(self, user: str) -> str:
        password = (broker.service_password(SECRET, user) if user in broker.SERVICE_USERS
                    else broker.device_password(SECRET, user))
        return f"mqtt://{user}:{password}@127.0.0.1:{self.files.port}"


@contextmanager
def private_mosquitto(directory: Path, devices: list[str], **kw: Any
                      ) -> Iterator[PrivateMosquitto]:
    m = PrivateMosquitto(directory, devices, **kw)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@contextmanager
def device(url: str, client_id: str = "", will: tuple[str, bytes] | None = None, *,
           timeout_s: float = 10.0) -> Iterator[mqtt.Client]:
    """A connected device client (with an optional retained will). Over a node list (a
    cluster) it tries each node in turn, as a device does, until one accepts it or
    `timeout_s` passes."""
    client = make_client(url, client_id)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.reconnect_delay_set(0.2, 2)  # type: ignore[arg-type]  # paho takes float seconds
    connect_async(client, url)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise TimeoutError(f"device {client_id or url} could not connect")
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def device_client(mosq: PrivateMosquitto, dev: str) -> Any:
    """A connected client of device `dev` on the private broker (QoS 1 publishes wait for
    their PUBACK)."""
    return device(mosq.url(dev), f"{dev}-{uuid.uuid4().hex[:4]}")


class WorkerProcess:
    """``aftercare ingest`` as a real process with a stable client id and spool."""

    def __init__(self, directory: Path, *, dsn: str, mqtt_url: str, client_id: str = "",
                 extra: tuple[str, ...] = ()) -> None:
        self.client_id = client_id or f"chaos-ingest-{uuid.uuid4().hex[:6]}"
        self.spool = directory / "spool" / self.client_id
        self.log = directory / f"{self.client_id}.log"
        self.env = {**os.environ, "DATABASE_URL": dsn, "MQTT_URL": mqtt_url,
                    "INGEST_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)}
        self.cmd = [sys.executable, "-m", "aftercare_cli", "ingest", "--client-id",
                    self.client_id, "--spool-dir", str(self.spool), "--batch-ms", "50", *extra]
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._subscribed_before = 0

    def _subscriptions(self) -> int:
        return self.log.read_text().count("subscribed: receiving") if self.log.exists() else 0

    def start(self) -> None:
        self._subscribed_before = self._subscriptions()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=log)
        self.starts += 1

    def wait_subscribed(self, timeout_s: float = 30) -> None:
        """Until the process last started has its SUBACK (it logs it)."""
        wait_for("the worker's subscription",
                 lambda: self._subscriptions() > self._subscribed_before, timeout_s)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def rss_mb(self) -> float:
        """Resident memory of the worker now (MB), 0 if it is not running."""
        if not self.alive():
            return 0.0
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except FileNotFoundError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


T0_MS = int(time.time() * 1000) - 2 * 3_600_000  # readings count up by 1 ms from here


class Broker(Protocol):
    """What a flood needs of a broker: each user's MQTT URL (one node or a node list)."""

    def url(self, user: str) -> str: ...


NOW_MS = int(time.time() * 1000)
# Payloads that once stopped or crashed a worker (or could): each must become one reject with
# its reason while the fleet's readings go on being stored.
POISON: list[bytes] = [
    b'{"ts": %d, "metrics": {"a\\u0000b": 1}}' % NOW_MS,
    b'{"ts": %d, "metrics": {"ok": 1, "\\u0000": 2}}' % (NOW_MS - 1),
    b'{"ts": "\\u0000", "metrics": {"a": 1}}',
    b'{"ts": -9007199254740991, "metrics": {"a": 1}}',
    b'{"ts": 9007199254740991, "metrics": {"a": 1}}',
    b'{"ts": "0001-01-01T00:00:00+23:59", "metrics": {"a": 1}}',
    b'{"ts": "9999-12-31T23:59:59-23:59", "metrics": {"a": 1}}',
    orjson.dumps({"readings": [{"ts": f"19{y:02d}-01-01T00:00:00Z", "metrics": {"a": 1}}
                               for y in range(100)]}),
    b"\xff\xfe\x00garbage",
    b"x" * (200 * 1024),
]


@dataclass
class Flood:
    """QoS 1 publishers, one per device, each reading (device, ts) unique; counts PUBACKs."""

    mosq: Broker
    devices: list[str]
    rate_per_s: float
    acked: set[tuple[str, int]] = field(default_factory=set)
    published: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, dev: str, offset: int) -> None:
        client = make_client(self.mosq.url(dev), f"{dev}-{uuid.uuid4().hex[:4]}")
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # paho takes float seconds
        pending: dict[int, int] = {}
        lock = threading.Lock()

        early: set[int] = set()  # acks that arrived before publish() returned their mid

        def on_publish(c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
            with lock:
                i = pending.pop(mid, None)
                if i is None:
                    early.add(mid)
            if i is not None:
                with self._lock:
                    self.acked.add((dev, i))

        client.on_publish = on_publish
        # Over a node list (a cluster) each device starts on its own node and fails over.
        connect_async(client, self.mosq.url(dev), start=self.devices.index(dev))
        client.loop_start()
        interval = len(self.devices) / self.rate_per_s
        i = offset
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                payload = orjson.dumps({"ts": T0_MS + i, "seq": i,
                                        "metrics": {"temp_c": float(i % 97), "load_pct": 50.0}})
                # Never hold our lock while calling paho: its network thread holds paho's
                # lock when it calls on_publish, which takes ours.
                info = client.publish(f"devices/{dev}/telemetry", payload, qos=1)
                if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    with lock:
                        acked_now = info.mid in early
                        early.discard(info.mid)
                        if not acked_now:
                            pending[info.mid] = i
                    if acked_now:
                        with self._lock:
                            self.acked.add((dev, i))
                with self._lock:
                    self.published += 1
                i += 1
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            # Give queued and in-flight messages a moment to be acknowledged; what is still
            # unacknowledged then simply does not count (it was never promised).
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with lock:
                    if not pending:
                        break
                time.sleep(0.05)
        finally:
            client.disconnect()
            client.loop_stop()

    def start(self) -> None:
        for dev in self.devices:
            t = threading.Thread(target=self._run, args=(dev, 0), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 15
        for t in self._threads:
            # paho's loop_stop can hang in a reconnect back-off after a broker restart; the
            # threads are daemons, and acks are counted as they arrive, so don't wait forever.
            t.join(max(0.1, deadline - time.monotonic()))
        with self._lock:
            self.acked = set(self.acked)  # a snapshot: late acks do not change the tally


@dataclass
class Tally:
    published: int
    acknowledged: int
    stored: int
    lost: int
    duplicated: int
    rejected: int
    max_rss_mb: float
    recovery_s: float

    def row(self, name: str) -> str:
        return (f"| {name} | {self.published} | {self.acknowledged} | {self.stored} | "
                f"{self.lost} | {self.duplicated} | {self.rejected} | {self.max_rss_mb:.0f} | "
                f"{self.recovery_s:.1f} |")


TABLE_HEAD = ("| fault | published | acknowledged | stored | lost | duplicated | rejected | "
              "max RSS MB | recovery s |\n|---|---|---|---|---|---|---|---|---|")


def stored_keys(dsn: str, devices: list[str]) -> tuple[set[tuple[str, int]], int]:
    """(device, ts ms) of stored temp_c readings of these devices, and how many rows hold them."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT device, (extract(epoch FROM time) * 1000)::bigint FROM readings "
            "WHERE device = ANY(%s) AND metric = 'temp_c'", (devices,)).fetchall()
    return {(d, int(t) - T0_MS) for d, t in rows}, len(rows)


def tally(dsn: str, flood: Flood, workers: list[WorkerProcess], max_rss_mb: float,
          *, settle_s: float = 90.0) -> Tally:
    """Wait until every acknowledged reading is stored (or `settle_s` passes), then count."""
    t0 = time.monotonic()
    acked = set(flood.acked)

    def caught_up() -> bool:
        try:
            keys, _ = stored_keys(dsn, flood.devices)
        except psycopg.OperationalError:
            return False
        return acked <= keys

    with suppress(TimeoutError):
        wait_for("every acknowledged reading", caught_up, settle_s)
    recovery = time.monotonic() - t0
    keys, rows = stored_keys(dsn, flood.devices)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM ingest_rejects").fetchone()
    return Tally(published=flood.published, acknowledged=len(acked), stored=len(keys),
                 lost=len(acked - keys), duplicated=rows - len(keys),
                 rejected=int(row[0]) if row else 0, max_rss_mb=max_rss_mb,
                 recovery_s=recovery)


class RssSampler:
    """The worker's peak resident memory, sampled twice a second (across restarts)."""

    def __init__(self, w: WorkerProcess) -> None:
        self.w = w
        self.max_mb = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.max_mb = max(self.max_mb, self.w.rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._t.join(2)
        return self.max_mb


def flood_with_faults(mosq: PrivateMosquitto, dsn: str, w: WorkerProcess, devices: list[str],
                      fault: Callable[[], None], *, times: int, every_s: float, rate: float,
                      progress: Callable[[range], Any] = iter, settle_s: float = 90.0) -> Tally:
    """Flood `devices` at `rate` msg/s, inject `fault` `times` times `every_s` apart, then
    count what the devices had acknowledged against what is stored."""
    rss = RssSampler(w)
    flood = Flood(mosq, devices, rate)
    flood.start()
    try:
        for _ in progress(range(times)):
            time.sleep(every_s)
            fault()
        time.sleep(every_s)
    finally:
        flood.stop()
    t = tally(dsn, flood, [w], 0.0, settle_s=settle_s)
    t.max_rss_mb = rss.stop()
    return t
