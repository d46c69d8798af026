"""What decoding produces: a reading to store, or a bad message to keep with its reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    """One metric value of one device at one instant; ``value`` None means "no reading"."""

    device: str
    metric: str
    time_us: int  # microseconds since the Unix epoch, UTC
    value: float | None

    @property
    def time(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.time_us)


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A payload that breaks the contract, kept verbatim with a short fixed reason."""

    topic: str
    payload: bytes
    reason: str
    detail: str | None = None
    received_at: datetime | None = None
    # Where the message was spooled (worker, segment, offset): a replay never keeps it twice.
    source_key: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    device: str
    state: str  # "online" | "offline"
    time_us: int

    @property
    def time(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.time_us)


@dataclass(frozen=True, slots=True)
class Waveform:
    device: str
    time_us: int
    channel: str
    sample_rate_hz: float
    samples: bytes  # float32 little-endian, as sent
    shaft_rpm: float | None = None  # the shaft speed during the burst, when the device sends it

    @property
    def time(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.time_us)
