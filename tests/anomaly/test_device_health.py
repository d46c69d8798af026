"""Device health and severity in the bank: a silent device is offline after a few of its own
reporting intervals, device problems are warnings, and equipment severity follows how far the
failure mode has gone (past the model's limits), not how loud the learned-behaviour detectors
are."""

from __future__ import annotations

import numpy as np

from anomaly.bank import BankConfig, ChannelSpec, DetectorBank
from anomaly.fusion import DEVICE_PROBLEMS
from anomaly.health import ReportingSilence

S = 1_000_000


def _fleet(n_s: int, every_s: int, silent_from_s: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Two devices on the worker's 1 s grid, each reporting every `every_s`; device 0 falls
    silent at `silent_from_s`."""
    rng = np.random.default_rng(42)
    t = np.arange(n_s, dtype=np.int64) * S
    x = np.full((2, n_s), np.nan)
    x[:, ::every_s] = 50.0 + rng.normal(0, 0.5, (2, x[:, ::every_s].shape[1]))
    if silent_from_s is not None:
        x[0, silent_from_s:] = np.nan
    return t, x


def _run(bank: DetectorBank, t: np.ndarray, x: np.ndarray) -> list:
    events = []
    for lo in range(0, t.size, 600):          # the worker's blocks
        events += bank.update(t[lo:lo + 600], x[:, lo:lo + 600]).device_events
    return events


def test_a_silent_device_is_offline_within_a_few_of_its_own_intervals() -> None:
    t, x = _fleet(3000, 20, silent_from_s=2001)
    bank = DetectorBank([ChannelSpec("pmp-1", "temp_c"), ChannelSpec("pmp-2", "temp_c")],
                        BankConfig(no_data_s=float("inf")))
    opened = [e for e in _run(bank, t, x) if e.state == "open"]
    assert [(bank.assets[e.asset], DEVICE_PROBLEMS[e.mode], e.severity) for e in opened] == [
        ("pmp-1", "device offline", "warning")]
    # Last reading at 2000 s, interval 20 s: offline once 3 intervals behind the fleet, within
    # two intervals of that (the fleet's own readings, every 20 s here, move its clock).
    assert (2000 + 60) * S <= opened[0].opened_at_us < (2000 + 60 + 2 * 20) * S


def test_a_device_that_keeps_its_rate_or_a_fleet_that_goes_quiet_is_not_offline() -> None:
    t, x = _fleet(3000, 20, silent_from_s=None)
    x[:, 2001:] = np.nan                          # everything stops: ingest is down, not devices
    bank = DetectorBank([ChannelSpec("pmp-1", "temp_c"), ChannelSpec("pmp-2", "temp_c")],
                        BankConfig(no_data_s=float("inf")))
    assert _run(bank, t, x) == []


def test_reporting_silence_learns_the_interval_and_ignores_one_outage() -> None:
    rs = ReportingSilence(2, intervals=3, warmup=5, min_silence_s=0)
    t = np.arange(4000, dtype=np.int64) * S
    has = np.zeros((2, 4000), bool)
    has[:, ::10] = True
    has[0, 1000:1500] = False                      # one long outage of device 0
    off = rs.update(t, has)
    # Last reading at 990 s: offline once the fleet is 3 intervals (30 s) past it, and within
    # two intervals of that.
    assert not off[0, :1020].any()
    assert off[0, 1040:1500].all()
    assert not off[0, 1500:].any()
    assert not off[1].any()
    np.testing.assert_allclose(rs.interval_s(), [10.0, 10.0], rtol=0.05)


def test_a_stuck_metric_is_a_warning_not_critical() -> None:
    rng = np.random.default_rng(42)
    x = 50.0 + rng.normal(0, 0.5, (2, 1200))
    x[0, 600:] = 50.0                             # temp sensor freezes
    bank = DetectorBank([ChannelSpec("pmp-1", "temp_c"), ChannelSpec("pmp-1", "flow_l_min")],
                        BankConfig(stuck_s=120))
    r = bank.update(np.arange(1200, dtype=np.int64) * S, x)
    assert [(DEVICE_PROBLEMS[e.mode], e.severity) for e in r.device_events] == [
        ("sensor stuck", "warning")]


def test_equipment_severity_follows_the_limits_not_the_size_of_a_learned_deviation() -> None:
    rng = np.random.default_rng(42)
    x = 70.0 + rng.normal(0, 0.5, (2, 1800))
    x[:, 900:] += 20.0                            # forty standard deviations on both machines
    specs = [ChannelSpec("a", "temp_c"),                       # no model: learned behaviour
             ChannelSpec("b", "temp_c", high=85.0, duration_s=30.0)]  # past its envelope
    bank = DetectorBank(specs, BankConfig(clear_hold_s=5))
    r = bank.update(np.arange(1800, dtype=np.int64) * S, x)
    worst = {bank.assets[e.asset]: e.severity for e in r.equipment_events}
    assert worst == {"a": "warning", "b": "critical"}
