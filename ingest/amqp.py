"""Receiving device messages over AMQP: competing ingest workers on one RabbitMQ quorum queue.

RabbitMQ's MQTT plugin has no shared subscriptions, so on a cluster each ingest worker's MQTT
session receives every message: redundancy, not throughput. With ``INGEST_AMQP_URL`` the
worker instead consumes the durable quorum queue :data:`QUEUE`, bound to ``amq.topic`` (where
the plugin routes what devices publish) for every device kind, as one of any number of
competing consumers: RabbitMQ hands each message to one of them.

The guarantees stay the worker's: a device's QoS 1 PUBACK is sent once the cluster holds the
message in the quorum queue; the worker acknowledges a delivery only after it is in the fsynced
spool (``basic_ack`` with ``multiple``, one per spooled chunk); a delivery not acknowledged
when its worker or node dies goes back to the queue and to another worker, and the store's key
keeps a reading that arrives twice once. A URL naming several nodes
(``amqp://u:p@h1:5672,h2:5672/``) is tried node by node, and the receiver moves on when its
node's connection closes.

The queue must exist before devices publish, or the cluster drops what no queue takes: the
first worker declares it (``aftercare ingest --amqp-url ... --declare-only`` does only that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from aftercare import contract
from aftercare.events import node_name, node_urls

log = logging.getLogger("aftercare.ingest")

QUEUE = "aftercare.ingest"
# The MQTT plugin turns topic levels into routing-key words ('/' -> '.'; a '.' inside a level
# becomes '/'): devices/<id>/<kind> arrives as devices.<id>.<kind>.
BINDINGS = tuple(f"{contract.DEVICES_PREFIX}.*.{kind}" for kind in contract.KINDS)
_SWAP = str.maketrans("./", "/.")


def mqtt_topic(routing_key: str) -> str:
    """The MQTT topic a device published on, from the routing key the plugin made of it.

    >>> mqtt_topic("devices.pump-1.telemetry"), mqtt_topic("devices.pump/1.status")
    ('devices/pump-1/telemetry', 'devices/pump.1/status')
    """
    return routing_key.translate(_SWAP)


async def declare(channel: Any, queue: str = QUEUE) -> None:
    """The durable quorum queue and its bindings (idempotent)."""
    await channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    for key in BINDINGS:
        await channel.queue_bind(queue, "amq.topic", routing_key=key)


def declare_queue(url: str, queue: str = QUEUE) -> str:
    """Declare the queue on the first node of `url` that answers; returns that node."""
    import aiormq

    async def go() -> str:
        errors = []
        for node in node_urls(url):
            try:
                conn = await asyncio.wait_for(aiormq.connect(node), 15)
            except Exception as exc:
                errors.append(f"{node_name(node)}: {exc}")
                continue
            try:
                await declare(await conn.channel(), queue)
            finally:
                await conn.close()
            return node_name(node)
        raise ConnectionError("; ".join(errors))

    return asyncio.run(go())


OnMessage = Callable[[str, bytes, int, int], None]


class AmqpReceiver:
    """Consumes :data:`QUEUE` in its own thread and event loop.

    ``on_message(topic, payload, delivery_tag, generation)`` is called for each delivery, in
    order; :meth:`ack` acknowledges every delivery up to a tag of a generation (a connection:
    tags of an older one are not acknowledged, the broker has requeued them).
    """

    def __init__(self, url: str, *, on_message: OnMessage, prefetch: int = 1000,
                 queue: str = QUEUE, on_connected: Callable[[], None] | None = None,
                 on_disconnected: Callable[[], None] | None = None) -> None:
        self.nodes = node_urls(url)
        self.queue, self.prefetch = queue, prefetch
        self.on_message = on_message
        self.on_connected, self.on_disconnected = on_connected, on_disconnected
        self.generation = 0
        self._turn = 0
        self._channel: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="ingest-amqp")
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        stopping = self._stopping = asyncio.Event()
        self._ready.set()
        try:
            loop.run_until_complete(self._main(stopping))
        finally:
            loop.close()

    async def _main(self, stopping: asyncio.Event) -> None:
        import aiormq

        delay = 0.5
        while not stopping.is_set():
            node = self.nodes[self._turn % len(self.nodes)]
            self._turn += 1
            try:
                conn = await asyncio.wait_for(aiormq.connect(node), 15)
            except Exception as exc:
                log.warning("could not reach the broker at %s (%s); trying the next node",
                            node_name(node), exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                channel = await conn.channel()
                await channel.basic_qos(prefetch_count=self.prefetch)
                await declare(channel, self.queue)
                self.generation += 1
                generation = self.generation

                async def deliver(message: Any, generation: int = generation) -> None:
                    d = message.delivery
                    self.on_message(mqtt_topic(d.routing_key), bytes(message.body),
                                    int(d.delivery_tag), generation)

                self._channel = channel
                await channel.basic_consume(self.queue, deliver, no_ack=False)
                log.info("consuming %s on %s (competing consumers)", self.queue, node_name(node))
                delay = 0.5
                if self.on_connected:
                    self.on_connected()
                closing = asyncio.ensure_future(conn.closing)
                stop = asyncio.ensure_future(stopping.wait())
                await asyncio.wait({closing, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not closing.done():
                    closing.cancel()
                    continue  # stopping: the connection is closed below
                log.warning("connection to %s closed; trying the next node", node_name(node))
            except Exception as exc:
                log.warning("broker %s: %s: %s; trying the next node", node_name(node),
                            type(exc).__name__, exc)
            finally:
                self._channel = None
                if self.on_disconnected:
                    self.on_disconnected()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)

    def ack(self, delivery_tag: int, generation: int) -> None:
        """Acknowledge every delivery up to `delivery_tag` of `generation` (thread-safe)."""
        loop, channel = self._loop, self._channel
        if loop is None or channel is None or generation != self.generation:
            return  # that connection is gone: the broker requeued its deliveries

        async def go() -> None:
            with contextlib.suppress(Exception):  # closed meanwhile: requeued, see above
                await channel.basic_ack(delivery_tag, multiple=True)

        asyncio.run_coroutine_threadsafe(go(), loop)

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(10)

