"""Per-asset Hotelling T² / SPE (anomaly.multivariate.AssetT2) and its place in the bank."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from numpy.typing import ArrayLike
from scipy import stats

from anomaly.bank import BankConfig, ChannelSpec, DetectorBank
from anomaly.multivariate import GROUP_WIDTH, AssetT2

S = 1_000_000
USED2 = np.array([[True, True] + [False] * (GROUP_WIDTH - 2)])


def block(*channels: ArrayLike) -> np.ndarray:
    """(1, GROUP_WIDTH, T) with the given channels in the first slots, NaN padding."""
    x = np.full((1, GROUP_WIDTH, np.asarray(channels[0]).shape[0]), np.nan)
    x[0, :len(channels)] = channels
    return x


def times(start_s: int, n: int) -> np.ndarray:
    return (start_s + np.arange(n, dtype=np.int64)) * S


def test_t2_and_spe_of_a_known_covariance() -> None:
    """Learned from the four points (±1 ± 0.1, ±1 ∓ 0.1): the channels have variance 1.01 and
    correlation 0.99/1.01, so the correlation matrix has eigenvalues 1.98/1.01 along (1, 1) and
    0.02/1.01 along (1, -1). One component is kept; the point (1, 1) then has T² exactly 1 and
    SPE 0, and (0.1, -0.1) T² 0 and SPE exactly the minor eigenvalue, i.e. one unit too."""
    pts = np.array([[1.1, 0.9], [0.9, 1.1], [-0.9, -1.1], [-1.1, -0.9]]).T
    learn = np.tile(pts, 100)                                   # 400 samples, mean exactly 0
    det = AssetT2(1, learn=400, duration_s=0, t2_margin=3.0, spe_margin=2.0)
    det.update(times(0, 400), block(*learn), USED2)
    test = np.array([[1.0, 0.1], [1.0, -0.1]])
    r = det.update(times(400, 2), block(*test), USED2)
    t2_limit = stats.chi2.ppf(0.999, 1) * 3.0
    # Box's approximation with a single residual eigenvalue λ: g = λ, one degree of freedom.
    spe_limit = (0.02 / 1.01) * stats.chi2.ppf(0.999, 1) * 2.0
    assert_allclose(r.t2[0] * t2_limit, [1.0, 0.0], atol=1e-6)
    assert_allclose(r.spe[0] * spe_limit, [0.0, 0.02 / 1.01], atol=1e-9)


def test_scores_wait_for_the_learning_period_and_nan_samples_teach_nothing() -> None:
    rng = np.random.default_rng(42)
    load = rng.uniform(0.5, 1.0, 700)
    x = block(load, 2 * load + 0.01 * rng.normal(size=700))
    x[0, 1, 100:200] = np.nan                      # a gap: 100 samples not learned
    det = AssetT2(1, learn=500, duration_s=0)
    r = det.update(times(0, 700), x, USED2)
    assert np.isnan(r.ratio).all()                 # the model existed only after the block
    assert det.weight[0] == 500                    # 600 valid samples, the first 500 learned
    r = det.update(times(700, 1), block([0.7], [1.4]), USED2)
    assert r.ratio[0, 0] < 0.5
    r = det.update(times(701, 1), block([0.7], [np.nan]), USED2)
    assert np.isnan(r.ratio[0, 0])
    assert r.top[0, 0] == -1


def test_an_asset_without_a_group_is_never_scored() -> None:
    det = AssetT2(2, learn=10, duration_s=0)
    used = np.zeros((2, GROUP_WIDTH), bool)
    used[0, :2] = True
    used[1, 0] = True                               # a single channel: nothing to correlate
    x = np.random.default_rng(1).normal(size=(2, GROUP_WIDTH, 50))
    det.update(times(0, 50), x, used)
    r = det.update(times(50, 5), x[:, :, :5], used)
    assert np.isfinite(r.ratio[0]).all()
    assert np.isnan(r.ratio[1]).all()


def test_duration_gate_holds_the_ratio_below_one() -> None:
    rng = np.random.default_rng(3)
    load = rng.uniform(0.5, 1.0, 800)
    a, b = load, 2 * load + 0.01 * rng.normal(size=800)
    b[700:] -= 0.3
    det = AssetT2(1, learn=600, duration_s=30)
    det.update(times(0, 600), block(a[:600], b[:600]), USED2)
    r = det.update(times(600, 200), block(a[600:], b[600:]), USED2)
    assert (r.spe[0, 100:] > 1).all()
    assert (r.ratio[0, 100:130] < 1).all()
    assert (r.ratio[0, 130:] > 1).all()


def test_rejects_bad_input() -> None:
    det = AssetT2(1)
    with pytest.raises(ValueError, match="channels per asset"):
        det.update(times(0, 3), np.zeros((1, 3, 3)), USED2)
    with pytest.raises(ValueError, match="`used` must be bool"):
        det.update(times(0, 3), np.zeros((1, GROUP_WIDTH, 3)), np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="`learn`"):
        AssetT2(1, learn=2)
    with pytest.raises(ValueError, match="`multivariate`"):
        DetectorBank([ChannelSpec("a", "x", multivariate="quadratic")])


# ---------------------------------------------------------------------------- in the bank
MODES = ("leak", "cavitation", "clogged_filter")


def correlated_asset(n: int, *, seed: int = 42, break_at: int | None = None,
                     shift: float = 0.0) -> np.ndarray:
    """Three channels that follow one load (flow, pressure, current of a machine); from
    `break_at` on the third leaves the others by `shift`, staying inside its own range."""
    rng = np.random.default_rng(seed)
    load = rng.uniform(0.5, 1.0, n)
    x = np.stack([30 * load, 6 * load, 40 * load]) + rng.normal(0, [[0.2], [0.04], [0.3]],
                                                                (3, n))
    if break_at is not None:
        x[2, break_at:] += shift
    return x


def bank_for(config: BankConfig) -> DetectorBank:
    specs = [ChannelSpec("m-1", name, mode=mode, drift=False, multivariate="linear",
                         high=hi, clear_high=0.9 * hi)
             for name, mode, hi in zip(("flow_l_min", "pressure_bar", "current_a"), MODES,
                                       (32.0, 6.4, 43.0), strict=True)]
    return DetectorBank(specs, config)


CONFIG = BankConfig(t2_learn=600, t2_duration_s=60, clear_hold_s=30)


def _stream(bank: DetectorBank, x: np.ndarray, support: float | None = None
            ) -> tuple[list[tuple[int, str, str]], list]:
    """Stream `x` in 600 s blocks, with a constant `support` score from another source (the
    bursts' spectral check, mode bearing_wear) when given; the equipment events and results."""
    t = times(0, x.shape[1])
    events, results = [], []
    for k in range(0, x.shape[1], 600):
        n = min(600, x.shape[1] - k)
        extra = None if support is None else {
            "spectral": (np.full((1, n), support),
                         np.full((1, n), bank.mode_index("bearing_wear")))}
        r = bank.update(t[k:k + n], x[:, k:k + n], extra=extra)
        events += [(k + e.sample, e.state, bank.modes[e.mode]) for e in r.equipment_events]
        results.append(r)
    return events, results


def test_correlation_break_alone_is_scored_but_opens_no_alert() -> None:
    """The third channel drops by 3 units (its own healthy range is 20..40 A): no limit and no
    per-channel baseline reacts, the SPE of the group does, and its contribution decomposition
    names that channel. Alone it is not an alert: on the demo fleet every T² / SPE excursion
    nothing else supported was an operating point the model had not learned."""
    x = correlated_asset(3000, break_at=2000, shift=-3.0)
    bank = bank_for(CONFIG)
    events, results = _stream(bank, x)
    chan = np.concatenate([r.channel_score for r in results], axis=1)
    assert np.nanmax(chan[:, 2000:]) < 0.5          # no channel's own detectors see it
    assert [e for e in events if e[1] == "open"] == []
    spe = np.concatenate([r.spe for r in results], axis=1)
    row = np.concatenate([r.mv_row for r in results], axis=1)
    assert np.nanmax(spe[0, 600:2000]) < 1
    assert (spe[0, 2100:] > 1).mean() > 0.95
    assert (row[0, 2100:] == 2).mean() > 0.95       # the channel that moved
    assert np.isnan(spe[0, :600]).all()             # learning the first 600 samples
    t2 = np.concatenate([r.extra_score["t2"] for r in results], axis=1)
    assert (t2[0, 2100:] > 0.5).mean() > 0.95       # reported, just not fused alone


def test_correlation_break_corroborates_weaker_evidence_into_an_alert() -> None:
    """Another source at 0.35 (over half its threshold, under the open level) with the group's
    SPE over its limit: the alert opens, after the duration gate, with the failure mode of the
    channel that moved. Without the break the same support opens nothing."""
    bank = bank_for(CONFIG)
    events, _ = _stream(bank, correlated_asset(3000, break_at=2000, shift=-3.0), support=0.35)
    opened = [e for e in events if e[1] == "open"]
    assert len(opened) == 1
    at, _, mode = opened[0]
    assert 2000 + 60 <= at <= 2000 + 120              # after the duration gate
    assert mode == "clogged_filter"                  # MODES[2]: the channel that moved
    healthy, _ = _stream(bank_for(CONFIG), correlated_asset(3000), support=0.35)
    assert healthy == []


def test_healthy_asset_raises_nothing() -> None:
    x = correlated_asset(6000, seed=7)
    bank = bank_for(CONFIG)
    t = times(0, 6000)
    for k in range(0, 6000, 600):
        r = bank.update(t[k:k + 600], x[:, k:k + 600])
        assert r.equipment_events == []


def test_checkpoint_mid_learning_continues_exactly() -> None:
    x = correlated_asset(3000, break_at=2000, shift=-3.0)
    t = times(0, 3000)
    straight = bank_for(CONFIG)
    a = [straight.update(t[k:k + 300], x[:, k:k + 300]) for k in range(0, 3000, 300)]
    resumed = bank_for(CONFIG)
    b = [resumed.update(t[:300], x[:, :300])]           # half of the 600 learning samples
    assert resumed.t2.weight[0] == 300
    specs = list(resumed.specs)
    for k in range(300, 3000, 300):
        resumed = DetectorBank.from_bytes(resumed.to_bytes(), specs, CONFIG)
        b.append(resumed.update(t[k:k + 300], x[:, k:k + 300]))
    for ra, rb in zip(a, b, strict=True):
        assert_allclose(ra.t2, rb.t2)
        assert_allclose(ra.spe, rb.spe)
        assert ra.equipment_events == rb.equipment_events
    assert np.nanmax(np.concatenate([r.spe for r in a], axis=1)) > 1


def test_extra_evidence_is_fused_with_its_failure_mode() -> None:
    bank = bank_for(BankConfig(clear_hold_s=5))
    x = correlated_asset(100)
    wear = bank.mode_index("bearing_wear")
    score = np.full((1, 100), np.nan)
    score[0, 50:] = 0.9
    r = bank.update(times(0, 100), x, extra={"spectral": (score, np.full((1, 100), wear))})
    assert_array_equal(r.asset_mode[0, 50:], wear)
    assert (r.asset_score[0, 50:] >= 0.9).all()
    assert (r.asset_score[0, :50] < 0.5).all()
    assert_allclose(r.extra_score["spectral"], score)
    opened = [e for e in r.equipment_events if e.state == "open"]
    assert [(e.sample, bank.modes[e.mode]) for e in opened] == [(55, "bearing_wear")]


def test_extra_evidence_is_checked() -> None:
    bank = bank_for(BankConfig())
    x = correlated_asset(10)
    ok_mode = np.zeros((1, 10), np.int64)
    with pytest.raises(ValueError, match="shaped"):
        bank.update(times(0, 10), x, extra={"spectral": (np.zeros((2, 10)), ok_mode)})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bank.update(times(0, 10), x, extra={"spectral": (np.full((1, 10), 2.0), ok_mode)})
    with pytest.raises(ValueError, match="indices"):
        bank.update(times(0, 10), x, extra={"spectral": (np.zeros((1, 10)), ok_mode + 99)})


def test_added_failure_modes_survive_a_checkpoint() -> None:
    bank = bank_for(BankConfig())
    code = bank.mode_index("bearing_wear")
    restored = DetectorBank.from_bytes(bank.to_bytes(), bank.specs, BankConfig())
    assert restored.modes[code] == "bearing_wear"


def test_a_long_stop_relearns_the_group() -> None:
    """A machine back from a trip and repair is learned afresh (no scores until it is)."""
    cfg = BankConfig(t2_learn=600, t2_duration_s=60, restart_hold_s=120, relearn_stop_s=60)
    specs = [*bank_for(cfg).specs,
             ChannelSpec("m-1", "run_a", run_level=1.0, scored=False, drift=False)]
    bank = DetectorBank(specs, cfg)
    x = correlated_asset(1200)
    run = np.full((1, 1200), 5.0)
    bank.update(times(0, 1200), np.vstack([x, run]))
    assert bank.t2.weight[0] == 600
    stopped = np.vstack([x[:, :200], np.zeros((1, 200))])
    bank.update(times(1200, 200), stopped)
    assert bank.t2.weight[0] == 0
    r = bank.update(times(1400, 600), np.vstack([x[:, :600], run[:, :600]]))
    assert np.isnan(r.spe).all()                    # restart hold, then learning again
