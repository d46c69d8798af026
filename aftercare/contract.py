"""The device contract's names, written once: what a device and a metric may be called, the
topics devices publish on and the topic alert events go out on.

Everything that names a topic or checks an identifier (the broker's ACL, the ingest worker's
subscriptions and decoder, the simulators, the CRM's device field and the API's device URLs)
uses these; the payloads themselves are decoded in ``ingest/decode.py``.

>>> device_topic("pump-1", TELEMETRY), topic_filter(STATUS)
('devices/pump-1/telemetry', 'devices/+/status')
>>> TOPIC.fullmatch("devices/pump-1/waveform").groups()
('pump-1', 'waveform')
>>> bool(DEVICE_ID.fullmatch("pump 1")), bool(METRIC_NAME.fullmatch("flow_m3h"))
(False, True)
"""

from __future__ import annotations

import re
from typing import Literal

# A device id is the device's MQTT user name and its topic level: no '/', '+', '#' or space.
DEVICE_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
DEVICE_ID_RULE = "Device ids are 1-64 of A-Z a-z 0-9 _ . -"
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

Kind = Literal["telemetry", "status", "waveform"]
TELEMETRY: Kind = "telemetry"
STATUS: Kind = "status"
WAVEFORM: Kind = "waveform"
KINDS: tuple[Kind, ...] = (TELEMETRY, STATUS, WAVEFORM)
DEVICES_PREFIX = "devices"
TOPIC = re.compile(rf"{DEVICES_PREFIX}/([^/]+)/({'|'.join(KINDS)})")

# Alert events (aftercare.events): the MQTT topic, the RabbitMQ queue, the NATS subject's source.
ALERTS_TOPIC = "aftercare/alerts"


def device_topic(device_id: str, kind: str) -> str:
    """Where device ``device_id`` publishes messages of ``kind``."""
    return f"{DEVICES_PREFIX}/{device_id}/{kind}"


def topic_filter(kind: str, device: str = "+") -> str:
    """The subscription (or ACL) filter for ``kind`` from every device (``+``), or from
    ``device`` (``%u`` in a Mosquitto ACL pattern)."""
    return device_topic(device, kind)
