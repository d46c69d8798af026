"""Equipment profiles: what the detector knows of a kind of machine, as data.

A profile is a readable YAML file (the shipped ones live in ``anomaly/profiles/``): the kind's
running indicator, its bearing, its speed channel and, per metric, the failure mode a deviation
points to, limits with hysteresis, whether it is evidence at all, drift, sides, transforms and
its place in the kind's multivariate group. A new kind of machine (a gearbox with metrics
nobody has seen) is a new file, not new code::

    kind: gearbox
    device_prefix: gbx
    running: {metric: input_speed_rpm, above: 100}
    metrics:
      oil_temp_c: {mode: overheating, high: 95, clear_high: 90, drift: true, side: 1}
      input_speed_rpm: {scored: false}

Until the detect worker finds a device's model through its asset (the CRM's equipment-model
catalogue, issue 13 item 1), devices are matched to a profile by ``device_prefix``, the part of
the device id before the first ``-``. Loading validates everything at the boundary and names
the file and the field in the error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from anomaly.spectral import BearingGeometry

NAN = float("nan")
SHIPPED = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class MetricConfig:
    """How one metric of one kind of machine is watched."""

    mode: str = ""                  # failure mode code; "" = keyword fallback
    high: float = NAN
    clear_high: float | None = None
    low: float = NAN
    clear_low: float | None = None
    drift: bool = False             # steady while running: CUSUM against a frozen reference
    scored: bool = True             # False: an operating input, never evidence of a fault
    min_std: float = 1e-6           # floor of the baseline / reference spread (sensor noise)
    stuck: bool = True              # False: legitimately constant for long (hour counters)
    steps: bool = False             # may step for one sample (a program's set-points)
    transform: str = ""             # watch a characteristic (anomaly.bank.TRANSFORMS)
    partners: tuple[str, ...] = ()
    side: int = 0                   # +1 / -1: only a rise / a fall points to the fault
    smooth_s: float = 0.0           # adaptive detectors watch the running mean (half-life, s)
    idle_max: float = NAN           # at most this while the machine is at rest (else offset)
    multivariate: str = ""          # "linear" / "log": in the kind's correlated group


@dataclass(frozen=True)
class EquipmentProfile:
    """One kind of machine: its running indicator, bearing, speed channel and metrics."""

    kind: str
    device_prefix: str
    run_metric: str
    run_level: float
    metrics: dict[str, MetricConfig]
    bearing: BearingGeometry | None = None
    speed_metric: str = ""
    source: str = field(default="", compare=False)


_FLOATS = {"high", "low", "min_std", "smooth_s", "idle_max"}
_OPTIONAL_FLOATS = {"clear_high", "clear_low"}
_BOOLS = {"drift", "scored", "stuck", "steps"}
_STRINGS = {"mode", "transform", "multivariate"}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    return float(value)


def _metric(raw: Any, where: str) -> MetricConfig:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping of settings")
    known = {f.name for f in fields(MetricConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        if key in _FLOATS or key in _OPTIONAL_FLOATS:
            out[key] = _number(value, at)
        elif key in _BOOLS:
            if not isinstance(value, bool):
                raise ValueError(f"{at}: must be true or false, got {value!r}")
            out[key] = value
        elif key in _STRINGS:
            if not isinstance(value, str):
                raise ValueError(f"{at}: must be text, got {value!r}")
            out[key] = value
        elif key == "side":
            if value not in (-1, 0, 1) or isinstance(value, bool):
                raise ValueError(f"{at}: must be -1, 0 or 1, got {value!r}")
            out[key] = int(value)
        else:                                   # partners
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{at}: must be a list of metric names")
            out[key] = tuple(value)
    if out.get("multivariate", "") not in ("", "linear", "log"):
        raise ValueError(f"{where}.multivariate: must be linear or log, got "
                         f"{out['multivariate']!r}")
    return MetricConfig(**out)


def parse_profile(data: Any, source: str = "<profile>") -> EquipmentProfile:
    """An :class:`EquipmentProfile` from parsed YAML; `source` names it in errors.

    >>> p = parse_profile({"kind": "gearbox", "device_prefix": "gbx",
    ...                    "running": {"metric": "input_speed_rpm", "above": 100},
    ...                    "metrics": {"oil_temp_c": {"mode": "overheating", "high": 95}}})
    >>> p.run_level, p.metrics["oil_temp_c"].high
    (100.0, 95.0)
    >>> parse_profile({"kind": "x", "device_prefix": "x", "running": {"metric": "a",
    ...                "above": 1}, "metrics": {"a": {"hihg": 3}}}, "x.yaml")
    Traceback (most recent call last):
    ...
    ValueError: x.yaml: metrics.a: unknown setting(s) ['hihg']; known: [...]
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a profile must be a mapping")
    allowed = {"kind", "device_prefix", "running", "bearing", "speed_metric", "metrics"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {unknown}")
    for key in ("kind", "device_prefix"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{source}: `{key}` must be non-empty text")
    if "-" in data["device_prefix"]:
        raise ValueError(f"{source}: `device_prefix` must not contain '-'")
    running = data.get("running")
    if not isinstance(running, dict) or set(running) != {"metric", "above"} \
            or not isinstance(running["metric"], str):
        raise ValueError(f"{source}: `running` must be {{metric: <name>, above: <number>}}")
    level = _number(running["above"], f"{source}: running.above")
    metrics_raw = data.get("metrics")
    if not isinstance(metrics_raw, dict) or not metrics_raw:
        raise ValueError(f"{source}: `metrics` must map metric names to their settings")
    metrics = {str(name): _metric(cfg, f"{source}: metrics.{name}")
               for name, cfg in metrics_raw.items()}
    for name, m in metrics.items():
        missing = [p for p in m.partners if p not in metrics]
        if missing:
            raise ValueError(f"{source}: metrics.{name}.partners names unknown metrics {missing}")
    bearing = None
    if data.get("bearing") is not None:
        b = data["bearing"]
        if not isinstance(b, dict) or set(b) != {"balls", "pitch_ratio"}:
            raise ValueError(f"{source}: `bearing` must be {{balls: <n>, pitch_ratio: <r>}}")
        try:
            bearing = BearingGeometry(int(_number(b["balls"], f"{source}: bearing.balls")),
                                      _number(b["pitch_ratio"], f"{source}: bearing.pitch_ratio"))
        except ValueError as exc:
            raise ValueError(f"{source}: bearing: {exc}") from None
    speed = data.get("speed_metric", "")
    if not isinstance(speed, str):
        raise ValueError(f"{source}: `speed_metric` must be a metric name")
    return EquipmentProfile(kind=data["kind"], device_prefix=data["device_prefix"],
                            run_metric=running["metric"], run_level=level, metrics=metrics,
                            bearing=bearing, speed_metric=speed, source=source)


def load_profile(path: Path) -> EquipmentProfile:
    """Read and validate one profile file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    return parse_profile(data, str(path))


def load_profiles(folder: Path = SHIPPED) -> dict[str, EquipmentProfile]:
    """Every ``*.yaml`` profile in `folder`, keyed by device prefix (one profile per prefix)."""
    out: dict[str, EquipmentProfile] = {}
    for path in sorted(folder.glob("*.yaml")):
        p = load_profile(path)
        if p.device_prefix in out:
            raise ValueError(f"{path}: device_prefix {p.device_prefix!r} is already used by "
                             f"{out[p.device_prefix].source}")
        out[p.device_prefix] = p
    return out
