"""A device fleet in real time: N devices at R Hz, one reading per message, into the store.

Run from the repository root:  .venv/bin/python bench/bench_fleet.py [--quick]
(a full run takes minutes of both cores: wrap it in ``flock /tmp/aftercare-bench.lock``).

Issue 19's open measurement: can one machine take a 10 k-device fleet at 1 Hz, one metric per
message, in real time, with how many ``aftercare ingest`` workers, at what CPU?

The private Mosquitto (a login per device, the generated ACL) and the scratch database (native
backend) are bench_ingest's (:func:`bench.bench_ingest.start_env`), and so are the workers
(:func:`bench.bench_ingest.workers`: one, or several on a shared subscription). The devices are
registered in the store before the first phase, as in a deployment that has seen them before.

Publisher: every device has its own MQTT 3.1.1 connection, logged in with its own credentials
(clean session, keep-alive 60 s), opened before the measurement and kept across phases. The
connections live in one or a few child processes (``--publishers``) that hand-encode CONNECT,
PUBLISH (QoS 1) and PINGREQ packets over non-blocking sockets (``selectors``) and count the
4-byte PUBACKs, checking each one acknowledges the oldest packet id in flight on its
connection (ids 1..65,535, wrapped). paho's publisher tops out near 7.8 k msgs/s on a core
(MEASURED.md); this one costs ~20 µs of CPU per message at 10 k/s, half of it the kernel's
loopback TCP (its system time is reported apart).
Reading k of device g is due at t0 + (k·N + g) / (N·R): the devices' send times are spread
evenly over each period, and a reading's ``ts`` is its due time (ms), so the end-to-end lag
below includes any lateness of the publisher (reported on its own).

Contract payload, one per message, on ``devices/{id}/telemetry``:
``{"ts": "<RFC 3339 ms Z>", "seq": k, "metrics": {"temperature_c": 71.2}}``.

Measured per phase (1 worker, 2 workers, ...; ``--workers 2,1`` alternates the order):

- committed readings/s over the steady part (the first ``warm`` seconds left out) against the
  offered N·R, from the workers' ``aftercare_ingest_messages_total``;
- the backlog at the end: from the last reading's due time until every reading is committed;
- end-to-end lag, due ``ts`` → commit, p50/p99/max, on a sample of devices (every
  N/1000-th): the store is polled every 0.2 s for their new rows through the unique index, and
  a row's commit time is taken as the middle between the poll that first saw it and the one
  before (resolution ±0.1 s);
- CPU over the steady part as % of one core (``/proc``): each worker, Mosquitto, the publisher
  processes, PostgreSQL (every server process, including ones that exited, via the
  postmaster's children times; and the share of this database's client backends), the bench
  process with its poll backend, whole-machine idle (``/proc/stat``) and "other": busy time
  none of those accounts for (other users' work on a shared machine);
- exactly once: rows stored = N·R·D, every device R·D rows, no rejects (said loudly if not).

"Keeps up" = every reading stored, committed ≥ 98 % of offered over the steady part, and at
most 5 s from the last reading's due time until all is committed.

Nothing here asserts a time: it prints figures and a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import selectors
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aftercare import broker  # noqa: E402
from bench.bench_ingest import (  # noqa: E402
    CLK_TCK,
    SECRET,
    Env,
    _on_sigterm,
    _procs,
    cpu_s,
    fmt,
    proc_stat,
    reset_store,
    scrape,
    start_env,
    stop,
    stored,
    workers,
)

METRIC = "temperature_c"
KEEPALIVE_S = 60
CONNECTS_IN_FLIGHT = 200  # Mosquitto's listen backlog is 100: more SYNs at once get dropped
POLL_S = 0.2
STALL_S = 30.0  # no commit for this long after the last publish: give up waiting
ACK_WAIT_S = 30.0  # after the last publish, how long a publisher waits for its PUBACKs
LAG_SAMPLE = 1000  # devices whose every reading's lag is measured


def device_name(g: int) -> str:
    return f"fleet-{g:05d}"


def due_ms(t0_ms: int, j: int | np.ndarray, ms_per_send: float) -> Any:
    """Due time (epoch ms) of the j-th send of the whole fleet (j = k·N + g); the publisher
    and the lag measurement use this one formula, so they agree to the millisecond."""
    if isinstance(j, np.ndarray):
        return t0_ms + (j * ms_per_send).astype(np.int64)
    return t0_ms + int(j * ms_per_send)


# -- MQTT 3.1.1, by hand ---------------------------------------------------------------------


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id: str, user: str, password: str) -> bytes:
    # Protocol "MQTT" level 4; flags: user name, password, clean session.
    body = (_utf8("MQTT") + b"\x04\xc2" + KEEPALIVE_S.to_bytes(2, "big")
            + _utf8(client_id) + _utf8(user) + _utf8(password))
    return b"\x10" + _remaining_length(len(body)) + body


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


# -- publisher child process -----------------------------------------------------------------


@dataclass
class PubStats:
    """What one publisher process did in one run (summed across processes by :meth:`add`)."""

    sent: int = 0
    acked: int = 0
    unexpected_acks: int = 0
    not_sent: int = 0  # 65,535 packets in flight on a connection: none may be reused
    lost: int = 0  # connections closed under us
    sent_per_s: list[int] = field(default_factory=list)
    late_ms_hist: list[int] = field(default_factory=list)  # lateness against the due time
    last_send: float = 0.0
    all_acked_at: float = float("nan")

    def add(self, o: PubStats) -> None:
        self.sent += o.sent
        self.acked += o.acked
        self.unexpected_acks += o.unexpected_acks
        self.not_sent += o.not_sent
        self.lost += o.lost
        n = max(len(self.sent_per_s), len(o.sent_per_s))
        self.sent_per_s = [a + b for a, b in zip(self.sent_per_s + [0] * (n - len(
            self.sent_per_s)), o.sent_per_s + [0] * (n - len(o.sent_per_s)), strict=True)]
        if not self.late_ms_hist:
            self.late_ms_hist = [0] * len(o.late_ms_hist)
        self.late_ms_hist = [a + b for a, b in zip(self.late_ms_hist, o.late_ms_hist,
                                                   strict=True)]
        self.last_send = max(self.last_send, o.last_send)
        self.all_acked_at = (o.all_acked_at if self.all_acked_at != self.all_acked_at
                             else max(self.all_acked_at, o.all_acked_at))

    def late_ms(self, q: float) -> float:
        h = np.asarray(self.late_ms_hist)
        if not h.sum():
            return float("nan")
        return float(np.searchsorted(np.cumsum(h), q * h.sum()))


class DeviceConnections:
    """The MQTT connections of one publisher process: device g for g ≡ index (mod of)."""

    def __init__(self, port: int, n_devices: int, index: int, of: int) -> None:
        self.port = port
        self.n = n_devices
        self.gs = list(range(index, n_devices, of))
        self.sel = selectors.DefaultSelector()
        self.socks: list[socket.socket | None] = [None] * len(self.gs)
        self.topic_hdr = [_utf8(f"devices/{device_name(g)}/telemetry") for g in self.gs]
        self.sent = [0] * len(self.gs)
        self.acked = [0] * len(self.gs)
        self.rbuf = [b""] * len(self.gs)
        self.wbuf = [b""] * len(self.gs)
        self.failures: list[str] = []
        self.stats = PubStats()
        self._last_ping = time.monotonic()

    # connecting

    def connect(self, timeout_s: float = 120.0) -> None:
        todo = list(range(len(self.gs)))
        todo.reverse()
        pending: dict[int, float] = {}
        sel = self.sel
        deadline = time.monotonic() + timeout_s
        while (todo or pending) and time.monotonic() < deadline:
            while todo and len(pending) < CONNECTS_IN_FLIGHT:
                i = todo.pop()
                s = socket.socket()
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.connect_ex(("127.0.0.1", self.port))
                self.socks[i] = s
                sel.register(s, selectors.EVENT_WRITE, i)
                pending[i] = time.monotonic()
            for key, ev in sel.select(0.5):
                i = key.data
                s = self.socks[i]
                assert s is not None
                name = device_name(self.gs[i])
                if ev & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self._fail(i, f"{name}: connect: {os.strerror(err)}")
                        del pending[i]
                        continue
                    s.send(connect_packet(name, name, broker.device_password(SECRET, name)))
                    sel.modify(s, selectors.EVENT_READ, i)
                    continue
                try:
                    data = s.recv(64)
                except OSError as exc:
                    data = f"{exc}".encode()
                del pending[i]
                if len(data) >= 4 and data[0] == 0x20 and data[3] == 0:
                    continue  # CONNACK, accepted
                self._fail(i, f"{name}: CONNACK {data[:8]!r}")
        for i in list(pending) + todo:
            self._fail(i, f"{device_name(self.gs[i])}: no CONNACK in {timeout_s:.0f} s")

    def _fail(self, i: int, why: str) -> None:
        s = self.socks[i]
        if s is not None:
            with suppress(KeyError, ValueError):
                self.sel.unregister(s)
            s.close()
        self.socks[i] = None
        self.failures.append(why)

    # running

    def _read(self, i: int) -> None:
        s = self.socks[i]
        assert s is not None
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.stats.lost += 1
            self._fail(i, f"{device_name(self.gs[i])}: connection closed by the broker")
            return
        if not self.rbuf[i] and len(data) == 4 and data[0] == 0x40:
            self._ack(i, data[2] << 8 | data[3])  # the usual case: one PUBACK
            return
        buf = self.rbuf[i] + data
        pos = 0
        while len(buf) - pos >= 2:
            length, mult, p = 0, 1, pos + 1
            while p < len(buf):
                length += (buf[p] & 0x7F) * mult
                mult *= 128
                p += 1
                if not buf[p - 1] & 0x80:
                    break
            else:
                break
            if len(buf) - p < length:
                break
            kind = buf[pos] >> 4
            if kind == 4 and length == 2:
                self._ack(i, buf[p] << 8 | buf[p + 1])
            elif kind != 13:  # PINGRESP needs nothing
                self.stats.unexpected_acks += 1
            pos = p + length
        self.rbuf[i] = buf[pos:]

    def _ack(self, i: int, packet_id: int) -> None:
        # Mosquitto acknowledges a connection's QoS 1 publishes in order.
        if packet_id != self.acked[i] % 65535 + 1 or self.acked[i] >= self.sent[i]:
            self.stats.unexpected_acks += 1
            return
        self.acked[i] += 1
        self.stats.acked += 1

    def _write(self, i: int, pkt: bytes) -> None:
        s = self.socks[i]
        assert s is not None
        if self.wbuf[i]:
            self.wbuf[i] += pkt
            return
        try:
            n = s.send(pkt)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.stats.lost += 1
            self._fail(i, f"{device_name(self.gs[i])}: send failed")
            return
        if n < len(pkt):
            self.wbuf[i] = pkt[n:]
            self.sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE, i)

    def _flush(self, i: int) -> None:
        s = self.socks[i]
        assert s is not None
        try:
            n = s.send(self.wbuf[i])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.stats.lost += 1
            self._fail(i, f"{device_name(self.gs[i])}: send failed")
            return
        self.wbuf[i] = self.wbuf[i][n:]
        if not self.wbuf[i]:
            self.sel.modify(s, selectors.EVENT_READ, i)

    def _events(self, timeout_s: float) -> None:
        for key, ev in self.sel.select(timeout_s):
            i = key.data
            if i is None:
                continue  # the command pipe
            if ev & selectors.EVENT_WRITE and self.socks[i] is not None:
                self._flush(i)
            if ev & selectors.EVENT_READ and self.socks[i] is not None:
                self._read(i)

    def idle(self, cmd: Connection) -> None:
        """Keep the connections alive (PINGREQ) until a command arrives."""
        while not cmd.poll(0):
            if time.monotonic() - self._last_ping > KEEPALIVE_S / 2:
                for i, s in enumerate(self.socks):
                    if s is not None:
                        self._write(i, PINGREQ)
                self._last_ping = time.monotonic()
            self._events(1.0)

    def run(self, t0_ms: int, rate_hz: float, duration_s: float) -> PubStats:
        """Publish every reading due in [t0, t0 + duration) at its due time."""
        self.stats = st = PubStats(sent_per_s=[0] * (int(duration_s) + 2),
                                   late_ms_hist=[0] * 10_001)
        n, gs, nl = self.n, self.gs, len(self.gs)
        per_device = round(rate_hz * duration_s)
        total = per_device * nl
        ms_per_send = 1000.0 / (n * rate_hz)
        rng = np.random.default_rng(7)
        values = [b"%.1f" % v for v in 65.0 + 6.0 * rng.standard_normal(1024)]
        socks, topic_hdr, sent, acked = self.socks, self.topic_hdr, self.sent, self.acked
        sent_per_s, late = st.sent_per_s, st.late_ms_hist
        write = self._write
        ptr = 0
        sec = -1
        prefix = b""
        t0_s = t0_ms / 1000
        while ptr < total:
            now_ms = time.time() * 1000
            while ptr < total:
                k, i = divmod(ptr, nl)
                ts_ms = t0_ms + int((k * n + gs[i]) * ms_per_send)
                if ts_ms > now_ms:
                    break
                ptr += 1
                if socks[i] is None:
                    st.not_sent += 1
                    continue
                if sent[i] - acked[i] >= 65535:
                    st.not_sent += 1
                    continue
                if ts_ms // 1000 != sec:
                    sec = ts_ms // 1000
                    prefix = datetime.fromtimestamp(sec, UTC).strftime(
                        "%Y-%m-%dT%H:%M:%S").encode()
                payload = b'{"ts":"%s.%03dZ","seq":%d,"metrics":{"temperature_c":%s}}' % (
                    prefix, ts_ms % 1000, k, values[(i * 7 + k) & 1023])
                hdr = topic_hdr[i]
                body = len(hdr) + 2 + len(payload)
                rl = bytes((body,)) if body < 128 else bytes((body & 127 | 128, body >> 7))
                write(i, b"\x32" + rl + hdr + (sent[i] % 65535 + 1).to_bytes(2, "big")
                      + payload)
                sent[i] += 1
                st.sent += 1
                late[min(int(now_ms - ts_ms), 10_000)] += 1
                sent_per_s[min(int(now_ms / 1000 - t0_s), len(sent_per_s) - 1)] += 1
            if ptr < total:
                k, i = divmod(ptr, nl)
                wait_s = (t0_ms + int((k * n + gs[i]) * ms_per_send) - now_ms) / 1000
                self._events(min(max(wait_s, 0.0), 0.05))
            else:
                self._events(0)
        st.last_send = time.time()
        deadline = time.monotonic() + ACK_WAIT_S
        while st.acked < st.sent and time.monotonic() < deadline:
            self._events(0.05)
        if st.acked >= st.sent:
            st.all_acked_at = time.time()
        self._last_ping = time.monotonic()
        return st

    def close(self) -> None:
        for s in self.socks:
            if s is not None:
                with suppress(OSError):
                    s.send(DISCONNECT)
                s.close()


def publisher_main(cmd: Connection, port: int, n_devices: int, index: int, of: int) -> None:
    """Child process: connect this share of the fleet, then run each phase it is told to."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up
    conns = DeviceConnections(port, n_devices, index, of)
    t = time.monotonic()
    conns.connect()
    cmd.send(("connected", len(conns.gs) - len(conns.failures), conns.failures[:5],
              len(conns.failures), time.monotonic() - t))
    conns.sel.register(cmd.fileno(), selectors.EVENT_READ, None)
    while True:
        conns.idle(cmd)
        msg = cmd.recv()
        if msg[0] == "run":
            cmd.send(("done", conns.run(*msg[1:])))
        else:
            conns.close()
            return


class Fleet:
    """The publisher processes, as the parent sees them."""

    def __init__(self, port: int, n_devices: int, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for p in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=publisher_main, args=(child, port, n_devices, p, processes),
                               daemon=True, name=f"fleet-publisher-{p}")
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.connected = 0
        self.failures: list[str] = []
        self.connect_s = 0.0
        for pipe in self.pipes:
            if not pipe.poll(300):
                raise RuntimeError("a publisher process did not report its connections")
            _, ok, sample, n_failed, seconds = pipe.recv()
            self.connected += ok
            self.failures += [f"{n_failed} failed, e.g. {sample[0]}"] if n_failed else []
            self.connect_s = max(self.connect_s, seconds)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self, t0_ms: int, rate_hz: float, duration_s: float) -> None:
        for pipe in self.pipes:
            pipe.send(("run", t0_ms, rate_hz, duration_s))

    def results(self) -> PubStats:
        total = PubStats()
        for pipe in self.pipes:
            total.add(pipe.recv()[1])
        return total

    def close(self) -> None:
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            with suppress(OSError):
                pipe.send(("quit",))
            proc.join(10)
            if proc.is_alive():
                proc.terminate()


# -- CPU from /proc --------------------------------------------------------------------------


def postgres_cpu_s(postmaster: int) -> float:
    """CPU seconds of the whole PostgreSQL server: the postmaster, its live children, and the
    children it has reaped (a backend or autovacuum worker that exited is in its cutime)."""
    f = proc_stat(postmaster)
    if f is None:
        return float("nan")
    total = sum(int(x) for x in f[11:15]) / CLK_TCK
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            c = proc_stat(int(entry.name))
            if c is not None and int(c[1]) == postmaster:
                total += (int(c[11]) + int(c[12])) / CLK_TCK
    return total


def machine_jiffies() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return v[3] + v[4], sum(v[:8])


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    jiffies: tuple[int, int]
    committed: int


# -- one phase -------------------------------------------------------------------------------


@dataclass
class Phase:
    devices: int
    rate_hz: float
    duration_s: float
    n_workers: int
    connected: int = 0
    committed_s: float = float("nan")  # steady committed readings/s
    committed_per_s: tuple[float, float, float] = (float("nan"),) * 3
    backlog_s: float = float("nan")
    lag_s: tuple[float, float, float] = (float("nan"),) * 3
    lag_samples: int = 0
    lag_steady_p99_s: float = float("nan")  # readings due in the steady part only
    cpu_pct: dict[str, float] = field(default_factory=dict)
    idle_pct: float = float("nan")
    pub: PubStats = field(default_factory=PubStats)
    stored: int = 0
    load: tuple[float, float] = (float("nan"), float("nan"))
    note: str = ""

    @property
    def expected(self) -> int:
        return self.devices * round(self.rate_hz * self.duration_s)

    @property
    def pub_rates(self) -> tuple[float, float, float]:
        full = self.pub.sent_per_s[:int(self.duration_s)]
        if not full:
            return (float("nan"),) * 3
        return float(min(full)), float(statistics.median(full)), float(max(full))

    @property
    def keeps_up(self) -> bool:
        return (self.stored == self.expected and self.backlog_s <= 5.0
                and self.committed_s >= 0.98 * self.devices * self.rate_hz)


class LagPoll:
    """Commit times of a sample of devices' readings, from polling the store."""

    def __init__(self, dsn: str, ids: dict[int, int], metric_id: int, t0_ms: int,
                 n_devices: int, rate_hz: float, duration_s: float) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.backend_pid = int(self.conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        self.step = max(1, n_devices // LAG_SAMPLE)
        self.sample = list(range(0, n_devices, self.step))
        self.db_ids = [ids[g] for g in self.sample]
        self.g_of = {ids[g]: g for g in self.sample}
        self.metric_id = metric_id
        self.t0_ms = t0_ms
        self.n = n_devices
        self.per_device = round(rate_hz * duration_s)
        self.ms_per_send = 1000.0 / (n_devices * rate_hz)
        self.next_k = {d: 0 for d in self.db_ids}
        self.seen: set[tuple[int, int]] = set()
        self.lags: list[float] = []
        self.due_s: list[float] = []
        self.prev = time.time()

    def due(self, g: int, k: int) -> int:
        return int(due_ms(self.t0_ms, k * self.n + g, self.ms_per_send))

    def poll(self) -> None:
        open_ids = [d for d in self.db_ids if self.next_k[d] < self.per_device]
        if not open_ids:
            return
        lo = [datetime.fromtimestamp(self.due(self.g_of[d], self.next_k[d]) / 1000, UTC)
              for d in open_ids]
        started = time.time()
        rows = self.conn.execute(
            "SELECT t.device_id, (extract(epoch FROM t.time) * 1000)::int8 FROM telemetry t "
            "JOIN unnest(%s::int4[], %s::timestamptz[]) AS s(d, lo) "
            "ON t.device_id = s.d AND t.metric_id = %s AND t.time >= s.lo",
            (open_ids, lo, self.metric_id)).fetchall()
        commit_est = (self.prev + started) / 2
        self.prev = started
        for d, ts_ms in rows:
            if (d, ts_ms) in self.seen:
                continue
            self.seen.add((d, ts_ms))
            self.lags.append(commit_est - ts_ms / 1000)
            self.due_s.append(ts_ms / 1000)
        for d in open_ids:
            g, k = self.g_of[d], self.next_k[d]
            while k < self.per_device and (d, self.due(g, k)) in self.seen:
                k += 1
            self.next_k[d] = k

    def close(self) -> None:
        self.conn.close()


def snapshot(env: Env, ws: list[tuple[Any, int]], fleet: Fleet, postmaster: int, db: str,
             poll: LagPoll, committed: int) -> Snapshot:
    cpu = {f"worker {i + 1}": cpu_s(proc.pid) for i, (proc, _) in enumerate(ws)}
    cpu["Mosquitto"] = cpu_s(env.broker_pid)
    cpu["publisher"] = sum(cpu_s(p) for p in fleet.pids)
    cpu["publisher, system"] = sum(int(f[12]) / CLK_TCK for p in fleet.pids
                                   if (f := proc_stat(p)) is not None)
    cpu["PostgreSQL"] = postgres_cpu_s(postmaster)
    pids = [int(r[0]) for r in poll.conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (db,)).fetchall()]
    for pid in pids:
        cpu[f"db backend {pid}"] = cpu_s(pid)
    cpu["poll backend"] = cpu_s(poll.backend_pid)
    cpu["bench"] = time.process_time()
    return Snapshot(time.monotonic(), cpu, machine_jiffies(), committed)


def cpu_pct(a: Snapshot, b: Snapshot) -> dict[str, float]:
    wall = b.at - a.at
    out: dict[str, float] = {}
    backends = 0.0
    for key, v in b.cpu.items():
        if key.startswith("db backend "):
            backends += v - a.cpu.get(key, 0.0)  # one that started in the window: all of it
        elif key in a.cpu:
            out[key] = 100 * (v - a.cpu[key]) / wall
    out["PostgreSQL"] -= out["poll backend"]
    out["db backends"] = 100 * backends / wall  # this database's, the poll's left out
    out["bench"] += out.pop("poll backend")
    return out


def run_phase(env: Env, fleet: Fleet, db: str, ids: dict[int, int], metric_id: int,
              postmaster: int, n_devices: int, rate_hz: float, duration_s: float,
              n_workers: int, warm_s: float, extra: Sequence[str]) -> Phase:
    ph = Phase(n_devices, rate_hz, duration_s, n_workers, connected=fleet.connected)
    reset_store(env.dsn)
    load0 = os.getloadavg()[0]
    name = f"{n_devices:,} devices x {rate_hz:g} Hz, {n_workers} worker(s)"
    with workers(env, n_workers, extra) as ws:
        t0_ms = int(time.time() * 1000) + 1000
        poll = LagPoll(env.dsn, ids, metric_id, t0_ms, n_devices, rate_hz, duration_s)
        try:
            fleet.start(t0_ms, rate_hz, duration_s)
            t0 = t0_ms / 1000
            last_due = due_ms(t0_ms, ph.expected - 1, 1000.0 / (n_devices * rate_hz)) / 1000
            steady = (t0 + warm_s, t0 + duration_s)
            snaps: list[Snapshot] = []
            progress: list[tuple[float, int]] = []
            done_at = float("nan")
            last_change = time.time()
            with tqdm(total=ph.expected, desc=name, unit="reading", unit_scale=True,
                      leave=False, mininterval=0.5) as bar:
                while True:
                    time.sleep(POLL_S)
                    now = time.time()
                    n = sum(scrape(p) for _, p in ws)
                    if n > (progress[-1][1] if progress else 0):
                        last_change = now
                    progress.append((now, n))
                    bar.update(n - bar.n)
                    poll.poll()
                    if len(snaps) < len(steady) and now >= steady[len(snaps)]:
                        snaps.append(snapshot(env, ws, fleet, postmaster, db, poll, n))
                    if n >= ph.expected and len(snaps) == 2:
                        done_at = now
                        break
                    if now > last_due and now - last_change > STALL_S:
                        ph.note += f" STALLED at {n:,} of {ph.expected:,} readings;"
                        break
            for _ in range(int(2 / POLL_S)):  # the last sample rows, if the poll lags
                if len(poll.lags) >= len(poll.sample) * poll.per_device:
                    break
                poll.poll()
                time.sleep(POLL_S)
            if len(snaps) < 2:  # stalled before the end of the steady part
                snaps += [snapshot(env, ws, fleet, postmaster, db, poll, progress[-1][1])] * (
                    2 - len(snaps))
            ph.pub = fleet.results()
            ph.load = (load0, os.getloadavg()[0])
            a, b = snaps
            ph.cpu_pct = cpu_pct(a, b)
            ph.idle_pct = 100 * (b.jiffies[0] - a.jiffies[0]) / max(b.jiffies[1] - a.jiffies[1],
                                                                    1)
            # Busy time no process of ours accounts for: other users' work, interrupts.
            ours = sum(v for k, v in ph.cpu_pct.items()
                       if k.startswith("worker") or k in ("Mosquitto", "publisher",
                                                          "PostgreSQL", "bench"))
            ph.cpu_pct["other"] = (100 - ph.idle_pct) * (os.cpu_count() or 1) - ours
            ph.committed_s = (b.committed - a.committed) / (b.at - a.at)
            t = np.array([p[0] for p in progress])
            c = np.array([p[1] for p in progress], dtype=float)
            secs = np.arange(steady[0], steady[1] + 1e-9, 1.0)
            if len(secs) > 1:
                per_s = np.diff(np.interp(secs, t, c))
                ph.committed_per_s = (float(per_s.min()), float(np.median(per_s)),
                                      float(per_s.max()))
            ph.backlog_s = done_at - last_due
            if poll.lags:
                lags = np.array(poll.lags)
                ph.lag_s = (float(np.percentile(lags, 50)), float(np.percentile(lags, 99)),
                            float(lags.max()))
                in_steady = lags[np.asarray(poll.due_s) >= steady[0]]
                if len(in_steady):
                    ph.lag_steady_p99_s = float(np.percentile(in_steady, 99))
            ph.lag_samples = len(poll.lags)
            if n_workers > 1:
                ph.note += " split " + "/".join(f"{scrape(p):,}" for _, p in ws) + ";"
        finally:
            poll.close()
    ph.stored = stored(env.dsn)
    with psycopg.connect(env.dsn) as conn:
        off = conn.execute(
            "SELECT count(*) FROM devices d LEFT JOIN (SELECT device_id, count(*) AS n "
            "FROM telemetry GROUP BY 1) t ON t.device_id = d.id WHERE d.device_key LIKE "
            "'fleet-%%' AND d.id = ANY(%s) AND coalesce(t.n, 0) <> %s",
            (list(ids.values()), round(rate_hz * duration_s))).fetchone()
        rejects = conn.execute("SELECT count(*) FROM ingest_rejects").fetchone()
    if ph.stored != ph.expected:
        ph.note += (f" STORED {ph.stored:,} OF {ph.expected:,} READINGS "
                    f"({ph.stored - ph.expected:+,});")
    if off and off[0]:
        ph.note += f" {off[0]:,} DEVICES WITHOUT EXACTLY {round(rate_hz * duration_s)} ROWS;"
    if rejects and rejects[0]:
        ph.note += f" {rejects[0]:,} REJECTS;"
    p = ph.pub
    if p.acked != p.sent or p.not_sent or p.lost or p.unexpected_acks:
        ph.note += (f" PUBLISHER: sent {p.sent:,}, acked {p.acked:,}, not sent {p.not_sent:,},"
                    f" connections lost {p.lost}, unexpected acks {p.unexpected_acks};")
    tqdm.write(f"  {name}: {summary(ph)}")
    return ph


def summary(ph: Phase) -> str:
    lo, med, hi = ph.pub_rates
    cpu = ", ".join(f"{k} {v:.0f} %" for k, v in ph.cpu_pct.items())
    return (f"offered {ph.devices * ph.rate_hz:,.0f}/s, committed {ph.committed_s:,.0f}/s "
            f"steady (per second {ph.committed_per_s[0]:,.0f}/{ph.committed_per_s[1]:,.0f}/"
            f"{ph.committed_per_s[2]:,.0f}); published per second {lo:,.0f}/{med:,.0f}/{hi:,.0f}"
            f" (late p99 {ph.pub.late_ms(0.99):.0f} ms, max {ph.pub.late_ms(1.0):.0f} ms), "
            f"acked {ph.pub.acked:,}/{ph.pub.sent:,}; backlog after the last publish "
            f"{ph.backlog_s:.1f} s; lag p50/p99/max {ph.lag_s[0]:.2f}/{ph.lag_s[1]:.2f}/"
            f"{ph.lag_s[2]:.2f} s ({ph.lag_samples:,} readings; p99 of those due in the "
            f"steady part {ph.lag_steady_p99_s:.2f} s); stored {ph.stored:,} of "
            f"{ph.expected:,}; CPU {cpu}; machine idle {ph.idle_pct:.0f} %; load "
            f"{ph.load[0]:.1f}->{ph.load[1]:.1f}{ph.note}")


def table(phases: list[Phase]) -> str:
    head = ("| fleet | workers | offered/s | committed/s steady (per s min/med/max) "
            "| published per s min/med/max (late p99) | acked / sent | backlog after last "
            "publish s | lag p50 / p99 / max s (steady p99) | CPU % of a core: worker(s) "
            "| Mosquitto | PostgreSQL (this DB's backends) | publisher | other | machine idle % "
            "| load | stored = N·R·D | keeps up |")
    rows = [head, "|" + "---|" * 17]
    for ph in phases:
        c = ph.cpu_pct
        wk = " + ".join(fmt(c[f"worker {i + 1}"]) for i in range(ph.n_workers))
        lo, med, hi = ph.pub_rates
        cps = ph.committed_per_s
        rows.append(
            f"| {ph.devices:,} × {ph.rate_hz:g} Hz × {ph.duration_s:g} s | {ph.n_workers} "
            f"| {ph.devices * ph.rate_hz:,.0f} "
            f"| {fmt(ph.committed_s)} ({fmt(cps[0])}/{fmt(cps[1])}/{fmt(cps[2])}) "
            f"| {fmt(lo)}/{fmt(med)}/{fmt(hi)} ({fmt(ph.pub.late_ms(0.99))} ms) "
            f"| {ph.pub.acked:,} / {ph.pub.sent:,} | {fmt(ph.backlog_s, digits=1)} "
            f"| {fmt(ph.lag_s[0], digits=2)} / {fmt(ph.lag_s[1], digits=2)} / "
            f"{fmt(ph.lag_s[2], digits=2)} ({fmt(ph.lag_steady_p99_s, digits=2)}) "
            f"| {wk} | {fmt(c['Mosquitto'])} "
            f"| {fmt(c['PostgreSQL'])} ({fmt(c['db backends'])}) "
            f"| {fmt(c['publisher'])} | {fmt(c['other'])} | {fmt(ph.idle_pct)} "
            f"| {ph.load[0]:.1f}→{ph.load[1]:.1f} "
            f"| {'yes' if ph.stored == ph.expected else f'**NO: {ph.stored:,}**'} "
            f"| {'yes' if ph.keeps_up else '**no**'}"
            f"{(' — ' + ph.note.strip()) if ph.note else ''} |")
    return "\n".join(rows)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 devices for 10 s (under a minute)")
    p.add_argument("--devices", type=int, help="fleet size (default 10,000)")
    p.add_argument("--rate-hz", type=float, default=1.0, help="readings per device per second")
    p.add_argument("--duration-s", type=float, help="publishing time per phase (default 60)")
    p.add_argument("--workers", default="1,2",
                   help="comma-separated worker counts, one phase each, in this order")
    p.add_argument("--publishers", type=int, default=1, help="publisher processes")
    p.add_argument("--warm-s", type=float,
                   help="left out of the steady part at the start (default D/6, at most 10)")
    p.add_argument("--worker-arg", action="append", default=[],
                   help="extra argument for every `aftercare ingest` worker (repeatable)")
    args = p.parse_args(argv)
    n_dev = args.devices or (1000 if args.quick else 10_000)
    duration = args.duration_s or (10.0 if args.quick else 60.0)
    warm = args.warm_s if args.warm_s is not None else min(10.0, duration / 6)
    plan = [int(x) for x in args.workers.split(",")]
    if n_dev + 100 > (limit := os.sysconf("SC_OPEN_MAX")):
        p.error(f"{n_dev:,} connections need more than ulimit -n {limit:,}")

    signal.signal(signal.SIGTERM, _on_sigterm)
    started = datetime.now(UTC)
    print(f"bench_fleet {' '.join(sys.argv[1:])}: {n_dev:,} devices x {args.rate_hz:g} Hz x "
          f"{duration:g} s, one reading per message, QoS 1, workers {plan}; "
          f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{started:%Y-%m-%d %H:%M:%S} UTC", flush=True)
    devices = [device_name(g) for g in range(n_dev)]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    db = f"aftercare_bench_fleet_{os.urandom(4).hex()}"
    phases: list[Phase] = []
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
        stack.callback(shutil.rmtree, workdir, True)
        fleet: Fleet | None = None
        try:
            env = start_env(stack, workdir, devices, t0, db, concurrency=0)
            with psycopg.connect(env.dsn) as conn:
                conn.execute("INSERT INTO devices (device_key) SELECT unnest(%s::text[])",
                             (devices,))
                conn.execute("INSERT INTO metrics (name) VALUES (%s)", (METRIC,))
                ids = {int(k.split("-")[1]): int(i) for k, i in
                       conn.execute("SELECT device_key, id FROM devices").fetchall()}
                metric_id = int(conn.execute("SELECT id FROM metrics WHERE name = %s",
                                             (METRIC,)).fetchone()[0])  # type: ignore[index]
                backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
                conn.commit()
            f = proc_stat(backend)
            assert f is not None
            postmaster = int(f[1])
            fleet = Fleet(env.port, n_dev, args.publishers)
            print(f"{fleet.connected:,} of {n_dev:,} devices connected in {fleet.connect_s:.1f} s"
                  + (f"; FAILED: {fleet.failures}" if fleet.failures else ""), flush=True)
            for n_workers in plan:
                phases.append(run_phase(env, fleet, db, ids, metric_id, postmaster, n_dev,
                                        args.rate_hz, duration, n_workers, warm,
                                        args.worker_arg))
        except KeyboardInterrupt:
            print("\ninterrupted: cleaning up", file=sys.stderr)
            return 130
        finally:
            if fleet is not None:
                fleet.close()
            for proc in list(_procs):
                stop(proc, 5)
    print(f"\nbench_fleet {' '.join(sys.argv[1:])}, {started:%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, load now {os.getloadavg()[0]:.1f}; {n_dev:,} devices "
          f"connected: {phases[0].connected if phases else 0:,}; steady part: from "
          f"{warm:.3g} s after the first publish to the last\n")
    print(table(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
