"""Equipment-model configuration of the detector bank: what each metric of each kind of machine
means, chosen by the device-id prefix (``cmp-``, ``pmp-``, ``chl-``, ``cnc-``) and the metric name.

Per metric the table says which failure mode a deviation there points to (the catalogue codes
``bearing_wear``, ``cooling_failure``, ``leak``, ``clogged_filter``, ``cavitation``,
``current_imbalance``), absolute limits where the physics gives a healthy envelope that holds for
every machine of the kind (vibration severity, phase imbalance, filter differential pressure),
whether the channel is steady enough while running for drift detection (CUSUM against a frozen
reference), and whether it is scored at all (operating inputs such as a CNC program's speed, the
ambient temperature and hour counters are not evidence of a fault). Per kind it names the channel
that tells whether the machine runs: a stopped or just restarted machine is not scored, so normal
stops are not alerts. Unknown devices and metrics fall back to unit-suffix physical ranges and
keyword failure modes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from anomaly.bank import ChannelSpec
from anomaly.fusion import failure_mode_for
from anomaly.spectral import DEFECTS, BearingGeometry

NAN = float("nan")

# Physically possible ranges by unit suffix, for the out-of-range check.
PHYS_RANGE: dict[str, tuple[float, float]] = {
    "_c": (-60.0, 400.0),
    "_bar": (-1.0, 1000.0),
    "_pct": (0.0, 100.0),
    "_rpm": (0.0, 100_000.0),
    "_a": (0.0, 10_000.0),
    "_v": (0.0, 100_000.0),
    "_l_min": (0.0, 1e6),
    "_mm_s": (0.0, 1000.0),
}


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


@dataclass(frozen=True)
class ModelConfig:
    """One kind of machine: its running indicator and its metrics."""

    run_metric: str
    run_level: float
    metrics: dict[str, MetricConfig]


# A machine at rest does not vibrate: background from neighbouring machines stays well below
# this (ISO 10816 zone A starts at 0.71 mm/s for the smallest machines); a vibration sensor
# reading more than this on a stopped machine has an offset (a drifted sensor).
_AT_REST_MM_S = 0.5
_HOURS = MetricConfig(scored=False, stuck=False)
_AMBIENT = MetricConfig(scored=False)
_IMBALANCE = MetricConfig("current_imbalance", high=4.0, clear_high=3.0, drift=True, min_std=0.3,
                          side=1)

MODELS: dict[str, ModelConfig] = {
    "cmp": ModelConfig("motor_current_a", 5.0, {
        # Load/unload sawtooth: its mean over whole cycles sits mid-band whatever the air
        # demand (demand only changes the duty), so a lower mean is air the machine cannot
        # make up: a leak. Limits watch each sample, baseline and drift the 5-minute mean.
        "discharge_pressure_bar": MetricConfig("leak", low=6.2, clear_low=6.4, drift=True,
                                               min_std=0.03, side=-1, smooth_s=300.0),
        # Healthy: 52..72 K of compression heat over ambient.
        "discharge_temp_c": MetricConfig("cooling_failure", high=80.0, clear_high=76.0,
                                         min_std=1.0, transform="rise_over_ambient",
                                         partners=("ambient_temp_c",), side=1),
        "motor_current_a": MetricConfig("leak", scored=False, steps=True),
        "current_imbalance_pct": _IMBALANCE,
        "vibration_rms_mm_s": MetricConfig("bearing_wear", high=4.5, clear_high=3.5,
                                         idle_max=_AT_REST_MM_S),
        "oil_filter_dp_bar": MetricConfig("clogged_filter", high=0.6, clear_high=0.55),
        "ambient_temp_c": _AMBIENT,
        "run_hours_h": _HOURS,
    }),
    "pmp": ModelConfig("motor_current_a", 2.5, {
        "speed_rpm": MetricConfig("leak", scored=False),
        "flow_l_min": MetricConfig("leak", scored=False),
        "suction_pressure_bar": MetricConfig("cavitation", drift=True, min_std=0.1, side=-1),
        "discharge_pressure_bar": MetricConfig(
            "leak", drift=True, min_std=0.05, transform="head_coefficient",
            partners=("suction_pressure_bar", "speed_rpm"), side=-1),
        "strainer_dp_bar": MetricConfig("clogged_filter", high=0.25, clear_high=0.2),
        "motor_current_a": MetricConfig("leak", scored=False),
        "current_imbalance_pct": _IMBALANCE,
        "vibration_rms_mm_s": MetricConfig("bearing_wear", high=4.5, clear_high=3.5,
                                         idle_max=_AT_REST_MM_S),
        "bearing_temp_c": MetricConfig("bearing_wear", min_std=1.0),
        "run_hours_h": _HOURS,
    }),
    "chl": ModelConfig("compressor_current_a", 5.0, {
        "chw_supply_temp_c": MetricConfig("cooling_failure", min_std=0.3),
        "chw_return_temp_c": MetricConfig("cooling_failure", scored=False),
        "evaporator_pressure_bar": MetricConfig("leak", low=2.6, clear_low=2.8),
        "condenser_pressure_bar": MetricConfig("cooling_failure", high=16.5, clear_high=15.5),
        "compressor_load_pct": MetricConfig("cooling_failure", scored=False),
        "compressor_current_a": MetricConfig(
            "cooling_failure", drift=True, min_std=0.04, transform="current_per_load",
            partners=("compressor_load_pct",), side=1),
        "current_imbalance_pct": _IMBALANCE,
        "strainer_dp_bar": MetricConfig("clogged_filter", high=0.35, clear_high=0.3),
        "vibration_rms_mm_s": MetricConfig("bearing_wear", high=4.0, clear_high=3.2,
                                         idle_max=_AT_REST_MM_S),
        "ambient_temp_c": _AMBIENT,
        "run_hours_h": _HOURS,
    }),
    "cnc": ModelConfig("motor_current_a", 1.0, {
        "speed_rpm": MetricConfig(scored=False, steps=True),
        "spindle_load_pct": MetricConfig(scored=False, steps=True),
        "motor_current_a": MetricConfig(scored=False, steps=True),
        "current_imbalance_pct": _IMBALANCE,
        "spindle_temp_c": MetricConfig("cooling_failure", min_std=1.0),
        "vibration_rms_mm_s": MetricConfig("bearing_wear", high=3.5, clear_high=3.0,
                                         idle_max=_AT_REST_MM_S),
        # Only less coolant is a fault: more than the reference (one learned while the flow
        # was already falling, then a repair) is not.
        "coolant_flow_l_min": MetricConfig("cooling_failure", drift=True, min_std=0.5, side=-1),
        "coolant_temp_c": MetricConfig("cooling_failure", min_std=0.5),
        "coolant_filter_dp_bar": MetricConfig("clogged_filter", high=0.45, clear_high=0.4),
        "run_hours_h": _HOURS,
    }),
}


# ---- Multivariate groups (Hotelling T² / SPE per asset, anomaly.multivariate.AssetT2) ----
# Per kind, the process channels that move together whatever the operating point, so a fault
# shows as a broken correlation before any one channel leaves its own range:
# - pump (VFD): speed, flow, suction and discharge pressure, motor current and strainer dp all
#   follow the drive speed through the affinity laws (flow ~ n, head ~ n², power ~ n³), which
#   are straight lines in logarithms; a leak (head falls while speed and flow rise), a clogging
#   strainer (flow and current fall, dp rises) or cavitation (suction falls) bends them.
# - screw compressor: motor current, oil-filter dp and vibration all step with the load/unload
#   cycle (linear in the loaded state); pressure (a sawtooth) and discharge temperature (a
#   four-minute lag) are not functions of the instantaneous load, so they stay out.
# - chiller: compressor current and condenser pressure are linear in the compressor load and
#   the ambient temperature (refrigeration cycle at its set-point).
# - CNC spindle: none. Its current is linear in the programmed speed and load, but all three are
#   program inputs that step every block, and its faults (coolant, bearing, imbalance) show in
#   channels outside that relation; the per-channel detectors watch them.
# Each group is learned per asset from its own steady, healthy samples, and again after a long
# stop (a trip and repair). A fault is named after the group's scored channel that contributes
# most (operating inputs such as the ambient temperature or the drive speed explain, they are
# not faults).
MULTIVARIATE: dict[str, dict[str, str]] = {
    "pmp": dict.fromkeys(("speed_rpm", "flow_l_min", "suction_pressure_bar",
                          "discharge_pressure_bar", "motor_current_a", "strainer_dp_bar"),
                         "log"),
    "cmp": dict.fromkeys(("motor_current_a", "oil_filter_dp_bar", "vibration_rms_mm_s"),
                         "linear"),
    "chl": dict.fromkeys(("compressor_load_pct", "compressor_current_a",
                          "condenser_pressure_bar", "ambient_temp_c"), "linear"),
}

# ---- Bearings (spectral check of vibration bursts, anomaly.spectral.BearingCheck) ----
# The rolling bearing fitted to each kind (its defect frequencies per shaft revolution), and the
# speed channel that gives the shaft speed where the kind has one (else it is estimated from
# the burst's 1x line).
BEARINGS: dict[str, BearingGeometry] = {
    "cmp": BearingGeometry(9, 0.20),
    "pmp": BearingGeometry(8, 0.22),
    "chl": BearingGeometry(9, 0.20),
    "cnc": BearingGeometry(12, 0.18),
}
SPEED_METRIC: dict[str, str] = {"pmp": "speed_rpm", "cnc": "speed_rpm"}


def bearing_orders(device: str) -> NDArray[np.float64]:
    """Defect orders (:data:`anomaly.spectral.DEFECTS`) of `device`'s bearing; NaN if its kind
    is unknown (its bursts are then not scored).

    >>> bearing_orders("pmp-0001").round(2).tolist(), bool(np.isnan(bearing_orders("x-1")).all())
    ([3.12, 4.88, 2.16], True)
    """
    geo = BEARINGS.get(device.split("-", 1)[0])
    return geo.orders() if geo is not None else np.full(len(DEFECTS), np.nan)


def spec_for(device: str, metric: str) -> ChannelSpec:
    """Channel configuration of `metric` on `device`, from its kind's table when known.

    >>> s = spec_for("pmp-0001", "vibration_rms_mm_s")
    >>> s.mode, s.high, s.phys_max
    ('bearing_wear', 4.5, 1000.0)
    >>> spec_for("pump-1", "temperature_c").mode
    'overheating'
    """
    lo, hi = next((r for suffix, r in PHYS_RANGE.items() if metric.endswith(suffix)), (NAN, NAN))
    model = MODELS.get(device.split("-", 1)[0])
    m = model.metrics.get(metric) if model is not None else None
    if model is None or m is None:
        return ChannelSpec(asset=device, metric=metric, phys_min=lo, phys_max=hi,
                           mode=failure_mode_for(metric))
    return ChannelSpec(
        asset=device, metric=metric, high=m.high, clear_high=m.clear_high, low=m.low,
        clear_low=m.clear_low, duration_s=30.0, phys_min=lo, phys_max=hi, min_std=m.min_std,
        mode=m.mode or failure_mode_for(metric), scored=m.scored, drift=m.drift,
        stuck=m.stuck, steps=m.steps, transform=m.transform, partners=m.partners, side=m.side,
        smooth_s=m.smooth_s, idle_max=m.idle_max,
        run_level=model.run_level if metric == model.run_metric else NAN,
        multivariate=MULTIVARIATE.get(device.split("-", 1)[0], {}).get(metric, ""))
