"""Alert events go out on whichever broker EVENTS_URL names: NATS and RabbitMQ on this machine.

Skipped where a server is missing, except under ``scripts/dev.sh test`` (which checks or starts
both and sets ``AFTERCARE_TEST_ALL_TRANSPORTS=1``): there a missing server fails the test."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid

import pytest

from anomaly.publish import AlertPublisher, nats_subject
from tests.support.relay import Relay, free_port

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
    relay = Relay(5672)
    threading.Timer(1.5, relay.start).start()

    async def scenario() -> list[bytes]:
        topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"
        async with AlertPublisher(f"amqp://guest:guest@127.0.0.1:{relay.port}/", topic=topic,
                                  partitions=1) as pub:
            assert pub.connected
            await pub.send(b'{"alert_id": "late"}')
        relay.kill()
        return await _drain(topic)

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [b'{"alert_id": "late"}']



async def _drain(topic: str) -> list[bytes]:
    import aio_pika

    conn = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(topic, durable=True)
        got = []
        while (msg := await queue.get(timeout=5, fail=False)) is not None:
            got.append(bytes(msg.body))
            await msg.ack()
        await queue.delete(if_unused=False, if_empty=False)
        return got


def test_a_cluster_url_skips_a_dead_node() -> None:
    need_server(5672, "RabbitMQ")
    topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[bytes]:
        url = f"amqp://guest:guest@127.0.0.1:{free_port()},127.0.0.1:5672/"
        async with AlertPublisher(url, topic=topic, partitions=1) as pub:
            assert pub.connected
            await pub.send(b'{"alert_id": "c"}')
        return await _drain(topic)

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == [b'{"alert_id": "c"}']


def test_a_node_dying_mid_stream_moves_publishing_to_the_next() -> None:
    """The node the publisher is on dies: the send that hit it raises PublishUnavailable (the
    caller keeps that event), the next goes to the other node; nothing is ever waited on
    for long, and while no node answers, sends fail at once."""
    need_server(5672, "RabbitMQ")
    from anomaly.publish import PublishUnavailable

    topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[bytes]:
        relay = Relay(5672).start()
        url = f"amqp://guest:guest@127.0.0.1:{relay.port},127.0.0.1:5672/"
        async with AlertPublisher(url, topic=topic, partitions=1, send_timeout_s=3) as pub:
            await pub.send(b"1")                      # through the relay node
            relay.kill()
            await asyncio.sleep(0.2)
            sent = [b"1"]
            for payload in (b"2", b"3", b"4"):
                started = asyncio.get_running_loop().time()
                try:
                    await pub.send(payload)
                    sent.append(payload)
                except PublishUnavailable:
                    pass
                assert asyncio.get_running_loop().time() - started < 15
                if len(sent) == 1:
                    await asyncio.sleep(1.1)          # the first retry is due after 0.5 s
            assert sent[-1] == b"4", sent
            assert len(sent) >= 3, sent
        return await _drain(topic)

    got = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert got[0] == b"1"
    assert got[-1] == b"4"


def test_no_node_answering_fails_fast_then_reconnects() -> None:
    need_server(5672, "RabbitMQ")
    from anomaly.publish import PublishUnavailable

    topic = f"aftercare/test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[bytes]:
        relay = Relay(5672)
        url = f"amqp://guest:guest@127.0.0.1:{relay.port}/"
        loop = asyncio.get_running_loop()
        async with AlertPublisher(url, topic=topic, partitions=1, first_wait_s=0) as pub:
            assert not pub.connected
            for _ in range(20):                       # a detect loop's passes: none waits
                started = loop.time()
                with pytest.raises(PublishUnavailable):
                    await pub.send(b"lost?")
                assert loop.time() - started < 2
            relay.start()
            deadline = loop.time() + 40
            while True:
                try:
                    await pub.send(b"back")
                    break
                except PublishUnavailable:
                    assert loop.time() < deadline
                    await asyncio.sleep(0.5)
        return await _drain(topic)

    assert asyncio.run(asyncio.wait_for(scenario(), 90)) == [b"back"]
