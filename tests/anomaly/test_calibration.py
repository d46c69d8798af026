"""Calibrated channel scores (anomaly.likelihood), the bank run over columns (evaluation.offline)
and the cross-validation helpers (evaluation.crossval)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from anomaly.bank import BankConfig, ChannelSpec, DetectorBank
from anomaly.likelihood import AnomalyLikelihood, Recurrence
from anomaly.seasonal import WeekdayChoice
from anomaly.spread import SpreadChange
from evaluation.crossval import NabCounts, grid, nab_category
from evaluation.nab import NabSettings
from evaluation.nab_score import PROFILES
from evaluation.offline import run_bank


def _t(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 1_000_000


def test_likelihood_is_the_same_for_a_channel_in_other_units() -> None:
    rng = np.random.default_rng(42)
    raw = np.abs(rng.normal(size=(1, 4000))) * np.array([[1.0], [250.0]])
    raw[:, 3000:3003] *= 8.0
    s = AnomalyLikelihood(2, short=1, long=2000, warmup=300, min_std=1e-9).update(_t(4000), raw)
    assert_allclose(s.score[0], s.score[1], atol=1e-9)
    assert np.all(s.score[:, 3000:3003] > 0.5)
    assert np.nanmax(s.score[:, 500:3000]) < 0.6


def test_likelihood_nan_is_no_score_and_teaches_nothing() -> None:
    rng = np.random.default_rng(42)
    raw = np.abs(rng.normal(size=(2, 1000)))
    raw[1, 400:600] = np.nan
    lk = AnomalyLikelihood(2, short=3, long=300, warmup=100)
    r = lk.update(_t(1000), raw)
    assert np.isnan(r.score[1, 400:600]).all()
    assert np.isnan(r.z[1, 400:600]).all()
    assert lk.count.tolist() == [1000, 800]
    assert np.isnan(r.score[:, :100]).all()             # warm-up


def test_likelihood_of_a_constant_stream_is_zero_and_a_step_is_surprising() -> None:
    raw = np.full((1, 600), 0.2)
    raw[0, 500:] = 0.9
    s = AnomalyLikelihood(1, short=1, long=1000, warmup=50, min_std=0.02).update(_t(600), raw)
    # At the long-run mean: a tail of one half, -log10(0.5) / 10 decades.
    assert_allclose(s.score[0, 50:500], np.log10(2.0) / 10.0, atol=1e-12)
    assert s.score[0, 500] == 1.0


def test_likelihood_blocks_equal_one_pass_and_empty_blocks_are_fine() -> None:
    rng = np.random.default_rng(42)
    raw = np.abs(rng.normal(size=(3, 900)))
    raw[0, ::7] = np.nan
    one = AnomalyLikelihood(3, short=5, long=200, warmup=50).update(_t(900), raw).score
    lk = AnomalyLikelihood(3, short=5, long=200, warmup=50)
    parts = [lk.update(_t(900)[a:b], raw[:, a:b]).score for a, b in ((0, 0), (0, 333), (333, 900))]
    assert_allclose(np.concatenate(parts, axis=1), one, atol=1e-12)


def test_likelihood_rejects_bad_settings_and_shapes() -> None:
    with pytest.raises(ValueError, match="short"):
        AnomalyLikelihood(1, short=0)
    with pytest.raises(ValueError, match="warmup"):
        AnomalyLikelihood(1, warmup=0)
    with pytest.raises(ValueError, match="raw"):
        AnomalyLikelihood(2).update(_t(3), np.zeros((1, 3)))


def test_calibrated_bank_alerts_a_noisy_and_a_quiet_machine_alike() -> None:
    """One threshold across channels: the same relative change opens an alert on a channel
    whatever its units and noise, and nothing opens on either before it."""
    rng = np.random.default_rng(42)
    n = 6000
    x = rng.normal(size=(2, n)) * np.array([[0.1], [40.0]]) + np.array([[20.0], [900.0]])
    x[:, 5000:] += np.array([[1.0], [400.0]])         # ten standard deviations on both
    specs = [ChannelSpec("quiet", "temp_c"), ChannelSpec("noisy", "load_pct")]
    cfg = BankConfig(calibrate=True, likelihood_warmup=300)
    r = run_bank(specs, _t(n), x, cfg)
    assert not r.alert[:, :5000].any()
    assert r.alert[:, 5000:5010].any(axis=1).all()


def test_seasonal_calibration_sees_a_missing_daily_peak() -> None:
    """A channel with a daily peak: the missing peak is a deviation for the time of day only,
    and the peak itself (a deviation from the plain baseline only) is the cycle."""
    rng = np.random.default_rng(42)
    step_s, days = 300, 12
    n = days * 86400 // step_s
    t = np.arange(n, dtype=np.int64) * step_s * 1_000_000
    hour = (np.arange(n) * step_s / 3600.0) % 24
    x = 10.0 + 30.0 * ((hour >= 8) & (hour < 10)) + rng.normal(0, 1.0, n)
    day10 = slice(10 * 288 + 8 * 12, 10 * 288 + 10 * 12)
    x[day10] = 10.0 + rng.normal(0, 1.0, 24)             # day 10: no peak
    spec = [ChannelSpec("m", "value", stuck=False, steps=True, drift=False)]
    cfg = NabSettings(seasonal_support=1.5).config()
    plain = run_bank(spec, t, x[None, :], replace(cfg, seasonal=False))
    seasonal = run_bank(spec, t, x[None, :], cfg)
    assert not plain.alert[0, day10].any()
    assert seasonal.alert[0, day10].any()
    assert not seasonal.alert[0, 3 * 288:10 * 288].any()


def _office_week(days: int, holiday: int | None = None, weekends: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Half-hourly readings from a Monday on: busy (10) 8:00-18:00 on working days, quiet (2)
    otherwise; `holiday` (a day number) is quiet all day; without `weekends` every day works."""
    rng = np.random.default_rng(7)
    step = 1800
    day0 = 4                                              # 1970-01-05 was a Monday
    n = days * 48
    t = ((day0 * 86400 + np.arange(n) * step) * 1_000_000).astype(np.int64)
    day = np.arange(n) // 48
    hour = (np.arange(n) % 48) / 2
    working = ((day % 7) < 5) if weekends else np.ones(n, bool)
    if holiday is not None:
        working &= day != holiday
    x = np.where(working & (hour >= 8) & (hour < 18), 10.0, 2.0) + rng.normal(0, 0.4, n)
    return t, x


def test_weekly_rhythm_is_learned_once_there_are_weekends_enough() -> None:
    """An office-hours channel: a quiet Wednesday in week 8 (a holiday) looks like any
    weekend to a baseline that holds one rhythm for every day; with weekends apart, chosen
    after three weeks because it explains the channel better, it is news. A channel with the
    same rhythm every day never takes the split, and is judged exactly as before."""
    spec = [ChannelSpec("m", "value", stuck=False, steps=True, drift=False)]
    holiday = 7 * 7 + 2
    t, x = _office_week(63, holiday)
    weekly = NabSettings(seasonal_weekly_s=21 * 86400.0).config()
    daily = run_bank(spec, t, x[None, :], replace(weekly, seasonal_weekly_s=0.0))
    split = run_bank(spec, t, x[None, :], weekly)
    hol = slice(holiday * 48, (holiday + 1) * 48)
    assert not daily.alert[0, hol].any()
    assert split.alert[0, hol].any()
    # Nothing else new: after the first weeks the weekends are no news either way.
    assert not split.alert[0, 21 * 48:holiday * 48].any()
    assert not split.alert[0, (holiday + 2) * 48:].any()
    t, x = _office_week(63, weekends=False)
    a = run_bank(spec, t, x[None, :], replace(weekly, seasonal_weekly_s=0.0))
    b = run_bank(spec, t, x[None, :], weekly)
    assert (a.alert == b.alert).all()
    assert_allclose(a.score, b.score)


def test_weekday_choice_refuses_bad_settings_and_shapes() -> None:
    with pytest.raises(ValueError, match="margin"):
        WeekdayChoice(1, margin=1.0)
    with pytest.raises(ValueError, match="after_s"):
        WeekdayChoice(1, after_s=0.0)
    ch = WeekdayChoice(2)
    with pytest.raises(ValueError, match="means"):
        ch.update(np.arange(3, dtype=np.int64), np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 2)),
                  np.ones((2, 3)))
    with pytest.raises(ValueError, match="clip"):
        WeekdayChoice(1, clip=0.0)
    empty = np.ones((2, 0))
    assert ch.update(np.zeros(0, np.int64), empty, empty, empty, empty).tolist() == [False, False]


_ANY = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.just(0.0))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (4, 2, 12), elements=_ANY))
def test_weekday_choice_takes_any_block_without_error_or_poison(block: np.ndarray) -> None:
    ch = WeekdayChoice(2, after_s=1.0)
    t = np.arange(12, dtype=np.int64) * 1_000_000
    with np.errstate(all="ignore"):
        for i in range(3):
            chosen = ch.update(t + i * 12_000_000, block[0], block[1], block[2], block[3])
            assert chosen.shape == (2,)
    assert np.isfinite(ch.err_day).all()
    assert np.isfinite(ch.err_week).all()


def test_a_checkpoint_keeps_the_weekly_choice_and_resumes_the_same() -> None:
    """The NAB profile's bank, weekly view included, resumed from a checkpoint scores the rest
    of the stream exactly as the bank that never stopped."""
    rng = np.random.default_rng(1)
    n = 20_000
    x = rng.normal(0.0, 1.0, (2, n))
    t = np.arange(n, dtype=np.int64) * 300_000_000        # 5-minute readings, 69 days
    specs = [ChannelSpec(a, "value", stuck=False, steps=True, drift=False) for a in "ab"]
    cfg = replace(NabSettings(), seasonal_weekly_s=3600.0).config()
    bank = DetectorBank(specs, cfg)
    for i in range(0, n // 2, 600):
        bank.update(t[i:i + 600], x[:, i:i + 600])
    assert (bank.weekday.err_day > 0).all()
    resumed = DetectorBank.from_bytes(bank.to_bytes(), specs, cfg)
    assert_allclose(resumed.weekday.err_week, bank.weekday.err_week)
    for i in range(n // 2, n, 600):
        a = bank.update(t[i:i + 600], x[:, i:i + 600])
        b = resumed.update(t[i:i + 600], x[:, i:i + 600])
        assert_allclose(a.channel_score, b.channel_score)


def test_run_bank_gives_the_same_alerts_whatever_the_block_size() -> None:
    rng = np.random.default_rng(42)
    x = rng.normal(20.0, 0.5, (2, 3000))
    x[0, 2000:2300] += 10.0
    specs = [ChannelSpec("m1", "temp_c"), ChannelSpec("m2", "temp_c")]
    a = run_bank(specs, _t(3000), x, block=600)
    b = run_bank(specs, _t(3000), x, block=257)
    assert a.assets == ["m1", "m2"]
    # Open once the rise has held for open_hold_s (5 s), on m1 only.
    assert (a.alert == b.alert).all()
    assert a.alert[0, 2005:2010].all()
    assert not a.alert[1].any()
    assert_allclose(a.score, b.score, atol=1e-9)
    with pytest.raises(ValueError, match="block"):
        run_bank(specs, _t(3000), x, block=0)


def test_grid_and_folds() -> None:
    points = grid(NabSettings(), {"likelihood_decades": (4.0, 5.0), "clear_hold_s": (1.0, 2.0)})
    assert [(p.likelihood_decades, p.clear_hold_s) for p in points] == [
        (4.0, 1.0), (4.0, 2.0), (5.0, 1.0), (5.0, 2.0)]
    assert nab_category("artificialNoAnomaly/a.csv") == "synthetic"
    assert nab_category("realTraffic/b.csv") == "realTraffic"
    std = PROFILES["standard"]
    assert NabCounts(2.0, 2).normalised(std) == 100.0     # every window caught at its start
    assert NabCounts(-2.0, 2).normalised(std) == 0.0      # none caught
    assert np.isnan(NabCounts(0.0, 0).normalised(std))


def test_the_change_source_sees_a_small_lasting_shift_without_false_alerts() -> None:
    """A 1.5-sigma level shift that lasts: the calibrated slow baseline alone does not see it
    (nothing stands out sample by sample), the short-memory / CUSUM source does, soon after."""
    rng = np.random.default_rng(42)
    n = 5000
    x = rng.normal(0.0, 1.0, n)
    x[3000:] += 1.5
    t = np.arange(n, dtype=np.int64) * 300 * 1_000_000        # NAB's 5-minute steps
    spec = [ChannelSpec("m", "value", stuck=False, steps=True, drift=False)]
    without = run_bank(spec, t, x[None, :],
                       NabSettings(change_halflife=0.0, spread_halflife=0.0).config())
    with_change = run_bank(spec, t, x[None, :],
                           NabSettings(change_halflife=10.0, spread_halflife=0.0).config())
    assert not without.alert.any()
    assert not with_change.alert[0, :3000].any()
    assert with_change.alert[0, 3000:3100].any()


def test_recurrence_caps_routine_bursts_not_new_ones_nor_a_persisting_one() -> None:
    s = np.zeros((3, 400))
    s[0, 10::40] = 0.7
    s[0, 11::40] = 0.7                     # a two-sample burst every 40 samples
    s[1, 10:300] = 0.7                     # one condition that persists
    s[2, 10::40] = 0.7
    s[2, 11::40] = 0.7
    s[2, 370:372] = 0.95                   # routine bursts, then a bigger one
    rc = Recurrence(3, count=3, halflife=10_000, min_duration_s=1.0)
    out = rc.update(_t(400), s)
    bursts = out[0, 10::40] >= 0.5
    assert bursts.tolist() == [True] * 3 + [False] * 7     # news three times, then routine
    assert np.all(out[0, 10::40][3:] < 0.5)
    assert np.all(out[0, 10::40][3:] > 0.49)          # capped just below the routine level
    assert np.all(out[1, 10:300] == 0.7)   # never capped by its own length
    assert np.all(out[2, 370:372] == 0.95)
    assert np.all(out[:, s.sum(axis=0) == 0] == 0.0)


def test_recurrence_forgets_blocks_equal_one_pass_and_bad_input() -> None:
    s = np.zeros((2, 3000))
    s[:, 10:400:40] = 0.8
    s[:, 11:400:40] = 0.8
    s[:, 2900:2902] = 0.8                  # long after the routine bursts stopped
    s[1, 100:200] = np.nan                 # no score: passed through, keeps the state
    one = Recurrence(2, count=3, halflife=200, min_duration_s=1.0).update(_t(3000), s)
    assert np.all(one[:, 2900:2902] == 0.8)          # forgotten: news again
    assert np.isnan(one[1, 100:200]).all()
    rc = Recurrence(2, count=3, halflife=200, min_duration_s=1.0)
    parts = [rc.update(_t(3000)[lo:hi], s[:, lo:hi])
             for lo, hi in ((0, 7), (7, 7), (7, 1234), (1234, 3000))]
    assert_allclose(np.concatenate(parts, axis=1), one)
    alone = Recurrence(1, count=3, halflife=200, min_duration_s=1.0)
    quiet_then_busy = [alone.update(_t(3000)[lo:hi], s[:1, lo:hi])
                       for lo, hi in ((0, 5), (5, 1500), (1500, 3000))]
    assert_allclose(np.concatenate(quiet_then_busy, axis=1), one[:1])   # channels independent
    with pytest.raises(ValueError, match="count"):
        Recurrence(1, count=0)
    with pytest.raises(ValueError, match="score"):
        rc.update(_t(5), np.zeros((3, 5)))


def test_routine_bursts_open_fewer_alerts_through_the_bank() -> None:
    # A server metric whose load bursts every 5 hours (5-minute samples), then rises for good.
    rng = np.random.default_rng(42)
    n = 4000
    x = rng.normal(10.0, 1.0, n)
    for start in range(700, 3700, 60):
        x[start:start + 3] += 60.0
    x[3800:] += 60.0                       # then a lasting rise: no routine burst
    t = np.arange(n, dtype=np.int64) * 300_000_000
    opens = []
    for count in (0.0, 4.0):
        cfg = NabSettings(recurrence_count=count).config()
        r = run_bank([ChannelSpec("srv", "load", stuck=False, steps=True, drift=False)], t,
                     x[None, :], cfg)
        opened = r.alert[0] & ~np.r_[False, r.alert[0, :-1]]
        opens.append(np.flatnonzero(opened))
    plain, routine = opens
    assert routine.size < plain.size / 2
    assert np.any((routine >= 3800) & (routine < 3830))   # the lasting rise is news


def test_spread_change_scores_the_movement_not_the_level_nor_the_units() -> None:
    rng = np.random.default_rng(42)
    n = 3000
    x = rng.normal(0.0, 1.0, (1, n)) * np.array([[1.0], [500.0]])
    x[:, 1500:] += np.array([[20.0], [10_000.0]])     # a level step: one big step, then calm
    x[:, 2500:] *= 0.05                               # then the channel falls quiet
    sc = SpreadChange(2, short=6, long=1000, warmup=200)
    s = sc.update(_t(n), x)
    assert_allclose(s[0], s[1], atol=1e-6)            # same movement, other units: same score
    assert np.isnan(s[:, :150]).all()
    assert np.nanmax(s[0, 1530:2500]) < 3.0           # the level shift left no lasting change
    assert np.nanmin(s[0, 2560:2700]) > 3.5           # quiet now: log(1 / 0.05**2) ~ 6
    # Blocks equal one pass; a gap is bridged from the last reading before it.
    y = x.copy()
    y[1, 700:720] = np.nan
    one = SpreadChange(2, short=6, long=1000, warmup=200).update(_t(n), y)
    part = SpreadChange(2, short=6, long=1000, warmup=200)
    chunks = [part.update(_t(n)[lo:lo + 600], y[:, lo:lo + 600]) for lo in range(0, n, 600)]
    assert_allclose(np.concatenate(chunks, axis=1), one, equal_nan=True)
    assert np.isnan(one[1, 700:720]).all()
    assert np.isfinite(one[1, 720])
    with pytest.raises(ValueError, match="short"):
        SpreadChange(1, short=0)


def test_the_spread_source_sees_bursts_that_stop() -> None:
    """A server whose load bursts every hour and a half falls quiet: no value leaves its usual
    range, so only the spread source says anything, and nothing before the change."""
    rng = np.random.default_rng(42)
    n = 4000
    x = rng.normal(10.0, 1.0, n)
    for start in range(0, 3000, 18):
        x[start:start + 4] += rng.uniform(20.0, 60.0)
    t = np.arange(n, dtype=np.int64) * 300_000_000
    spec = [ChannelSpec("srv", "load", stuck=False, steps=True, drift=False)]
    without = run_bank(spec, t, x[None, :], NabSettings(spread_halflife=0.0).config())
    with_spread = run_bank(spec, t, x[None, :], NabSettings(spread_halflife=6.0).config())
    assert not without.alert[0, 3000:].any()
    assert not with_spread.alert[0, 600:3000].any()
    assert with_spread.alert[0, 3000:3100].any()



def test_the_override_lets_the_plain_baseline_past_the_time_of_day() -> None:
    """From the override's z on, the plain baseline counts whatever the time of day says: an
    override below every z is the same as no time-of-day gate at all; an infinite one changes
    nothing."""
    rng = np.random.default_rng(42)
    n = 4000
    day = 288                                       # 5-minute samples
    x = 10.0 + 5.0 * np.sin(2 * np.pi * np.arange(n) / day) + rng.normal(0.0, 1.0, n)
    x[3000:3004] += 30.0
    x[3500:3520] -= 8.0
    t = np.arange(n, dtype=np.int64) * 300_000_000
    spec = [ChannelSpec("srv", "load", stuck=False, steps=True, drift=False)]
    base = NabSettings(seasonal_support=50.0)
    gated = run_bank(spec, t, x[None, :], base.config())
    no_gate = run_bank(spec, t, x[None, :], replace(base, seasonal_support=-np.inf).config())
    low = run_bank(spec, t, x[None, :], replace(base, seasonal_override=-1e9).config())
    high = run_bank(spec, t, x[None, :], replace(base, seasonal_override=np.inf).config())
    assert_allclose(low.score, no_gate.score)
    assert_allclose(high.score, gated.score)
    assert not np.allclose(gated.score, no_gate.score)


def _fake_nab(root: Path, cats: dict[str, int]) -> None:
    """A NAB-shaped folder: one 5-minute file per category with `n` level shifts each, and
    its windows in labels/combined_windows.json."""
    import datetime as dt
    import json

    rng = np.random.default_rng(3)
    windows = {}
    for cat, shifts in cats.items():
        (root / "data" / cat).mkdir(parents=True)
        t0 = dt.datetime(2026, 1, 1)  # noqa: DTZ001 (NAB timestamps carry no zone)
        x = 10 + rng.normal(size=3000)
        wins = []
        for k in range(shifts):
            at = 1200 + 600 * k
            x[at:at + 40] += 12
            wins.append([str(t0 + dt.timedelta(minutes=5 * (at - 20))),
                         str(t0 + dt.timedelta(minutes=5 * (at + 60)))])
        rows = [f"{t0 + dt.timedelta(minutes=5 * i)},{v:.4f}" for i, v in enumerate(x)]
        (root / "data" / cat / "f.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
        windows[f"{cat}/f.csv"] = wins
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


def test_crossval_selection_rules_share_one_grid_run(tmp_path: Path) -> None:
    from evaluation.crossval import nab_crossval, nab_crossval_by

    _fake_nab(tmp_path, {"artificialWithAnomaly": 2, "realTraffic": 1, "realAdExchange": 3})
    axes = {"clear_hold_s": (1800.0, 4 * 3600.0)}
    calls: list[str] = []
    by = nab_crossval_by(tmp_path, axes, progress=calls.append)
    assert len(calls) == 2                       # the grid ran once for both rules
    assert set(by) == {"pooled", "mean"}
    for cv in by.values():
        assert [f.name for f in cv.folds] == ["realAdExchange", "realTraffic", "synthetic"]
        assert all(np.isfinite(v) for v in cv.pooled.values())
    assert by["pooled"] == nab_crossval(tmp_path, axes, select="pooled")
    with pytest.raises(ValueError, match="selection rule"):
        nab_crossval_by(tmp_path, axes, selects=("median",))
