"""The fleet simulator: state arrays over all devices, one call computes a chunk of steps.

Devices are grouped by equipment model (a handful of groups); inside a group every array is
``(steps, devices)`` or ``(steps, devices, channels)`` and no Python loop runs over devices
or samples. Randomness comes from one numpy generator per (group, purpose), each drawn in
time-major order, and everything else is a pure function of time, so the data for a given
seed do not depend on how the run is cut into chunks (real time: one step per call;
backfill: thousands).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from simulators.equipment import EquipmentModel, PhysicsInput, model_get
from simulators.faults import (
    EQUIPMENT_FAULTS,
    SENSOR_FAULTS,
    FaultArrays,
    FaultLabel,
)
from simulators.signals import SCHEDULES, ambient_temp_c, hash_uniform, schedule_running

__all__ = ["Chunk", "DeviceSpec", "FleetSimulator", "GroupChunk", "device_key"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device: its id, equipment model and operating pattern."""

    device_id: str
    model: str
    schedule: str | None = None  # None: the model's default
    utc_offset_h: float = 0.0


@dataclass
class GroupChunk:
    """Generated values of one model's devices for a chunk of steps."""

    model: EquipmentModel
    device_ids: tuple[str, ...]
    values: F64  # (T, D, C), NaN = no reading (dropout)
    online: NDArray[np.bool_]  # (T, D); False: the device sends nothing
    skew_s: F64 | None  # (T, D) clock error added to the device's timestamps, None if none
    waveform_due: NDArray[np.bool_] | None  # (T, D)
    shaft_rpm: F64  # (T, D)
    bearing_severity: F64  # (T, D)


@dataclass
class Chunk:
    """A chunk of steps for the whole fleet."""

    step0: int
    t_us: NDArray[np.int64]  # (T,) true epoch microseconds, UTC
    groups: list[GroupChunk]

    @property
    def n_steps(self) -> int:
        return int(self.t_us.shape[0])


def device_key(device_id: str, seed: int) -> int:
    """A 64-bit key for a device: independent of fleet composition and order."""
    h = hashlib.blake2b(f"{seed}:{device_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


@dataclass
class _Group:
    model: EquipmentModel
    code: int
    device_ids: tuple[str, ...]
    key: NDArray[np.uint64]
    params: dict[str, F64]
    schedule: NDArray[np.int64]
    utc_offset_h: F64
    ambient_mean_c: F64
    stop_probability: F64
    waveform_phase_s: F64
    faults: dict[str, FaultArrays]
    seed: int
    state: dict[str, F64] = field(default_factory=dict)
    rngs: dict[str, np.random.Generator] = field(default_factory=dict)

    def rng(self, purpose: str) -> np.random.Generator:
        g = self.rngs.get(purpose)
        if g is None:
            g = np.random.default_rng([self.seed, self.code, zlib.crc32(purpose.encode())])
            self.rngs[purpose] = g
        return g


def _to_s(d: datetime | None, default: float) -> float:
    return default if d is None else d.timestamp()


class FleetSimulator:
    """Generate telemetry for a fleet with injected faults.

    Parameters
    ----------
    devices : sequence of DeviceSpec
    labels : sequence of FaultLabel
        Faults to inject; every label must name a device in ``devices``.
    seed : int
        Same seed, devices and labels give the same data.
    start : datetime
        Aware UTC time of step 0.
    rate_hz : float
        Steps per second of simulated time.
    waveform_interval_s : float or None
        Each device sends a vibration burst this often (staggered); None: never.

    Examples
    --------
    >>> sim = FleetSimulator([DeviceSpec("p1", "centrifugal_pump")], [], seed=1,
    ...                      start=datetime(2026, 1, 5, tzinfo=UTC), rate_hz=1.0)
    >>> sim.generate(3).groups[0].values.shape
    (3, 1, 10)
    """

    def __init__(
        self,
        devices: Sequence[DeviceSpec],
        labels: Sequence[FaultLabel],
        *,
        seed: int,
        start: datetime,
        rate_hz: float,
        waveform_interval_s: float | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("`start` must be timezone-aware (UTC)")
        if not rate_hz > 0:
            raise ValueError(f"`rate_hz` must be > 0, got {rate_hz}")
        ids = [d.device_id for d in devices]
        if len(set(ids)) != len(ids):
            raise ValueError("`devices` contains duplicate device ids")
        self.seed = seed
        self.rate_hz = float(rate_hz)
        self.start = start.astimezone(UTC)
        self.start_us = round(start.timestamp() * 1e6)
        self.waveform_interval_s = waveform_interval_s
        self.step = 0
        by_model: dict[str, list[DeviceSpec]] = {}
        for d in devices:
            model_get(d.model)
            by_model.setdefault(d.model, []).append(d)
        labels_by_device: dict[str, list[FaultLabel]] = {}
        for lab in labels:
            labels_by_device.setdefault(lab.device, []).append(lab)
        unknown = set(labels_by_device) - set(ids)
        if unknown:
            raise ValueError(f"fault labels name unknown devices: {sorted(unknown)[:5]}")
        self.groups: list[_Group] = []
        for code, (name, specs) in enumerate(sorted(by_model.items())):
            self.groups.append(self._build_group(code, model_get(name), specs, labels_by_device))

    @property
    def device_count(self) -> int:
        return sum(len(g.device_ids) for g in self.groups)

    def _build_group(
        self,
        code: int,
        model: EquipmentModel,
        specs: list[DeviceSpec],
        labels_by_device: dict[str, list[FaultLabel]],
    ) -> _Group:
        n = len(specs)
        rng = np.random.default_rng([self.seed, code, zlib.crc32(b"params")])
        keys = np.array([device_key(s.device_id, self.seed) for s in specs], dtype=np.uint64)
        sched = []
        for s in specs:
            name = s.schedule or model.default_schedule
            if name not in SCHEDULES:
                raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
            sched.append(SCHEDULES[name])
        interval = self.waveform_interval_s or 1.0
        group = _Group(
            model=model,
            code=code,
            device_ids=tuple(s.device_id for s in specs),
            key=keys,
            params=model.draw_params(rng, n),
            schedule=np.array(sched, dtype=np.int64),
            utc_offset_h=np.array([s.utc_offset_h for s in specs], dtype=np.float64),
            ambient_mean_c=12.0 + 14.0 * hash_uniform(keys, np.zeros(n, dtype=np.int64)),
            stop_probability=np.full(n, model.stop_probability),
            waveform_phase_s=interval * hash_uniform(keys, np.ones(n, dtype=np.int64)),
            faults={},
            seed=self.seed,
        )
        group.faults = self._compile_faults(group, labels_by_device)
        return group

    def _compile_faults(
        self, g: _Group, labels_by_device: dict[str, list[FaultLabel]]
    ) -> dict[str, FaultArrays]:
        rows: dict[str, list[tuple[int, FaultLabel, int]]] = {}
        for i, dev in enumerate(g.device_ids):
            for lab in labels_by_device.get(dev, ()):
                if lab.fault in EQUIPMENT_FAULTS and lab.fault not in g.model.faults:
                    raise ValueError(
                        f"fault {lab.fault!r} does not apply to {g.model.name} ({dev}); "
                        f"it supports: {', '.join(sorted(g.model.faults))}"
                    )
                ch = -1
                if lab.metric is not None:
                    ch = g.model.channel_index(lab.metric)
                rows.setdefault(lab.fault, []).append((i, lab, ch))
        out: dict[str, FaultArrays] = {}
        for fault, items in rows.items():
            f = len(items)
            chans = [g.model.channels[max(ch, 0)] for _, _, ch in items]
            amount = np.zeros(f)
            prob = np.zeros(f)
            for j, ((_, lab, _), chan) in enumerate(zip(items, chans, strict=True)):
                p = lab.params
                if fault == "drift":
                    amount[j] = float(p.get("rate_per_h", 0.05 * chan.span))
                elif fault == "spikes":
                    amount[j] = float(p.get("magnitude", 0.5 * chan.span))
                    prob[j] = float(p.get("probability", 0.02))
                elif fault == "dropout":
                    prob[j] = float(p.get("probability", 1.0))
                elif fault == "clock_skew":
                    amount[j] = float(p.get("skew_s", 120.0))
            labs = [lab for _, lab, _ in items]
            out[fault] = FaultArrays(
                fault=fault,
                device_idx=np.array([i for i, _, _ in items], dtype=np.int64),
                onset_s=np.array([lab.onset.timestamp() for lab in labs]),
                failure_s=np.array([_to_s(lab.failure_at, np.nan) for lab in labs]),
                end_s=np.array([_to_s(lab.end_at, np.inf) for lab in labs]),
                ramp_s=np.array([float(lab.params.get("ramp_s", 3600.0)) for lab in labs]),
                shape=np.array([float(lab.params.get("shape", 2.0)) for lab in labs]),
                trip=np.array([bool(lab.params.get("trip", True)) for lab in labs]),
                channel_idx=np.array([ch for _, _, ch in items], dtype=np.int64),
                amount=amount,
                probability=prob,
                stuck_value=np.full(f, np.nan),
            )
        return out

    # -- generation ---------------------------------------------------------------------

    def times_us(self, step0: int, n_steps: int) -> NDArray[np.int64]:
        k = np.arange(step0, step0 + n_steps, dtype=np.float64)
        return self.start_us + np.round(k * (1e6 / self.rate_hz)).astype(np.int64)

    def generate(self, n_steps: int) -> Chunk:
        """Generate the next ``n_steps`` steps for every device."""
        if n_steps < 0:
            raise ValueError(f"`n_steps` must be >= 0, got {n_steps}")
        t_us = self.times_us(self.step, n_steps)
        chunk = Chunk(self.step, t_us, [self._generate_group(g, t_us) for g in self.groups])
        self.step += n_steps
        return chunk

    def _generate_group(self, g: _Group, t_us: NDArray[np.int64]) -> GroupChunk:
        t_s = t_us / 1e6
        n_t, n_d = t_s.shape[0], g.key.shape[0]
        model = g.model
        dt_s = 1.0 / self.rate_hz
        zeros = np.zeros((n_t, n_d))
        sev: dict[str, F64] = {}
        tripped = np.zeros((n_t, n_d), dtype=np.bool_)
        for fault in EQUIPMENT_FAULTS:
            fa = g.faults.get(fault)
            if fa is None:
                continue
            s = np.zeros((n_t, n_d))
            np.maximum.at(s.T, fa.device_idx, fa.severity(t_s).T)
            sev[fault] = s
            np.logical_or.at(tripped.T, fa.device_idx, fa.tripped(t_s).T)

        running = schedule_running(t_s, g.schedule, g.utc_offset_h, g.key, g.stop_probability)
        running &= ~tripped
        ambient = ambient_temp_c(t_s, g.ambient_mean_c, g.utc_offset_h, g.key)
        phys = model.physics(
            PhysicsInput(
                t_s=t_s,
                dt_s=dt_s,
                params=g.params,
                key=g.key,
                ambient_c=ambient,
                running=running,
                severity=lambda name: sev.get(name, zeros),
                state=g.state,
                rng=g.rng,
            )
        )
        noise_sd = np.array([c.noise_sd for c in model.channels])
        values = phys.values + noise_sd * g.rng("noise").standard_normal(phys.values.shape)
        lo = np.array([c.lo for c in model.channels])
        hi = np.array([c.hi for c in model.channels])
        values = np.clip(values, lo, hi)
        self._apply_sensor_faults(g, t_s, values)
        scale = 10.0 ** np.array([c.decimals for c in model.channels])
        values = np.round(values * scale) / scale

        online = np.ones((n_t, n_d), dtype=np.bool_)
        fa = g.faults.get("device_offline")
        if fa is not None:
            off = np.zeros((n_t, n_d), dtype=np.bool_)
            np.logical_or.at(off.T, fa.device_idx, fa.window(t_s).T)
            online &= ~off
        skew: F64 | None = None
        fa = g.faults.get("clock_skew")
        if fa is not None:
            skew = np.zeros((n_t, n_d))
            np.add.at(skew.T, fa.device_idx, (fa.window(t_s) * fa.amount).T)

        due: NDArray[np.bool_] | None = None
        if self.waveform_interval_s:
            iv = self.waveform_interval_s
            prev = t_s - dt_s
            ph = g.waveform_phase_s
            due = np.floor((t_s[:, None] - ph) / iv) > np.floor((prev[:, None] - ph) / iv)
            due &= online & (phys.shaft_rpm > 0)
        return GroupChunk(
            model=model,
            device_ids=g.device_ids,
            values=values,
            online=online,
            skew_s=skew,
            waveform_due=due,
            shaft_rpm=phys.shaft_rpm,
            bearing_severity=sev.get("bearing_wear", zeros),
        )

    def _apply_sensor_faults(self, g: _Group, t_s: F64, values: F64) -> None:
        """Sensor faults change what a channel reports, in place; the machine is unaffected."""
        for fault in SENSOR_FAULTS:
            fa = g.faults.get(fault)
            if fa is None:
                continue
            w = fa.window(t_s)  # (T, F)
            idx, ch = fa.device_idx, fa.channel_idx
            cur = values[:, idx, ch]  # (T, F) copy
            if fault == "stuck_value":
                need = np.isnan(fa.stuck_value) & w.any(axis=0)
                if need.any():
                    first = np.argmax(w, axis=0)
                    fa.stuck_value[need] = cur[first[need], np.flatnonzero(need)]
                cur = np.where(w, fa.stuck_value, cur)
            elif fault == "drift":
                cur = cur + w * fa.amount * (t_s[:, None] - fa.onset_s) / 3600.0
            elif fault == "spikes":
                u = g.rng("spikes").random(w.shape)
                hit = w & (u < fa.probability)
                sign = np.where(u < fa.probability / 2, -1.0, 1.0)
                cur = cur + hit * sign * fa.amount
            else:  # dropout
                u = g.rng("dropout").random(w.shape)
                cur = np.where(w & (u < fa.probability), np.nan, cur)
            values[:, idx, ch] = cur
