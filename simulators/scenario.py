"""Scenarios: fleet composition, fault schedule, seed and timing in a readable YAML file.

```yaml
name: pump-cavitation
seed: 7
rate_hz: 1
duration_s: 3600
waveform_interval_s: 60       # optional; vibration bursts per device
fleet:
  - model: centrifugal_pump    # ids pmp-0001.. unless `ids:` lists them
    count: 3
    schedule: continuous        # optional: continuous | two_shift | one_shift
faults:
  - device: pmp-0001
    fault: cavitation
    onset_s: 120                # seconds after the run starts
    failure_s: 1800             # optional: full severity (and trip) here
    end_s: 3000                 # optional: repaired here
    params: {trip: false}
  - device: pmp-0002
    fault: drift
    metric: discharge_pressure_bar
    onset_s: 300
    params: {rate_per_h: 2.0}
random_faults: 0                # optional: this many more, drawn from the seed
```

Times in the file are relative, so the same scenario runs now, in a test, or as months of
backfill; :meth:`Scenario.labels` turns them into aware UTC ground truth for a start time.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulators.equipment import MODELS, model_get
from simulators.faults import (
    EQUIPMENT_FAULTS,
    FAULT_KIND,
    SENSOR_FAULTS,
    FaultLabel,
)
from simulators.fleet import DeviceSpec
from simulators.signals import SCHEDULES

__all__ = ["FaultSpec", "Scenario", "ScenarioError", "builtin", "builtin_names",
           "demo_device_ids", "load", "random_fleet"]


_SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario file or option the simulator cannot run, with where the problem is."""


@dataclass(frozen=True)
class FaultSpec:
    """One scheduled fault, times in seconds from the start of the run."""

    device: str
    fault: str
    onset_s: float
    failure_s: float | None = None
    end_s: float | None = None
    metric: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def label(self, start: datetime) -> FaultLabel:
        def at(s: float | None) -> datetime | None:
            return None if s is None else start + timedelta(seconds=s)

        return FaultLabel(self.device, self.fault, start + timedelta(seconds=self.onset_s),
                          failure_at=at(self.failure_s), end_at=at(self.end_s),
                          metric=self.metric, params=dict(self.params))


@dataclass(frozen=True)
class Scenario:
    """A fleet and its fault schedule; see the module docstring for the file format.

    >>> s = load(builtin("demo"))
    >>> s.device_ids[:2], len(s.device_ids) >= 20
    (['cmp-0001', 'cmp-0002'], True)
    """

    name: str
    devices: tuple[DeviceSpec, ...]
    faults: tuple[FaultSpec, ...]
    seed: int = 0
    rate_hz: float = 1.0
    duration_s: float | None = None
    waveform_interval_s: float | None = None

    @property
    def device_ids(self) -> list[str]:
        """Every device id, in fleet order (the demo provisions broker credentials for these)."""
        return [d.device_id for d in self.devices]

    def labels(self, start: datetime) -> list[FaultLabel]:
        """Ground truth for a run starting at ``start`` (aware UTC)."""
        if start.tzinfo is None:
            raise ValueError("`start` must be timezone-aware")
        return [f.label(start) for f in self.faults]

    def with_options(self, *, seed: int | None = None, rate_hz: float | None = None,
                     duration_s: float | None = None) -> Scenario:
        """A copy with command-line overrides applied (None keeps the file's value)."""
        return replace(
            self,
            seed=self.seed if seed is None else seed,
            rate_hz=self.rate_hz if rate_hz is None else rate_hz,
            duration_s=self.duration_s if duration_s is None else duration_s,
        )

    def with_history(self, seconds: float) -> Scenario:
        """A copy in which every fault comes `seconds` later (and the run, if it has a
        duration, lasts that much longer): the same faults on machines with that much healthy
        history behind them, as a machine in the field has when it goes wrong.

        >>> s = load(builtin("pump-leak")).with_history(86400)
        >>> s.faults[0].onset_s - load(builtin("pump-leak")).faults[0].onset_s
        86400.0
        """
        if not seconds >= 0:
            raise ScenarioError(f"history must be >= 0 s, got {seconds}")

        def later(v: float | None) -> float | None:
            return None if v is None else v + seconds

        return replace(
            self, faults=tuple(replace(f, onset_s=f.onset_s + seconds,
                                       failure_s=later(f.failure_s), end_s=later(f.end_s))
                               for f in self.faults),
            duration_s=later(self.duration_s))

    def slowed(self, factor: float) -> Scenario:
        """A copy in which every fault develops `factor` times slower: its failure, repair and
        ramp come `factor` times further from its onset and a drift moves `factor` times
        slower (the same harm, reached later, as a machine in the field wears over days); the
        run, if it has a duration, is extended by the longest fault's added time.

        >>> s = load(builtin("pump-drift")).slowed(10)
        >>> f = s.faults[0]
        >>> f.onset_s, f.end_s, f.params["rate_per_h"], s.duration_s
        (900.0, 45900.0, 0.4, 47700.0)
        """
        if not (math.isfinite(factor) and factor > 0):
            raise ScenarioError(f"slow-down factor must be a number > 0, got {factor}")

        def later(f: FaultSpec, v: float | None) -> float | None:
            return None if v is None else f.onset_s + (v - f.onset_s) * factor

        faults = []
        added = 0.0
        for f in self.faults:
            params = dict(f.params)
            if "rate_per_h" in params:
                params["rate_per_h"] = params["rate_per_h"] / factor
            if "ramp_s" in params:
                params["ramp_s"] = params["ramp_s"] * factor
            slow = replace(f, failure_s=later(f, f.failure_s), end_s=later(f, f.end_s),
                           params=params)
            last = f.end_s if f.end_s is not None else f.failure_s
            new = slow.end_s if slow.end_s is not None else slow.failure_s
            if last is not None and new is not None:
                added = max(added, new - last)
            faults.append(slow)
        duration = None if self.duration_s is None else self.duration_s + added
        return replace(self, faults=tuple(faults), duration_s=duration)

    def with_schedule(self, name: str) -> Scenario:
        """A copy in which every machine runs on the operating schedule `name` (see
        :data:`simulators.signals.SCHEDULES`): machines that stop at night and at weekends
        instead of the file's pattern, the faults unchanged.

        >>> s = load(builtin("pump-leak")).with_schedule("one_shift")
        >>> {d.schedule for d in s.devices}
        {'one_shift'}
        >>> load(builtin("pump-leak")).with_schedule("nights")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        simulators.scenario.ScenarioError: unknown schedule 'nights'; known: continuous, ...
        """
        if name not in SCHEDULES:
            raise ScenarioError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
        return replace(self, devices=tuple(replace(d, schedule=name) for d in self.devices))

    def with_fleet_size(self, n_devices: int) -> Scenario:
        """A copy whose fleet is grown to ``n_devices``: the file's devices first, then more of
        the same models and schedules in turn, numbered on from each prefix's last id. The new
        devices are healthy (the fault schedule is unchanged); a smaller `n` changes nothing.

        >>> s = load(builtin("demo")).with_fleet_size(28)
        >>> s.device_ids[24:]
        ['cmp-0007', 'pmp-0007', 'chl-0007', 'cnc-0007']
        """
        if n_devices < 0:
            raise ScenarioError(f"fleet size must be >= 0, got {n_devices}")
        if n_devices <= len(self.devices):
            return self
        if not self.devices:
            raise ScenarioError("a scenario without devices cannot be grown")
        # One template per model (its last device there), models in order of first appearance.
        templates = list({d.model: d for d in self.devices}.values())
        counters: dict[str, int] = {}
        for d in self.devices:
            prefix, _, number = d.device_id.rpartition("-")
            if number.isdigit():
                counters[prefix] = max(counters.get(prefix, 0), int(number))
        devices = list(self.devices)
        while len(devices) < n_devices:
            t = templates[(len(devices) - len(self.devices)) % len(templates)]
            prefix = model_get(t.model).prefix
            counters[prefix] = counters.get(prefix, 0) + 1
            devices.append(replace(t, device_id=f"{prefix}-{counters[prefix]:04d}"))
        return replace(self, devices=tuple(devices))

    def with_random_faults(self, count: int, *, kinds: tuple[str, ...] | None = None,
                           window_s: float | None = None) -> Scenario:
        """Add ``count`` faults drawn from the seed: random devices, types and onsets.

        Onsets fall in the first half of ``window_s`` (default: the duration, else 1 h);
        equipment faults fail 20-60 % of the window later and are not repaired.
        """
        if count <= 0:
            return self
        window = window_s or self.duration_s or 3600.0
        rng = np.random.default_rng([self.seed, zlib.crc32(b"random_faults")])
        faults = list(self.faults)
        by_id = {d.device_id: d for d in self.devices}
        ids = self.device_ids
        if not ids:
            raise ScenarioError("random faults need at least one device")
        for _ in range(count):
            dev = by_id[ids[int(rng.integers(len(ids)))]]
            model = model_get(dev.model)
            options = [f for f in (kinds or tuple(FAULT_KIND))
                       if f in model.faults or f not in EQUIPMENT_FAULTS]
            if not options:
                raise ScenarioError(f"none of {', '.join(kinds or ())} applies to {dev.model}")
            fault = options[int(rng.integers(len(options)))]
            onset = float(np.round(rng.uniform(0.02, 0.5) * window))
            failure = end = None
            metric = None
            if fault in EQUIPMENT_FAULTS:
                failure = onset + float(np.round(rng.uniform(0.2, 0.45) * window))
            elif fault in SENSOR_FAULTS:
                names = [c.name for c in model.channels if c.name != "run_hours_h"]
                metric = names[int(rng.integers(len(names)))]
                end = onset + float(np.round(rng.uniform(0.1, 0.4) * window))
            else:
                end = onset + float(np.round(rng.uniform(0.02, 0.1) * window))
            faults.append(FaultSpec(dev.device_id, fault, onset, failure, end, metric))
        return replace(self, faults=tuple(faults))


def _num(raw: Any, where: str, *, optional: bool = False) -> float | None:
    if raw is None and optional:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ScenarioError(f"{where}: expected a number, got {raw!r}")
    return float(raw)


def _mapping(raw: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - allowed
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    return raw


def parse(doc: Any, *, source: str = "<scenario>") -> Scenario:
    """Validate a decoded scenario document; ScenarioError says where it is wrong."""
    top = _mapping(doc, source, {"name", "seed", "rate_hz", "duration_s",
                                 "waveform_interval_s", "fleet", "faults", "random_faults",
                                 "description"})
    devices: list[DeviceSpec] = []
    fleet = top.get("fleet")
    if not isinstance(fleet, list) or not fleet:
        raise ScenarioError(f"{source}: `fleet` must be a non-empty list")
    counters: dict[str, int] = {}
    for i, entry in enumerate(fleet):
        where = f"{source}: fleet[{i}]"
        e = _mapping(entry, where, {"model", "count", "ids", "schedule", "utc_offset_h"})
        try:
            model = model_get(str(e.get("model")))
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        if "ids" in e:
            ids = e["ids"]
            if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
                raise ScenarioError(f"{where}: `ids` must be a list of strings")
        else:
            count = e.get("count", 1)
            if not isinstance(count, int) or count < 1:
                raise ScenarioError(f"{where}: `count` must be a positive integer")
            first = counters.get(model.prefix, 0)
            ids = [f"{model.prefix}-{first + k + 1:04d}" for k in range(count)]
            counters[model.prefix] = first + count
        offset = _num(e.get("utc_offset_h", 0.0), f"{where}.utc_offset_h") or 0.0
        devices += [DeviceSpec(d, model.name, e.get("schedule"), offset) for d in ids]
    known = {d.device_id: d for d in devices}
    if len(known) != len(devices):
        raise ScenarioError(f"{source}: duplicate device ids in `fleet`")

    faults: list[FaultSpec] = []
    for i, entry in enumerate(top.get("faults") or []):
        where = f"{source}: faults[{i}]"
        e = _mapping(entry, where, {"device", "fault", "onset_s", "failure_s", "end_s",
                                    "metric", "params"})
        dev = known.get(str(e.get("device")))
        if dev is None:
            raise ScenarioError(f"{where}: device {e.get('device')!r} is not in the fleet")
        spec = FaultSpec(
            dev.device_id, str(e.get("fault")),
            _num(e.get("onset_s"), f"{where}.onset_s") or 0.0,
            _num(e.get("failure_s"), f"{where}.failure_s", optional=True),
            _num(e.get("end_s"), f"{where}.end_s", optional=True),
            e.get("metric"), dict(e.get("params") or {}),
        )
        model = MODELS[dev.model]
        try:
            spec.label(datetime(2000, 1, 1, tzinfo=UTC))  # validates the fault
            if spec.fault in EQUIPMENT_FAULTS and spec.fault not in model.faults:
                raise ValueError(f"{dev.model} cannot have {spec.fault}; it can have: "
                                 f"{', '.join(sorted(model.faults))}")
            if spec.metric is not None:
                model.channel_index(spec.metric)
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        faults.append(spec)

    waveform = _num(top.get("waveform_interval_s"), f"{source}.waveform_interval_s",
                    optional=True)
    scenario = Scenario(
        name=str(top.get("name", Path(source).stem)),
        devices=tuple(devices),
        faults=tuple(faults),
        seed=int(top.get("seed", 0)),
        rate_hz=_num(top.get("rate_hz", 1.0), f"{source}.rate_hz") or 1.0,
        duration_s=_num(top.get("duration_s"), f"{source}.duration_s", optional=True),
        waveform_interval_s=waveform,
    )
    extra = top.get("random_faults", 0)
    if not isinstance(extra, int) or extra < 0:
        raise ScenarioError(f"{source}: `random_faults` must be a non-negative integer")
    return scenario.with_random_faults(extra)


def load(path: str | Path) -> Scenario:
    """Read a scenario file (YAML)."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{p}: not valid YAML: {exc}") from None
    return parse(doc, source=str(p))


def builtin_names() -> list[str]:
    """Names of the scenarios shipped in ``simulators/scenarios/``."""
    return sorted(p.stem for p in _SCENARIO_DIR.glob("*.yaml"))


def builtin(name: str) -> Path:
    """Path of a shipped scenario, e.g. ``builtin("demo")``."""
    path = _SCENARIO_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ScenarioError(f"no built-in scenario {name!r}; known: {', '.join(builtin_names())}")
    return path


def demo_device_ids() -> list[str]:
    """Device ids of the demo scenario (the demo provisions broker logins for these).

    >>> demo_device_ids()[0]
    'cmp-0001'
    """
    return load(builtin("demo")).device_ids


def random_fleet(n_devices: int, *, seed: int = 0, rate_hz: float = 1.0,
                 duration_s: float | None = None) -> Scenario:
    """``n_devices`` spread evenly over the equipment models, no faults (add them after).

    >>> random_fleet(5).device_ids
    ['pmp-0001', 'chl-0001', 'cnc-0001', 'cmp-0001', 'pmp-0002']
    """
    if n_devices < 1:
        raise ScenarioError(f"`--devices` must be >= 1, got {n_devices}")
    models = sorted(MODELS)
    counters: dict[str, int] = {}
    devices = []
    for i in range(n_devices):
        model = MODELS[models[i % len(models)]]
        counters[model.prefix] = counters.get(model.prefix, 0) + 1
        devices.append(DeviceSpec(f"{model.prefix}-{counters[model.prefix]:04d}", model.name))
    return Scenario("random", tuple(devices), (), seed, rate_hz, duration_s)

