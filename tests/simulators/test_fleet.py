"""The generator: determinism, chunking, and that each fault changes the signal at onset."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from simulators import scenario as scenarios
from simulators.equipment import MODELS
from simulators.faults import EQUIPMENT_FAULTS, SENSOR_FAULTS, FaultLabel
from simulators.fleet import DeviceSpec, FleetSimulator
from simulators.run import make_simulator

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # a Monday morning


def _fleet(seed: int) -> FleetSimulator:
    sc = scenarios.load(scenarios.builtin("demo")).with_options(seed=seed)
    return make_simulator(sc, START)


def _all_values(sim: FleetSimulator, steps: int, chunk: int) -> list[np.ndarray]:
    parts = [sim.generate(chunk) for _ in range(steps // chunk)]
    n_groups = len(parts[0].groups)
    return [np.concatenate([p.groups[i].values for p in parts]) for i in range(n_groups)]


def test_same_seed_gives_same_data() -> None:
    a, b = _all_values(_fleet(7), 600, 600), _all_values(_fleet(7), 600, 600)
    for x, y in zip(a, b, strict=True):
        assert_array_equal(x, y)


def test_different_seed_gives_different_data() -> None:
    a, b = _all_values(_fleet(7), 60, 60), _all_values(_fleet(8), 60, 60)
    assert not np.allclose(a[0], b[0], equal_nan=True)


def test_chunking_does_not_change_the_data() -> None:
    whole = _all_values(_fleet(3), 600, 600)
    chunked = _all_values(_fleet(3), 600, 50)
    for x, y in zip(whole, chunked, strict=True):
        assert_array_equal(x, y)


# The channel where each equipment fault shows first, and which way it moves.
SIGNATURE: dict[tuple[str, str], tuple[str, int]] = {
    **{(m, "bearing_wear"): ("vibration_rms_mm_s", 1) for m in MODELS},
    **{(m, "current_imbalance"): ("current_imbalance_pct", 1) for m in MODELS},
    ("screw_compressor", "cooling_failure"): ("discharge_temp_c", 1),
    ("chiller", "cooling_failure"): ("condenser_pressure_bar", 1),
    ("cnc_spindle", "cooling_failure"): ("coolant_flow_l_min", -1),
    ("screw_compressor", "leak"): ("discharge_pressure_bar", -1),
    ("centrifugal_pump", "leak"): ("motor_current_a", 1),  # the drive speeds up to hold head
    ("chiller", "leak"): ("evaporator_pressure_bar", -1),
    ("screw_compressor", "clogged_filter"): ("oil_filter_dp_bar", 1),
    ("centrifugal_pump", "clogged_filter"): ("strainer_dp_bar", 1),
    ("chiller", "clogged_filter"): ("strainer_dp_bar", 1),
    ("cnc_spindle", "clogged_filter"): ("coolant_filter_dp_bar", 1),
    ("centrifugal_pump", "cavitation"): ("suction_pressure_bar", -1),
}
PER_FAULT = [n for n in scenarios.builtin_names() if n != "demo"]


def test_every_model_and_fault_has_a_scenario() -> None:
    short = {"screw_compressor": "compressor", "centrifugal_pump": "pump",
             "chiller": "chiller", "cnc_spindle": "spindle"}
    for name, model in MODELS.items():
        for fault in (*model.faults, *SENSOR_FAULTS):
            assert f"{short[name]}-{fault}" in PER_FAULT
    assert {"pump-device_offline", "pump-clock_skew"} <= set(PER_FAULT)


@pytest.mark.parametrize("name", PER_FAULT)
def test_signal_changes_at_onset(name: str) -> None:
    """Faulty and fault-free runs are identical before the labelled onset and differ after."""
    sc = scenarios.load(scenarios.builtin(name))
    (spec,) = sc.faults
    clean = FleetSimulator(sc.devices, [], seed=sc.seed, start=START, rate_hz=sc.rate_hz)
    faulty = make_simulator(sc, START)
    steps = int(sc.duration_s or 7200)
    a, b = clean.generate(steps).groups[0], faulty.generate(steps).groups[0]
    onset = int(spec.onset_s)
    d = b.device_ids.index(spec.device)
    # Before onset: exactly the same data, everywhere.
    assert_array_equal(a.values[:onset], b.values[:onset])
    assert_array_equal(a.online[:onset], b.online[:onset])
    model = MODELS[sc.devices[0].model]
    if spec.fault in EQUIPMENT_FAULTS:
        metric, sign = SIGNATURE[(model.name, spec.fault)]
        c = model.channel_index(metric)
        fail = int(spec.failure_s or steps)
        late = slice(onset + (fail - onset) * 3 // 4, fail)
        # Against its fault-free twin, the faulty machine's signature channel has moved
        # well beyond sensor noise the expected way by three quarters of the way to failure.
        shift = np.nanmean(b.values[late, d, c] - a.values[late, d, c])
        assert sign * shift > 5 * model.channels[c].noise_sd
    elif spec.fault == "device_offline":
        assert b.online[onset:int(spec.end_s or steps), d].sum() == 0
        assert b.online[:onset, d].all()
    elif spec.fault == "clock_skew":
        assert b.skew_s is not None
        assert (b.skew_s[onset:int(spec.end_s or steps), d] != 0).all()
        assert (b.skew_s[:onset, d] == 0).all()
    else:
        assert spec.metric is not None
        c = model.channel_index(spec.metric)
        window = slice(onset, int(spec.end_s or steps))
        lies, truth = b.values[window, d, c], a.values[window, d, c]
        if spec.fault == "stuck_value":
            assert np.unique(lies).size == 1
            assert np.unique(truth).size > 1
        elif spec.fault == "dropout":
            assert np.isnan(lies).all()
            assert not np.isnan(truth).any()
        elif spec.fault == "drift":
            assert np.nanmean(lies[-600:] - truth[-600:]) > 1.0
        else:  # spikes
            assert np.abs(lies - truth).max() > 5 * model.channels[c].noise_sd
        # Other channels of the device tell the truth.
        others = [i for i in range(len(model.channels)) if i != c]
        assert_array_equal(a.values[:, d, others], b.values[:, d, others])


def test_equipment_failure_trips_the_machine() -> None:
    labels = [FaultLabel("p1", "clogged_filter", START, failure_at=START.replace(minute=10))]
    sim = FleetSimulator([DeviceSpec("p1", "centrifugal_pump", "continuous")], labels, seed=1,
                         start=START, rate_hz=1.0)
    g = sim.generate(900).groups[0]
    speed = g.values[:, 0, g.model.channel_index("speed_rpm")]
    assert (speed[:590] > 0).all()
    assert (speed[610:] < 10).all()


def test_rejects_label_for_unknown_device() -> None:
    with pytest.raises(ValueError, match="unknown devices"):
        FleetSimulator([DeviceSpec("p1", "centrifugal_pump")],
                       [FaultLabel("p2", "leak", START)], seed=1, start=START, rate_hz=1.0)


def test_rejects_fault_the_model_cannot_have() -> None:
    with pytest.raises(ValueError, match="does not apply"):
        FleetSimulator([DeviceSpec("c1", "chiller")], [FaultLabel("c1", "cavitation", START)],
                       seed=1, start=START, rate_hz=1.0)


def test_generates_ten_thousand_devices_in_one_call() -> None:
    sc = scenarios.random_fleet(10_000)
    sim = make_simulator(sc, START)
    chunk = sim.generate(2)
    assert sum(g.values.shape[1] for g in chunk.groups) == 10_000
    assert all(np.isfinite(g.values).all() for g in chunk.groups)


def test_messages_carry_skewed_clock_and_null_for_dropout() -> None:
    from simulators.run import group_messages

    labels = [FaultLabel("p1", "clock_skew", START, params={"skew_s": 90}),
              FaultLabel("p1", "dropout", START, metric="flow_l_min")]
    sim = FleetSimulator([DeviceSpec("p1", "centrifugal_pump")], labels, seed=1, start=START,
                         rate_hz=2.0)
    chunk = sim.generate(4)
    msgs = list(group_messages(chunk.groups[0], chunk.t_us, chunk.step0))
    t0_ms = int(START.timestamp() * 1000)
    assert [m["ts"] - t0_ms for _, _, m in msgs] == [90_000, 90_500, 91_000, 91_500]
    assert [m["seq"] for _, _, m in msgs] == [0, 1, 2, 3]
    assert all(m["metrics"]["flow_l_min"] is None for _, _, m in msgs)
    assert all(isinstance(m["metrics"]["speed_rpm"], float) for _, _, m in msgs)
