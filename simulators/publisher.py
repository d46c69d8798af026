"""MQTT side of the simulator: one paho client per device, all driven from one thread.

Each simulated device logs in as itself (username = device id, password derived from the
deployment's device secret), because the broker's ACL lets a device write only under
``devices/{its id}/``; a shared "gateway" login would be refused. Holding thousands of
paho clients is cheap if they share one event loop: we use paho's external-loop API
(``loop_read`` / ``loop_write`` / ``loop_misc``) on an epoll selector instead of a thread
per client.

Tradeoff for very large fleets: at most ``max_connections`` devices hold a connection at a
time. When the fleet is larger, devices take turns: a device without a connection keeps its
readings in its store-and-forward buffer and sends them as one batch payload
(``{"readings": [...]}``) when its turn comes. Data arrive late, never lost; the device's
retained status stays as last published.

Store-and-forward: a device whose connection is down (broker unreachable, restart) buffers
readings (bounded, oldest dropped and counted) and, once reconnected, sends them as batch
payloads before anything new. QoS 1 throughout; each client's will is its retained
``offline`` status. Unacknowledged QoS 1 messages per client are capped
(``max_outstanding``): paho refuses a publish whose 16-bit message id is still in flight,
and a long in-flight list makes it slow (a 1,000-message limit measured 4 k msgs/s against
7.8 k/s: each acknowledgement scans the list); readings beyond the cap
wait in the buffer and leave batched.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aftercare.contract import STATUS, device_topic
from aftercare.mqtt import endpoint

__all__ = ["BrokerAddress", "FleetPublisher", "PublisherStats", "status_payload"]

log = logging.getLogger(__name__)

#: Largest payload the contract accepts; batch payloads are cut below it.
MAX_PAYLOAD_BYTES = 256 * 1024


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens (credentials in the URL are ignored: devices use their own)."""

    host: str
    port: int
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt://host:port`` or ``mqtts://...``.

        >>> BrokerAddress.from_url("mqtt://u:p@127.0.0.1:1884")
        BrokerAddress(host='127.0.0.1', port=1884, tls=False)
        """
        if not urlsplit(url).hostname:
            raise ValueError(f"not an mqtt:// or mqtts:// URL with a host: {url!r}")
        try:
            ep = endpoint(url)
        except ValueError:
            raise ValueError(f"not an mqtt:// or mqtts:// URL with a host: {url!r}") from None
        return cls(ep.host, ep.port, ep.tls)


def status_payload(state: str, ts_ms: int | None = None) -> bytes:
    """The retained ``devices/{id}/status`` message.

    >>> status_payload("offline", 0)
    b'{"state":"offline","ts":0}'
    """
    if ts_ms is None:
        ts_ms = int(datetime.now(UTC).timestamp() * 1000)
    return orjson.dumps({"state": state, "ts": ts_ms})


@dataclass
class PublisherStats:
    """Counters since start: messages handed to the broker, acked, and buffered readings."""

    published: int = 0
    acked: int = 0
    readings_sent: int = 0
    batches_sent: int = 0
    raw_sent: int = 0
    readings_dropped: int = 0
    connects: int = 0
    disconnects: int = 0
    bytes_sent: int = 0


@dataclass
class _Link:
    index: int
    device_id: str
    client: mqtt.Client
    connected: bool = False
    sock: socket.socket | None = None
    fd: int = -1
    held_down: bool = False  # the device is switched off (device_offline fault)
    outstanding: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    raw: deque[tuple[str, bytes]] = field(default_factory=deque)
    next_attempt: float = 0.0
    backoff_s: float = 0.5
    connected_at: float = 0.0
    next_flush: float = 0.0


class FleetPublisher:
    """Publish telemetry for many devices, each with its own credentials, from one thread.

    Call :meth:`send` / :meth:`send_raw` as data are generated and :meth:`service` often
    (it does the network I/O, reconnects and flushes buffers). Not thread-safe.

    Parameters
    ----------
    device_ids : sequence of str
    address : BrokerAddress
    password_for : callable
        Device id -> MQTT password.
    max_connections : int
        Devices connected at once; see the module docstring for larger fleets.
    buffer_max_readings : int
        Per-device store-and-forward capacity; the oldest readings are dropped beyond it.
    max_outstanding : int
        Unacknowledged QoS 1 messages per connection before readings queue up for batching.
    batch_max_readings : int
        Most readings in one batch payload (also kept under the 256 KiB payload limit).
    publish_interval_s : float
        0: each reading leaves as soon as it is made. Otherwise each device collects its
        readings and sends them as one batch payload every ``publish_interval_s`` (wall
        seconds, staggered across devices), as a gateway does: on a fleet of thousands this
        is what keeps up, because every message costs a ``send()`` system call and a broker
        wake-up, whatever its size.
    """

    def __init__(
        self,
        device_ids: Sequence[str],
        *,
        address: BrokerAddress,
        password_for: Callable[[str], str],
        max_connections: int = 2000,
        buffer_max_readings: int = 100_000,
        max_outstanding: int = 200,
        batch_max_readings: int = 500,
        publish_interval_s: float = 0.0,
        keepalive_s: int = 30,
        client_id_prefix: str = "aftercare-sim-",
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"`max_connections` must be >= 1, got {max_connections}")
        self.address = address
        self.max_connections = max_connections
        self.buffer_max_readings = buffer_max_readings
        self.max_outstanding = max_outstanding
        self.batch_max_readings = batch_max_readings
        if publish_interval_s < 0:
            raise ValueError(f"`publish_interval_s` must be >= 0, got {publish_interval_s}")
        self.publish_interval_s = publish_interval_s
        self._flush_all = False
        self._dial_after = 0.0
        self.keepalive_s = keepalive_s
        self.stats = PublisherStats()
        self._selector = selectors.DefaultSelector()
        self._links: list[_Link] = []
        self._by_sock: dict[int, _Link] = {}
        self._turn = 0
        for i, dev in enumerate(device_ids):
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"{client_id_prefix}{dev}",
                protocol=mqtt.MQTTv311,
                clean_session=True,
            )
            client.username_pw_set(dev, password_for(dev))
            client.will_set(device_topic(dev, STATUS), status_payload("offline"), qos=1,
                            retain=True)
            client.max_queued_messages_set(0)
            client.connect_timeout = 3.0
            if address.tls:
                client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
            link = _Link(i, dev, client)
            link.next_flush = time.monotonic() + publish_interval_s * (i + 1) / len(device_ids)
            client.user_data_set(link)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_publish = self._on_publish
            self._links.append(link)

    # -- paho callbacks (run inside loop_read/loop_misc, on our thread) --------------------

    def _on_connect(self, client: mqtt.Client, link: _Link, flags: Any, rc: Any,
                    props: Any) -> None:
        if rc.is_failure:
            # Bad credentials do not get better by retrying fast.
            log.error("broker refused %s: %s", link.device_id, rc)
            link.backoff_s = 30.0
            return
        link.connected = True
        link.connected_at = time.monotonic()
        link.backoff_s = 0.5
        link.outstanding = 0
        self.stats.connects += 1
        client.publish(device_topic(link.device_id, STATUS), status_payload("online"), qos=1,
                       retain=True)
        link.outstanding += 1

    def _on_disconnect(self, client: mqtt.Client, link: _Link, flags: Any, rc: Any,
                       props: Any) -> None:
        if link.connected:
            self.stats.disconnects += 1
        link.connected = False
        self._forget_socket(link)
        link.next_attempt = time.monotonic() + link.backoff_s
        link.backoff_s = min(link.backoff_s * 2.0, 30.0)

    def _on_publish(self, client: mqtt.Client, link: _Link, mid: int, rc: Any,
                    props: Any) -> None:
        link.outstanding = max(0, link.outstanding - 1)
        self.stats.acked += 1

    # -- public API ------------------------------------------------------------------------

    @property
    def device_ids(self) -> list[str]:
        return [lk.device_id for lk in self._links]

    @property
    def connected_count(self) -> int:
        return sum(lk.connected for lk in self._links)

    @property
    def buffered_readings(self) -> int:
        return sum(len(lk.buffer) for lk in self._links)

    @property
    def outstanding(self) -> int:
        return sum(lk.outstanding for lk in self._links)

    def send(self, index: int, reading: dict[str, Any]) -> None:
        """Queue one telemetry reading (``{"ts", "seq", "metrics"}``) of device ``index``.

        Sent at once when the device is connected and not backed up; buffered otherwise.
        """
        link = self._links[index]
        if (link.buffer or not link.connected or link.outstanding >= self.max_outstanding
                or self.publish_interval_s):
            self._buffer(link, reading)
            return
        self._publish(link, "telemetry", orjson.dumps(reading))
        self.stats.readings_sent += 1

    def send_raw(self, index: int, suffix: str, payload: bytes) -> None:
        """Publish ``payload`` verbatim on ``devices/{id}/{suffix}`` (waveforms, malformed)."""
        link = self._links[index]
        if not link.connected or link.outstanding >= self.max_outstanding:
            link.raw.append((suffix, payload))
            while len(link.raw) > 64:  # bursts are large; keep only the latest few
                link.raw.popleft()
            return
        self._publish(link, suffix, payload)
        self.stats.raw_sent += 1

    def connect(self, *, wait_s: float = 10.0) -> int:
        """Open connections (up to ``max_connections``) and wait for the broker's CONNACKs."""
        deadline = time.monotonic() + wait_s
        want = min(len(self._links), self.max_connections)
        while True:
            self.service(0.05)
            if self.connected_count >= want or time.monotonic() > deadline:
                return self.connected_count

    def service(self, timeout_s: float = 0.0) -> None:
        """Network I/O for every connection, reconnects and buffer flushes, once."""
        self._dial()
        for key, _ in self._selector.select(timeout=timeout_s):
            link = self._by_sock.get(key.fd)
            if link is not None:
                link.client.loop_read()
        now = time.monotonic()
        interval = 0.0 if self._flush_all else self.publish_interval_s
        for link in self._links:
            if link.sock is None:
                continue
            if link.connected and link.outstanding < self.max_outstanding and (
                    link.raw or (link.buffer and (not interval or now >= link.next_flush))):
                self._flush(link)
                if interval and now >= link.next_flush:
                    link.next_flush += interval * ((now - link.next_flush) // interval + 1)
            if link.sock is not None and link.client.want_write():
                link.client.loop_write()
        now = time.monotonic()
        if now >= getattr(self, "_misc_at", 0.0):
            self._misc_at = now + 1.0
            for link in self._links:
                if link.sock is not None:
                    link.client.loop_misc()

    def drain(self, *, timeout_s: float = 30.0) -> bool:
        """Service until every buffer is sent and every QoS 1 message acked (or timeout)."""
        deadline = time.monotonic() + timeout_s
        self._flush_all = True
        try:
            while time.monotonic() < deadline:
                self.service(0.02)
                if not any(lk.buffer or lk.raw or lk.outstanding for lk in self._links):
                    return True
            return False
        finally:
            self._flush_all = False

    def close(self, *, announce_offline: bool = True) -> None:
        """Say goodbye: retained ``offline`` status (as the will would), then disconnect."""
        for link in self._links:
            if link.connected and announce_offline:
                link.client.publish(device_topic(link.device_id, STATUS),
                                    status_payload("offline"), qos=1, retain=True)
                link.outstanding += 1
        self.drain(timeout_s=5.0)
        for link in self._links:
            if link.sock is not None:
                link.connected = False
                link.client.disconnect()
                self._forget_socket(link)
                link.client.loop_misc()
        self._selector.close()

    def drop_connection(self, index: int) -> None:
        """Cut a device's socket without DISCONNECT, as a network failure would."""
        link = self._links[index]
        if link.sock is not None:
            link.sock.shutdown(socket.SHUT_RDWR)

    def power(self, index: int, *, on: bool) -> None:
        """Switch a device off (its link drops and the broker sends its will) or back on.

        While off, nothing is buffered: a device without power measures nothing.
        """
        link = self._links[index]
        if link.held_down == (not on):
            return
        link.held_down = not on
        if not on:
            link.buffer.clear()
            link.raw.clear()
            self.drop_connection(index)
        else:
            link.next_attempt = 0.0
            link.backoff_s = 0.5

    def is_on(self, index: int) -> bool:
        return not self._links[index].held_down

    # -- internals -------------------------------------------------------------------------

    def _buffer(self, link: _Link, reading: dict[str, Any]) -> None:
        link.buffer.append(reading)
        if len(link.buffer) > self.buffer_max_readings:
            link.buffer.popleft()
            self.stats.readings_dropped += 1

    def _publish(self, link: _Link, suffix: str, payload: bytes) -> None:
        info = link.client.publish(device_topic(link.device_id, suffix), payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise RuntimeError(f"paho queue full for {link.device_id}")
        link.outstanding += 1
        self.stats.published += 1
        self.stats.bytes_sent += len(payload)

    def _flush(self, link: _Link) -> None:
        while link.raw and link.outstanding < self.max_outstanding:
            suffix, payload = link.raw.popleft()
            self._publish(link, suffix, payload)
            self.stats.raw_sent += 1
        while link.buffer and link.outstanding < self.max_outstanding:
            if len(link.buffer) == 1:
                self._publish(link, "telemetry", orjson.dumps(link.buffer.popleft()))
                self.stats.readings_sent += 1
                continue
            n = min(len(link.buffer), self.batch_max_readings)
            batch = [link.buffer.popleft() for _ in range(n)]
            payload = orjson.dumps({"readings": batch})
            while len(payload) > MAX_PAYLOAD_BYTES and len(batch) > 1:
                keep = len(batch) // 2
                for r in reversed(batch[keep:]):
                    link.buffer.appendleft(r)
                batch = batch[:keep]
                payload = orjson.dumps({"readings": batch})
            self._publish(link, "telemetry", payload)
            self.stats.readings_sent += len(batch)
            self.stats.batches_sent += 1

    def _forget_socket(self, link: _Link) -> None:
        if link.sock is not None:
            self._by_sock.pop(link.fd, None)
            with contextlib.suppress(KeyError, ValueError, OSError):  # paho closed it already
                self._selector.unregister(link.fd)
            link.sock = None
            link.fd = -1

    def _dial(self) -> None:
        """Open connections for devices that need one, within the pool limit."""
        now = time.monotonic()
        if now < self._dial_after:
            return
        open_now = sum(lk.sock is not None for lk in self._links)
        n = len(self._links)
        if n > self.max_connections and open_now >= self.max_connections:
            self._rotate(now)
            open_now = sum(lk.sock is not None for lk in self._links)
        budget = self.max_connections - open_now
        # A bounded number of dials per call keeps one call short on a big fleet.
        budget = min(budget, 200)
        for k in range(n):
            if budget <= 0:
                break
            link = self._links[(self._turn + k) % n]
            if link.sock is not None or now < link.next_attempt or link.held_down:
                continue
            if n > self.max_connections and not (link.buffer or link.raw):
                continue  # a rotating device only needs a turn when it has data
            if not self._open(link, now):
                # The broker is unreachable: one failed dial is enough to know, and on a big
                # fleet trying every device would block this thread for minutes.
                self._dial_after = now + link.backoff_s
                break
            budget -= 1
        self._turn = (self._turn + 1) % max(n, 1)

    def _rotate(self, now: float) -> None:
        """Free slots held by idle devices when others wait with data (large fleets)."""
        waiting = sum(1 for lk in self._links if lk.sock is None and (lk.buffer or lk.raw))
        for link in self._links:
            if waiting <= 0:
                break
            if (link.connected and not link.buffer and not link.raw and not link.outstanding
                    and now - link.connected_at > 1.0):
                link.connected = False
                link.client.disconnect()
                link.client.loop_write()
                self._forget_socket(link)
                link.client.loop_misc()
                waiting -= 1

    def _open(self, link: _Link, now: float) -> bool:
        """Dial the broker for one device; False if the broker could not be reached."""
        # The will is fixed at CONNECT: refresh its timestamp for this connection.
        link.client.will_set(device_topic(link.device_id, STATUS), status_payload("offline"),
                             qos=1, retain=True)
        try:
            link.client.connect(self.address.host, self.address.port,
                                keepalive=self.keepalive_s)
        except OSError as exc:
            log.debug("connect %s failed: %s", link.device_id, exc)
            link.next_attempt = now + link.backoff_s
            link.backoff_s = min(link.backoff_s * 2.0, 30.0)
            return False
        sock = link.client.socket()
        if not isinstance(sock, socket.socket):
            link.next_attempt = now + link.backoff_s
            return True
        stale = self._by_sock.get(sock.fileno())
        if stale is not None:  # the fd was reused after paho closed the old socket
            self._forget_socket(stale)
        link.sock = sock
        link.fd = sock.fileno()
        self._by_sock[link.fd] = link
        self._selector.register(link.fd, selectors.EVENT_READ)
        return True

