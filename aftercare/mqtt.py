"""One way to turn an ``mqtt://user:password@host:port`` URL into a configured paho client.

>>> endpoint("mqtts://ingest:s3cr%40t@broker.example:8884")
Endpoint(host='broker.example', port=8884, username='ingest', password='s3cr@t', tls=True)
>>> endpoint("mqtt://127.0.0.1").port
1883

A broker cluster is a list of nodes in one URL (as libpq does), and ``?protocol=3.1.1`` picks
MQTT 3.1.1 for a broker without MQTT 5 (RabbitMQ before 3.13); a client made from it fails over
to the next node by itself (:func:`connect_async`):

>>> [e.port for e in endpoints("mqtt://u:p@10.0.0.1:1883,10.0.0.2:1884,10.0.0.3/?protocol=3.1.1")]
[1883, 1884, 1883]
>>> protocol("mqtt://h/?protocol=3.1.1") == mqtt.MQTTv311, protocol("mqtt://h") == mqtt.MQTTv5
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def endpoint(url: str) -> Endpoint:
    """The URL's (first) node."""
    parts = urlsplit(url)
    if "," in parts.netloc:
        return endpoints(url)[0]
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"not an MQTT URL (mqtt:// or mqtts://): {url!r}")
    tls = parts.scheme == "mqtts"
    return Endpoint(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
    )


_PROTOCOLS: dict[str, MQTTProtocolVersion] = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}


def endpoints(url: str) -> list[Endpoint]:
    """Every node of ``mqtt://user:pw@host1:port1,host2:port2/...``, in order."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    prefix = f"{parts.scheme}://{userinfo + '@' if userinfo else ''}"
    return [endpoint(prefix + h) for h in hosts.split(",") if h] or [endpoint(url)]


def protocol(url: str) -> MQTTProtocolVersion:
    """The MQTT protocol a URL asks for: 5 unless ``?protocol=3.1.1``."""
    wanted = parse_qs(urlsplit(url).query).get("protocol", ["5"])[-1]
    try:
        return _PROTOCOLS[wanted]
    except KeyError:
        raise ValueError(f"protocol={wanted!r}: use one of {', '.join(_PROTOCOLS)}") from None


def connect_async(client: mqtt.Client, url: str, *, start: int = 0, **kw: Any) -> None:
    """``client.connect_async`` to the URL's first node (from `start`, modulo the node count);
    each later (re)connect attempt goes to the next node, so a client whose node died
    reconnects to another one by itself. `kw` goes to paho (keepalive, clean_start, ...)."""
    eps = endpoints(url)
    turn = [start % len(eps)]

    def next_node(c: mqtt.Client, userdata: Any) -> None:
        ep = eps[turn[0] % len(eps)]
        # paho's host/port setters refuse while it is CONNECTING, which it already is when it
        # calls on_pre_connect (after closing the old socket, before opening the new one).
        c._host, c._port = ep.host, ep.port
        turn[0] += 1

    first = eps[turn[0]]
    client.on_pre_connect = next_node if len(eps) > 1 else None
    client.connect_async(first.host, first.port, **kw)


def make_client(url: str, client_id: str = "", *, manual_ack: bool = False,
                clean_session: bool | None = None) -> mqtt.Client:
    """A paho client (MQTT 5, or 3.1.1 if the URL says so) with the URL's credentials and TLS
    set (not yet connected). `clean_session` applies to MQTT 3.1.1 only."""
    ep = endpoints(url)[0]
    proto = protocol(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto,
                         manual_ack=manual_ack,
                         clean_session=clean_session if proto != mqtt.MQTTv5 else None)
    if ep.username is not None:
        client.username_pw_set(ep.username, ep.password or "")
    if ep.tls:
        client.tls_set()
    return client
