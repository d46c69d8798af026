"""Ingest throughput: MQTT QoS 1 flood → Mosquitto → consumer → PostgreSQL commit.

Run from the repository root:  .venv/bin/python bench/bench_ingest.py [--quick]

Starts a private Mosquitto (generated config: per-device credentials and ACL, no anonymous
access) and a scratch database on the PostgreSQL at AFTERCARE_TEST_ADMIN_DSN (default
postgresql://postgres@127.0.0.1:5432/postgres, migrated with the native backend); both are
removed on exit, Ctrl-C included.

Publisher: the C client. Payloads are pre-generated, one file per device (``mosquitto_pub -l``
publishes to one topic per process), and a pool of concurrent ``mosquitto_pub -q 1 -l``
processes, each logged in as its own device, floods them; no connection comes near the
65,535 message-id wrap. Every consumer is subscribed before the flood starts, and a rate is
messages / (first publish → last message counted or committed).

Phases: publisher alone (no subscriber), (a) ``mosquitto_sub`` (C ceiling), (b) bare paho
subscriber that only counts, (c) naive bridge (one autocommit INSERT per reading), (d) one
``aftercare ingest`` worker, (e) two workers on the shared subscription, (f) gateway batch
payloads (100 readings of 8 metrics per message) into one worker, and (f1) the same writing
each batch on one database connection instead of in pieces on two (the baseline of f).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

import numpy as np
import orjson
import psycopg
from tqdm import tqdm

from aftercare import broker, store

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-ingest-secret"  # noqa: S105 - a throwaway broker's secret
ADMIN_DSN = os.environ.get("AFTERCARE_TEST_ADMIN_DSN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
METRICS = ("temperature_c", "vibration_rms_mm_s", "pressure_bar", "flow_m3h", "current_a",
           "voltage_v", "speed_rpm", "load_pct")
BASE = (65.0, 2.5, 4.2, 30.0, 12.0, 400.0, 1480.0, 60.0)
CLK_TCK = os.sysconf("SC_CLK_TCK")
STALL_S = 30.0  # no progress for this long after the publishers finished: give up

_procs: list[subprocess.Popen[Any]] = []  # every child we started, stopped on exit


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# -- payloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flood:
    """One pre-generated flood: a payload file per device."""

    directory: Path
    devices: list[str]
    messages: int
    values: int


def make_flood(directory: Path, devices: Sequence[str], per_device: int, readings_per_msg: int,
               t0: datetime, rng: np.random.Generator, n_metrics: int = 8) -> Flood:
    """Files of realistic contract payloads: `n_metrics` (≤ 8) metrics per reading, RFC 3339
    timestamps."""
    metrics, base = METRICS[:n_metrics], BASE[:n_metrics]
    directory.mkdir(parents=True)
    values = 0
    for d in devices:
        n = per_device * readings_per_msg
        walk = np.asarray(base) * (1 + 0.002 * rng.standard_normal((n, len(metrics))).cumsum(0))
        walk = walk.round(3)
        lines = []
        for m in range(per_device):
            objs = []
            for r in range(readings_per_msg):
                k = m * readings_per_msg + r
                ts = (t0 + timedelta(seconds=k)).isoformat(timespec="milliseconds")
                objs.append({"ts": ts.replace("+00:00", "Z"), "seq": k,
                             "metrics": dict(zip(metrics, walk[k].tolist(), strict=True))})
            doc = objs[0] if readings_per_msg == 1 else {"readings": objs}
            lines.append(orjson.dumps(doc))
            values += readings_per_msg * len(metrics)
        (directory / d).write_bytes(b"\n".join(lines) + b"\n")
    return Flood(directory, list(devices), per_device * len(devices), values)


def receive_path_cpu(devices: Sequence[str], per_device: int, n_metrics: int,
                     rounds: int = 3) -> str:
    """CPU µs per message of the worker's own work on the receive path, in this process, no
    broker, no database (so no other process's load in the figure, unlike the rates): spool
    append + fsync in chunks as the spooler does, and ``decode_batch`` over batches as the
    writer does. Best of `rounds` (each round decodes every message once)."""
    from ingest.spool import Spool
    from ingest.worker import DeviceRateLimit, decode_batch

    rng = np.random.default_rng(7)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-cpu-") as tmp:
        flood = make_flood(Path(tmp) / "flood", devices, per_device, 1, t0, rng, n_metrics)
        items = [(f"devices/{d}/telemetry", line, 0) for d in flood.devices
                 for line in (flood.directory / d).read_bytes().splitlines()]
        n = len(items)
        spool_s, decode_s = [], []
        for r in range(rounds):
            with Spool(Path(tmp) / f"spool{r}") as sp:
                c0 = time.process_time()
                for i in range(0, n, 500):  # ~what arrives during one fsync at 10 k msg/s
                    sp.append_many(items[i:i + 500])
                    sp.sync()
                spool_s.append(time.process_time() - c0)
                records: list[Any] = []
                pos = sp.committed
                while len(records) < n:  # from memory while it lasts, then from disk
                    more, pos = sp.read(pos, max_records=n - len(records))
                    records += more
            # The worker's default: a per-device rate limit (INGEST_DEVICE_MAX_READINGS_PER_S).
            limit = DeviceRateLimit(per_s=1000, burst=1000 * 21_600)
            c0 = time.process_time()
            for i in range(0, n, 5000):
                batch = decode_batch(records[i:i + 5000], max_future_s=300, rate_limit=limit)
                assert len(batch.metric) == min(5000, n - i) * n_metrics, len(batch.metric)
            decode_s.append(time.process_time() - c0)
    return (f"receive path CPU per message ({n:,} messages, {n_metrics} metric(s) each, best of "
            f"{rounds}): spool append + fsync {min(spool_s) / n * 1e6:.1f} µs, decode_batch "
            f"{min(decode_s) / n * 1e6:.1f} µs")


# -- processes ------------------------------------------------------------------------------


def spawn(cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
    proc = subprocess.Popen(cmd, **kw)
    _procs.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _procs:
        _procs.remove(proc)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state, ppid, ...; utime is [11]),
    or None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = proc_stat(pid)
    if fields is None:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Publisher:
    """A pool of concurrent ``mosquitto_pub -l`` processes, one per device file."""

    def __init__(self, port: int, flood: Flood, concurrency: int) -> None:
        self.port = port
        self.flood = flood
        self.concurrency = concurrency
        self.started = 0.0
        self.finished = 0.0
        self.failed: list[str] = []
        self.cpu_s = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        pending = list(self.flood.devices)
        running: dict[subprocess.Popen[Any], str] = {}
        usage0 = os.times()
        while (pending or running) and not self._stop.is_set():
            while pending and len(running) < self.concurrency:
                d = pending.pop(0)
                with open(self.flood.directory / d, "rb") as f:
                    p = spawn(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port),
                               "-i", d, "-u", d, "-P", broker.device_password(SECRET, d),
                               "-q", "1", "-M", "100", "-t", f"devices/{d}/telemetry", "-l"],
                              stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                running[p] = d
            for p in list(running):
                if p.poll() is not None:
                    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
                    if p.returncode != 0:
                        self.failed.append(f"{running[p]}: rc {p.returncode} {err.strip()}")
                    if p.stderr:
                        p.stderr.close()
                    del running[p]
                    _procs.remove(p)
            time.sleep(0.002)
        usage1 = os.times()
        self.cpu_s = (usage1.children_user - usage0.children_user
                      + usage1.children_system - usage0.children_system)
        self.finished = time.monotonic()

    def join(self) -> None:
        self._thread.join()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def rate(self) -> float:
        return self.flood.messages / max(self.finished - self.started, 1e-9)


# -- measurement ----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    messages: int
    values: int
    counted: int = 0
    wall_s: float = float("nan")
    steady_msgs_s: float = float("nan")
    pub_msgs_s: float = float("nan")
    consumer_cpu_s: float = float("nan")
    consumer_rss_mb: float = float("nan")
    broker_cpu_s: float = float("nan")
    load: float = field(default_factory=lambda: os.getloadavg()[0])
    note: str = ""

    @property
    def msgs_s(self) -> float:
        return self.counted / self.wall_s

    @property
    def values_s(self) -> float:
        return self.msgs_s * self.values / self.messages


def steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Messages/s between 10 % and 90 % of the flood (interpolated progress samples)."""
    if len(samples) < 3 or samples[-1][1] < total * 0.9:
        return float("nan")
    t = np.array([s[0] for s in samples])
    n = np.array([s[1] for s in samples], dtype=float)
    n, idx = np.unique(n, return_index=True)
    t = t[idx]
    lo, hi = np.interp([total * 0.1, total * 0.9], n, t)
    return total * 0.8 / (hi - lo) if hi > lo else float("nan")


def measure(name: str, flood: Flood, port: int, broker_pid: int, concurrency: int,
            progress: Callable[[], int] | None, consumer_pids: Callable[[], list[int]],
            finished_at: Callable[[], float | None] | None = None) -> Result:
    """Start the flood, follow the consumer's progress until it has every message."""
    res = Result(name, flood.messages, flood.values)
    pub = Publisher(port, flood, concurrency)
    pids = consumer_pids()
    cpu0 = [cpu_s(p) for p in pids]
    bcpu0 = cpu_s(broker_pid)
    samples: list[tuple[float, int]] = []
    last_change = time.monotonic()
    pub.start()
    try:
        with tqdm(total=flood.messages, desc=name, unit="msg", unit_scale=True, leave=False,
                  mininterval=0.5, smoothing=0.1) as bar:
            while True:
                if progress is None:  # publisher alone: done when every PUBACK is in
                    pub.join()
                    samples.append((pub.finished, flood.messages))
                    break
                n = progress()
                now = time.monotonic()
                if n > (samples[-1][1] if samples else 0):
                    last_change = now
                    bar.update(n - bar.n)
                samples.append((now, n))
                if n >= flood.messages:
                    break
                if pub.done and now - last_change > STALL_S:
                    res.note = f"stalled at {n}/{flood.messages}"
                    break
                time.sleep(0.1)
        end = finished_at() if finished_at else None
        end = end or samples[-1][0]
        res.counted = samples[-1][1]
        res.wall_s = end - pub.started
        res.steady_msgs_s = steady_rate(samples, flood.messages)
        res.consumer_cpu_s = sum(cpu_s(p) - c for p, c in zip(pids, cpu0, strict=True))
        res.consumer_rss_mb = sum(peak_rss_mb(p) for p in pids)
        res.broker_cpu_s = cpu_s(broker_pid) - bcpu0
        pub.join()
        res.pub_msgs_s = pub.rate
        if pub.failed:
            res.note += f" {len(pub.failed)} publishers failed, e.g. {pub.failed[0]}"
    finally:
        pub.close()
    tqdm.write(f"  {name}: {res.counted:,} msgs in {res.wall_s:.2f} s = {res.msgs_s:,.0f} msgs/s, "
               f"{res.values_s:,.0f} values/s (steady {res.steady_msgs_s:,.0f} msgs/s; "
               f"publisher {res.pub_msgs_s:,.0f} msgs/s; consumer CPU {res.consumer_cpu_s:.1f} s, "
               f"peak RSS {res.consumer_rss_mb:.0f} MB; broker CPU {res.broker_cpu_s:.1f} s; "
               f"load {res.load:.1f}) {res.note}")
    return res


class LineReader:
    """Follows a helper's stdout protocol lines in a thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.count = 0
        self.done: list[str] | None = None
        self.ready = threading.Event()
        self.errors: list[str] = []
        self._stream = stream
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for raw in self._stream:
            parts = raw.decode().split()
            if not parts:
                continue
            if parts[0] == "ready":
                self.ready.set()
            elif parts[0] == "p":
                self.count = int(parts[1])
            elif parts[0] == "done":
                self.done = parts
                self.count = int(parts[1])
            else:
                self.errors.append(raw.decode())
                self.ready.set()


class NewlineCounter:
    """Counts the lines ``mosquitto_sub`` prints (one per message); notes when it exits."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.count = 0
        self.eof_at: float | None = None
        self._stream = stream
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        fd = self._stream.fileno()
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.eof_at = time.monotonic()
                return
            self.count += chunk.count(b"\n")


# -- phases ---------------------------------------------------------------------------------


@dataclass
class Env:
    port: int
    broker_pid: int
    dsn: str
    ingest_url: str
    workdir: Path
    concurrency: int


# A write-heavy server as docs/scaling.md sizes one (`--private-pg`): WAL buffers and
# checkpoints that a sustained COPY does not wait on. The durability settings are the defaults.
WRITE_HEAVY_PG = {"shared_buffers": "1GB", "wal_buffers": "64MB", "max_wal_size": "8GB",
                  "checkpoint_timeout": "30min"}


def start_env(stack: ExitStack, workdir: Path, devices: Sequence[str], t0: datetime, db: str,
              concurrency: int, admin_dsn: str = ADMIN_DSN) -> Env:
    """A scratch database `db` (native backend, partitions for `t0` and the day after) on the
    server of `admin_dsn` and a private Mosquitto with a login for each of `devices`, both
    removed when `stack` closes."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')

    def drop_db() -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    stack.callback(drop_db)
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + db
    with psycopg.connect(dsn) as conn:
        store.migrate(conn, requested_backend="native")
        conn.execute("SELECT telemetry_ensure_partitions(%s, %s)", (t0, t0 + timedelta(days=1)))
        conn.commit()

    files = broker.write_broker_files(
        workdir / "mosquitto", port=broker.free_port(),
        users=broker.default_users(SECRET, devices), max_queued_messages=10_000_000,
        persistence=False)
    mosq = stack.enter_context(broker.run_mosquitto(files))
    ingest_url = (f"mqtt://{broker.INGEST_USER}:"
                  f"{broker.service_password(SECRET, broker.INGEST_USER)}"
                  f"@127.0.0.1:{files.port}")
    return Env(files.port, mosq.pid, dsn, ingest_url, workdir, concurrency)


def reset_store(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE telemetry, telemetry_invalidations")


def stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry").fetchone()
    return int(row[0]) if row else 0


def phase_publisher_alone(env: Env, flood: Flood) -> Result:
    return measure("publisher alone", flood, env.port, env.broker_pid, env.concurrency,
                   progress=None, consumer_pids=list)


def phase_mosquitto_sub(env: Env, flood: Flood) -> Result:
    group = f"b{uuid.uuid4().hex[:6]}"
    ep_user, ep_pw = broker.INGEST_USER, broker.service_password(SECRET, broker.INGEST_USER)
    proc = spawn(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(env.port), "-V", "mqttv5",
                  "-u", ep_user, "-P", ep_pw, "-q", "1", "-C", str(flood.messages),
                  "-F", ".", "-t", f"$share/{group}/devices/+/telemetry"],
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    counter = NewlineCounter(proc.stdout)
    time.sleep(1.0)  # no "ready" signal from mosquitto_sub: give it time to subscribe
    try:
        return measure("(a) mosquitto_sub", flood, env.port, env.broker_pid, env.concurrency,
                       progress=lambda: counter.count, consumer_pids=lambda: [proc.pid],
                       finished_at=lambda: counter.eof_at)
    finally:
        stop(proc)


def _helper(env: Env, mode: str, flood: Flood, name: str) -> Result:
    group = f"b{uuid.uuid4().hex[:6]}"
    proc = spawn([sys.executable, str(ROOT / "bench" / "_ingest_sub.py"), "--mode", mode,
                  "--url", env.ingest_url, "--topic", f"$share/{group}/devices/+/telemetry",
                  "--expect", str(flood.messages), "--dsn", env.dsn],
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    reader = LineReader(proc.stdout)
    try:
        if not reader.ready.wait(30) or reader.errors:
            raise RuntimeError(f"{name}: subscriber not ready {reader.errors}")
        # RSS is read while the helper waits on stdin after "done".
        return measure(name, flood, env.port, env.broker_pid, env.concurrency,
                       progress=lambda: reader.count, consumer_pids=lambda: [proc.pid],
                       finished_at=lambda: float(reader.done[3]) if reader.done else None)
    finally:
        stop(proc)


def phase_paho(env: Env, flood: Flood) -> Result:
    return _helper(env, "count", flood, "(b) bare paho")


def phase_naive(env: Env, flood: Flood) -> Result:
    reset_store(env.dsn)
    res = _helper(env, "naive", flood, "(c) naive bridge")
    rows = stored(env.dsn)
    if rows != flood.values:
        res.note += f" stored {rows} of {flood.values} values"
    return res


@contextmanager
def workers(env: Env, n: int, extra: Sequence[str] = ()) -> Iterator[list[tuple[Any, int]]]:
    group = f"b{uuid.uuid4().hex[:6]}"
    started = []
    try:
        for i in range(n):
            mport = broker.free_port()
            log = env.workdir / f"worker-{group}-{i}.log"
            proc = spawn([sys.executable, "-m", "aftercare_cli", "ingest",
                          "--client-id", f"bench-ingest-{group}-{i}", "--share-group", group,
                          "--spool-dir", str(env.workdir / f"spool-{group}-{i}"),
                          # Several workers split the load only through $share (opt-in:
                          # Mosquitto 2.0 loses it across broker restarts; see README).
                          *(["--share"] if n > 1 else []),
                          "--metrics-port", str(mport), "--session-expiry-s", "0", *extra],
                         env={**os.environ, "DATABASE_URL": env.dsn, "MQTT_URL": env.ingest_url},
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))  # noqa: SIM115
            started.append((proc, mport, log))
        deadline = time.monotonic() + 30
        for proc, _, log in started:
            while "connected to" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
        time.sleep(0.5)  # SUBACK before the flood
        yield [(proc, mport) for proc, mport, _ in started]
    finally:
        for proc, _, log in started:
            stop(proc, 30)
            if proc.returncode not in (0, -signal.SIGTERM):
                tqdm.write(f"worker exit {proc.returncode}:\n{log.read_text()[-2000:]}")


_COUNTER = re.compile(rb"^aftercare_ingest_messages_total ([0-9.e+]+)$", re.M)


def scrape(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:  # noqa: S310
            m = _COUNTER.search(r.read())
    except OSError:
        return 0
    return int(float(m.group(1))) if m else 0


def phase_workers(env: Env, flood: Flood, n: int, name: str,
                  extra: Sequence[str] = ()) -> Result:
    reset_store(env.dsn)
    with workers(env, n, extra) as ws:
        res = measure(name, flood, env.port, env.broker_pid, env.concurrency,
                      progress=lambda: sum(scrape(p) for _, p in ws),
                      consumer_pids=lambda: [proc.pid for proc, _ in ws])
        if n > 1:
            shares = [scrape(p) for _, p in ws]
            res.note += " split " + "/".join(f"{s:,}" for s in shares)
    rows = stored(env.dsn)
    if rows != flood.values:
        res.note += f" STORED {rows} OF {flood.values} VALUES"
    return res


# -- main -----------------------------------------------------------------------------------


def fmt(x: float, scale: float = 1.0, digits: int = 0) -> str:
    return "n/a" if x != x else f"{x / scale:,.{digits}f}"


def table(results: list[Result]) -> str:
    head = ("| phase | messages | msgs/s | values/s | steady msgs/s | publisher msgs/s "
            "| consumer CPU s (% of wall) | peak RSS MB | broker CPU % | load | note |")
    rows = [head, "|" + "---|" * 11]
    for r in results:
        if r.name == "publisher alone":
            rows.append(f"| {r.name} | {r.messages:,} | | | | {fmt(r.pub_msgs_s)} | | | "
                        f"{fmt(100 * r.broker_cpu_s / r.wall_s)} | {r.load:.1f} | |")
            continue
        rows.append(
            f"| {r.name} | {r.counted:,} | {fmt(r.msgs_s)} | {fmt(r.values_s)} "
            f"| {fmt(r.steady_msgs_s)} | {fmt(r.pub_msgs_s)} "
            f"| {r.consumer_cpu_s:.1f} ({fmt(100 * r.consumer_cpu_s / r.wall_s)} %) "
            f"| {fmt(r.consumer_rss_mb)} | {fmt(100 * r.broker_cpu_s / r.wall_s)} "
            f"| {r.load:.1f} | {r.note.strip()} |")
    return "\n".join(rows)


def ratios(by: dict[str, Result]) -> list[str]:
    out = []

    def ratio(a: str, b: str, label: str, target: str, attr: str = "msgs_s") -> None:
        if a in by and b in by:
            out.append(f"{label}: {getattr(by[a], attr) / getattr(by[b], attr):.2f} ({target})")

    ratio("(d) 1 worker", "(b) bare paho", "worker / bare paho", "target >= 0.8")
    ratio("(d) 1 worker", "(c) naive bridge", "worker / naive bridge", "target >= 20")
    ratio("(e) 2 workers", "(a) mosquitto_sub", "2 workers / C ceiling", "reported")
    ratio("(e) 2 workers", "(d) 1 worker", "2 workers / 1 worker", "reported")
    if "(f) gateway, 1 worker" in by:
        out.append(f"gateway values/s: {by['(f) gateway, 1 worker'].values_s:,.0f} "
                   "(target >= 500,000)")
    ratio("(f) gateway, 1 worker", "(f1) gateway, 1 worker, 1 connection",
          "gateway, pieces on 2 connections / 1 connection", "reported", "values_s")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a small run (seconds): smoke check")
    p.add_argument("--gateway-per-device", type=int, default=10,
                   help="gateway payloads (100 readings each) per device, 200 devices (f)")
    p.add_argument("--devices", type=int)
    p.add_argument("--per-device", type=int, help="messages per device in the main flood")
    p.add_argument("--concurrency", type=int, default=64, help="mosquitto_pub processes at once")
    p.add_argument("--metrics", type=int, default=8, choices=range(1, 9), metavar="1..8",
                   help="metrics per reading in the main flood (1: one reading per message, as "
                        "ESPHome-style devices and many PLC gateways publish)")
    p.add_argument("--only", default="", help="comma-separated phases: pub,a,b,c,d,e,f1,f,d500")
    p.add_argument("--private-pg", action="store_true",
                   help="run on a private PostgreSQL set up for sustained writes "
                        "(WRITE_HEAVY_PG) instead of the server at AFTERCARE_TEST_ADMIN_DSN")
    p.add_argument("--cpu-path", action="store_true",
                   help="only the worker's own CPU per message on the receive path (spool, "
                        "decode), in process: no broker, no database")
    args = p.parse_args(argv)
    if args.cpu_path:
        print(receive_path_cpu([f"bench-{i:04d}" for i in range(args.devices or 500)],
                               args.per_device or 200, args.metrics), flush=True)
        return 0
    quick = args.quick
    n_dev = args.devices or (100 if quick else 1000)
    per = args.per_device or (20 if quick else 200)
    naive_per = 3 if quick else 4
    gw_dev, gw_per = (20, 5) if quick else (200, args.gateway_per_device)
    only = set(args.only.split(",")) if args.only else {
        "pub", "a", "b", "c", "d", "d500", "e", "f1", "f"}

    signal.signal(signal.SIGTERM, _on_sigterm)
    devices = [f"bench-{i:04d}" for i in range(n_dev)]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    db = f"aftercare_bench_ingest_{uuid.uuid4().hex[:8]}"
    results: list[Result] = []
    started = datetime.now(UTC)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        stack.callback(shutil.rmtree, workdir, True)
        try:
            rng = np.random.default_rng(7)
            tg = time.perf_counter()
            main_flood = make_flood(workdir / "main", devices, per, 1, t0, rng, args.metrics)
            naive_flood = make_flood(workdir / "naive", devices, naive_per, 1, t0, rng)
            gw_flood = make_flood(workdir / "gateway", devices[:gw_dev], gw_per, 100, t0, rng)
            print(f"payloads generated in {time.perf_counter() - tg:.1f} s: main "
                  f"{main_flood.messages:,} msgs ({n_dev} devices x {per}, "
                  f"{args.metrics} metrics), "
                  f"naive {naive_flood.messages:,}, gateway {gw_flood.messages:,} msgs x 100 "
                  f"readings; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

            admin_dsn = ADMIN_DSN
            if args.private_pg:
                sys.path.insert(0, str(ROOT))
                from tests.ingest.chaos import private_postgres

                pg = stack.enter_context(private_postgres(workdir / "pg", WRITE_HEAVY_PG))
                admin_dsn = pg.admin_dsn
                print("private PostgreSQL (initdb), " + ", ".join(
                    f"{k} = {v}" for k, v in WRITE_HEAVY_PG.items()))
            env = start_env(stack, workdir, devices, t0, db, args.concurrency, admin_dsn)

            phases: list[tuple[str, Callable[[], Result]]] = [
                ("pub", lambda: phase_publisher_alone(env, main_flood)),
                ("a", lambda: phase_mosquitto_sub(env, main_flood)),
                ("b", lambda: phase_paho(env, main_flood)),
                ("c", lambda: phase_naive(env, naive_flood)),
                ("d", lambda: phase_workers(env, main_flood, 1, "(d) 1 worker")),
                ("d500", lambda: phase_workers(env, main_flood, 1, "(d') 1 worker, batch 500",
                                               ["--batch-size", "500"])),
                ("e", lambda: phase_workers(env, main_flood, 2, "(e) 2 workers")),
                ("f1", lambda: phase_workers(env, gw_flood, 1,
                                             "(f1) gateway, 1 worker, 1 connection",
                                             ["--copy-connections", "1"])),
                ("f", lambda: phase_workers(env, gw_flood, 1, "(f) gateway, 1 worker")),
            ]
            for key, run in phases:
                if key in only:
                    results.append(run())
        except KeyboardInterrupt:
            print("\ninterrupted: cleaning up", file=sys.stderr)
            return 130
        finally:
            for proc in list(_procs):
                stop(proc, 5)
    print(f"\nbench_ingest {'--quick ' if quick else ''}{started:%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, load now {os.getloadavg()[0]:.1f}\n")
    print(table(results))
    print()
    for line in ratios({r.name: r for r in results}):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
