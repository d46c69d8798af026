"""Equipment-model configuration of the detector bank: what each metric of each kind of machine
means, from its equipment profile (:mod:`anomaly.profiles`). The detect worker finds a device's
profile through its asset in the CRM's catalogue (:mod:`anomaly.catalogue`) and calls
:func:`channel_spec`; the offline evaluation of the simulator's fleet, which has no CRM, finds
each device's profile by its simulated equipment model (the profile's ``kind``). A device's id
plays no part.

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

import numpy as np
from numpy.typing import NDArray

from anomaly.bank import ChannelSpec
from anomaly.fusion import failure_mode_for
from anomaly.profiles import EquipmentProfile, MetricConfig, load_profiles
from anomaly.spectral import DEFECTS, BearingGeometry

__all__ = ["BEARINGS", "MODELS", "MULTIVARIATE", "PROFILES", "SPEED_METRIC", "MetricConfig",
           "bearing_orders", "channel_spec"]

NAN = float("nan")

# Physically possible ranges by unit suffix, for the out-of-range check (a profile's
# `sensor_range` overrides them). Only what no healthy sensor can read: a percentage of rated
# load or current passes 100 in an overload (a spindle cutting hard, a motor starting), so
# `_pct` stops well above it.
PHYS_RANGE: dict[str, tuple[float, float]] = {
    "_c": (-60.0, 400.0),
    "_bar": (-1.0, 1000.0),
    "_pct": (0.0, 1000.0),
    "_rpm": (0.0, 100_000.0),
    "_a": (0.0, 10_000.0),
    "_v": (0.0, 100_000.0),
    "_l_min": (0.0, 1e6),
    "_mm_s": (0.0, 1000.0),
}


#: The shipped equipment profiles (``anomaly/profiles/*.yaml``), keyed by kind.
PROFILES: dict[str, EquipmentProfile] = {p.kind: p for p in load_profiles().values()}
#: Same, under the name the bank's callers used before the profiles were files.
MODELS = PROFILES

# ---- Multivariate groups (Hotelling T² / SPE per asset, anomaly.multivariate.AssetT2) ----
# Per kind, the process channels that move together whatever the operating point (each
# profile's `multivariate` metrics), so a fault shows as a broken correlation before any one
# channel leaves its own range. Each group is learned per asset from its own steady, healthy
# samples, and again after a long stop (a trip and repair). A fault is named after the group's
# scored channel that contributes most (operating inputs such as the ambient temperature or the
# drive speed explain, they are not faults).
MULTIVARIATE: dict[str, dict[str, str]] = {
    kind: {name: m.multivariate for name, m in p.metrics.items() if m.multivariate}
    for kind, p in PROFILES.items() if any(m.multivariate for m in p.metrics.values())}

# ---- Bearings (spectral check of vibration bursts, anomaly.spectral.BearingCheck) ----
# The rolling bearing fitted to each kind (its defect frequencies per shaft revolution), and the
# speed channel that gives the shaft speed where the kind has one (else it is estimated from
# the burst's 1x line).
BEARINGS: dict[str, BearingGeometry] = {
    kind: p.bearing for kind, p in PROFILES.items() if p.bearing is not None}
SPEED_METRIC: dict[str, str] = {
    kind: p.speed_metric for kind, p in PROFILES.items() if p.speed_metric}


def bearing_orders(profile: EquipmentProfile | None) -> NDArray[np.float64]:
    """Defect orders (:data:`anomaly.spectral.DEFECTS`) of the bearing `profile` names; NaN
    without a profile or a bearing (bursts are then not scored).

    >>> bearing_orders(PROFILES["centrifugal_pump"]).round(2).tolist()
    [3.12, 4.88, 2.16]
    >>> bool(np.isnan(bearing_orders(None)).all())
    True
    """
    geo = profile.bearing if profile is not None else None
    return geo.orders() if geo is not None else np.full(len(DEFECTS), np.nan)


def channel_spec(device: str, metric: str, profile: EquipmentProfile | None, *,
                 mode: str = "", role: str = "") -> ChannelSpec:
    """Channel configuration of `metric` on `device` watched with `profile`; with no profile,
    or a metric it does not name, generic detection (unit-suffix physical ranges, self-calibrating
    baselines, and the failure mode `mode` the desk saved for the metric, else a guess from the
    metric's name). `role`, what the equipment model says of a metric its profile does not
    describe: "input" (an operating input such as the ambient temperature: watched as a
    sensor and related to the others, never evidence of a fault), "ignored" (neither), else
    evidence.

    >>> s = channel_spec("p-1", "vibration_rms_mm_s", PROFILES["centrifugal_pump"])
    >>> s.mode, s.high, s.phys_max
    ('bearing_wear', 4.5, 1000.0)
    >>> g = channel_spec("gbx-7", "oil_temp_c", None)
    >>> g.mode, g.generic
    ('overheating', True)
    >>> channel_spec("gbx-7", "oil_temp_c", None, mode="seal_leak").mode
    'seal_leak'
    >>> a = channel_spec("gbx-7", "ambient_temp_c", None, role="input")
    >>> a.generic, a.scored, a.stuck
    (True, False, True)
    """
    lo, hi = next((r for suffix, r in PHYS_RANGE.items() if metric.endswith(suffix)), (NAN, NAN))
    model = profile
    m = model.metrics.get(metric) if model is not None else None
    if m is not None:
        lo, hi = (b if b is not None else d for b, d in zip(m.sensor_range, (lo, hi),
                                                            strict=True))
    if model is None or m is None:
        if role not in ("", "evidence", "input", "ignored"):
            raise ValueError(f"role must be evidence, input or ignored, got {role!r}")
        quiet = role == "ignored"
        return ChannelSpec(asset=device, metric=metric, phys_min=lo, phys_max=hi,
                           mode=mode or failure_mode_for(metric), generic=True,
                           scored=role not in ("input", "ignored"), stuck=not quiet,
                           drift=not quiet, steps=quiet)
    if m.ignored:
        # Named by the profile as of no interest: no evidence, no sensor checks of its values.
        return ChannelSpec(asset=device, metric=metric, scored=False, drift=False, stuck=False,
                           steps=True, mode=m.mode or failure_mode_for(metric))
    return ChannelSpec(
        asset=device, metric=metric, high=m.high, clear_high=m.clear_high, low=m.low,
        clear_low=m.clear_low, duration_s=m.duration_s, phys_min=lo, phys_max=hi,
        min_std=m.min_std,
        mode=m.mode or failure_mode_for(metric), scored=m.scored, drift=m.drift,
        stuck=m.stuck, steps=m.steps, transform=m.transform, partners=m.partners, side=m.side,
        witnesses=m.witnesses,
        smooth_s=m.smooth_s, idle_max=m.idle_max,
        run_level=model.run_level if metric == model.run_metric else NAN,
        multivariate=m.multivariate)
