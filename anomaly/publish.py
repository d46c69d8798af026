"""Publishing alert events through FastStream on the broker named by ``EVENTS_URL``.

``mqtt://`` publishes to :data:`aftercare.events.ALERTS_TOPIC` at QoS 1; ``nats://`` to the
subject ``aftercare.alerts`` (NATS separates subject tokens with dots); ``amqp://`` to the durable
queue ``aftercare/alerts`` (declared here, so events wait for a consumer that is not up yet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import orjson

from aftercare.events import ALERTS_TOPIC, event_broker, nats_subject, transport_of

__all__ = ["AlertPublisher", "nats_subject"]

log = logging.getLogger("aftercare.detect")


async def start_with_retry(broker: Any, *, within_s: float = 60.0) -> None:
    """Start (connect) a FastStream broker, retrying with backoff for up to `within_s`: a
    broker node that is restarting or not listening yet is waited for (the events wait in the
    outbox meanwhile); after that the last error is raised."""
    deadline, delay = time.monotonic() + within_s, 0.5
    while True:
        try:
            await broker.start()
            return
        except Exception as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("event broker not reachable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class AlertPublisher(AbstractAsyncContextManager["AlertPublisher"]):
    """Connects on enter, publishes payloads with :meth:`send`, closes on exit."""

    def __init__(self, url: str, *, topic: str = ALERTS_TOPIC,
                 partitions: int | None = None) -> None:
        self.url, self.transport, self.topic = url, transport_of(url), topic
        if partitions is None:
            from aftercare import config

            partitions = config.load().events_partitions
        if partitions > 1 and self.transport != "rabbit":
            raise ValueError("alert-event partitions need RabbitMQ (an amqp:// EVENTS_URL)")
        # > 1: each event goes to its device's partition queue (aftercare.event_partitions)
        self.partitions = partitions
        self._broker: Any = None
        self._send: Callable[[bytes], Awaitable[Any]] | None = None

    async def __aenter__(self) -> AlertPublisher:
        if self.transport == "mqtt":
            from faststream.mqtt import QoS

            mqtt = event_broker(self.url, version="3.1.1", logger=None)
            await start_with_retry(mqtt)

            async def send_mqtt(payload: bytes) -> None:
                await mqtt.publish(payload, topic=self.topic, qos=QoS.AT_LEAST_ONCE)

            self._broker, self._send = mqtt, send_mqtt
        elif self.transport == "nats":
            nats = event_broker(self.url, logger=None)
            await start_with_retry(nats)
            subject = nats_subject(self.topic)

            async def send_nats(payload: bytes) -> None:
                await nats.publish(payload, subject=subject)

            self._broker, self._send = nats, send_nats
        else:
            from faststream.rabbit import RabbitQueue

            rabbit = event_broker(self.url, logger=None)
            await start_with_retry(rabbit)
            if self.partitions > 1:
                self._broker, self._send = rabbit, await self._partitioned(rabbit)
                return self
            queue = RabbitQueue(self.topic, durable=True)
            await rabbit.declare_queue(queue)

            async def send_rabbit(payload: bytes) -> None:
                await rabbit.publish(payload, queue=queue, persist=True)

            self._broker, self._send = rabbit, send_rabbit
        return self

    async def _partitioned(self, rabbit: Any) -> Callable[[bytes], Awaitable[None]]:
        from aftercare.event_partitions import partition_of, rabbit_queue

        queues = [rabbit_queue(i, self.partitions) for i in range(self.partitions)]
        for q in queues:
            await rabbit.declare_queue(q)

        async def send_partitioned(payload: bytes) -> None:
            device = str(orjson.loads(payload)["device"])
            await rabbit.publish(payload, queue=queues[partition_of(device, self.partitions)],
                                 persist=True)

        return send_partitioned

    async def send(self, payload: bytes) -> None:
        """Publish one event payload (JSON bytes)."""
        if self._send is None:
            raise RuntimeError("AlertPublisher used outside `async with`")
        await self._send(payload)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._broker is not None:
            await self._broker.stop()
        self._broker, self._send = None, None
