"""Running a fleet: live (real time or accelerated) to the broker, or backfill to the store.

Generation is vectorised (:class:`~simulators.fleet.FleetSimulator`, whole chunks for the
whole fleet); turning a chunk into MQTT payloads is necessarily one message per device and
step, and is kept to a dict build and an ``orjson.dumps``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg
from numpy.typing import NDArray
from tqdm import tqdm

from simulators.fleet import Chunk, FleetSimulator, GroupChunk
from simulators.publisher import FleetPublisher
from simulators.scenario import Scenario
from simulators.waveform import SAMPLE_RATE_HZ, bearing_bursts, encode_f32le

__all__ = ["Backfill", "LiveRun", "RunSummary", "backfill", "make_simulator",
           "malformed_payload", "new_run_id"]

log = logging.getLogger(__name__)

#: What a misbehaving device sends instead of a good message (kinds picked at random).
MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    b'{"seq": 1, "metrics": {"temperature_c": 20.5}}',
    b'{"ts": "yesterday", "metrics": {"temperature_c": 20.5}}',
    b'{"ts": 1767225600000, "metrics": {"temperature_c": "hot"}}',
    b'{"ts": 1767225600000, "metrics": [1, 2, 3]}',
    b'{"ts": 1767225600000, "metrics": {"Bad Name!": 1.0}}',
    b"\xff\xfe\x00garbage",
)


def malformed_payload(u: float) -> bytes:
    """A malformed telemetry payload, chosen by ``u`` in [0, 1).

    >>> malformed_payload(0.0)
    b'{not json'
    """
    return MALFORMED[min(int(u * len(MALFORMED)), len(MALFORMED) - 1)]


def new_run_id(scenario: Scenario, start: datetime) -> str:
    """A run id for the labels: scenario, seed, start and a random suffix."""
    return f"{scenario.name}-s{scenario.seed}-{start:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def make_simulator(scenario: Scenario, start: datetime) -> FleetSimulator:
    """The fleet simulator for ``scenario`` starting at ``start`` (its labels injected)."""
    return FleetSimulator(scenario.devices, scenario.labels(start), seed=scenario.seed,
                          start=start, rate_hz=scenario.rate_hz,
                          waveform_interval_s=scenario.waveform_interval_s)


def group_messages(g: GroupChunk, t_us: NDArray[np.int64], step0: int,
                   ) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(step, device index in group, telemetry object) for every online device and step.

    NaN (dropout) becomes ``null``, which the contract stores as "no reading".
    """
    names = g.model.metric_names
    ts_ms = (t_us // 1000)[:, None] + np.zeros(len(g.device_ids), dtype=np.int64)
    if g.skew_s is not None:
        ts_ms = ts_ms + np.round(g.skew_s * 1000.0).astype(np.int64)
    vals = g.values.astype(object)
    vals[np.isnan(g.values)] = None
    rows = vals.tolist()
    ts_list = ts_ms.tolist()
    online = g.online.tolist()
    for k in range(t_us.shape[0]):
        for d, row in enumerate(rows[k]):
            if online[k][d]:
                yield k, d, {"ts": ts_list[k][d], "seq": step0 + k,
                             "metrics": dict(zip(names, row, strict=True))}


def group_bursts(g: GroupChunk, t_us: NDArray[np.int64], keys: NDArray[np.uint64],
                 ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32],
                            NDArray[np.float64]]:
    """Every burst due in the chunk: (step, device index in group, samples (n, L), shaft rpm
    as sent, to 0.1 rpm)."""
    if g.waveform_due is None or not g.waveform_due.any():
        return (np.zeros(0, np.int64), np.zeros(0, np.int64),
                np.zeros((0, 0), np.float32), np.zeros(0, np.float64))
    ks, ds = np.nonzero(g.waveform_due)
    bursts = bearing_bursts(
        key=keys[ds], t_us=t_us[ks], shaft_rpm=g.shaft_rpm[ks, ds],
        severity=g.bearing_severity[ks, ds],
        bpfo_order=np.full(ks.shape[0], g.model.bpfo_order()),
    )
    rpm = np.array([round(float(v), 1) for v in g.shaft_rpm[ks, ds]], np.float64)
    return ks.astype(np.int64), ds.astype(np.int64), bursts, rpm


def group_waveforms(g: GroupChunk, t_us: NDArray[np.int64], keys: NDArray[np.uint64],
                    ) -> list[tuple[int, int, bytes]]:
    """(step, device index in group, waveform payload) for every burst due in the chunk."""
    ks, ds, bursts, rpm = group_bursts(g, t_us, keys)
    out = []
    for i, (k, d) in enumerate(zip(ks.tolist(), ds.tolist(), strict=True)):
        ts = int(t_us[k] // 1000)
        out.append((k, d, orjson.dumps({
            "ts": ts, "channel": "accel_x", "sample_rate_hz": SAMPLE_RATE_HZ,
            "encoding": "f32le-base64", "data": encode_f32le(bursts[i]),
            "shaft_rpm": float(rpm[i]),
        })))
    return out


@dataclass
class RunSummary:
    steps: int = 0
    readings: int = 0
    values: int = 0
    waveforms: int = 0
    malformed: int = 0
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class LiveRun:
    """Generate and publish a fleet in (scaled) real time.

    ``speed`` is simulated seconds per wall second; ``speed=0`` runs as fast as the broker
    acknowledges (tests, benchmarks). ``misbehave_rate`` is the fraction of telemetry
    messages replaced by malformed payloads.
    """

    def __init__(self, sim: FleetSimulator, publisher: FleetPublisher, *, speed: float = 1.0,
                 misbehave_rate: float = 0.0, max_chunk_steps: int = 600,
                 max_backlog: int = 200_000) -> None:
        if speed < 0:
            raise ValueError(f"`speed` must be >= 0, got {speed}")
        if not 0.0 <= misbehave_rate <= 1.0:
            raise ValueError(f"`misbehave_rate` must be in [0, 1], got {misbehave_rate}")
        self.sim = sim
        self.publisher = publisher
        self.speed = speed
        self.misbehave_rate = misbehave_rate
        self.max_chunk_steps = max_chunk_steps
        self.max_backlog = max_backlog
        self.summary = RunSummary()
        self.stop_event = threading.Event()
        self._rng = np.random.default_rng([sim.seed, 0x6D15])
        order = {d: i for i, d in enumerate(publisher.device_ids)}
        self._index = [np.array([order[d] for d in g.device_ids], dtype=np.int64)
                       for g in sim.groups]
        self._keys = [g.key for g in sim.groups]

    def sim_time(self) -> datetime:
        """Simulated time of the next step to generate."""
        return self.sim.start + timedelta(seconds=self.sim.step / self.sim.rate_hz)

    def publish_chunk(self, chunk: Chunk) -> None:
        """Hand one chunk's messages to the publisher (in step order across the fleet)."""
        pub = self.publisher
        # (step, device, kind, telemetry object or None, raw payload)
        msgs: list[tuple[int, int, str, dict[str, Any] | None, bytes]] = []
        for gi, g in enumerate(chunk.groups):
            idx = self._index[gi]
            for k, d, tel in group_messages(g, chunk.t_us, chunk.step0):
                msgs.append((k, int(idx[d]), "telemetry", tel, b""))
            for k, d, payload in group_waveforms(g, chunk.t_us, self._keys[gi]):
                msgs.append((k, int(idx[d]), "waveform", None, payload))
            # Device offline: the device loses power where its window starts (its will fires).
            went_off = ~g.online
            went_off[1:] &= g.online[:-1]
            for k, d in zip(*np.nonzero(went_off), strict=True):
                msgs.append((int(k), int(idx[d]), "off", None, b""))
        msgs.sort(key=lambda m: m[0])  # stable: step order, then group and device order
        n = len(msgs)
        bad = self._rng.random(n) < self.misbehave_rate if self.misbehave_rate else None
        pick = self._rng.random(n) if bad is not None else np.zeros(n)
        n_values = 0
        for i, (_, dev, kind, obj, raw) in enumerate(msgs):
            if kind == "off":
                pub.power(dev, on=False)
                continue
            if not pub.is_on(dev):
                pub.power(dev, on=True)
            if obj is None:
                pub.send_raw(dev, kind, raw)
                self.summary.waveforms += 1
            elif bad is not None and bad[i]:
                pub.send_raw(dev, "telemetry", malformed_payload(float(pick[i])))
                self.summary.malformed += 1
            else:
                pub.send(dev, obj)
                self.summary.readings += 1
                n_values += len(obj["metrics"])
        self.summary.values += n_values
        self.summary.steps += chunk.n_steps

    def run(self, *, duration_s: float | None, on_chunk: Callable[[LiveRun], None] | None = None,
            ) -> RunSummary:
        """Run until ``duration_s`` simulated seconds have been generated (None: until
        :attr:`stop_event` is set), then drain the publisher."""
        sim = self.sim
        total = None if duration_s is None else int(round(duration_s * sim.rate_hz))
        step0 = sim.step
        wall0 = time.monotonic()
        while not self.stop_event.is_set():
            done = sim.step - step0
            if total is not None and done >= total:
                break
            if self.speed == 0:
                due = self.max_chunk_steps
            else:
                elapsed = time.monotonic() - wall0
                due = int(elapsed * self.speed * sim.rate_hz) + 1 - done
            if total is not None:
                due = min(due, total - done)
            due = min(due, self.max_chunk_steps)
            if due > 0:
                self.publish_chunk(sim.generate(due))
                if on_chunk is not None:
                    on_chunk(self)
            # Network I/O until the next step is due; bounded backlog when running flat out.
            if self.speed == 0:
                while self.publisher.buffered_readings > self.max_backlog:
                    self.publisher.service(0.01)
                self.publisher.service(0.0)
            else:
                next_wall = wall0 + (sim.step - step0) / (self.speed * sim.rate_hz)
                while True:
                    left = next_wall - time.monotonic()
                    self.publisher.service(max(0.0, min(left, 0.05)))
                    if left <= 0 or self.stop_event.is_set():
                        break
        # How long generation and sending took before the final flush: at speed 1, about
        # the duration when the publisher keeps up with real time.
        self.summary.extra["wall_before_drain_s"] = time.monotonic() - wall0
        self.publisher.drain(timeout_s=60.0)
        self.summary.wall_s = time.monotonic() - wall0
        return self.summary


@dataclass
class Backfill:
    rows: int
    steps: int
    wall_s: float


def backfill(sim: FleetSimulator, conn: psycopg.Connection[Any], *, steps: int,
             chunk_steps: int = 3600, max_rows_per_batch: int = 2_000_000,
             progress: bool = True) -> Backfill:
    """Generate ``steps`` steps and write them straight to the store (binary COPY).

    Clock skew and offline windows apply as on the wire: an offline device has no rows, a
    skewed one has its rows at the skewed times; NaN (dropout) is stored as NULL. Chunks are
    cut so one batch stays under ``max_rows_per_batch`` rows (memory stays bounded on big
    fleets). For months of history, lower the rate (``rate_hz=1/60`` is one row a minute).
    """
    from ingest.writer import write_columns

    per_step = sum(len(g.device_ids) * len(g.model.channels) for g in sim.groups)
    chunk_steps = max(1, min(chunk_steps, max_rows_per_batch // max(per_step, 1)))

    wall0 = time.monotonic()
    rows = 0
    bar = tqdm(total=steps, unit="step", disable=not progress, desc="backfill")
    done = 0
    while done < steps:
        n = min(chunk_steps, steps - done)
        chunk = sim.generate(n)
        for g in chunk.groups:
            t, d, c = g.values.shape
            ts = chunk.t_us[:, None] + np.zeros((1, d), dtype=np.int64)
            if g.skew_s is not None:
                ts = ts + np.round(g.skew_s * 1e6).astype(np.int64)
            keep = np.repeat(g.online.ravel(), c)
            dev = np.broadcast_to(np.array(g.device_ids, dtype=object)[None, :, None],
                                  (t, d, c)).ravel()[keep]
            met = np.broadcast_to(np.array(g.model.metric_names, dtype=object)[None, None, :],
                                  (t, d, c)).ravel()[keep]
            time_us = np.repeat(ts.ravel(), c)[keep]
            res = write_columns(conn, device=dev, metric=met, time=time_us,
                                value=g.values.ravel()[keep])
            rows += res.stored
        conn.commit()
        done += n
        bar.update(n)
    bar.close()
    return Backfill(rows=rows, steps=steps, wall_s=time.monotonic() - wall0)


def utc_now_s() -> datetime:
    """Now, aware UTC, truncated to the second (runs start on a whole second)."""
    return datetime.now(UTC).replace(microsecond=0)
