"""Simulator-scenario evaluation: the worker's detector bank, run causally over generated data.

``aftercare anomaly scenarios`` generates a scenario's telemetry offline (the simulator's own
vectorised generator, no broker and no database), pivots it into the ``(channels, time)`` blocks
the worker builds (same grid, same block length, same channel specs), runs the same
:class:`~anomaly.bank.DetectorBank`, and scores the alerts against the scenario's ground truth:

* per equipment failure mode: the share of faults alerted (``kind=equipment``, on that device)
  between onset and failure, and the median lead time (failure minus first alert);
* device faults reported as equipment faults: an equipment alert opened on the device while its
  device fault was active (should be 0);
* false alerts per 100 device-days: alerts of either kind opened on a device while it had no
  fault (before the first onset, after a repair, or on a healthy device), over the healthy time.

What the worker would see is reproduced where it matters: an offline device sends nothing, and a
device whose clock runs behind by more than the worker's settle time has its readings arrive
behind the watermark, so they are dropped (a clock running ahead stamps readings into the future;
they are placed at their stamped time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from anomaly.bank import BankConfig, ChannelSpec, DetectorBank
from anomaly.fusion import DEVICE_PROBLEMS
from anomaly.models import PROFILES, bearing_orders, channel_spec
from anomaly.profiles import EquipmentProfile
from anomaly.spectral import BearingCheck, spectral_extra
from simulators.faults import FaultLabel
from simulators.fleet import Chunk, FleetSimulator
from simulators.run import group_bursts
from simulators.scenario import Scenario
from simulators.waveform import SAMPLE_RATE_HZ

START = datetime(2026, 1, 5, tzinfo=UTC)     # a Monday, so shift schedules start with work


@dataclass(frozen=True)
class Alert:
    """An alert the bank opened (offline counterpart of an ``AlertEvent`` with state open)."""

    device: str
    kind: str
    mode: str
    opened_s: float          # seconds from the run's start


@dataclass(frozen=True)
class ModeScore:
    faults: int
    alerted: int
    lead_s: tuple[float, ...]

    @property
    def share(self) -> float:
        return self.alerted / self.faults if self.faults else float("nan")

    @property
    def median_lead_s(self) -> float:
        return float(np.median(self.lead_s)) if self.lead_s else float("nan")


@dataclass(frozen=True)
class ScenarioScore:
    """Scores of one or more scenario runs (pooled)."""

    modes: dict[str, ModeScore]
    device_faults: int
    device_faults_seen: int        # a device alert while the device fault was active
    device_as_equipment: int
    false_alerts: int
    healthy_device_days: float
    wrong_mode: int                # equipment faults alerted with another failure mode first
    alerts: list[Alert] = field(default_factory=list)

    @property
    def equipment_faults(self) -> int:
        return sum(m.faults for m in self.modes.values())

    @property
    def equipment_alerted(self) -> int:
        return sum(m.alerted for m in self.modes.values())

    @property
    def false_per_100_days(self) -> float:
        d = self.healthy_device_days
        return 100.0 * self.false_alerts / d if d > 0 else float("nan")

    def __add__(self, other: ScenarioScore) -> ScenarioScore:
        modes = dict(self.modes)
        for k, m in other.modes.items():
            a = modes.get(k, ModeScore(0, 0, ()))
            modes[k] = ModeScore(a.faults + m.faults, a.alerted + m.alerted, a.lead_s + m.lead_s)
        return ScenarioScore(
            modes, self.device_faults + other.device_faults,
            self.device_faults_seen + other.device_faults_seen,
            self.device_as_equipment + other.device_as_equipment,
            self.false_alerts + other.false_alerts,
            self.healthy_device_days + other.healthy_device_days,
            self.wrong_mode + other.wrong_mode, self.alerts + other.alerts)


def run_bank(
    scenario: Scenario, *, duration_s: float, block_s: float = 600.0, settle_s: float = 30.0,
    config: BankConfig | None = None,
    specs: Callable[[str, str], ChannelSpec] | None = None, models: bool = True,
) -> list[Alert]:
    """Generate `duration_s` of the scenario and stream it through a fresh bank in blocks of
    `block_s` (the worker's ``max_span_s``); return the alerts opened, in time order.

    Each device is watched with the shipped profile of its simulated equipment model (the
    profile whose ``kind`` is the model's name), as the worker watches it with its catalogue
    model; `specs` overrides that. With `models` false no device has a profile: every channel
    gets the generic detection of a machine nobody has described (issue 13 item 2)."""
    if scenario.rate_hz != 1.0:
        raise ValueError("scenario evaluation runs the worker's 1 s grid: `rate_hz` must be 1")
    labels = scenario.labels(START)
    sim = FleetSimulator(scenario.devices, labels, seed=scenario.seed, start=START,
                         rate_hz=1.0, waveform_interval_s=scenario.waveform_interval_s)
    profile_of: dict[str, EquipmentProfile | None] = {
        d: PROFILES.get(g.model.name) if models else None
        for g in sim.groups for d in g.device_ids}
    if specs is None:
        def specs(device: str, metric: str) -> ChannelSpec:
            return channel_spec(device, metric, profile_of.get(device))
    orders = {d: bearing_orders(p) for d, p in profile_of.items()}
    speed = {d: p.speed_metric if p is not None else "" for d, p in profile_of.items()}
    # Channel rows in the simulator's group order: (group, device, channel).
    rows: list[ChannelSpec] = []
    for g in sim.groups:
        rows += [specs(d, c.name) for d in g.device_ids for c in g.model.channels]
    bank = DetectorBank(rows, config)
    check = BearingCheck(len(bank.assets))     # vibration bursts: the worker's spectral path
    n_total = int(duration_s)
    block = int(block_s)
    settle = int(settle_s)
    carry: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    alerts: list[Alert] = []
    done = 0
    while done < n_total:
        n = min(block, n_total - done)
        chunk = sim.generate(n)
        x = np.full((len(rows), n), np.nan)
        r0 = 0
        for gc in chunk.groups:
            d, c = gc.values.shape[1], gc.values.shape[2]
            v = np.where(gc.online[:, :, None], gc.values, np.nan)      # (T, D, C)
            block_rows = v.transpose(1, 2, 0).reshape(d * c, n)
            if gc.skew_s is not None:
                skew = np.round(gc.skew_s).astype(np.int64)            # (T, D)
                shifted = skew != 0
                block_rows = block_rows.copy()
                if shifted.any():
                    ti, di = np.nonzero(shifted)
                    ci = np.arange(c)
                    rr = (r0 + di[:, None] * c + ci[None, :]).ravel()
                    src_t = np.repeat(ti, c)
                    val = v[ti, di].ravel()
                    col = done + src_t + np.repeat(skew[ti, di], c)
                    block_rows.reshape(d, c, n)[di, :, ti] = np.nan
                    # Behind by more than the settle time: the watermark has passed, dropped.
                    keep = col >= done + src_t - settle
                    carry.append((rr[keep], col[keep], val[keep]))
            x[r0:r0 + d * c] = block_rows
            r0 += d * c
        if carry:
            rr = np.concatenate([a for a, _, _ in carry])
            cc = np.concatenate([b for _, b, _ in carry])
            vv = np.concatenate([v for _, _, v in carry])
            now = (cc >= done) & (cc < done + n)
            x[rr[now], cc[now] - done] = vv[now]
            later = cc >= done + n
            carry = [(rr[later], cc[later], vv[later])] if later.any() else []
        t_us = (np.arange(done, done + n, dtype=np.int64) + 1) * 1_000_000 \
            + int(START.timestamp() * 1e6)
        # ---- Vibration bursts due in this block (scenarios with waveform_interval_s), as the
        # worker reads them: float32 samples, stamped at their step, scored by the same code.
        extra, _ = spectral_extra(
            bank, check, t_us, x, *_block_bursts(sim, chunk, t_us),
            orders_for=lambda d: orders.get(d, bearing_orders(None)),
            speed_metric_for=lambda d: speed.get(d, ""))
        res = bank.update(t_us, x, extra=extra)
        for tr in res.equipment_events:
            if tr.state == "open":
                alerts.append(Alert(bank.assets[tr.asset], "equipment", bank.modes[tr.mode],
                                    float(done + tr.sample + 1)))
        for tr in res.device_events:
            if tr.state == "open":
                alerts.append(Alert(bank.assets[tr.asset], "device", DEVICE_PROBLEMS[tr.mode],
                                    float(done + tr.sample + 1)))
        done += n
    return sorted(alerts, key=lambda a: (a.opened_s, a.device, a.kind))


def _block_bursts(sim: FleetSimulator, chunk: Chunk, t_us: NDArray[np.int64]
                  ) -> tuple[list[str], NDArray[np.int64], list[NDArray[np.float32]],
                             NDArray[np.float64], NDArray[np.float64]]:
    """The bursts the simulated fleet sends in a chunk (as ``simulators.run`` publishes them,
    with the shaft speed in each), stamped with the grid time of their step: (devices, times,
    bursts, sample rates, shaft rpm)."""
    devices: list[str] = []
    when: list[NDArray[np.int64]] = []
    rpm: list[NDArray[np.float64]] = []
    bursts: list[NDArray[np.float32]] = []
    for g, gc in zip(sim.groups, chunk.groups, strict=True):     # a handful of models
        ks, ds, b, speed = group_bursts(gc, chunk.t_us, g.key)
        devices += [gc.device_ids[d] for d in ds.tolist()]
        when.append(t_us[ks])
        rpm.append(speed)
        bursts += list(b)
    times = np.concatenate(when) if when else np.zeros(0, np.int64)
    speeds = np.concatenate(rpm) if rpm else np.zeros(0, np.float64)
    order = np.argsort(times, kind="stable")
    return ([devices[k] for k in order.tolist()], times[order],
            [bursts[k] for k in order.tolist()], np.full(len(bursts), float(SAMPLE_RATE_HZ)),
            speeds[order])


def _rel(d: datetime | None) -> float | None:
    return None if d is None else (d - START).total_seconds()


def score(labels: Sequence[FaultLabel], devices: Sequence[str], alerts: Sequence[Alert], *,
          duration_s: float, grace_s: float = 300.0) -> ScenarioScore:
    """Score alerts against ground truth (times in seconds from the start).

    A fault's *active* time runs from onset to its repair (end of run if never repaired), plus
    `grace_s` for alerts that close a little late; everything else is healthy time.

    >>> from datetime import timedelta
    >>> lab = FaultLabel("p1", "leak", START + timedelta(seconds=100),
    ...                  failure_at=START + timedelta(seconds=500))
    >>> s = score([lab], ["p1", "p2"], [Alert("p1", "equipment", "leak", 300.0),
    ...                                  Alert("p2", "equipment", "leak", 50.0)], duration_s=86400)
    >>> s.modes["leak"].alerted, s.modes["leak"].median_lead_s, s.false_alerts
    (1, 200.0, 1)
    """
    modes: dict[str, ModeScore] = {}
    dev_faults = dev_seen = dev_as_eq = wrong = 0
    active: dict[str, list[tuple[float, float]]] = {d: [] for d in devices}
    for lab in labels:
        onset = _rel(lab.onset) or 0.0
        end = _rel(lab.end_at)
        end = duration_s if end is None else min(end, duration_s)
        if onset >= duration_s:
            continue
        active.setdefault(lab.device, []).append((onset, end + grace_s))
        mine = [a for a in alerts if a.device == lab.device and onset <= a.opened_s < end]
        if lab.kind == "equipment":
            fail = _rel(lab.failure_at)
            stop = min(end, duration_s if fail is None else fail)
            hits = [a for a in mine if a.kind == "equipment" and a.opened_s < stop]
            m = modes.get(lab.fault, ModeScore(0, 0, ()))
            lead = () if not hits else (stop - hits[0].opened_s,)
            modes[lab.fault] = ModeScore(m.faults + 1, m.alerted + bool(hits), m.lead_s + lead)
            if hits and hits[0].mode != lab.fault:
                wrong += 1
        else:
            dev_faults += 1
            dev_seen += any(a.kind == "device" for a in mine)
            dev_as_eq += any(a.kind == "equipment"
                             for a in alerts if a.device == lab.device
                             and onset <= a.opened_s < end + grace_s)
    false = 0
    healthy_s = 0.0
    for dev in devices:
        spans = sorted(active.get(dev, []))
        covered = 0.0
        cur_a, cur_b = -1.0, -1.0
        for a, b in spans + [(np.inf, np.inf)]:
            if a > cur_b:
                covered += max(0.0, min(cur_b, duration_s) - max(cur_a, 0.0))
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        healthy_s += duration_s - covered
        false += sum(1 for al in alerts if al.device == dev
                     and not any(a <= al.opened_s < b for a, b in spans))
    return ScenarioScore(modes, dev_faults, dev_seen, dev_as_eq, false, healthy_s / 86400.0,
                         wrong, list(alerts))


def evaluate(scenario: Scenario, *, duration_s: float,
             config: BankConfig | None = None, models: bool = True) -> ScenarioScore:
    """Run and score one scenario (`models` false: no equipment profiles, see :func:`run_bank`)."""
    alerts = run_bank(scenario, duration_s=duration_s, config=config, models=models)
    return score(scenario.labels(START), scenario.device_ids, alerts, duration_s=duration_s)


def format_table(s: ScenarioScore) -> str:
    """The scores as a fixed-width text table."""
    lines = [f"{'failure mode':<20}{'faults':>7}{'alerted':>9}{'share':>8}{'median lead':>13}"]
    for name in sorted(s.modes):
        m = s.modes[name]
        lead = "-" if np.isnan(m.median_lead_s) else f"{m.median_lead_s:.0f} s"
        lines.append(f"{name:<20}{m.faults:>7}{m.alerted:>9}{100 * m.share:>7.0f}%{lead:>13}")
    share = s.equipment_alerted / s.equipment_faults if s.equipment_faults else float("nan")
    lines += [
        f"{'all equipment':<20}{s.equipment_faults:>7}{s.equipment_alerted:>9}"
        f"{100 * share:>7.0f}%",
        f"equipment faults alerted with another failure mode first: {s.wrong_mode}",
        f"device faults: {s.device_faults}, seen as device alerts: {s.device_faults_seen}, "
        f"reported as equipment faults: {s.device_as_equipment}",
        f"false alerts: {s.false_alerts} in {s.healthy_device_days:.1f} healthy device-days "
        f"= {s.false_per_100_days:.2f} per 100 device-days",
    ]
    return "\n".join(lines)


def run_files(paths: Sequence[Path], *, days: float | None,
              fleet_size: int = 0, models: bool = True, seed_shift: int = 0,
              history_s: float = 0.0, slower: float = 1.0,
              schedule: str | None = None) -> ScenarioScore:
    """Evaluate scenario files (duration: `days` if given, else the file's, else 1 day), each
    fleet grown to `fleet_size` devices with healthy ones as the demo grows it; `models` false
    watches every device without its equipment profile; `seed_shift` moves every scenario's
    seed (other noise and healthy machines: data no setting was chosen on); `history_s` moves
    every fault that much later (:meth:`Scenario.with_history`; `days` then counts from the
    end of that history); `slower` makes every fault develop that many times slower
    (:meth:`Scenario.slowed`, the run extended to match); `schedule` runs every machine on
    that operating schedule (:meth:`Scenario.with_schedule`)."""
    from simulators.scenario import load

    total: ScenarioScore | None = None
    for p in paths:
        sc = load(p).with_fleet_size(fleet_size)
        if slower != 1.0:
            sc = sc.slowed(slower)
        if schedule is not None:
            sc = sc.with_schedule(schedule)
        if seed_shift:
            sc = replace(sc, seed=sc.seed + seed_shift)
        dur = days * 86400.0 if days is not None else (sc.duration_s or 86400.0)
        if history_s:
            sc = sc.with_history(history_s)
            dur += history_s
        s = evaluate(sc, duration_s=dur, models=models)
        total = s if total is None else total + s
    if total is None:
        raise ValueError("no scenario files given")
    return total
