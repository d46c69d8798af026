"""Publishing alert events through FastStream on the broker named by ``EVENTS_URL``.

``mqtt://`` publishes to :data:`aftercare.events.ALERTS_TOPIC` at QoS 1; ``nats://`` to the
subject ``aftercare.alerts`` (NATS separates subject tokens with dots); ``amqp://`` to the durable
queue ``aftercare/alerts`` (declared here, so events wait for a consumer that is not up yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import orjson

from aftercare.events import (
    ALERTS_TOPIC,
    event_broker,
    nats_subject,
    node_name,
    node_urls,
    transport_of,
)

__all__ = ["AlertPublisher", "PublishUnavailable", "nats_subject"]

log = logging.getLogger("aftercare.detect")


class PublishUnavailable(ConnectionError):
    """No event broker node takes events just now: they stay in the outbox, detection goes
    on, and the next publish pass tries the next node."""


class AlertPublisher(AbstractAsyncContextManager["AlertPublisher"]):
    """Connects on enter, publishes payloads with :meth:`send`, closes on exit.

    ``url`` may name a cluster (``amqp://u:p@h1:5672,h2:5672/``): the publisher connects to
    one node and, when that node stops taking events (connect refused, a send failing or
    hanging past ``send_timeout_s``), moves to the next one. It never gives up: while no node
    answers, :meth:`send` raises :class:`PublishUnavailable` at once (reconnection is tried at
    most every few seconds, backing off to ``max_retry_s``), so the detect worker keeps
    detecting into its outbox and publishes the backlog, in order, once a node is back.
    """

    def __init__(self, url: str, *, topic: str = ALERTS_TOPIC,
                 partitions: int | None = None, first_wait_s: float = 10.0,
                 connect_timeout_s: float = 10.0, send_timeout_s: float = 10.0,
                 max_retry_s: float = 30.0) -> None:
        self.url, self.transport, self.topic = url, transport_of(url), topic
        self.nodes = node_urls(url)
        if partitions is None:
            from aftercare import config

            partitions = config.load().events_partitions
        if partitions > 1 and self.transport != "rabbit":
            raise ValueError("alert-event partitions need RabbitMQ (an amqp:// EVENTS_URL)")
        # > 1: each event goes to its asset's partition queue (aftercare.event_partitions);
        # `event_key` maps the event's device to what orders it (the worker sets it from its
        # catalogue: the device's asset; by default the device itself).
        self.partitions = partitions
        self.event_key: Callable[[str], str] = str
        self.first_wait_s, self.connect_timeout_s = first_wait_s, connect_timeout_s
        self.send_timeout_s, self.max_retry_s = send_timeout_s, max_retry_s
        self._turn = 0                      # the node to try next
        self._retry_at, self._delay = 0.0, 0.5
        self._broker: Any = None
        self._send: Callable[[bytes], Awaitable[Any]] | None = None
        self._entered = False

    @property
    def connected(self) -> bool:
        return self._send is not None

    def due(self) -> bool:
        """Connected, or the next reconnection try is due (else a send fails at once)."""
        return self._send is not None or time.monotonic() >= self._retry_at

    async def __aenter__(self) -> AlertPublisher:
        """Connect, waiting up to ``first_wait_s`` (a broker starting next to the worker);
        if no node answers by then, carry on unconnected (see the class doc)."""
        self._entered = True
        deadline = time.monotonic() + self.first_wait_s
        while True:
            with contextlib.suppress(PublishUnavailable):
                await self._connect()
                return self
            if time.monotonic() + self._delay > deadline:
                log.warning("no event broker node reachable (%s); detecting into the outbox "
                            "meanwhile", ", ".join(map(node_name, self.nodes)))
                return self
            await asyncio.sleep(max(0.0, self._retry_at - time.monotonic()))

    async def _connect(self) -> None:
        """Try each node once, starting with the next in turn; raise PublishUnavailable if
        none connects (and set when the next try is due)."""
        errors = []
        for _ in range(len(self.nodes)):
            node = self.nodes[self._turn % len(self.nodes)]
            self._turn += 1
            try:
                broker, send = await asyncio.wait_for(self._open(node),
                                                      self.connect_timeout_s)
            except Exception as exc:  # refused, reset, timed out, authentication
                errors.append(f"{node_name(node)}: {type(exc).__name__}: {exc}"[:200])
                continue
            self._broker, self._send = broker, send
            self._delay = 0.5
            if len(self.nodes) > 1 or errors:
                log.info("publishing alert events to %s", node_name(node))
            return
        self._retry_at = time.monotonic() + self._delay
        log.warning("event broker not reachable (%s); retrying in %.1f s", "; ".join(errors),
                    self._delay)
        self._delay = min(self._delay * 2, self.max_retry_s)
        raise PublishUnavailable("; ".join(errors))

    async def _open(self, url: str) -> tuple[Any, Callable[[bytes], Awaitable[Any]]]:
        options: dict[str, Any] = {"version": "3.1.1"} if self.transport == "mqtt" else {}
        broker = event_broker(url, logger=None, **options)
        try:
            await broker.start()
            return broker, await self._sender(broker)
        except BaseException:  # a half-open connection would keep reconnecting by itself
            await asyncio.shield(self._stop(broker))
            raise

    async def _sender(self, broker: Any) -> Callable[[bytes], Awaitable[Any]]:
        if self.transport == "mqtt":
            from faststream.mqtt import QoS

            async def send_mqtt(payload: bytes) -> None:
                await broker.publish(payload, topic=self.topic, qos=QoS.AT_LEAST_ONCE)

            return send_mqtt
        if self.transport == "nats":
            subject = nats_subject(self.topic)

            async def send_nats(payload: bytes) -> None:
                await broker.publish(payload, subject=subject)

            return send_nats
        from faststream.rabbit import RabbitQueue

        if self.partitions > 1:
            return await self._partitioned(broker)
        queue = RabbitQueue(self.topic, durable=True)
        await broker.declare_queue(queue)

        async def send_rabbit(payload: bytes) -> None:
            await broker.publish(payload, queue=queue, persist=True)

        return send_rabbit

    async def _stop(self, broker: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(broker.stop(), 5)

    async def _drop(self) -> None:
        broker, self._broker, self._send = self._broker, None, None
        if broker is not None:
            await self._stop(broker)

    async def _partitioned(self, rabbit: Any) -> Callable[[bytes], Awaitable[None]]:
        from aftercare.event_partitions import partition_of, rabbit_queue

        queues = [rabbit_queue(i, self.partitions) for i in range(self.partitions)]
        for q in queues:
            await rabbit.declare_queue(q)

        async def send_partitioned(payload: bytes) -> None:
            key = self.event_key(str(orjson.loads(payload)["device"]))
            await rabbit.publish(payload, queue=queues[partition_of(key, self.partitions)],
                                 persist=True)

        return send_partitioned

    async def send(self, payload: bytes) -> None:
        """Publish one event payload (JSON bytes); PublishUnavailable if no node takes it."""
        if not self._entered:
            raise RuntimeError("AlertPublisher used outside `async with`")
        if self._send is None:
            if time.monotonic() < self._retry_at:
                raise PublishUnavailable("no event broker node reachable")
            await self._connect()
        send = self._send
        if send is None:  # _connect either sets it or raises
            raise PublishUnavailable("no event broker node reachable")
        try:
            await asyncio.wait_for(send(payload), self.send_timeout_s)
        except Exception as exc:
            log.warning("publishing to %s failed (%s: %s); trying the next node",
                        node_name(self.nodes[(self._turn - 1) % len(self.nodes)]),
                        type(exc).__name__, exc)
            await self._drop()
            raise PublishUnavailable(str(exc)) from exc

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._drop()
        self._entered = False

