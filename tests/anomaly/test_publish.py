"""Alert events go out on whichever broker EVENTS_URL names: NATS and RabbitMQ on this machine.

Skipped where a server is missing, except under ``scripts/dev.sh test`` (which checks or starts
both and sets ``AFTERCARE_TEST_ALL_TRANSPORTS=1``): there a missing server fails the test."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from anomaly.publish import AlertPublisher, nats_subject

pytestmark = pytest.mark.broker


def need_server(port: int, name: str) -> None:
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return
    if os.environ.get("AFTERCARE_TEST_ALL_TRANSPORTS") == "1":
        pytest.fail(f"no {name} on 127.0.0.1:{port} (scripts/dev.sh test starts it as root)")
    pytest.skip(f"no {name} on 127.0.0.1:{port}")


def test_publishes_on_nats() -> None:
    need_server(4222, "NATS server")
    import nats

    topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"

    async def roundtrip() -> bytes:
        nc = await nats.connect("nats://127.0.0.1:4222")
        sub = await nc.subscribe(nats_subject(topic))
        async with AlertPublisher("nats://127.0.0.1:4222", topic=topic) as pub:
            await pub.send(b'{"alert_id": "a"}')
        msg = await sub.next_msg(timeout=10)
        await nc.close()
        return bytes(msg.data)

    assert asyncio.run(roundtrip()) == b'{"alert_id": "a"}'


def test_publishes_on_rabbitmq_into_a_durable_queue() -> None:
    need_server(5672, "RabbitMQ")
    import aio_pika

    url = "amqp://guest:guest@127.0.0.1:5672/"
    topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"

    async def roundtrip() -> bytes:
        # Published before anyone consumes: the declared durable queue keeps it.
        async with AlertPublisher(url, topic=topic) as pub:
            await pub.send(b'{"alert_id": "b"}')
        conn = await aio_pika.connect(url)
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(topic, durable=True)
            msg = await queue.get(timeout=10)
            await msg.ack()
            await queue.delete(if_unused=False, if_empty=False)
            return bytes(msg.body)

    assert asyncio.run(roundtrip()) == b'{"alert_id": "b"}'


def test_rejects_an_unsupported_scheme() -> None:
    with pytest.raises(ValueError, match="not supported"):
        AlertPublisher("redis://127.0.0.1:6379")


def test_a_broker_that_is_not_listening_yet_is_waited_for() -> None:
    """The detect worker's publisher waits for a RabbitMQ node that starts listening a moment
    later (a node restarting), instead of dying: here a TCP relay to the real server opens its
    port 1.5 s after the publisher first tries it."""
    need_server(5672, "RabbitMQ")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", 5672)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer), return_exceptions=True)

    async def late_server() -> asyncio.base_events.Server:
        await asyncio.sleep(1.5)
        return await asyncio.start_server(relay, "127.0.0.1", port)

    async def scenario() -> None:
        opening = asyncio.create_task(late_server())
        topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"
        async with AlertPublisher(f"amqp://guest:guest@127.0.0.1:{port}/", topic=topic,
                                  partitions=1) as pub:
            await pub.send(b'{"alert_id": "late"}')
        server = await opening
        server.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))
