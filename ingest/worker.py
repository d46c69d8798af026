"""``aftercare ingest``: MQTT telemetry into the store, exactly once, nothing lost.

One worker = one paho MQTT 5 client with a persistent session (clean start off, session
expiry set) and ``manual_ack``: a message is acknowledged only after the transaction holding
its readings has committed. A crash before the commit leaves the message unacknowledged, so
the broker redelivers it; a crash between commit and ack redelivers a batch that is already
stored, and the unique key (device, metric, time) stores it once (counted as duplicates).

Several workers share the load through ``$share/ingest/devices/+/telemetry``; give each a
distinct, *stable* client id (``--instance`` or ``INGEST_CLIENT_ID``) so a restarted worker
resumes its own session and gets its unacknowledged messages back.

Memory stays bounded: the client announces a Receive Maximum, so the broker never has more
than that many unacknowledged messages out to this worker. While the database is down the
batch is retried with backoff and nothing is acknowledged; the broker holds the backlog.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from aftercare import config
from aftercare.mqtt import endpoint, make_client
from ingest import decode, writer
from ingest.records import BadMessage, StatusChange, Waveform

log = logging.getLogger("aftercare.ingest")

SHARE_GROUP = "ingest"
TELEMETRY = "devices/+/telemetry"
WAVEFORM = "devices/+/waveform"
# Status is retained, and shared subscriptions never receive retained messages, so every
# worker subscribes to it directly; status writes are idempotent.
STATUS = "devices/+/status"
IDLE_GAP_S = 0.02


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection the message arrived on: acks never cross a reconnect
    received_at: datetime


@dataclass
class Counters:
    messages: int = 0
    readings_stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    db_errors: int = 0
    status_changes: int = 0
    waveforms: int = 0
    last_batch_s: float = 0.0
    last_lag_s: float = 0.0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


@dataclass
class Batch:
    messages: list[Incoming] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)
    time_us: list[int] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    rejects: list[BadMessage] = field(default_factory=list)
    status: list[StatusChange] = field(default_factory=list)
    waveforms: list[Waveform] = field(default_factory=list)


def decode_batch(messages: Sequence[Incoming], *, max_future_s: float) -> Batch:
    """Decode every message of a batch; bad ones become rejects, good parts are kept."""
    batch = Batch(messages=list(messages))
    now_us = int(time.time() * 1e6)
    for m in messages:
        kind = m.topic.rsplit("/", 1)[-1]
        try:
            if kind == "telemetry":
                d = decode.decode_telemetry(m.topic, m.payload, now_us=now_us,
                                            max_future_s=max_future_s)
                batch.device.extend([d.device] * len(d.metric))
                batch.metric.extend(d.metric)
                batch.time_us.extend(d.time_us)
                batch.value.extend(d.value)
                if d.reject is not None:
                    batch.rejects.append(_stamped(d.reject, m.received_at))
            elif kind == "status":
                batch.status.append(decode.decode_status(m.topic, m.payload, now_us=now_us,
                                                         max_future_s=max_future_s))
            elif kind == "waveform":
                batch.waveforms.append(decode.decode_waveform(m.topic, m.payload, now_us=now_us,
                                                              max_future_s=max_future_s))
            else:
                raise decode.Reject("bad topic", m.topic)
        except decode.Reject as exc:
            batch.rejects.append(BadMessage(m.topic, m.payload, exc.reason, exc.detail,
                                            m.received_at))
    return batch


def _stamped(bad: BadMessage, at: datetime) -> BadMessage:
    return BadMessage(bad.topic, bad.payload, bad.reason, bad.detail, at)


def write(conn: psycopg.Connection[Any], batch: Batch) -> writer.WriteResult:
    """Everything of one batch in one transaction (committed when this returns)."""
    result = writer.write_columns(
        conn,
        device=batch.device,
        metric=batch.metric,
        time=np.array(batch.time_us, dtype=np.int64),
        value=np.array(batch.value, dtype=np.float64),  # None becomes NaN, stored as NULL
        rejects=batch.rejects,
        status=batch.status,
        waveforms=batch.waveforms,
    )
    conn.commit()
    return result


class IngestWorker:
    """One ingest worker; :meth:`run` blocks until :meth:`stop` (or a signal)."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        client_id: str,
        batch_size: int = 5000,
        batch_ms: int = 250,
        receive_maximum: int = 1000,
        session_expiry_s: int = 7 * 86400,
        max_future_s: float = decode.DEFAULT_MAX_FUTURE_S,
        shared: bool = True,
        share_group: str = SHARE_GROUP,
    ) -> None:
        if batch_size < 1 or batch_ms < 1 or not 1 <= receive_maximum <= 65535:
            raise ValueError("batch_size, batch_ms >= 1 and 1 <= receive_maximum <= 65535")
        self.database_url = database_url
        self.mqtt_url = mqtt_url
        self.client_id = client_id
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self.max_future_s = max_future_s
        self.shared = shared
        self.share_group = share_group
        self.counters = Counters()
        self.metrics: Metrics | None = None
        self.connected = threading.Event()
        self._inbox: queue.Queue[Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._client = make_client(mqtt_url, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)

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
        opts = SubscribeOptions(qos=1)
        client.subscribe([(t, opts) for t in self.topics()])
        log.info("connected to %s as %s (session present: %s)",
                 endpoint(self.mqtt_url).host, self.client_id, flags.session_present)
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos,
                                 self._generation, datetime.now(UTC)))

    # -- database side (the calling thread) -----------------------------------------------

    def _collect(self) -> list[Incoming]:
        """Wait for a batch: up to batch_size readings-worth of messages or batch_ms."""
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        out = [first]
        deadline = time.monotonic() + self.batch_s
        # A message holds one or more readings; count messages against the size bound, as
        # the broker's in-flight limit (Receive Maximum) counts messages too.
        # Half the window, so the broker keeps sending the other half while this batch is
        # written (it stops at Receive Maximum unacknowledged messages).
        limit = min(self.batch_size, max(1, self.receive_maximum // 2))
        while len(out) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                # A pause in the stream ends the batch early: the broker stops sending once
                # its in-flight limit of unacked messages is reached, and waiting would
                # only add latency.
                out.append(self._inbox.get(timeout=min(left, IDLE_GAP_S)))
            except queue.Empty:
                break
        return out

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, connect_timeout=5,
                                         application_name=f"aftercare-ingest {self.client_id}")
        return self._conn

    def _write_with_retry(self, batch: Batch) -> writer.WriteResult | None:
        delay = 0.5
        while True:
            try:
                return write(self._db(), batch)
            except psycopg.OperationalError as exc:
                self.counters.db_errors += 1
                log.warning("database unavailable (%s); retrying in %.1fs, nothing acked",
                            str(exc).strip().splitlines()[0] if str(exc) else exc, delay)
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
            if self._stop.wait(delay):
                return None  # stopping: unacked messages come back from the broker
            delay = min(delay * 2, 30.0)

    def _ack(self, messages: Sequence[Incoming]) -> None:
        current = self._generation
        for m in messages:
            # After a reconnect the broker redelivers what was unacked on the old connection;
            # an old packet id must not ack a different new message.
            if m.qos > 0 and m.generation == current:
                self._client.ack(m.mid, m.qos)

    def process(self, messages: Sequence[Incoming]) -> bool:
        """Decode, write and ack one batch; False if stopped before the commit."""
        t0 = time.perf_counter()
        batch = decode_batch(messages, max_future_s=self.max_future_s)
        result = self._write_with_retry(batch)
        if result is None:
            return False
        self._ack(messages)
        c = self.counters
        c.messages += len(messages)
        c.readings_stored += result.stored
        c.duplicates += result.duplicates
        c.rejected += result.rejected
        c.status_changes += len(batch.status)
        c.waveforms += len(batch.waveforms)
        c.batches += 1
        c.last_batch_s = time.perf_counter() - t0
        # Consumer lag: how long the oldest message of the batch waited for its commit.
        c.last_lag_s = (datetime.now(UTC) - messages[0].received_at).total_seconds()
        for bad in batch.rejects:
            c.rejected_by_reason[bad.reason] = c.rejected_by_reason.get(bad.reason, 0) + 1
        if self.metrics is not None:
            self.metrics.observe(len(messages), c.last_batch_s, c.last_lag_s, result, batch)
        return True

    def run(self) -> Counters:
        ep = endpoint(self.mqtt_url)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self._client.connect_async(ep.host, ep.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        last_log = time.monotonic()
        logged = 0
        try:
            while not self._stop.is_set():
                messages = self._collect()
                if messages and not self.process(messages):
                    break
                if time.monotonic() - last_log >= 10:
                    c = self.counters
                    log.info("%d msgs (+%d), %d readings stored, %d duplicates, %d rejected "
                             "%s, lag %.2fs, last batch %.0f ms", c.messages, c.messages - logged,
                             c.readings_stored, c.duplicates, c.rejected,
                             c.rejected_by_reason or "", c.last_lag_s, c.last_batch_s * 1000)
                    last_log, logged = time.monotonic(), c.messages
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            if self._conn is not None:
                self._conn.close()
        return self.counters

    def stop(self) -> None:
        self._stop.set()


def default_client_id(instance: int) -> str:
    return f"aftercare-ingest-{socket.gethostname()}-{instance}"


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
        inbox.set_function(worker._inbox.qsize)
        errors = Gauge("aftercare_ingest_db_errors", "failed batch writes (retried)", registry=r)
        errors.set_function(lambda: worker.counters.db_errors)

    def observe(self, n_messages: int, batch_s: float, lag_s: float,
                result: writer.WriteResult, batch: Batch) -> None:
        self.messages.inc(n_messages)
        self.stored.inc(result.stored)
        self.duplicates.inc(result.duplicates)
        for bad in batch.rejects:
            self.rejected.labels(bad.reason).inc()
        self.batch_messages.observe(n_messages)
        self.commit_seconds.observe(batch_s)
        self.lag.set(lag_s)

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
    p.add_argument("--batch-size", type=int, default=settings.ingest_batch_size)
    p.add_argument("--batch-ms", type=int, default=settings.ingest_batch_ms)
    p.add_argument("--receive-maximum", type=int, default=1000,
                   help="most unacknowledged messages the broker may send this worker")
    p.add_argument("--metrics-port", type=int, default=settings.ingest_metrics_port)
    p.add_argument("--mqtt-url", default=settings.mqtt_url)
    p.add_argument("--database-url", default=settings.database_url)
    p.add_argument("--share-group", default=SHARE_GROUP,
                   help="MQTT 5 shared-subscription group the workers split the load in")
    p.add_argument("--session-expiry-s", type=int, default=7 * 86400,
                   help="how long the broker keeps this worker's session (and its backlog) "
                        "while it is away")
    p.add_argument("--no-share", action="store_true",
                   help="subscribe without the $share group (a single worker on a broker "
                        "without shared subscriptions)")
    args = p.parse_args(argv)
    worker = IngestWorker(
        database_url=args.database_url,
        mqtt_url=args.mqtt_url,
        client_id=args.client_id or default_client_id(args.instance),
        batch_size=args.batch_size,
        batch_ms=args.batch_ms,
        receive_maximum=args.receive_maximum,
        shared=not args.no_share,
        share_group=args.share_group,
        session_expiry_s=args.session_expiry_s,
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
