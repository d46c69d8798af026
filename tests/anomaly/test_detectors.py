"""Detector bank: causality, streaming equivalence, checkpoints, and each detector's behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from anomaly.bank import BankConfig, ChannelSpec, DetectorBank
from anomaly.baseline import EwmaBaseline
from anomaly.drift import Cusum
from anomaly.fusion import AlertTracker
from anomaly.health import SensorHealth
from anomaly.limits import LimitRule
from anomaly.multivariate import SmoothedT2
from anomaly.seasonal import SeasonalChange, estimate_period

S = 1_000_000  # µs per second


def seconds(n: int, start: int = 0) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) + start) * S


def fleet(n_assets: int = 4, n_t: int = 3000, seed: int = 42) -> tuple[list[ChannelSpec],
                                                                        np.ndarray]:
    rng = np.random.default_rng(seed)
    specs = []
    for a in range(n_assets):
        specs += [ChannelSpec(f"pump-{a}", "temperature_c", high=95, clear_high=90,
                              duration_s=30, phys_min=-40, phys_max=200),
                  ChannelSpec(f"pump-{a}", "flow_l_min", phys_min=0, phys_max=500),
                  ChannelSpec(f"pump-{a}", "vibration_rms_mm_s", phys_min=0, phys_max=100)]
    level = np.tile([70.0, 32.0, 2.5], n_assets)[:, None]
    noise = np.tile([0.5, 0.4, 0.1], n_assets)[:, None]
    return specs, level + noise * rng.normal(size=(len(specs), n_t))


def test_healthy_fleet_raises_no_alert() -> None:
    specs, x = fleet()
    r = DetectorBank(specs).update(seconds(x.shape[1]), x)
    assert r.equipment_events == []
    assert r.device_events == []


def test_overheating_is_one_alert_with_evidence_not_one_per_sample() -> None:
    specs, x = fleet()
    x[0, 2000:2300] = 99.0 + 0.3 * np.sin(np.arange(300))   # pump-0 hot for 5 minutes
    bank = DetectorBank(specs, BankConfig(clear_hold_s=60))
    r = bank.update(seconds(x.shape[1]), x)
    states = [(bank.assets[e.asset], e.state) for e in r.equipment_events]
    assert states[0] == ("pump-0", "open")
    assert [s for _, s in states].count("open") == 1
    assert bank.modes[r.equipment_events[0].mode] == "overheating"
    # Opens once the condition has persisted for open_hold_s (a lone wild reading never does).
    assert r.equipment_events[0].sample == 2000 + BankConfig().open_hold_s
    assert states[-1] == ("pump-0", "clear")


def test_processing_in_blocks_equals_processing_at_once() -> None:
    specs, x = fleet(n_t=1200)
    x[3, 700:] += 3.0
    x[1, 300:420] = 32.0                                      # a stuck flow sensor
    x[4, 500:520] = np.nan                                    # a gap
    whole = DetectorBank(specs, BankConfig(stuck_s=60, no_data_s=10)).update(seconds(1200), x)
    parts = DetectorBank(specs, BankConfig(stuck_s=60, no_data_s=10))
    edges = [0, 1, 250, 251, 600, 1200]
    scores, events = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        r = parts.update(seconds(b - a, a), x[:, a:b])
        scores.append(r.asset_score)
        events += [(e.asset, e.sample + a, e.state) for e in r.equipment_events + r.device_events]
    assert_allclose(np.concatenate(scores, axis=1), whole.asset_score)
    assert sorted(events) == sorted((e.asset, e.sample, e.state)
                                    for e in whole.equipment_events + whole.device_events)
    assert events, "the fault and the stuck sensor must raise alerts"


def test_checkpoint_restores_the_bank_exactly() -> None:
    specs, x = fleet(n_t=1500)
    x[6, 900:] += 4.0
    a = DetectorBank(specs)
    a.update(seconds(800), x[:, :800])
    b = DetectorBank.from_bytes(a.to_bytes(), specs)
    ra = a.update(seconds(700, 800), x[:, 800:])
    rb = b.update(seconds(700, 800), x[:, 800:])
    assert_array_equal(ra.asset_score, rb.asset_score)
    assert [(e.asset, e.sample, e.state) for e in ra.equipment_events] == \
        [(e.asset, e.sample, e.state) for e in rb.equipment_events]


def test_checkpoint_accepts_new_channels() -> None:
    specs, x = fleet(n_assets=1, n_t=100)
    bank = DetectorBank(specs)
    bank.update(seconds(100), x)
    extra = ChannelSpec("pump-9", "temperature_c")
    restored = DetectorBank.from_bytes(bank.to_bytes(), [*specs, extra])
    assert restored.keys()[-1] == ("pump-9", "temperature_c")
    assert restored.assets == ["pump-0", "pump-9"]


def test_device_fault_is_not_reported_as_equipment_fault() -> None:
    specs, x = fleet(n_assets=2)
    x[2, 1000:] = 250.0                                       # vibration sensor out of range
    x[3, 1500:2000] = np.nan                                  # pump-1's thermometer offline
    bank = DetectorBank(specs, BankConfig(no_data_s=60))
    r = bank.update(seconds(x.shape[1]), x)
    assert r.equipment_events == []
    opened = [(bank.assets[e.asset], bank.device_problem(e.mode)) for e in r.device_events
              if e.state == "open"]
    assert opened == [("pump-0", "sensor out of range"), ("pump-1", "no data")]


def test_empty_block_and_all_nan_block_are_quiet() -> None:
    specs, _ = fleet(n_assets=1)
    bank = DetectorBank(specs)
    r = bank.update(np.zeros(0, np.int64), np.zeros((3, 0)))
    assert r.asset_score.shape == (1, 0)
    r = bank.update(seconds(50), np.full((3, 50), np.nan))
    assert r.equipment_events == []
    assert np.all(np.isnan(r.baseline))


def test_bank_rejects_wrong_shape_and_dtype() -> None:
    specs, _ = fleet(n_assets=1)
    bank = DetectorBank(specs)
    with pytest.raises(ValueError, match="`values` must have 3 channel rows"):
        bank.update(seconds(5), np.zeros((2, 5)))
    with pytest.raises(TypeError, match="`values` must hold real numbers"):
        bank.update(seconds(2), np.array([["a", "b"]] * 3))
    with pytest.raises(ValueError, match="`times` must be non-decreasing"):
        bank.update(np.array([2, 1], np.int64), np.zeros((3, 2)))


def test_limit_needs_duration_and_clears_with_hysteresis() -> None:
    rule = LimitRule(1, high=95, clear_high=90, duration_s=3)
    x = [[96, 97, 98, 99, 93, 92, 89, 96]]
    fired = rule.update(seconds(8), x).high[0]
    assert fired.astype(int).tolist() == [0, 0, 0, 1, 1, 1, 0, 0]


def test_daily_baseline_sees_a_deviation_the_daily_cycle_hides() -> None:
    t = np.arange(0, 8 * 86400, 600, dtype=np.int64) * S      # 8 days every 10 min
    day = 20 + 10 * np.sin(2 * np.pi * (t / S) / 86400)
    rng = np.random.default_rng(42)
    x = (day + 0.2 * rng.normal(size=t.size))[None, :]
    hot = 7 * 144 + 18 * 6                                    # day 7, 18:00, for an hour
    x[0, hot:hot + 6] += 4.0
    quiet = slice(t.size // 2, hot)
    plain = EwmaBaseline(1, halflife=144, warmup=3, min_std=0.05).update(t, x).z[0]
    daily = EwmaBaseline(1, halflife=2, warmup=3, slots_per_day=144, min_std=0.05).update(t, x).z[0]
    assert np.abs(plain[hot:hot + 6]).min() < np.nanmax(np.abs(plain[quiet]))  # hidden
    assert np.abs(daily[hot:hot + 6]).min() > np.nanmax(np.abs(daily[quiet]))  # seen


def test_cusum_catches_slow_drift_the_baseline_absorbs() -> None:
    rng = np.random.default_rng(42)
    x = rng.normal(0, 1, (1, 4000))
    x[0, 2000:] += np.linspace(0, 2, 2000)                     # slow degradation
    drift = Cusum(1, k=0.5, h=20, warmup=1000).update(seconds(4000), x).score[0]
    assert np.nanmax(drift[:2000]) < 1
    assert drift[-1] > 1


def test_sensor_health_spike_and_stuck() -> None:
    rng = np.random.default_rng(42)
    x = 10 + 0.1 * rng.normal(size=(1, 300))
    x[0, 100] = 30.0                                           # a one-sample spike
    x[0, 200:] = 10.0                                          # then the sensor freezes
    h = SensorHealth(1, stuck_s=30).update(seconds(300), x)
    assert np.flatnonzero(h.spike[0]).tolist() == [101]        # known once it has come back
    assert np.flatnonzero(h.stuck[0])[0] == 230


def test_sensor_health_constant_signal_is_stuck_only_when_configured() -> None:
    x = np.full((2, 100), 5.0)
    h = SensorHealth(2, stuck_s=[np.inf, 50]).update(seconds(100), x)
    assert not h.stuck[0].any()
    assert h.stuck[1, 50:].all()
    assert not h.spike.any()


def test_smoothed_t2_flags_broken_correlation_not_noise() -> None:
    rng = np.random.default_rng(42)
    base = rng.normal(size=(1, 1, 1500))
    x = np.concatenate([base, -base, base], axis=1) + 0.2 * rng.normal(size=(1, 3, 1500))
    x[0, 1, 1000:] += 1.0                                     # flow drops out of step
    det = SmoothedT2(1, 3)
    det.fit(x[:, :, :400])
    r = det.update(seconds(1100, 400), x[:, :, 400:])
    assert r.alarm[0, :600].mean() < 0.02
    assert r.alarm[0, 650:].mean() > 0.95


def test_smoothed_t2_keeps_nan_as_no_data() -> None:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(1, 2, 600))
    det = SmoothedT2(1, 2)
    det.fit(x[:, :, :400])
    x[0, 0, 450:460] = np.nan
    r = det.update(seconds(200, 400), x[:, :, 400:])
    assert np.isnan(r.score[0, 50:60]).all()
    assert not np.isnan(r.score[0, 60:]).any()


def test_seasonal_change_scores_the_onset_once() -> None:
    t = np.arange(3000)
    x = (10 * np.sin(2 * np.pi * t / 288))[None, :]
    x[0, 2000:2100] += 8.0
    det = SeasonalChange(1)
    det.fit(x[:, :700])
    s = det.update(t.astype(np.int64), x).score[0]
    assert abs(estimate_period(x[0, :700]) - 288) <= 6
    assert int(np.nanargmax(s)) == 2000
    assert np.sum(s > 0.1) <= 3                                 # the onset, not every sample


def test_alert_tracker_does_not_flap_around_the_threshold() -> None:
    score = 0.5 + 0.1 * np.sign(np.sin(np.arange(600) / 3.0))  # 0.4 / 0.6 back and forth
    score[:50] = 0.0
    events = AlertTracker(1, clear_hold_s=30).update(seconds(600), score[None, :],
                                                      np.zeros((1, 600), np.int64))
    assert [e.state for e in events] == ["open"]
