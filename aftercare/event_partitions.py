"""Alert events split into partitions by asset, so several CRM consumers share the load while
each asset's events stay in order.

On RabbitMQ (``EVENTS_URL=amqp://...``) with ``EVENTS_PARTITIONS=K`` > 1, the publisher sends
each event to the quorum queue of its asset's partition, ``aftercare/alerts.{i}of{K}``: the key
is ``asset:<id>`` for a device an asset claimed (the detect worker's catalogue,
:meth:`anomaly.catalogue.Catalogue.event_key`), so an asset with several devices has all its
events in one queue, and the device id for a device no asset claimed. Each queue has a *single
active consumer*. A consumer process takes a set of partitions (``aftercare crm-consumer
--partitions 0,1``); a second process given the same partitions is a standby, which RabbitMQ
makes active, in order, when the first one dies. A device moved to another asset takes its
later events to that asset's partition (events already queued are applied first only within
each partition).

>>> partition_of("pump-1", 4) == partition_of("pump-1", 4), 0 <= partition_of("x", 3) < 3
(True, True)
>>> queue_name(2, 4)
'aftercare/alerts.2of4'
>>> parse_partitions("0,2", 4), parse_partitions("", 3)
([0, 2], [0, 1, 2])
"""

from __future__ import annotations

import zlib
from typing import Any

from aftercare.events import ALERTS_TOPIC


def partition_of(key: str, partitions: int) -> int:
    """The partition of an event key (CRC-32: the same in every process)."""
    return zlib.crc32(key.encode("utf-8")) % partitions


def queue_name(part: int, partitions: int) -> str:
    return f"{ALERTS_TOPIC}.{part}of{partitions}"


def parse_partitions(text: str, partitions: int) -> list[int]:
    """``"0,2"`` as a sorted list of partitions; empty means all of them."""
    if not text.strip():
        return list(range(partitions))
    try:
        parts = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise ValueError(f"--partitions {text!r}: comma-separated numbers") from None
    bad = [p for p in parts if not 0 <= p < partitions]
    if bad:
        raise ValueError(f"--partitions {text!r}: {bad} outside 0..{partitions - 1} "
                         f"(EVENTS_PARTITIONS={partitions})")
    return parts


def rabbit_queue(part: int, partitions: int) -> Any:
    """The FastStream declaration of one partition's queue (publisher and consumer alike, so
    their declarations never disagree)."""
    from faststream.rabbit import QueueType, RabbitQueue

    return RabbitQueue(queue_name(part, partitions), durable=True,
                       queue_type=QueueType.QUORUM,
                       arguments={"x-single-active-consumer": True})
