"""Operating regimes of machines nobody described (anomaly.multivariate.OperatingRegime) and
their place in the bank: what an asset's other channels explain is its program, not a fault."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from anomaly.bank import BankConfig, DetectorBank
from anomaly.models import channel_spec
from anomaly.multivariate import REGIME_WIDTH, OperatingRegime

W = REGIME_WIDTH


def block(*channels: np.ndarray) -> np.ndarray:
    """(1, W, T) with the given channels in the first slots, NaN padding."""
    x = np.full((1, W, np.asarray(channels[0]).shape[0]), np.nan)
    x[0, :len(channels)] = channels
    return x


def used(k: int) -> np.ndarray:
    return np.arange(W)[None, :] < k


def test_the_conditional_z_is_the_regression_residual_in_its_own_spread() -> None:
    # x2 = x0 + x1 + e with independent unit x0, x1 and e of spread 0.1: given x0 and x1, x2
    # is off by e, in units of 0.1; a point 0.5 above the plane scores 5.
    rng = np.random.default_rng(42)
    n = 20000
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    x2 = x0 + x1 + 0.1 * rng.normal(size=n)
    reg = OperatingRegime(1, learn=1000, ridge=1e-6)
    reg.learn(block(x0, x1, x2), used(3), np.ones((1, n), bool))
    z = reg.score(block(np.array([1.0, -2.0]), np.array([0.5, 1.0]),
                        np.array([2.0, -1.0])), used(3))
    assert_allclose(z[0, 2], [5.0, 0.0], atol=0.15)
    # The break shows on the channels that predict it too (x0 and x1 are each explained by
    # the other two), less strongly: the residual is shared.
    assert 1.0 < abs(z[0, 0, 0]) < 5.0
    # The default ridge (a share of each channel's variance nothing explains: sensor noise)
    # only ever shrinks the score.
    reg = OperatingRegime(1, learn=1000)
    reg.learn(block(x0, x1, x2), used(3), np.ones((1, n), bool))
    assert 3.0 < reg.score(block(*(np.array([v]) for v in (1.0, 0.5, 2.0))), used(3))[0, 2, 0] < 5


def test_an_absent_channel_is_left_out_and_the_others_still_relate() -> None:
    # x3 = x0 + x1 + x2 + e. With x2's sensor dead for the block, x3 is scored against x0
    # and x1 alone (x2 is then part of its residual spread: the score shrinks, but a break of
    # 2 units still stands out); x2 gets no score. With two of four dead, nothing is scored.
    rng = np.random.default_rng(7)
    n = 20000
    x0, x1, x2 = rng.normal(size=(3, n))
    x3 = x0 + x1 + x2 + 0.1 * rng.normal(size=n)
    reg = OperatingRegime(1, learn=1000, ridge=1e-6)
    reg.learn(block(x0, x1, x2, x3), used(4), np.ones((1, n), bool))
    a, b = np.array([0.5, 0.5, 0.5]), np.array([-1.0, -1.0, -1.0])
    dead = np.full(3, np.nan)
    absent = np.zeros((1, W), bool)
    absent[0, 2] = True
    z = reg.score(block(a, b, dead, a + b + np.array([0.0, 0.0, 2.0])), used(4), absent)
    assert np.isnan(z[0, 2]).all()
    assert abs(z[0, 3, 0]) < 0.5
    assert z[0, 3, 2] > 1.2                                            # 2 / sqrt(1 + 0.01)
    assert np.isfinite(z[0, :2]).all()
    assert np.isfinite(z[0, 3]).all()
    two = absent.copy()
    two[0, 1] = True
    assert np.isnan(reg.score(block(a, dead, dead, a + b), used(4), two)).all()
    # A slot without a value that is not absent (the machine settling) leaves the sample
    # unscored, as before.
    assert np.isnan(reg.score(block(a, b, dead, a + b), used(4))).all()
    # The model itself is untouched (the same set of channels is used): a full block scores
    # as before.
    assert abs(reg.score(block(a, b, a, a + b + a), used(4))[0, 3, 0]) < 0.5
    with pytest.raises(ValueError, match="`absent` must be bool"):
        reg.score(block(a, b, a, a), used(4), np.zeros((1, 3), bool))


def test_nothing_is_scored_while_learning_nor_for_fewer_than_three_channels() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 500))
    reg = OperatingRegime(2, learn=600)
    vals = np.concatenate([block(*x), block(*x)])
    u = np.concatenate([used(3), used(2)])
    reg.learn(vals, u, np.ones((2, 500), bool))
    assert np.isnan(reg.score(vals, u)).all()                 # 500 < 600 learned
    reg.learn(vals, u, np.ones((2, 500), bool))
    z = reg.score(vals, u)
    assert np.isfinite(z[0, :3]).all()
    assert np.isnan(z[0, 3:]).all()                           # padding slots
    assert np.isnan(z[1]).all()                               # two channels: never


def test_unusable_samples_are_neither_scored_nor_learned() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 400))
    x[1, 10] = np.nan
    x[2, 20] = np.inf
    x[0, 30] = 1e200
    reg = OperatingRegime(1, learn=W + 2)
    reg.learn(block(*x), used(3), np.ones((1, 400), bool))
    assert reg.weight[0] == 397
    assert np.isfinite(reg.s2).all()
    z = reg.score(block(*x), used(3))
    assert np.isnan(z[0, :3, [10, 20, 30]]).all()
    assert np.isfinite(np.delete(z[0, :3], [10, 20, 30], axis=1)).all()
    # Only the samples the caller marks are learned.
    take = np.zeros((1, 400), bool)
    take[0, 100:200] = True
    reg2 = OperatingRegime(1, learn=W + 2)
    reg2.learn(block(*x), used(3), take)
    assert reg2.weight[0] == 100


def test_rejects_bad_input() -> None:
    reg = OperatingRegime(1)
    with pytest.raises(ValueError, match="3-D"):
        reg.score(np.zeros((W, 5)), used(3))
    with pytest.raises(ValueError, match="at most"):
        reg.score(np.zeros((1, W + 1, 5)), np.zeros((1, W + 1), bool))
    with pytest.raises(ValueError, match="assets"):
        reg.score(np.zeros((2, W, 5)), used(3))
    with pytest.raises(ValueError, match="used"):
        reg.score(np.zeros((1, W, 5)), np.ones((1, W), int))
    with pytest.raises(ValueError, match="take"):
        reg.learn(np.zeros((1, W, 5)), used(3), np.ones((1, 4), bool))
    with pytest.raises(TypeError, match="real numbers"):
        reg.score(np.full((1, W, 5), "x"), used(3))
    with pytest.raises(ValueError, match="learn"):
        OperatingRegime(1, learn=3)
    with pytest.raises(ValueError, match="ridge"):
        OperatingRegime(1, ridge=0.0)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (3, 40), elements=st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.just(0.0))),
    st.integers(min_value=3, max_value=W))
def test_any_block_is_scored_without_error_or_poison(x: np.ndarray, k: int) -> None:
    reg = OperatingRegime(1, learn=W + 2)
    vals = np.full((1, W, 40), 1.0)
    vals[0, :3] = x
    vals[0, 3:k] = np.arange(40.0)[None, :] * np.arange(1, k - 2)[:, None]
    for _ in range(2):
        reg.learn(vals, used(k), np.ones((1, 40), bool))
        with np.errstate(all="ignore"):
            z = reg.score(vals, used(k))
        assert z.shape == (1, W, 40)
        assert not np.isinf(z).any()
    assert np.isfinite(reg.s1).all()
    assert np.isfinite(reg.s2).all()


def _mill_bank() -> tuple[DetectorBank, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 3 * 3600
    speed = np.repeat(rng.uniform(2000, 6000, n // 60 + 1), 60)[:n]
    x = np.stack([speed + rng.normal(0, 5, n), 4 + 0.003 * speed + rng.normal(0, 0.2, n),
                  0.3 + 2e-4 * speed + rng.normal(0, 0.03, n), 20 + rng.normal(0, 0.3, n)])
    specs = [channel_spec("mill-1", m, None) for m in (
        "speed_rpm", "spindle_current_a", "vibration_rms_mm_s", "coolant_flow_l_min")]
    return DetectorBank(specs, BankConfig(generic_learn_s=600.0, regime_learn=1800)), x


def test_a_checkpoint_keeps_the_learned_regime() -> None:
    bank, x = _mill_bank()
    t = (np.arange(x.shape[1], dtype=np.int64) + 1) * 1_000_000
    half = x.shape[1] // 2
    for a in range(0, half, 600):
        bank.update(t[a:a + 600], x[:, a:a + 600])
    assert bank.regime.weight[0] > 1800
    restored = DetectorBank.from_bytes(bank.to_bytes(), bank.specs, bank.config)
    assert_allclose(restored.regime.s2, bank.regime.s2)
    for a in range(half, x.shape[1], 600):
        r1 = bank.update(t[a:a + 600], x[:, a:a + 600])
        r2 = restored.update(t[a:a + 600], x[:, a:a + 600])
        assert_allclose(r1.channel_score, r2.channel_score)


def test_regimes_off_keep_no_state() -> None:
    bank, _ = _mill_bank()
    assert "regime" in bank._parts()
    off = DetectorBank(bank.specs, BankConfig(regime_support=0.0))
    assert "regime" not in off._parts()


def test_a_different_set_of_channels_is_learned_afresh() -> None:
    # The sums describe one set of channels: a channel added to the asset (or one found to be
    # a counter and left out) would otherwise meet sums that never saw it.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 300))
    reg = OperatingRegime(1, learn=W + 2)
    reg.learn(block(*x), used(3), np.ones((1, 300), bool))
    assert np.isfinite(reg.score(block(*x), used(3))[0, :3]).all()
    assert np.isnan(reg.score(block(*x), used(4))).all()
    assert reg.weight[0] == 0
    reg.learn(block(*x), used(4), np.ones((1, 300), bool))
    assert np.isfinite(reg.score(block(*x), used(4))[0, :4]).all()


def test_a_channel_released_mid_block_is_explained_from_its_first_value() -> None:
    # After a restart an unknown machine's channels are released one by one as they settle,
    # and an operating input such as the ambient temperature may not settle for hours. The
    # channels that have values at a sample are related among themselves: a channel released
    # in the middle of a block is explained by the machine's program from its first value,
    # not only from the next block on (the leak alert of a chiller 42 minutes after its
    # morning start: its condenser pressure released at 06:42:00 with no regime to explain it).
    bank, x = _mill_bank()
    t = (np.arange(x.shape[1], dtype=np.int64) + 1) * 1_000_000
    for a in range(0, x.shape[1] - 600, 600):
        bank.update(t[a:a + 600], x[:, a:a + 600])
    assert bank.regime.weight[0] >= bank.regime.learn_n
    last = x[:, -600:].copy()
    quiet = np.zeros(last.shape, bool)
    steady = bank._regime(last, quiet, quiet)
    assert steady.explained[:3].mean() > 0.9               # every channel has values
    last[3] = np.nan                                        # the coolant never settles
    last[2, :250] = np.nan                                  # vibration released at 250 s
    r = bank._regime(last, quiet, quiet)
    assert np.isnan(r.z).all()                              # the full fit scores nothing
    assert not r.explained[:, :250].any()                   # two channels: no fit at all
    assert r.explained[:3, 250:].mean() > 0.9               # three: each explained
    last[1, 400:] = np.nan                                  # current gone again at 400 s
    r = bank._regime(last, quiet, quiet)
    assert r.explained[:3, 250:400].mean() > 0.9
    assert not r.explained[:, 400:].any()
