"""``aftercare ingest``: MQTT telemetry into the store, exactly once, nothing lost.

One worker = one paho MQTT 5 client with a persistent session (clean start off, session
expiry set) and ``manual_ack``, plus a durable local spool (:mod:`ingest.spool`):

1. the spooler thread appends each received message to the spool, ``fsync``s, and only
   then acknowledges it (so an acknowledged message is on disk);
2. the writer (the calling thread) reads batches from the spool, decodes them, writes each in
   one database transaction, and moves the spool's committed position after the commit.
   While the spool is behind, the next batch is read and decoded (the decoder thread) while
   this one is written: decoding and the database's work overlap instead of taking turns. A
   large batch (gateway payloads) is written in pieces of whole devices on two connections
   at once (``--copy-connections``), each committed on its own; the position moves after all.

A crash before the fsync leaves the message unacknowledged: the broker redelivers it. A crash
after it replays the spool from the committed position: the unique key (device, metric,
time) stores a reading once, and a reject is kept once under its spool position. A database
outage costs disk, not data: the broker keeps delivering into the spool, and the writer
catches up afterwards. A batch the database refuses (not an outage) is split until the
message at fault is isolated; that one is kept in ``ingest_rejects`` with the reason and the
rest are stored, so no payload can stop ingest.

By default the worker subscribes *without* a shared subscription: Mosquitto 2.0 does not
restore ``$share/...`` subscriptions from its persistence file after a restart and discards
what devices publish until the worker is back (55 % of a flood lost in an outside test),
whereas a plain persistent subscription is restored and queued for. ``--share`` opts into
``$share/ingest/...`` for a broker that keeps shared subscriptions across restarts; then give
each worker a distinct, *stable* client id (``--instance`` or ``INGEST_CLIENT_ID``).

Memory stays bounded: the client announces a Receive Maximum, so the broker never has more
than that many unacknowledged messages out to this worker, and the writer reads a batch at a
time: up to ``INGEST_BATCH_SIZE`` messages in whole spool chunks (so one chunk more at most)
and about 8 MB of payload. The Receive Maximum does not bound a batch: a backlog in the spool
is written in batches of that size. The spool is bounded by ``INGEST_SPOOL_MAX_MB``: when
full, the worker stops acknowledging and the broker's queue holds the rest.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from aftercare import config, contract
from aftercare.cli_args import int_in
from aftercare.mqtt import connect_async, make_client, protocol
from ingest import decode, writer
from ingest.amqp import QUEUE, AmqpReceiver, declare_queue
from ingest.records import BadMessage, StatusChange, Waveform
from ingest.spool import BATCH_MAX_BYTES, Position, Record, Spool

log = logging.getLogger("aftercare.ingest")

SHARE_GROUP = "ingest"
TELEMETRY = contract.topic_filter(contract.TELEMETRY)
WAVEFORM = contract.topic_filter(contract.WAVEFORM)
# Status is retained, and shared subscriptions never receive retained messages, so every
# worker subscribes to it directly; status writes are idempotent.
STATUS = contract.topic_filter(contract.STATUS)
IDLE_GAP_S = 0.02
SPOOL_CHUNK = 2000  # most messages the spooler appends between two fsyncs
# PUBACK with remaining length 2: packet id only, reason code 0 (success) implied.
_PUBACK = struct.Struct("!BBH")


class Incoming(NamedTuple):
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection the message arrived on: acks never cross a reconnect
    received_us: int  # µs since the epoch


@dataclass
class Counters:
    messages: int = 0
    readings_stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    db_errors: int = 0
    isolated: int = 0          # messages the database refused, found by splitting a batch
    spooled: int = 0           # messages on disk and acknowledged to the broker
    status_changes: int = 0
    waveforms: int = 0
    last_batch_s: float = 0.0
    last_lag_s: float = 0.0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


@dataclass
class Batch:
    messages: list[Record] = field(default_factory=list)
    # The readings' devices as runs (a message's readings share one): `run_rows[i]` rows of
    # `run_device[i]`, in row order. Factorising runs instead of a name per row halves the
    # cost of arranging a gateway batch for the store.
    run_device: list[str] = field(default_factory=list)
    run_rows: list[int] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)
    time_us: list[int] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    rejects: list[BadMessage] = field(default_factory=list)
    status: list[StatusChange] = field(default_factory=list)
    waveforms: list[Waveform] = field(default_factory=list)
    # The readings arranged for the store (writer.prepare), when worked out ahead, and the
    # pieces they are written in, their COPY data built (writer.encode).
    columns: writer.Columns | None = None
    pieces: list[writer.Columns] | None = None

    @property
    def device(self) -> list[str]:
        """Each reading's device, one per row."""
        return [d for d, n in zip(self.run_device, self.run_rows, strict=True) for _ in range(n)]


class DeviceRateLimit:
    """Readings per second per device, as a token bucket on the time messages were received
    (not processed: catching up after an outage is not a burst). A message over its device's
    budget is rejected whole (``device rate limit``), so one runaway device cannot crowd out
    the fleet. The burst is large enough for a gateway's backfill after a long offline spell.

    >>> lim = DeviceRateLimit(per_s=10, burst=20)
    >>> [lim.allow("k1", "d", 15, 0), lim.allow("k2", "d", 15, 0), lim.allow("k3", "d", 15, 2e6)]
    [True, False, True]
    >>> lim.allow("k2", "d", 15, 0)   # a decision is kept per message: a retry is not charged
    False
    """

    def __init__(self, *, per_s: float, burst: float) -> None:
        self.per_s = per_s
        self.burst = burst
        self._per_us = per_s / 1e6
        self._buckets: dict[str, tuple[float, int]] = {}
        self._decided: dict[str, bool] = {}

    def allow(self, key: str, device: str, n: int, t_us: int) -> bool:
        # Called for every message: few lookups, no min/max calls (a profile put it at 7 %
        # of the worker's Python time before).
        decided = self._decided
        ok = decided.get(key)
        if ok is not None:
            return ok
        buckets = self._buckets
        bucket = buckets.get(device)
        if bucket is None:
            if len(buckets) >= 1_000_000:
                buckets.clear()  # bounded memory; forgetting is lenient, never lossy
            tokens, last = self.burst, t_us
        else:
            tokens, last = bucket
            if t_us > last:
                tokens += (t_us - last) * self._per_us
                if tokens > self.burst:
                    tokens = self.burst
                last = t_us
        ok = n <= tokens
        buckets[device] = (tokens - n if ok else tokens, last)
        if len(decided) >= 100_000:
            decided.clear()
        decided[key] = ok
        return ok


def decode_batch(messages: Sequence[Record], *, max_future_s: float,
                 max_age_s: float = decode.DEFAULT_MAX_AGE_S,
                 rate_limit: DeviceRateLimit | None = None) -> Batch:
    """Decode every message of a batch; bad ones become rejects, good parts are kept."""
    batch = Batch(messages=list(messages))
    now_us = int(time.time() * 1e6)
    metric, time_us, value = batch.metric, batch.time_us, batch.value
    run_device, run_rows = batch.run_device, batch.run_rows
    rows = 0  # readings kept so far (the columns may hold a failed message's for a moment)
    telemetry_device, telemetry_into = decode.telemetry_device, decode.telemetry_into
    for m in messages:
        try:
            # Telemetry first and without an object per message: it is nearly all the traffic.
            try:
                device: str | None = telemetry_device(m.topic)
            except decode.Reject:
                device = None
            if device is not None:
                n0 = len(metric)
                bad = telemetry_into(batch, m.topic, m.payload, now_us=now_us,
                                     max_future_s=max_future_s, max_age_s=max_age_s)
                n = len(metric) - n0
                if rate_limit is not None and n and not rate_limit.allow(
                        m.key, device, n, m.received_us):
                    del metric[n0:], time_us[n0:], value[n0:]
                    raise decode.Reject("device rate limit",
                                        f"{n} readings over {rate_limit.per_s:g}/s "
                                        f"(burst {rate_limit.burst:g})")
                if n:
                    run_device.append(device)
                    run_rows.append(n)
                    rows += n
                if bad is not None:
                    batch.rejects.append(_stamped(bad, m.received_at, m.key))
                continue
            kind = m.topic.rsplit("/", 1)[-1]
            if kind == "telemetry":  # a telemetry topic that telemetry_device refused
                telemetry_device(m.topic)
            elif kind == "status":
                batch.status.append(decode.decode_status(m.topic, m.payload, now_us=now_us,
                                                         max_future_s=max_future_s))
            elif kind == "waveform":
                batch.waveforms.append(decode.decode_waveform(
                    m.topic, m.payload, now_us=now_us, max_future_s=max_future_s,
                    max_age_s=max_age_s))
            else:
                raise decode.Reject("bad topic", m.topic)
        except decode.Reject as exc:
            batch.rejects.append(BadMessage(m.topic, m.payload, exc.reason, exc.detail,
                                            m.received_at, m.key))
        except Exception as exc:  # a decoder bug must cost one message, never the fleet
            log.exception("decoding a message on %s failed", m.topic)
            del metric[rows:], time_us[rows:], value[rows:]
            batch.rejects.append(BadMessage(m.topic, m.payload, "decode failed",
                                            f"{type(exc).__name__}: {exc}", m.received_at,
                                            m.key))
    return batch


class _Ahead(NamedTuple):
    """The next batch, read from the spool while the current one is written."""

    records: list[Record]
    end: Position
    decoding: concurrent.futures.Future[Batch]


def _stamped(bad: BadMessage, at: datetime, key: str | None) -> BadMessage:
    return BadMessage(bad.topic, bad.payload, bad.reason, bad.detail, at, key)


def columns(batch: Batch) -> writer.Columns:
    """The batch's readings arranged for the store (no database)."""
    return writer.prepare(writer.Runs(batch.run_device, batch.run_rows), batch.metric,
                          np.array(batch.time_us, dtype=np.int64),
                          # None becomes NaN, stored as NULL
                          np.array(batch.value, dtype=np.float64))


def write(conn: psycopg.Connection[Any], cols: writer.Columns, batch: Batch
          ) -> writer.WriteResult:
    """`cols` (the batch's readings or a piece of them) with the batch's rejects, status
    changes and waveforms, in one transaction (committed when this returns)."""
    result = writer.write_prepared(
        conn,
        cols,
        rejects=batch.rejects,
        status=batch.status,
        waveforms=batch.waveforms,
    )
    conn.commit()
    return result


def _is_outage(exc: BaseException) -> bool:
    """A failure of the database, not of the data: retry the same batch later."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def _refusal(exc: Exception) -> tuple[str, str | None]:
    """(reason, detail) to keep when the store refuses one message."""
    if isinstance(exc, writer.Refused):
        return exc.reason, exc.detail
    sqlstate = getattr(exc, "sqlstate", None)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "store refused", f"{type(exc).__name__}{f' {sqlstate}' if sqlstate else ''}: {first}"


class IngestWorker:
    """One ingest worker; :meth:`run` blocks until :meth:`stop` (or a signal)."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        client_id: str,
        spool_dir: str | Path | None = None,
        spool_max_bytes: int = 2 * 1024**3,
        batch_size: int = int(config.default("INGEST_BATCH_SIZE")),
        batch_ms: int = 250,
        receive_maximum: int = 1000,
        session_expiry_s: int = 7 * 86400,
        max_future_s: float = decode.DEFAULT_MAX_FUTURE_S,
        max_age_s: float = decode.DEFAULT_MAX_AGE_S,
        shared: bool = False,
        share_group: str = SHARE_GROUP,
        device_max_readings_per_s: float = 0.0,
        amqp_url: str | None = None,
        copy_connections: int = 2,
        copy_split_rows: int = 50_000,
    ) -> None:
        if batch_size < 1 or batch_ms < 1 or not 1 <= receive_maximum <= 65535 \
                or not 1 <= copy_connections <= 16 or copy_split_rows < 1:
            raise ValueError("batch_size, batch_ms, copy_split_rows >= 1, "
                             "1 <= receive_maximum <= 65535 and 1 <= copy_connections <= 16")
        self.database_url = database_url
        self.mqtt_url = mqtt_url
        self.client_id = client_id
        if spool_dir is None:
            spool_dir = Path(config.load().data_dir or ".aftercare") / "spool" / client_id
        self.spool_dir = Path(spool_dir)
        self.spool_max_bytes = spool_max_bytes
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self.max_future_s = max_future_s
        self.max_age_s = max_age_s
        self.shared = shared
        self.share_group = share_group
        # 0 = unlimited; the burst holds 6 hours of the sustained rate (a backfill).
        self.rate_limit = DeviceRateLimit(
            per_s=device_max_readings_per_s, burst=device_max_readings_per_s * 21_600,
        ) if device_max_readings_per_s > 0 else None
        self.counters = Counters()
        self.metrics: Metrics | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged the subscriptions
        self.heartbeat = time.monotonic()  # the writer loop's last turn (liveness)
        self.spool: Spool | None = None
        # paho's thread appends, the spooler pops (deque operations are atomic); the event
        # wakes the spooler, set only when it may be asleep (a Queue took a lock and a
        # notify per message: 5 % of the worker's Python time).
        self._inbox: collections.deque[Incoming] = collections.deque()
        self._inbox_ready = threading.Event()
        self._stop = threading.Event()
        self._spooler_done = threading.Event()
        self._generation = 0
        # One connection per piece of a large batch written at once (the first also carries
        # the rejects, status changes and waveforms); see write().
        self.copy_connections = copy_connections
        self.copy_split_rows = copy_split_rows
        self._conns: list[psycopg.Connection[Any] | None] = [None] * copy_connections
        self._ids = writer.Ids()  # shared by the connections (see writer.encode)
        self._copiers = concurrent.futures.ThreadPoolExecutor(
            max_workers=copy_connections - 1, thread_name_prefix="ingest-copy",
        ) if copy_connections > 1 else None
        # Every decode runs on this one thread (while run() is active), in spool order, so the
        # rate limiter's buckets have one writer; the writer thread only waits for results.
        self._decoder: concurrent.futures.ThreadPoolExecutor | None = None
        # amqp_url: competing consumers on one RabbitMQ quorum queue (ingest.amqp) instead of
        # an MQTT session of our own; the spool and the ack after fsync are the same.
        self._amqp = AmqpReceiver(
            amqp_url, on_message=self._on_amqp_message, prefetch=receive_maximum,
            on_connected=self._on_amqp_connected, on_disconnected=self._on_amqp_disconnected,
        ) if amqp_url else None
        # clean_session=False: the persistent session on an MQTT 3.1.1 broker (a cluster).
        self._client = make_client(mqtt_url, client_id, manual_ack=True, clean_session=False)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)

    # -- MQTT side (paho's network thread) ------------------------------------------------

    def topics(self) -> list[str]:
        share = f"$share/{self.share_group}/" if self.shared else ""
        return [share + TELEMETRY, share + WAVEFORM, STATUS]

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._generation += 1
        if client.protocol == mqtt.MQTTv5:
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics()])
        else:
            client.subscribe([(t, 1) for t in self.topics()])
        log.info("connected to %s:%d as %s (session present: %s)",
                 client.host, client.port, self.client_id, flags.session_present)
        self.connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # no answer at all (refused, unreachable): paho tries the next node of the URL
        log.warning("could not reach the broker at %s:%d; trying again", client.host,
                    client.port)

    def _on_subscribe(self, *_: Any) -> None:
        log.info("subscribed: receiving")
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.append(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos,
                                    self._generation, time.time_ns() // 1000))
        if not self._inbox_ready.is_set():
            self._inbox_ready.set()

    # -- AMQP side (ingest.amqp's thread) ---------------------------------------------------

    def _on_amqp_message(self, topic: str, payload: bytes, tag: int, generation: int) -> None:
        self._inbox.append(Incoming(topic, payload, tag, 1, generation,
                                    time.time_ns() // 1000))
        if not self._inbox_ready.is_set():
            self._inbox_ready.set()

    def _on_amqp_connected(self) -> None:
        log.info("subscribed: receiving")
        self.connected.set()
        self.subscribed.set()

    def _on_amqp_disconnected(self) -> None:
        self.connected.clear()
        self.subscribed.clear()

    # -- spooler (its own thread): received -> on disk -> acknowledged ----------------------

    def _spool_loop(self, spool: Spool) -> None:
        try:
            inbox, ready = self._inbox, self._inbox_ready
            while True:
                if not inbox:
                    ready.wait(0.1)
                    # Cleared before the inbox is read: a message appended from here on sets
                    # it again, so none waits for the timeout.
                    ready.clear()
                    if not inbox:
                        if self._stop.is_set():
                            return
                        continue
                while spool.pending_bytes >= self.spool_max_bytes and not self._stop.is_set():
                    # Full: stop acknowledging; the broker holds the rest meanwhile.
                    self._stop.wait(0.2)
                chunk: list[Incoming] = []
                popleft = inbox.popleft
                while inbox and len(chunk) < SPOOL_CHUNK:
                    chunk.append(popleft())
                spool.append_many([(m.topic, m.payload, m.received_us) for m in chunk])
                spool.sync()
                self.counters.spooled += len(chunk)
                self._ack(chunk)
        finally:
            self._spooler_done.set()

    def _ack(self, messages: Sequence[Incoming]) -> None:
        """Acknowledge a synced chunk: its PUBACKs go out as one write.

        ``Client.ack`` queues one packet per message and wakes paho's loop through its
        socket pair each time (two system calls per PUBACK, a third of the spooler's time in
        the profile); a chunk's PUBACKs are concatenated and queued as one packet instead,
        which the loop sends in one ``send`` (a partial send is resumed, as for any packet).
        """
        if self._amqp is not None:
            # One basic_ack(multiple) for the chunk: every delivery up to its last tag of
            # the current connection (older ones the broker has requeued).
            gen = self._amqp.generation
            tags = [m.mid for m in messages if m.generation == gen]
            if tags:
                self._amqp.ack(max(tags), gen)
            return
        current = self._generation
        # After a reconnect the broker redelivers what was unacked on the old connection;
        # an old packet id must not ack a different new message.
        live = [m for m in messages if m.qos > 0 and m.generation == current]
        pubacks = [m.mid for m in live if m.qos == 1]
        if pubacks:
            pack = _PUBACK.pack
            packet = b"".join([pack(mqtt.PUBACK, 2, mid) for mid in pubacks])
            # A private paho method (paho-mqtt is pinned in constraints.txt): the one that
            # Client.ack ends in, given all the PUBACKs at once.
            self._client._packet_queue(mqtt.PUBACK, packet, 0, 1)
        for m in live:
            if m.qos == 2:  # not subscribed for, but never leave one unanswered
                self._client.ack(m.mid, m.qos)

    # -- writer (the calling thread): spool -> database -----------------------------------

    def _db(self, i: int = 0) -> psycopg.Connection[Any]:
        conn = self._conns[i]
        if conn is None or conn.closed:
            conn = self._conns[i] = psycopg.connect(
                self.database_url, connect_timeout=5,
                application_name=f"aftercare-ingest {self.client_id}" + (f" {i}" if i else ""))
            writer.share_ids(conn, self._ids)
        return conn

    def _drop_conn(self) -> None:
        for i, conn in enumerate(self._conns):
            if conn is not None:
                conn.close()
                self._conns[i] = None
        self._ids = writer.Ids()  # learnt again from the store the connections reach

    def _split(self, cols: writer.Columns) -> list[writer.Columns]:
        if self._copiers is None or len(cols) < self.copy_split_rows:
            return [cols]
        return cols.split(self.copy_connections)

    def _rollback(self) -> None:
        for conn in self._conns:
            if conn is not None and not conn.closed:
                conn.rollback()

    def _write(self, batch: Batch) -> writer.WriteResult:
        """Everything of one batch, committed when this returns.

        A batch of many readings is cut into pieces of whole devices, each COPYed and
        committed on a connection of its own at the same time: one PostgreSQL backend
        inserting into the unique index is what bounds gateway payloads (one core).
        Exactly once still holds: a piece committed before another failed is stored again
        on the retry, and the unique key keeps its readings once (they count as duplicates).
        """
        cols = batch.columns if batch.columns is not None else columns(batch)
        pieces = batch.pieces if batch.pieces is not None else self._split(cols)
        others = [self._copiers.submit(self._write_piece, i, piece)
                  for i, piece in enumerate(pieces[1:], 1)] if self._copiers else []
        try:
            first = write(self._db(), pieces[0], batch)
        finally:
            # Never leave a connection in use by another thread when this one raises.
            done = [f.exception() for f in others]
        failed = next((exc for exc in done if exc is not None), None)
        if failed is not None:
            raise failed
        rest = [f.result() for f in others]
        return writer.WriteResult(received=len(cols),
                                  stored=first.stored + sum(r.stored for r in rest),
                                  rejected=first.rejected)

    def _write_piece(self, i: int, piece: writer.Columns) -> writer.WriteResult:
        """One piece on connection `i`, committed (a failure is rolled back or the connection
        dropped by _write_with_retry, once every piece has finished)."""
        conn = self._db(i)
        result = writer.write_prepared(conn, piece)
        conn.commit()
        return result

    def _write_with_retry(self, batch: Batch, *, must_succeed: bool = False
                          ) -> writer.WriteResult | None:
        """Write one batch, retrying through database outages; None if stopped meanwhile.

        Anything that is not an outage is raised (the data is at fault), unless
        `must_succeed`: keeping a reject cannot fail for data reasons, so if it does the
        store itself is broken, and the batch is retried like an outage rather than lost."""
        delay = 0.5
        while True:
            try:
                return self._write(batch)
            except Exception as exc:
                if not _is_outage(exc):
                    self._rollback()
                    if not must_succeed:
                        raise
                    log.exception("cannot keep a reject; retrying in %.1fs", delay)
                else:
                    log.warning("database unavailable (%s); retrying in %.1fs",
                                str(exc).strip().splitlines()[0] if str(exc) else exc, delay)
                    self._drop_conn()
                self.counters.db_errors += 1
            if self._stop.wait(delay):
                return None  # stopping: the spool keeps the batch for the next start
            delay = min(delay * 2, 10.0)

    def _decode(self, records: Sequence[Record]) -> Batch:
        batch = decode_batch(records, max_future_s=self.max_future_s, max_age_s=self.max_age_s,
                             rate_limit=self.rate_limit)
        try:
            batch.columns = columns(batch)
            batch.pieces = [writer.encode(p, self._ids) for p in self._split(batch.columns)]
        except Exception:  # noqa: BLE001 - write() tries again, where a failure is isolated
            log.exception("arranging a batch of %d messages for the store failed", len(records))
        return batch

    def _decode_soon(self, records: Sequence[Record]) -> concurrent.futures.Future[Batch]:
        """Decode on the decoder thread (inline when there is none: outside :meth:`run`)."""
        if self._decoder is not None:
            return self._decoder.submit(self._decode, records)
        done: concurrent.futures.Future[Batch] = concurrent.futures.Future()
        done.set_result(self._decode(records))
        return done

    def _store(self, records: Sequence[Record], decoded: Batch | None = None
               ) -> list[tuple[Batch, writer.WriteResult]] | None:
        """Store records; a batch the database refuses is halved until the message at fault
        is alone, and that message is kept as a reject. None if stopped before the end."""
        batch = decoded if decoded is not None else self._decode_soon(records).result()
        try:
            result = self._write_with_retry(batch)
        except Exception as exc:
            if len(records) > 1:
                mid = len(records) // 2
                first = self._store(records[:mid])
                if first is None:
                    return None
                second = self._store(records[mid:])
                return None if second is None else first + second
            m = records[0]
            reason, detail = _refusal(exc)
            log.warning("the store refused a message on %s (%s: %s); kept as a reject",
                        m.topic, reason, detail)
            self.counters.isolated += 1
            batch = Batch(messages=list(records), rejects=[BadMessage(
                m.topic, m.payload, reason, detail, m.received_at, m.key)])
            result = self._write_with_retry(batch, must_succeed=True)
        return None if result is None else [(batch, result)]

    def process(self, records: Sequence[Record], decoded: Batch | None = None) -> bool:
        """Decode (unless `decoded` is given), write and commit one batch; False if stopped
        before the commit."""
        t0 = time.perf_counter()
        parts = self._store(records, decoded)
        if parts is None:
            return False
        c = self.counters
        c.messages += len(records)
        c.batches += 1
        for batch, result in parts:
            c.readings_stored += result.stored
            c.duplicates += result.duplicates
            c.rejected += result.rejected
            c.status_changes += len(batch.status)
            c.waveforms += len(batch.waveforms)
            for bad in batch.rejects:
                c.rejected_by_reason[bad.reason] = c.rejected_by_reason.get(bad.reason, 0) + 1
            if self.metrics is not None:
                self.metrics.observe_result(result, batch)
        c.last_batch_s = time.perf_counter() - t0
        # Consumer lag: how long the oldest message of the batch waited for its commit.
        c.last_lag_s = (datetime.now(UTC) - records[0].received_at).total_seconds()
        if self.metrics is not None:
            self.metrics.observe(len(records), c.last_batch_s, c.last_lag_s)
        return True

    def _next_batch(self, spool: Spool, pos: Position) -> tuple[list[Record], Position]:
        """Up to batch_size messages and about BATCH_MAX_BYTES of payload from the spool,
        waiting at most batch_ms for more."""
        records, end = spool.read(pos, max_records=self.batch_size)
        if records and len(records) < self.batch_size:
            size = sum(len(r.payload) for r in records)
            deadline = time.monotonic() + self.batch_s
            # The byte bound holds across the top-ups too: each read allowing the whole of it
            # let gateway payloads (25 kB each) build 4 M-row batches and a 940 MB worker.
            while len(records) < self.batch_size and size < BATCH_MAX_BYTES:
                left = deadline - time.monotonic()
                if left <= 0 or not spool.wait(end, min(left, IDLE_GAP_S)):
                    break
                more, end = spool.read(end, max_records=self.batch_size - len(records),
                                       max_bytes=BATCH_MAX_BYTES - size)
                records += more
                size += sum(len(r.payload) for r in more)
        return records, end

    def _read_ahead(self, spool: Spool, start: Position) -> _Ahead | None:
        """The batch after `start`, its decoding started, if the spool is behind (a full
        batch or more is waiting); None otherwise (the next turn waits for a batch as usual)."""
        records, end = spool.read(start, max_records=self.batch_size)
        if not records or (len(records) < self.batch_size and not end < spool.synced):
            return None
        return _Ahead(records, end, self._decode_soon(records))

    def run(self) -> Counters:
        spool = self.spool = Spool(self.spool_dir, name=self.client_id)
        if spool.pending_bytes:
            log.info("spool %s holds %d bytes not yet stored: replaying", self.spool_dir,
                     spool.pending_bytes)
        spooler = threading.Thread(target=self._spool_loop, args=(spool,), daemon=True,
                                   name="ingest-spooler")
        spooler.start()
        if self._amqp is not None:
            self._amqp.start()
        elif protocol(self.mqtt_url) == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = self.receive_maximum
            connect_async(self._client, self.mqtt_url, keepalive=30, clean_start=False,
                          properties=props)
        else:
            # MQTT 3.1.1 (a RabbitMQ cluster): the session is kept by clean_session=False, the
            # broker bounds unacknowledged deliveries itself (RabbitMQ's mqtt.prefetch).
            connect_async(self._client, self.mqtt_url, keepalive=30)
        if self._amqp is None:
            self._client.loop_start()
        last_log = time.monotonic()
        logged = 0
        pos = spool.committed
        beat_at = 0.0
        ahead: _Ahead | None = None
        self._decoder = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-decoder")
        _sd_notify(b"READY=1")
        try:
            while True:
                self.heartbeat = time.monotonic()
                if self.heartbeat - beat_at >= HEARTBEAT_EVERY_S:
                    # Liveness for `aftercare ingest --alive` and systemd's watchdog: the
                    # writer loop turns at least every few seconds, outage or not.
                    (self.spool_dir / "heartbeat").touch()
                    _sd_notify(b"WATCHDOG=1")
                    beat_at = self.heartbeat
                if self._stop.is_set() and (self._spooler_done.is_set() or
                                            not spooler.is_alive()):
                    # Drain what the spooler acknowledged, unless the database is away.
                    records, end = spool.read(pos, max_records=self.batch_size)
                    if not records or not self.process(records):
                        break
                    spool.commit(end)
                    pos = end
                    continue
                if ahead is not None:
                    records, end, decoding = ahead
                else:
                    records, end = self._next_batch(spool, pos)
                    if not records:
                        spool.wait(pos, 0.2)
                        continue
                    decoding = self._decode_soon(records)
                ahead = self._read_ahead(spool, end)
                if not self.process(records, decoding.result()):
                    ahead = None  # read again from `pos` (the rate limiter remembers)
                    continue  # stopping during an outage: the spool keeps the batch
                spool.commit(end)
                pos = end
                if time.monotonic() - last_log >= 10:
                    c = self.counters
                    log.info("%d msgs (+%d), %d readings stored, %d duplicates, %d rejected "
                             "%s, lag %.2fs, last batch %.0f ms, spool %.1f MB",
                             c.messages, c.messages - logged, c.readings_stored, c.duplicates,
                             c.rejected, c.rejected_by_reason or "", c.last_lag_s,
                             c.last_batch_s * 1000, spool.pending_bytes / 1e6)
                    last_log, logged = time.monotonic(), c.messages
        finally:
            self._stop.set()
            if self._amqp is not None:
                # Stop receiving first; what the spooler acknowledges after is dropped with
                # the connection and redelivered (the store keeps each reading once).
                self._amqp.stop()
            else:
                self._client.disconnect()
                self._client.loop_stop()
            spooler.join(5)
            self._decoder.shutdown(wait=True, cancel_futures=True)
            self._decoder = None
            spool.close()
            self._drop_conn()
        return self.counters

    def stop(self) -> None:
        self._stop.set()


HEARTBEAT_EVERY_S = 5.0


def heartbeat_age_s(spool_dir: Path) -> float:
    """Seconds since the worker owning `spool_dir` last showed it was alive (inf if never)."""
    try:
        return max(0.0, time.time() - (spool_dir / "heartbeat").stat().st_mtime)
    except FileNotFoundError:
        return float("inf")


def _sd_notify(message: bytes) -> None:
    """Tell systemd (Type=notify, WatchdogSec=) we are ready / alive; no-op elsewhere."""
    import os

    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message, addr)
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)


def default_client_id(instance: int) -> str:
    return f"aftercare-ingest-{socket.gethostname()}-{instance}"


class _RateMeter:
    """Bytes/s arriving in the spool over the last minute or so (for the outage estimate)."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None
        self._rate = 0.0

    def seconds_left(self, worker: IngestWorker) -> float:
        sp = worker.spool
        if sp is None:
            return 0.0
        now = time.monotonic()
        total = sp.appended_bytes
        if self._last is not None and now - self._last[0] >= 1.0:
            inst = (total - self._last[1]) / (now - self._last[0])
            self._rate = inst if self._rate == 0 else 0.8 * self._rate + 0.2 * inst
            self._last = (now, total)
        elif self._last is None:
            self._last = (now, total)
        free = max(0, worker.spool_max_bytes - sp.pending_bytes)
        return float("inf") if self._rate <= 0 else free / self._rate


class Metrics:
    """Prometheus metrics of one worker (its own registry, served on ``port``)."""

    def __init__(self, worker: IngestWorker) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("aftercare_ingest_messages", "MQTT messages committed",
                                registry=r)
        self.stored = Counter("aftercare_ingest_readings_stored", "readings stored", registry=r)
        self.duplicates = Counter("aftercare_ingest_duplicates",
                                  "redelivered readings already stored", registry=r)
        self.rejected = Counter("aftercare_ingest_rejected", "payloads kept as rejects",
                                ["reason"], registry=r)
        self.batch_messages = Histogram("aftercare_ingest_batch_messages", "messages per batch",
                                        buckets=(1, 10, 50, 100, 250, 500, 1000, 5000),
                                        registry=r)
        self.commit_seconds = Histogram("aftercare_ingest_batch_seconds",
                                        "decode + write + commit time per batch", registry=r)
        self.lag = Gauge("aftercare_ingest_lag_seconds",
                         "receipt of the batch's oldest message to its commit", registry=r)
        inbox = Gauge("aftercare_ingest_inbox_messages", "messages received, not yet written",
                      registry=r)
        inbox.set_function(lambda: len(worker._inbox))
        errors = Gauge("aftercare_ingest_db_errors", "failed batch writes (retried)", registry=r)
        errors.set_function(lambda: worker.counters.db_errors)
        spooled = Gauge("aftercare_ingest_spool_bytes",
                        "bytes on the local spool, acknowledged and not yet in the database",
                        registry=r)
        spooled.set_function(lambda: worker.spool.pending_bytes if worker.spool else 0)
        cap = Gauge("aftercare_ingest_spool_max_bytes", "spool capacity (INGEST_SPOOL_MAX_MB)",
                    registry=r)
        cap.set(worker.spool_max_bytes)
        self._rate = _RateMeter()
        survivable = Gauge(
            "aftercare_ingest_outage_survivable_seconds",
            "how long a database outage the free spool absorbs at the recent incoming rate",
            registry=r)
        survivable.set_function(lambda: self._rate.seconds_left(worker))
        alive = Gauge("aftercare_ingest_heartbeat_age_seconds",
                      "seconds since the writer loop last turned (liveness)", registry=r)
        alive.set_function(lambda: time.monotonic() - worker.heartbeat)

    def observe(self, n_messages: int, batch_s: float, lag_s: float) -> None:
        self.messages.inc(n_messages)
        self.batch_messages.observe(n_messages)
        self.commit_seconds.observe(batch_s)
        self.lag.set(lag_s)

    def observe_result(self, result: writer.WriteResult, batch: Batch) -> None:
        self.stored.inc(result.stored)
        self.duplicates.inc(result.duplicates)
        for bad in batch.rejects:
            self.rejected.labels(bad.reason).inc()

    def serve(self, port: int) -> None:
        from prometheus_client import start_http_server

        try:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)
            log.info("metrics on http://127.0.0.1:%d/metrics", port)
        except OSError as exc:
            log.warning("metrics port %d unavailable (%s): another worker has it?", port, exc)


def main(argv: list[str]) -> int:
    settings = config.load()
    p = argparse.ArgumentParser(prog="aftercare ingest", description=__doc__.split("\n")[0])
    p.add_argument("--instance", type=int, default=0,
                   help="worker number on this host; part of the default client id")
    p.add_argument("--client-id", default=settings.ingest_client_id,
                   help="stable MQTT client id (default: aftercare-ingest-HOST-INSTANCE)")
    p.add_argument("--batch-size", type=int_in(1), default=settings.ingest_batch_size,
                   help="most messages per transaction, in whole spool chunks (INGEST_BATCH_SIZE)")
    p.add_argument("--batch-ms", type=int_in(1), default=settings.ingest_batch_ms)
    p.add_argument("--receive-maximum", type=int_in(1, 65535), default=1000,
                   help="most unacknowledged messages the broker may send this worker")
    p.add_argument("--copy-connections", type=int_in(1, 16), default=2, metavar="1..16",
                   help="database connections a large batch is written on at once, in pieces "
                        "of whole devices")
    p.add_argument("--copy-split-rows", type=int_in(1), default=50_000,
                   help="a batch of at least this many readings is written in pieces (tests "
                        "use 1 to cut every batch)")
    p.add_argument("--metrics-port", type=int, default=settings.ingest_metrics_port)
    p.add_argument("--mqtt-url", default=settings.mqtt_url)
    p.add_argument("--database-url", default=settings.database_url)
    p.add_argument("--spool-dir", default=settings.ingest_spool_dir,
                   help="durable local spool (default: AFTERCARE_DATA_DIR/spool/CLIENT_ID)")
    p.add_argument("--share", action="store_true",
                   help="subscribe through the $share group so several workers split the "
                        "load; only on a broker that restores shared subscriptions after a "
                        "restart (Mosquitto 2.0 does not: it would lose messages)")
    p.add_argument("--share-group", default=SHARE_GROUP,
                   help="MQTT 5 shared-subscription group the workers split the load in")
    p.add_argument("--alive", type=float, metavar="SECONDS", default=None,
                   help="liveness check: exit 0 if this worker's writer loop turned within "
                        "SECONDS, else 1 (for systemd, a supervisor or a probe)")
    p.add_argument("--session-expiry-s", type=int, default=7 * 86400,
                   help="how long the broker keeps this worker's session (and its backlog) "
                        "while it is away")
    p.add_argument("--no-share", action="store_true",
                   help="(the default) subscribe without the $share group")
    p.add_argument("--amqp-url", default=settings.ingest_amqp_url,
                   help="consume the RabbitMQ quorum queue as one of several competing workers "
                        "(INGEST_AMQP_URL; see ingest.amqp) instead of an MQTT session")
    p.add_argument("--declare-only", action="store_true",
                   help="with --amqp-url: declare the queue and its bindings, then exit (run "
                        "once before devices publish)")
    args = p.parse_args(argv)
    if args.declare_only:
        if not args.amqp_url:
            p.error("--declare-only needs --amqp-url (or INGEST_AMQP_URL)")
        log.info("queue %s declared on %s", QUEUE, declare_queue(args.amqp_url))
        return 0
    client_id = args.client_id or default_client_id(args.instance)
    spool_dir = Path(args.spool_dir) if args.spool_dir else \
        Path(settings.data_dir or ".aftercare") / "spool" / client_id
    if args.alive is not None:
        return 0 if heartbeat_age_s(spool_dir) <= args.alive else 1
    worker = IngestWorker(
        database_url=args.database_url,
        mqtt_url=args.mqtt_url,
        client_id=client_id,
        spool_dir=spool_dir,
        spool_max_bytes=settings.ingest_spool_max_mb * 1024 * 1024,
        batch_size=args.batch_size,
        batch_ms=args.batch_ms,
        receive_maximum=args.receive_maximum,
        shared=args.share and not args.no_share,
        share_group=args.share_group,
        session_expiry_s=args.session_expiry_s,
        max_future_s=float(settings.ingest_max_future_s),
        max_age_s=settings.retention_days * 86_400.0,
        device_max_readings_per_s=float(settings.ingest_device_max_readings_per_s),
        amqp_url=args.amqp_url or None,
        copy_connections=args.copy_connections,
        copy_split_rows=args.copy_split_rows,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current batch", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.metrics = Metrics(worker)
    if args.metrics_port:
        worker.metrics.serve(args.metrics_port)
    c = worker.run()
    log.info("stopped: %d messages, %d readings stored, %d duplicates, %d rejected",
             c.messages, c.readings_stored, c.duplicates, c.rejected)
    return 0
