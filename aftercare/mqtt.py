"""One way to turn an ``mqtt://user:password@host:port`` URL into a configured paho client.

>>> endpoint("mqtts://ingest:s3cr%40t@broker.example:8884")
Endpoint(host='broker.example', port=8884, username='ingest', password='s3cr@t', tls=True)
>>> endpoint("mqtt://127.0.0.1").port
1883
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
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


def make_client(url: str, client_id: str = "", *, manual_ack: bool = False) -> mqtt.Client:
    """An MQTT 5 paho client with the URL's credentials and TLS set (not yet connected)."""
    ep = endpoint(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if ep.username is not None:
        client.username_pw_set(ep.username, ep.password or "")
    if ep.tls:
        client.tls_set()
    return client
