"""Equipment models: channel sets, per-device ratings and vectorised physics.

Each model turns ``(steps, devices)`` arrays of operating state and fault severity into
clean channel values ``(steps, devices, channels)``; the fleet adds sensor noise and
sensor/device faults afterwards. Couplings are physical rather than statistical:

* screw compressor: load/unload cycle drives discharge pressure (sawtooth), motor current and
  discharge temperature (lagged); a leak adds air demand, so the machine loads longer and, past
  its capacity, pressure sags; a cooling failure raises discharge temperature.
* centrifugal pump on a variable-speed drive: speed drives flow (~n), head (~n^2) and
  current (~n^3) together (affinity laws); leak, clogged strainer and cavitation bend them.
* chiller: cooling load follows ambient and occupancy; refrigerant leak and condenser
  (cooling) failure cut capacity, so the compressor loads up and supply temperature rises.
* CNC spindle: machining programs step speed and load; coolant loss heats the spindle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from simulators.signals import first_order_lag, hash_uniform, value_noise

__all__ = ["Channel", "EquipmentModel", "MODELS", "PhysicsInput", "PhysicsOutput", "model_get"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Channel:
    """One metric a model reports: name with unit suffix, sensor noise, resolution, range."""

    name: str
    noise_sd: float
    decimals: int
    span: float  # typical full-scale swing, sizes default spikes and drift
    lo: float = -np.inf
    hi: float = np.inf


@dataclass
class PhysicsInput:
    """What a model's physics needs for one chunk of one device group."""

    t_s: F64  # (T,)
    dt_s: float
    params: dict[str, F64]  # per-device (D,)
    key: NDArray[np.uint64]  # (D,)
    ambient_c: F64  # (T, D)
    running: NDArray[np.bool_]  # (T, D), after schedule, stops and protective trips
    severity: Callable[[str], F64]  # fault name -> (T, D) severity in [0, 1]
    state: dict[str, F64]  # carried between chunks (lags, counters)
    rng: Callable[[str], np.random.Generator]  # one stream per purpose keeps chunking exact

    def lag(self, name: str, target: F64, tau_s: float) -> F64:
        """Thermal/pneumatic lag of ``target`` with time constant ``tau_s``, state kept."""
        y, self.state[name] = first_order_lag(
            target, alpha=float(np.exp(-self.dt_s / tau_s)), state=self.state.get(name)
        )
        return y

    def run_hours(self) -> F64:
        """Cumulative running hours, continued across chunks."""
        start = self.state.get("run_hours_h", self.params["run_hours0_h"])
        h = start[None, :] + np.cumsum(self.running, axis=0) * (self.dt_s / 3600.0)
        if h.shape[0]:
            self.state["run_hours_h"] = h[-1].copy()
        return np.asarray(h, dtype=np.float64)


@dataclass(frozen=True)
class PhysicsOutput:
    values: F64  # (T, D, C) in channel order
    shaft_rpm: F64  # (T, D) for waveform bursts


@dataclass(frozen=True)
class EquipmentModel:
    """A kind of machine the simulator can field."""

    name: str
    title: str
    channels: tuple[Channel, ...]
    faults: frozenset[str]
    default_schedule: str
    stop_probability: float
    draw_params: Callable[[np.random.Generator, int], dict[str, F64]]
    physics: Callable[[PhysicsInput], PhysicsOutput]
    prefix: str
    bearing_balls: int = 9
    ball_pitch_ratio: float = 0.2  # ball diameter / pitch diameter
    metric_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric_names", tuple(c.name for c in self.channels))

    def channel_index(self, name: str) -> int:
        try:
            return self.metric_names.index(name)
        except ValueError:
            raise ValueError(
                f"model {self.name!r} has no channel {name!r}; channels: "
                f"{', '.join(self.metric_names)}"
            ) from None

    def bpfo_order(self) -> float:
        """Ball-pass frequency, outer race, as a multiple of shaft speed (contact angle 0)."""
        return self.bearing_balls / 2.0 * (1.0 - self.ball_pitch_ratio)


def _stack(*cols: F64) -> F64:
    return np.stack(cols, axis=-1)


def _frac(x: F64) -> F64:
    return x - np.floor(x)


# --- screw air compressor -------------------------------------------------------------

_COMPRESSOR_CH = (
    Channel("discharge_pressure_bar", 0.02, 3, 8.0, lo=0.0),
    Channel("discharge_temp_c", 0.3, 2, 80.0),
    Channel("motor_current_a", 0.8, 2, 200.0, lo=0.0),
    Channel("current_imbalance_pct", 0.15, 2, 10.0, lo=0.0),
    Channel("vibration_rms_mm_s", 0.08, 3, 8.0, lo=0.0),
    Channel("oil_filter_dp_bar", 0.01, 3, 1.5, lo=0.0),
    Channel("ambient_temp_c", 0.1, 2, 20.0),
    Channel("run_hours_h", 0.0, 3, 1000.0, lo=0.0),
)


def _compressor_params(rng: np.random.Generator, n: int) -> dict[str, F64]:
    return {
        "i_rated_a": rng.choice(np.array([55.0, 90.0, 140.0, 210.0]), size=n),
        "p_set_bar": rng.uniform(6.8, 7.6, n),
        "cycle_s": rng.uniform(90.0, 200.0, n),
        "phase": rng.uniform(0.0, 1.0, n),
        "imbalance0_pct": rng.uniform(0.4, 1.4, n),
        "rpm": rng.choice(np.array([1480.0, 2975.0]), size=n),
        "run_hours0_h": rng.uniform(500.0, 30000.0, n),
    }


def _compressor(x: PhysicsInput) -> PhysicsOutput:
    p, t = x.params, x.t_s
    run = x.running.astype(np.float64)
    leak, cool = x.severity("leak"), x.severity("cooling_failure")
    clog, bear, imb = x.severity("clogged_filter"), x.severity("bearing_wear"), x.severity(
        "current_imbalance"
    )
    demand = 0.3 + 0.5 * value_noise(t, x.key ^ np.uint64(1), 1800.0)
    want = demand + 0.5 * leak  # a leak is extra air demand: longer loaded phases
    over = np.clip(want - 0.97, 0.0, None)
    duty = np.clip(want, 0.05, 0.97)
    phase = _frac(t[:, None] / p["cycle_s"] + p["phase"])
    loaded = phase < duty
    band = 0.5
    lo = p["p_set_bar"] - band / 2
    rising = lo + band * phase / duty
    falling = lo + band - band * (phase - duty) / (1.0 - duty)
    saw = np.where(loaded, rising, falling) - 2.5 * over - 0.3 * leak
    pressure = x.lag("pressure", np.where(x.running, saw, 0.0), tau_s=8.0)
    lf = loaded.astype(np.float64) * run
    current = p["i_rated_a"] * run * np.where(loaded, 0.9 + 0.06 * demand, 0.38) * (1 + 0.05 * imb)
    temp = x.lag(
        "discharge_temp",
        x.ambient_c + run * (52.0 + 20.0 * lf + 45.0 * cool),
        tau_s=240.0,
    )
    imbalance = run * (p["imbalance0_pct"] + 14.0 * imb)
    vib = 0.05 + run * (1.5 + 0.5 * lf + 7.5 * bear)
    oil_dp = run * (0.25 + 0.15 * lf + 1.3 * clog)
    shaft = run * p["rpm"]
    values = _stack(
        pressure, temp, current, imbalance, vib, oil_dp, x.ambient_c, x.run_hours()
    )
    return PhysicsOutput(values, shaft)


# --- centrifugal pump -----------------------------------------------------------------

_PUMP_CH = (
    Channel("speed_rpm", 3.0, 1, 1500.0, lo=0.0),
    Channel("flow_l_min", 4.0, 1, 1000.0, lo=0.0),
    Channel("suction_pressure_bar", 0.01, 3, 1.5),
    Channel("discharge_pressure_bar", 0.03, 3, 6.0),
    Channel("strainer_dp_bar", 0.008, 3, 1.5, lo=0.0),
    Channel("motor_current_a", 0.3, 2, 60.0, lo=0.0),
    Channel("current_imbalance_pct", 0.15, 2, 10.0, lo=0.0),
    Channel("vibration_rms_mm_s", 0.08, 3, 8.0, lo=0.0),
    Channel("bearing_temp_c", 0.2, 2, 60.0),
    Channel("run_hours_h", 0.0, 3, 1000.0, lo=0.0),
)


def _pump_params(rng: np.random.Generator, n: int) -> dict[str, F64]:
    return {
        "rpm": rng.choice(np.array([1480.0, 2960.0]), size=n),
        "q_rated_l_min": rng.uniform(300.0, 1500.0, n),
        "head_bar": rng.uniform(3.0, 6.0, n),
        "suction_bar": rng.uniform(0.8, 1.6, n),
        "i_rated_a": rng.uniform(15.0, 80.0, n),
        "imbalance0_pct": rng.uniform(0.4, 1.4, n),
        "run_hours0_h": rng.uniform(500.0, 40000.0, n),
    }


def _pump(x: PhysicsInput) -> PhysicsOutput:
    p, t = x.params, x.t_s
    run = x.running.astype(np.float64)
    leak, clog, cav = x.severity("leak"), x.severity("clogged_filter"), x.severity("cavitation")
    bear, imb = x.severity("bearing_wear"), x.severity("current_imbalance")
    demand = 0.62 + 0.32 * value_noise(t, x.key ^ np.uint64(2), 1200.0)
    n = np.minimum(1.0, demand + 0.25 * leak) * run  # drive speeds up to hold pressure
    shape = (t.shape[0], x.key.shape[0])
    wobble = x.rng("cavitation").standard_normal(shape)
    flow = p["q_rated_l_min"] * n * (1 - 0.35 * clog) * (1 - 0.2 * cav) * (1 + 0.12 * leak)
    flow = flow * (1 + 0.08 * cav * wobble)
    head = p["head_bar"] * n**2 * (1 - 0.45 * leak) * (1 - 0.15 * cav) * (1 + 0.05 * cav * wobble)
    suction = p["suction_bar"] - 0.06 * n**2 - 0.6 * clog * run - 0.7 * cav * run
    discharge = suction + head
    current = p["i_rated_a"] * run * (0.2 + 0.8 * n**3) * (1 - 0.15 * clog) * (1 + 0.05 * imb)
    strainer_dp = run * (0.12 * (flow / p["q_rated_l_min"]) ** 2 + 1.2 * clog)
    vib = 0.05 + run * (1.0 + 1.6 * n**2 + 7.0 * bear + 4.0 * cav * (1 + 0.5 * np.abs(wobble)))
    btemp = x.lag("bearing_temp", x.ambient_c + run * (16 + 14 * n**2) + 30 * bear, 900.0)
    imbalance = run * (p["imbalance0_pct"] + 14.0 * imb)
    speed = p["rpm"] * n
    values = _stack(
        speed, flow, suction, discharge, strainer_dp, current, imbalance, vib, btemp,
        x.run_hours(),
    )
    return PhysicsOutput(values, speed)


# --- chiller --------------------------------------------------------------------------

_CHILLER_CH = (
    Channel("chw_supply_temp_c", 0.05, 2, 10.0),
    Channel("chw_return_temp_c", 0.05, 2, 10.0),
    Channel("evaporator_pressure_bar", 0.02, 3, 4.0, lo=0.0),
    Channel("condenser_pressure_bar", 0.04, 3, 15.0, lo=0.0),
    Channel("compressor_load_pct", 0.5, 1, 100.0, lo=0.0, hi=100.0),
    Channel("compressor_current_a", 0.6, 2, 300.0, lo=0.0),
    Channel("current_imbalance_pct", 0.15, 2, 10.0, lo=0.0),
    Channel("strainer_dp_bar", 0.008, 3, 1.5, lo=0.0),
    Channel("vibration_rms_mm_s", 0.06, 3, 6.0, lo=0.0),
    Channel("ambient_temp_c", 0.1, 2, 20.0),
    Channel("run_hours_h", 0.0, 3, 1000.0, lo=0.0),
)


def _chiller_params(rng: np.random.Generator, n: int) -> dict[str, F64]:
    return {
        "setpoint_c": rng.choice(np.array([6.0, 7.0, 8.0]), size=n),
        "i_rated_a": rng.uniform(80.0, 400.0, n),
        "imbalance0_pct": rng.uniform(0.4, 1.4, n),
        "rpm": np.full(n, 2950.0),
        "run_hours0_h": rng.uniform(500.0, 50000.0, n),
    }


def _chiller(x: PhysicsInput) -> PhysicsOutput:
    p, t = x.params, x.t_s
    run = x.running.astype(np.float64)
    leak, cool = x.severity("leak"), x.severity("cooling_failure")
    clog, bear, imb = x.severity("clogged_filter"), x.severity("bearing_wear"), x.severity(
        "current_imbalance"
    )
    hour = (t % 86400.0) / 3600.0
    occupancy = np.clip(np.sin(np.pi * (hour - 7.0) / 12.0), 0.0, None)[:, None]
    wander = value_noise(t, x.key ^ np.uint64(3), 2400.0)
    load = np.clip(0.3 + 0.025 * (x.ambient_c - 20) + 0.3 * occupancy + 0.2 * (wander - 0.5),
                   0.1, 1.0)
    capacity = (1 - 0.45 * leak) * (1 - 0.35 * cool)
    comp = np.clip(load / capacity, 0.0, 1.0) * run
    deficit = np.clip(load - capacity, 0.0, None)
    idle_c = np.minimum(x.ambient_c, 18.0)
    supply = x.lag(
        "chw_supply",
        np.where(x.running, p["setpoint_c"] + 8.0 * deficit + 0.2 * comp, idle_c),
        tau_s=600.0,
    )
    ret = supply + run * 5.0 * load / (1 - 0.4 * clog)
    standstill = 4.5 + 0.12 * (x.ambient_c - 20)
    evap = np.where(x.running, 3.2 - 1.5 * leak + 0.05 * (supply - p["setpoint_c"]), standstill)
    cond = np.where(
        x.running, 8.5 + 0.3 * (x.ambient_c - 20) + 3.0 * comp + 6.0 * cool, standstill
    )
    current = p["i_rated_a"] * run * (0.3 + 0.7 * comp) * (1 + 0.25 * cool) * (1 + 0.05 * imb)
    imbalance = run * (p["imbalance0_pct"] + 14.0 * imb)
    strainer_dp = run * (0.2 + 1.2 * clog)
    vib = 0.05 + run * (1.1 + 0.6 * comp + 6.0 * bear)
    values = _stack(
        supply, ret, evap, cond, 100.0 * comp, current, imbalance, strainer_dp, vib,
        x.ambient_c, x.run_hours(),
    )
    return PhysicsOutput(values, run * p["rpm"])


# --- CNC spindle ----------------------------------------------------------------------

_SPINDLE_CH = (
    Channel("speed_rpm", 5.0, 0, 12000.0, lo=0.0),
    Channel("spindle_load_pct", 0.8, 1, 100.0, lo=0.0, hi=150.0),
    Channel("motor_current_a", 0.2, 2, 40.0, lo=0.0),
    Channel("current_imbalance_pct", 0.15, 2, 10.0, lo=0.0),
    Channel("spindle_temp_c", 0.15, 2, 40.0),
    Channel("vibration_rms_mm_s", 0.05, 3, 5.0, lo=0.0),
    Channel("coolant_flow_l_min", 0.3, 2, 30.0, lo=0.0),
    Channel("coolant_temp_c", 0.1, 2, 20.0),
    Channel("coolant_filter_dp_bar", 0.008, 3, 1.5, lo=0.0),
    Channel("run_hours_h", 0.0, 3, 1000.0, lo=0.0),
)

_SPINDLE_LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def _spindle_params(rng: np.random.Generator, n: int) -> dict[str, F64]:
    return {
        "max_rpm": rng.choice(np.array([8000.0, 12000.0, 18000.0]), size=n),
        "block_s": rng.uniform(20.0, 90.0, n),
        "i_idle_a": rng.uniform(2.0, 4.0, n),
        "i_rated_a": rng.uniform(15.0, 40.0, n),
        "coolant_l_min": rng.uniform(15.0, 30.0, n),
        "imbalance0_pct": rng.uniform(0.4, 1.4, n),
        "run_hours0_h": rng.uniform(100.0, 20000.0, n),
    }


def _spindle(x: PhysicsInput) -> PhysicsOutput:
    p, t = x.params, x.t_s
    run = x.running.astype(np.float64)
    cool, clog = x.severity("cooling_failure"), x.severity("clogged_filter")
    bear, imb = x.severity("bearing_wear"), x.severity("current_imbalance")
    block = np.floor(t[:, None] / p["block_s"]).astype(np.int64)
    level = _SPINDLE_LEVELS[(hash_uniform(x.key ^ np.uint64(4), block) * 5).astype(np.int64)]
    speed = p["max_rpm"] * level * run
    rel = speed / p["max_rpm"]
    cutting = (speed > 0).astype(np.float64)
    load = cutting * (20 + 65 * hash_uniform(x.key ^ np.uint64(5), block)) * (1 + 0.3 * bear)
    current = run * (p["i_idle_a"] + p["i_rated_a"] * (0.15 * rel + 0.85 * load / 100))
    current = current * (1 + 0.05 * imb)
    flow = run * p["coolant_l_min"] * (1 - 0.8 * cool) * (1 - 0.45 * clog)
    coolant_t = x.lag("coolant_temp", x.ambient_c + run * (2 + 4 * load / 100) + 12 * cool, 600.0)
    spindle_t = x.lag(
        "spindle_temp",
        x.ambient_c + run * (6 + 22 * rel + 10 * load / 100) + 30 * cool * run + 20 * bear * run,
        300.0,
    )
    vib = 0.05 + run * (0.25 + 1.6 * rel**2 + 5.0 * bear)
    fdp = run * (0.25 + 1.5 * clog)
    imbalance = run * (p["imbalance0_pct"] + 14.0 * imb)
    values = _stack(
        speed, load, current, imbalance, spindle_t, vib, flow, coolant_t, fdp, x.run_hours()
    )
    return PhysicsOutput(values, speed)


MODELS: dict[str, EquipmentModel] = {
    m.name: m
    for m in (
        EquipmentModel(
            "screw_compressor", "Screw air compressor", _COMPRESSOR_CH,
            frozenset({"bearing_wear", "cooling_failure", "leak", "clogged_filter",
                       "current_imbalance"}),
            "two_shift", 0.05, _compressor_params, _compressor, "cmp",
        ),
        EquipmentModel(
            "centrifugal_pump", "Centrifugal pump (VFD)", _PUMP_CH,
            frozenset({"bearing_wear", "leak", "clogged_filter", "cavitation",
                       "current_imbalance"}),
            "continuous", 0.02, _pump_params, _pump, "pmp", bearing_balls=8,
            ball_pitch_ratio=0.22,
        ),
        EquipmentModel(
            "chiller", "Air-cooled chiller", _CHILLER_CH,
            frozenset({"bearing_wear", "cooling_failure", "leak", "clogged_filter",
                       "current_imbalance"}),
            "continuous", 0.02, _chiller_params, _chiller, "chl",
        ),
        EquipmentModel(
            "cnc_spindle", "CNC machining spindle", _SPINDLE_CH,
            frozenset({"bearing_wear", "cooling_failure", "clogged_filter",
                       "current_imbalance"}),
            "two_shift", 0.08, _spindle_params, _spindle, "cnc", bearing_balls=12,
            ball_pitch_ratio=0.18,
        ),
    )
}


def model_get(name: str) -> EquipmentModel:
    """The model called ``name``; ValueError listing the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown equipment model {name!r}; known: {', '.join(sorted(MODELS))}"
        ) from None
