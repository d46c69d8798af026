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

The CRM's equipment-model catalogue stores the same settings (``EquipmentModel`` and its
``MetricSpec`` rows) and imports / exports them in this format; the detect worker finds a
device's profile through its asset there (:mod:`anomaly.catalogue`). :func:`profile_dict` and
:func:`metric_columns` translate between the catalogue's columns and the profile, one place for
both directions. A profile may also carry the catalogue's own fields: ``name``,
``manufacturer``, ``equipment_type``, ``contract_list_price`` and ``failure_modes`` (per code its
name, skill, labour hours and parts list); per metric ``unit``, ``healthy: [low, high]``,
``duration_s`` (how long a limit must be crossed), ``sensor_range: [low, high]`` (what the
sensor can read at all: beyond is the sensor's fault, not the machine's; by default a range
for the metric's unit suffix) and ``ignored``. ``device_prefix`` only names
the simulator's devices of the kind (the offline scenario evaluation); the worker does not use
it. Loading validates everything at the boundary and names the file and the field in the error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
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
    # Metrics that move with this one whenever the machine itself changes: a sudden change of
    # this one alone is the sensor, not the machine (anomaly.bank.ChannelSpec.witnesses).
    witnesses: tuple[str, ...] = ()
    side: int = 0                   # +1 / -1: only a rise / a fall points to the fault
    smooth_s: float = 0.0           # adaptive detectors watch the running mean (half-life, s)
    idle_max: float = NAN           # at most this while the machine is at rest (else offset)
    multivariate: str = ""          # "linear" / "log": in the kind's correlated group
    duration_s: float = 30.0        # a limit counts once crossed this long
    ignored: bool = False           # neither evidence nor checked as a sensor
    unit: str = ""                  # catalogue only: the unit the device sends
    healthy: tuple[float | None, float | None] = (None, None)  # catalogue only: normal range
    # What the sensor can read at all (null: the unit suffix's range, anomaly.models.
    # PHYS_RANGE): a reading beyond is the device problem "sensor out of range".
    sensor_range: tuple[float | None, float | None] = (None, None)

    @property
    def role(self) -> str:
        """The catalogue's word for how the metric is used: evidence, input or ignored."""
        return "ignored" if self.ignored else "evidence" if self.scored else "input"


@dataclass(frozen=True)
class FailureModeConfig:
    """A way the kind fails: its name, the skill and hours to fix it and the parts it needs."""

    name: str
    skill: str = ""
    labour_hours: float = 2.0
    parts: tuple[tuple[str, int], ...] = ()        # (part number, quantity), by number


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
    name: str = ""                      # catalogue fields (not used by the detector)
    manufacturer: str = ""
    equipment_type: str = ""
    contract_list_price: float | None = None
    failure_modes: dict[str, FailureModeConfig] = field(default_factory=dict)


_FLOATS = {"high", "low", "min_std", "smooth_s", "idle_max", "duration_s"}
_OPTIONAL_FLOATS = {"clear_high", "clear_low"}
_BOOLS = {"drift", "scored", "stuck", "steps", "ignored"}
_STRINGS = {"mode", "transform", "multivariate", "unit"}


_CATALOGUE_TEXT = ("name", "manufacturer", "equipment_type")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
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
        elif key in ("healthy", "sensor_range"):
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ValueError(f"{at}: must be [low, high] (null for no bound)")
            lo_hi = tuple(None if v is None else _number(v, at) for v in value)
            if None not in lo_hi and lo_hi[0] >= lo_hi[1]:   # type: ignore[operator]
                raise ValueError(f"{at}: low must be below high")
            out[key] = lo_hi
        elif key == "side":
            if value not in (-1, 0, 1) or isinstance(value, bool):
                raise ValueError(f"{at}: must be -1, 0 or 1, got {value!r}")
            out[key] = int(value)
        else:                                   # partners, witnesses
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{at}: must be a list of metric names")
            out[key] = tuple(value)
    if out.get("multivariate", "") not in ("", "linear", "log"):
        raise ValueError(f"{where}.multivariate: must be linear or log, got "
                         f"{out['multivariate']!r}")
    for lo, hi in (("low", "high"), ("clear_low", "clear_high")):
        if lo in out and hi in out and out[lo] >= out[hi]:
            raise ValueError(f"{where}.{hi}: must be above {lo}")
    if "high" in out and out.get("clear_high") is not None and out["clear_high"] > out["high"]:
        raise ValueError(f"{where}.clear_high: must not be above high")
    if "low" in out and out.get("clear_low") is not None and out["clear_low"] < out["low"]:
        raise ValueError(f"{where}.clear_low: must not be below low")
    if out.get("duration_s", 0.0) < 0:
        raise ValueError(f"{where}.duration_s: must be >= 0")
    if out.get("ignored") and out.get("scored"):
        raise ValueError(f"{where}.ignored: an ignored metric cannot be scored")
    if out.get("ignored"):
        out["scored"] = False
    return MetricConfig(**out)


def parse_metric(raw: Any, where: str = "metric") -> MetricConfig:
    """One metric's settings (a profile's ``metrics.<name>`` mapping), validated."""
    return _metric(raw, where)


def _failure_mode(raw: Any, where: str) -> FailureModeConfig:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping of name, skill, labour_hours, parts")
    unknown = sorted(set(raw) - {"name", "skill", "labour_hours", "parts"})
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: must be non-empty text")
    skill = raw.get("skill", "")
    if not isinstance(skill, str):
        raise ValueError(f"{where}.skill: must be text")
    hours = _number(raw.get("labour_hours", 2.0), f"{where}.labour_hours")
    if hours < 0:
        raise ValueError(f"{where}.labour_hours: must be >= 0")
    parts_raw = raw.get("parts", {}) or {}
    if not isinstance(parts_raw, dict):
        raise ValueError(f"{where}.parts: must map part numbers to quantities")
    parts = []
    for sku, qty in parts_raw.items():
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            raise ValueError(f"{where}.parts.{sku}: quantity must be a whole number >= 1")
        parts.append((str(sku), qty))
    return FailureModeConfig(name=name, skill=skill, labour_hours=hours,
                             parts=tuple(sorted(parts)))


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
    allowed = {"kind", "device_prefix", "running", "bearing", "speed_metric", "metrics",
               *_CATALOGUE_TEXT, "contract_list_price", "failure_modes"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {unknown}")
    if not isinstance(data.get("kind"), str) or not data["kind"]:
        raise ValueError(f"{source}: `kind` must be non-empty text")
    data = {"device_prefix": "", **data}
    for key in ("device_prefix", *_CATALOGUE_TEXT):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{source}: `{key}` must be text")
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
        for key in ("partners", "witnesses"):
            missing = [p for p in getattr(m, key) if p not in metrics]
            if missing:
                raise ValueError(f"{source}: metrics.{name}.{key} names unknown metrics "
                                 f"{missing}")
        if name in m.witnesses:
            raise ValueError(f"{source}: metrics.{name}.witnesses: a metric cannot witness "
                             f"itself")
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
    price = data.get("contract_list_price")
    if price is not None:
        price = _number(price, f"{source}: contract_list_price")
    modes_raw = data.get("failure_modes") or {}
    if not isinstance(modes_raw, dict):
        raise ValueError(f"{source}: `failure_modes` must map failure-mode codes to settings")
    modes = {str(code): _failure_mode(cfg, f"{source}: failure_modes.{code}")
             for code, cfg in modes_raw.items()}
    return EquipmentProfile(kind=data["kind"], device_prefix=data["device_prefix"],
                            run_metric=running["metric"], run_level=level, metrics=metrics,
                            bearing=bearing, speed_metric=speed, source=source,
                            name=data.get("name", ""), manufacturer=data.get("manufacturer", ""),
                            equipment_type=data.get("equipment_type", ""),
                            contract_list_price=price, failure_modes=modes)


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


# ---- The CRM catalogue's columns <-> a profile (one translation, both directions) ----
# Per metric, the settings the catalogue keeps in columns of their own; the rest of a metric's
# settings live in its `settings` mapping under their profile names.
METRIC_COLUMNS = ("unit", "role", "failure_mode", "low", "high", "clear_low", "clear_high",
                  "duration_s", "healthy_low", "healthy_high", "drift")
ROLES = ("evidence", "input", "ignored")
_DEFAULT = MetricConfig()


def profile_dict(model: Mapping[str, Any], metrics: Iterable[Mapping[str, Any]],
                 failure_modes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A profile (as :func:`parse_profile` reads it and YAML writes it) from the catalogue's
    columns: `model` with ``kind``, ``running_metric``, ``running_above``, ``bearing_balls``,
    ``bearing_pitch_ratio``, ``speed_metric`` and optionally the catalogue fields; one mapping
    per metric with ``metric``, :data:`METRIC_COLUMNS` and ``settings``; `failure_modes`
    already in profile form. Unset columns (None, "", defaults) are left out.

    >>> d = profile_dict({"kind": "gearbox", "running_metric": "rpm", "running_above": 100},
    ...                  [{"metric": "oil_c", "role": "evidence", "failure_mode": "overheating",
    ...                    "high": 95.0, "clear_high": 90.0, "duration_s": 30.0, "drift": False,
    ...                    "settings": {"side": 1}},
    ...                   {"metric": "rpm", "role": "input"}])
    >>> d["metrics"]["oil_c"], d["metrics"]["rpm"]
    ({'mode': 'overheating', 'high': 95.0, 'clear_high': 90.0, 'side': 1}, {'scored': False})
    """
    out: dict[str, Any] = {"kind": model.get("kind") or ""}
    for key in _CATALOGUE_TEXT:
        if model.get(key):
            out[key] = model[key]
    if model.get("contract_list_price") is not None:
        out["contract_list_price"] = float(model["contract_list_price"])
    out["running"] = {"metric": model.get("running_metric") or "",
                      "above": model.get("running_above")}
    if model.get("bearing_balls") is not None or model.get("bearing_pitch_ratio") is not None:
        out["bearing"] = {"balls": model.get("bearing_balls"),
                          "pitch_ratio": model.get("bearing_pitch_ratio")}
    if model.get("speed_metric"):
        out["speed_metric"] = model["speed_metric"]
    out["metrics"] = {str(row["metric"]): _metric_dict(row) for row in metrics}
    if failure_modes:
        out["failure_modes"] = dict(failure_modes)
    return out


def _metric_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if row.get("unit"):
        d["unit"] = row["unit"]
    if row.get("failure_mode"):
        d["mode"] = row["failure_mode"]
    role = row.get("role") or "evidence"
    if role != "evidence":
        d["scored"] = False
    if role == "ignored":
        d["ignored"] = True
    for key in ("low", "high", "clear_low", "clear_high"):
        if row.get(key) is not None:
            d[key] = row[key]
    if row.get("duration_s") is not None and row["duration_s"] != _DEFAULT.duration_s:
        d["duration_s"] = row["duration_s"]
    if row.get("healthy_low") is not None or row.get("healthy_high") is not None:
        d["healthy"] = [row.get("healthy_low"), row.get("healthy_high")]
    if row.get("drift"):
        d["drift"] = True
    d.update(row.get("settings") or {})
    return d


def metric_columns(m: MetricConfig) -> dict[str, Any]:
    """The catalogue's columns of one metric (the inverse of :func:`profile_dict`'s)."""
    settings: dict[str, Any] = {}
    for key in ("min_std", "stuck", "steps", "transform", "side", "smooth_s", "idle_max",
                "multivariate"):
        value, default = getattr(m, key), getattr(_DEFAULT, key)
        if value != default and not (isinstance(value, float) and math.isnan(value)
                                     and math.isnan(default)):
            settings[key] = value
    for key in ("partners", "witnesses"):
        if getattr(m, key):
            settings[key] = list(getattr(m, key))
    if m.sensor_range != (None, None):
        settings["sensor_range"] = list(m.sensor_range)
    return {"unit": m.unit, "role": m.role, "failure_mode": m.mode,
            "low": None if math.isnan(m.low) else m.low,
            "high": None if math.isnan(m.high) else m.high,
            "clear_low": m.clear_low, "clear_high": m.clear_high, "duration_s": m.duration_s,
            "healthy_low": m.healthy[0], "healthy_high": m.healthy[1], "drift": m.drift,
            "settings": settings}


def dump_profile(profile: Mapping[str, Any]) -> str:
    """A profile mapping as readable YAML: one line per metric and failure mode."""
    head = {k: v for k, v in profile.items() if k not in ("metrics", "failure_modes")}
    text = yaml.safe_dump(head, sort_keys=False, default_flow_style=None, width=100)
    for section in ("metrics", "failure_modes"):
        if profile.get(section):
            text += f"{section}:\n"
            for name, cfg in profile[section].items():
                # Flow style for the one entry, without the braces around it.
                line = yaml.safe_dump({name: cfg}, default_flow_style=True, sort_keys=False,
                                      width=10_000).strip()
                text += f"  {line[1:-1]}\n"
    return text
