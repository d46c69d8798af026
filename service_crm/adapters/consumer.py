"""The alert-event consumer: FastStream subscriber on ``aftercare/alerts`` → ``alert_ingest``.

At-least-once: the subscription is QoS 1 on a persistent session (MQTT) / a durable consumer
(NATS JetStream, RabbitMQ), and a message is acknowledged only after its database transaction
committed. A crash before the ack means redelivery, which ``alert_ingest`` absorbs because it is
idempotent by (alert_id, revision). An event that breaks the schema can never succeed: it is
recorded in the audit log with the raw payload and the reason, then acknowledged.

Database work runs on one dedicated thread (the Django ORM is synchronous), one message at a
time, so revisions of one alert are applied in the order they were published.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, close_old_connections, connections, transaction
from django.utils import timezone

from aftercare import config
from aftercare.events import (
    ALERTS_TOPIC,
    AlertEvent,
    EventError,
    event_broker,
    nats_subject,
    node_name,
    node_urls,
    transport_of,
)
from service_crm.models import AuditLog
from service_crm.services import notifications
from service_crm.services.alerts import IngestResult, alert_ingest
from service_crm.services.housekeeping import housekeeping_run

log = logging.getLogger("service_crm.consumer")
MAIL_THREADS = 1  # 4 measured worse on 2 cores (bench/README: CRM automation)
DB_RETRIES = 3


@dataclass
class Stats:
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0


@transaction.atomic(durable=True)
def event_reject(*, payload: bytes, reason: str) -> None:
    """Keep an undecodable event verbatim (as text) with its reason: nothing is dropped silently."""
    AuditLog.objects.create(
        at=timezone.now(), actor_label="consumer", action="alert.rejected",
        object_type="alert_event", object_id="-",
        before=None, after={"reason": reason, "payload": payload.decode("utf-8", "replace")},
    )


def handle_payload(payload: bytes, stats: Stats) -> IngestResult | None:
    """Decode and apply one event (synchronous; runs on the DB thread). None if rejected."""
    close_old_connections()  # drop a connection the server closed or that outlived CONN_MAX_AGE
    try:
        event = AlertEvent.from_json(payload)
    except EventError as exc:
        log.warning("rejected alert event: %s", exc)
        event_reject(payload=payload, reason=str(exc))
        stats.rejected += 1
        return None
    for attempt in range(1, DB_RETRIES + 1):
        try:
            result = alert_ingest(event=event)
            break
        except OperationalError:
            # Lost connection / serialisation trouble: retry on a fresh connection, then give up
            # without acking so the broker redelivers.
            connections.close_all()
            if attempt == DB_RETRIES:
                raise
            time.sleep(0.2 * attempt)
    if result.outcome.value == "duplicate":
        stats.duplicates += 1
    else:
        stats.applied += 1
    return result


class Consumer:
    """Owns the broker, the subscription and the DB thread."""

    def __init__(self, url: str, *, client_id: str = "aftercare-crm",
                 housekeeping_every_s: float = 0,
                 partitions: tuple[int, list[int]] | None = None,
                 failover_after_s: float = 15.0, watch_every_s: float = 5.0,
                 emails: str = "thread") -> None:
        # A cluster URL (amqp://u:p@h1:5672,h2:5672/) names several nodes: the consumer
        # starts on the first that takes it and, once its node has been unreachable for
        # `failover_after_s` (checked every `watch_every_s`), moves to the next. Unacked
        # deliveries go back to the queue and reach it there (consumers are idempotent).
        self.nodes = node_urls(url)
        self._turn = 0
        self.url = self.nodes[0]
        self.failover_after_s, self.watch_every_s = failover_after_s, watch_every_s
        self.client_id = client_id
        # (EVENTS_PARTITIONS, the partitions this consumer takes): RabbitMQ only, see
        # aftercare.event_partitions. None: the one queue ALERTS_TOPIC.
        self.partitions = partitions
        self.housekeeping_every_s = housekeeping_every_s
        # "thread": emails sent from this process's mail threads; "outbox": left to a mail
        # worker (manage.py crm_mail), so none costs this process's CPU.
        if emails not in ("thread", "outbox"):
            raise ValueError(f"emails must be 'thread' or 'outbox', got {emails!r}")
        self.emails = emails
        self.stats = Stats()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-db")
        self._subscriber: Any = None
        self.broker: Any = self._build()

    async def _apply(self, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._db, handle_payload, payload, self.stats)

    def _build(self) -> Any:
        build = {"mqtt": self._build_mqtt, "nats": self._build_nats,
                 "rabbit": self._build_rabbit}[transport_of(self.url)]
        return build()

    def _on(self, subscriber: Any) -> None:
        async def on_alert(msg: Any) -> None:
            await self._apply(bytes(msg.body))
            await msg.ack()  # only after the commit

        from faststream import Context

        async def handler(body: Any, message: Any = Context("message")) -> None:  # noqa: B008
            await on_alert(message)

        subscriber(handler)
        self._subscriber = subscriber

    def _build_mqtt(self) -> Any:
        from faststream import AckPolicy
        from faststream.mqtt import QoS

        broker = event_broker(self.url, client_id=self.client_id, clean_session=False,
                              session_expiry_interval=7 * 24 * 3600, log_level=logging.DEBUG)
        self._on(broker.subscriber(ALERTS_TOPIC, qos=QoS.AT_LEAST_ONCE,
                                   ack_policy=AckPolicy.MANUAL))
        return broker

    def _build_nats(self) -> Any:
        from faststream import AckPolicy
        from faststream.nats import JStream

        broker = event_broker(self.url, log_level=logging.DEBUG)
        subject = nats_subject(ALERTS_TOPIC)
        self._on(broker.subscriber(subject, stream=JStream("aftercare-alerts", subjects=[subject]),
                                   durable=self.client_id, ack_policy=AckPolicy.MANUAL))
        return broker

    def _build_rabbit(self) -> Any:
        from faststream import AckPolicy
        from faststream.rabbit import Channel, RabbitQueue

        broker = event_broker(self.url, log_level=logging.DEBUG)
        if self.partitions is not None and self.partitions[0] > 1:
            from aftercare.event_partitions import rabbit_queue

            count, mine = self.partitions
            for part in mine:
                # Single active consumer per queue, and one unacknowledged delivery at a time
                # on its own channel: FastStream handles deliveries as concurrent tasks, so
                # with a larger prefetch two revisions of one alert could reach the DB thread
                # out of order.
                self._on(broker.subscriber(rabbit_queue(part, count),
                                           channel=Channel(prefetch_count=1),
                                           ack_policy=AckPolicy.MANUAL))
            return broker
        # The one queue too: one unacknowledged delivery at a time, so revisions of an alert
        # are applied in order (a "clear" overtaking its "open" would leave no ticket).
        self._on(broker.subscriber(RabbitQueue(ALERTS_TOPIC, durable=True),
                                   channel=Channel(prefetch_count=1),
                                   ack_policy=AckPolicy.MANUAL))
        return broker

    async def _start(self, *, raise_if_none: bool) -> bool:
        """Start on a node, trying each once from the current one; False (or the last error)
        when none takes us."""
        for attempt in range(len(self.nodes)):
            if attempt:  # the previous node refused: build on the next one
                self._turn += 1
                self.url = self.nodes[self._turn % len(self.nodes)]
                self.broker = self._build()
            try:
                await asyncio.wait_for(self.broker.start(), 30)
            except Exception as exc:
                log.warning("event broker %s refused (%s: %s)", node_name(self.url),
                            type(exc).__name__, exc)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.broker.stop(), 5)
                if raise_if_none and attempt == len(self.nodes) - 1:
                    raise
                continue
            log.info("consuming %s from %s", ALERTS_TOPIC, node_name(self.url))
            return True
        return False

    async def _watch(self, down_since: float | None) -> float | None:
        """Ping the node; after `failover_after_s` unreachable, move to another. Returns when
        the node was first seen down (None while it answers)."""
        now = time.monotonic()
        try:
            up = bool(await self.broker.ping(2))
        except Exception:
            up = False
        if up:
            return None
        if down_since is None:
            log.warning("event broker %s not answering", node_name(self.url))
            return now
        if now - down_since < self.failover_after_s:
            return down_since
        log.warning("event broker %s unreachable for %.0f s; moving to the next node",
                    node_name(self.url), now - down_since)
        await self._detach()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.broker.stop(), 5)
        self._turn += 1
        self.url = self.nodes[self._turn % len(self.nodes)]
        self.broker = self._build()
        return None if await self._start(raise_if_none=False) else now

    async def run(self, stop: asyncio.Event, on_started: Callable[[], Awaitable[None]] | None
                  = None) -> Stats:
        if self.emails == "outbox":
            # No email from this process: a mail worker (manage.py crm_mail) sends them.
            notifications.leave_to_outbox(True)
            try:
                return await self._run(stop, on_started)
            finally:
                notifications.leave_to_outbox(False)
        # Emails from a thread of their own: the DB thread applies the next event instead of
        # waiting on the mail server (services.notifications). Emails then queue there when
        # the mail server is slower than the alerts come.
        mail = ThreadPoolExecutor(max_workers=MAIL_THREADS, thread_name_prefix="crm-mail")
        notifications.send_in_background(mail)
        try:
            return await self._run(stop, on_started)
        finally:
            notifications.send_in_background(None)
            # What was queued still goes out; then each thread closes its DB connection (the
            # barrier puts one closing task on every thread).
            barrier = threading.Barrier(MAIL_THREADS)

            def close_mine() -> None:
                barrier.wait(timeout=60)
                connections.close_all()

            for _ in range(MAIL_THREADS):
                mail.submit(close_mine)
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: mail.shutdown(wait=True))

    async def _run(self, stop: asyncio.Event,
                   on_started: Callable[[], Awaitable[None]] | None) -> Stats:
        await self._start(raise_if_none=True)
        loop = asyncio.get_running_loop()
        watch = len(self.nodes) > 1
        inf = float("inf")
        next_hk = loop.time() + self.housekeeping_every_s if self.housekeeping_every_s > 0 \
            else inf
        down_since: float | None = None
        try:
            if on_started is not None:
                await on_started()
            while not stop.is_set():
                wake = min(next_hk, loop.time() + self.watch_every_s if watch else inf)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(),
                                           None if wake == inf else max(0, wake - loop.time()))
                if stop.is_set():
                    break
                if watch:
                    down_since = await self._watch(down_since)
                if loop.time() >= next_hk:
                    # Same DB thread as the events: housekeeping never races an ingestion.
                    report = await loop.run_in_executor(self._db, _housekeeping)
                    log.info("housekeeping: %s", report)
                    next_hk = loop.time() + self.housekeeping_every_s
        finally:
            await self._detach()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.broker.stop(), 10)
            # Close the DB thread's connection so the database can be dropped/restarted cleanly.
            await asyncio.get_running_loop().run_in_executor(self._db, connections.close_all)
            self._db.shutdown(wait=True)
        return self.stats


    async def _detach(self) -> None:
        """MQTT: leave the broker-side subscription in place on a graceful stop.

        FastStream's stop sends UNSUBSCRIBE, which would delete the persistent session's
        subscription, so events published while we are down would be lost. Detaching first
        keeps it: the broker queues them and redelivers unacknowledged ones on reconnect.
        """
        zsub = getattr(self._subscriber, "_subscription", None)
        if zsub is not None and hasattr(zsub, "detach"):
            await zsub.detach()
            self._subscriber._subscription = None



def _housekeeping() -> str:
    close_old_connections()
    return str(housekeeping_run())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aftercare crm-consumer", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--events-url", help="default: EVENTS_URL (or MQTT_URL)")
    parser.add_argument("--client-id", default="aftercare-crm",
                        help="MQTT client id / durable consumer name (keep it stable: the "
                             "broker queues events for it while it is down)")
    parser.add_argument("--housekeeping-every-s", type=float, default=60.0,
                        help="run the timed rules (SLA, offer expiry, watch periods, renewals) "
                             "this often; 0 = never (default 60)")
    parser.add_argument("--partitions", default="",
                        help="with EVENTS_PARTITIONS > 1: the partitions to consume, e.g. 0,1 "
                             "(default all); a second consumer given the same ones is a "
                             "standby that takes over in order")
    parser.add_argument("--emails", choices=("thread", "outbox"), default="thread",
                        help="thread: this process sends the emails its events owe, from "
                             "threads of its own (default); outbox: it leaves them to a mail "
                             "worker (`python -m django crm_mail --every-s 1`), retries "
                             "included, so no email "
                             "costs the consumer's CPU")
    args = parser.parse_args(argv)
    settings = config.load()
    url = args.events_url or settings.events_url
    from aftercare.event_partitions import parse_partitions

    try:
        mine = parse_partitions(args.partitions, settings.events_partitions)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO)

    async def serve() -> Stats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await Consumer(url, client_id=args.client_id,
                              housekeeping_every_s=args.housekeeping_every_s,
                              partitions=(settings.events_partitions, mine),
                              emails=args.emails).run(stop)

    stats = asyncio.run(serve())
    log.info("stopped: %d applied, %d duplicates, %d rejected", stats.applied, stats.duplicates,
             stats.rejected)
    return 0
