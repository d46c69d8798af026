"""The vectorised detectors against straightforward per-channel loops.

The detectors take short cuts for speed (gap-free blocks, channels past warm-up, channels that
never reach a limit, chunks of rows); these tests feed them blocks that mix every case (gaps,
warm-up ending mid-block, channels never seen, limits tripping) and check each output sample
against a plain loop over one channel at a time that has no short cuts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from anomaly import baseline as baseline_mod
from anomaly import drift as drift_mod
from anomaly.baseline import EwmaBaseline
from anomaly.drift import Cusum
from anomaly.health import SensorHealth
from anomaly.limits import LimitRule

S = 1_000_000


def mixed_fleet(seed: int, channels: int = 40, samples: int = 500) -> np.ndarray:
    """Noisy channels, some with gaps, one always missing, one constant, spikes, excursions."""
    rng = np.random.default_rng(seed)
    x = 50.0 + rng.normal(0.0, 1.0, (channels, samples))
    x[::7, samples // 2:] += 40.0                          # excursions past the limits
    x[1::5, ::3] = np.nan                                  # regular gaps
    holes = rng.random((channels, samples)) < 0.02
    x[2::5][holes[2::5]] = np.nan                          # random gaps
    x[3] = np.nan                                          # a channel that never reports
    x[4] = 50.0                                            # a flat channel
    spikes = rng.random((channels, samples)) < 0.005
    x[spikes] += 30.0
    return x


def blocks(samples: int, sizes: tuple[int, ...]) -> list[slice]:
    out, a = [], 0
    for n in sizes:
        out.append(slice(a, min(a + n, samples)))
        a += n
    out.append(slice(a, samples))
    return [s for s in out if s.stop > s.start]


def cusum_loop(x: np.ndarray, k: float, h: float, warmup: int, min_std: float,
               z_clip: float) -> tuple[np.ndarray, np.ndarray]:
    score = np.full(x.shape, np.nan)
    direction = np.zeros(x.shape, np.int8)
    for c in range(x.shape[0]):
        n = 0
        s1 = s2 = up = lo = 0.0
        for i, v in enumerate(x[c].tolist()):
            if math.isnan(v):
                continue
            n += 1
            if n <= warmup:
                s1 += v
                s2 += v * v
                continue
            m = s1 / warmup
            sd = max(math.sqrt(max(s2 / warmup - m * m, 0.0)), min_std)
            z = min(max((v - m) / sd, -z_clip), z_clip)
            up = max(0.0, up + z - k)
            lo = max(0.0, lo - z - k)
            score[c, i] = max(up, lo) / h
            direction[c, i] = 1 if up > lo else -1 if lo > up else 0
    return score, direction


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cusum_equals_a_per_channel_loop_across_blocks_gaps_and_warmup(seed: int) -> None:
    x = mixed_fleet(seed)
    det = Cusum(x.shape[0], k=0.5, h=8.0, warmup=150, min_std=1e-6, z_clip=2.0)
    t = np.arange(x.shape[1], dtype=np.int64) * S
    out = [det.update(t[b], x[:, b]) for b in blocks(x.shape[1], (100, 1, 120, 60))]
    score = np.concatenate([r.score for r in out], axis=1)
    direction = np.concatenate([r.direction for r in out], axis=1)
    ref_score, ref_direction = cusum_loop(x, 0.5, 8.0, 150, 1e-6, 2.0)
    assert_allclose(score, ref_score, rtol=1e-9, atol=1e-9)
    assert_array_equal(direction, ref_direction)
    assert np.nanmax(score) > 1.0                          # the excursions were detected


def test_cusum_chunks_of_rows_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    x = mixed_fleet(4)
    t = np.arange(x.shape[1], dtype=np.int64) * S
    whole = Cusum(x.shape[0], warmup=50).update(t, x)
    monkeypatch.setattr(drift_mod, "_CHUNK_SAMPLES", 1)   # one row per chunk
    rowwise = Cusum(x.shape[0], warmup=50).update(t, x)
    assert_array_equal(rowwise.score, whole.score)
    assert_array_equal(rowwise.direction, whole.direction)


def baseline_loop(x: np.ndarray, alpha: float, var_alpha: float, warmup: int,
                  min_std: float) -> np.ndarray:
    """EWMA mean / variance per channel, NaN = weight 0 (the sums decay, nothing is added)."""
    z = np.full(x.shape, np.nan)
    for c in range(x.shape[0]):
        sw = swx = swv = swq = 0.0
        n = 0
        for i, v in enumerate(x[c].tolist()):
            if math.isnan(v):
                sw, swx = (1 - alpha) * sw, (1 - alpha) * swx
                swv, swq = (1 - var_alpha) * swv, (1 - var_alpha) * swq
                continue
            if sw > 0:
                mean = swx / sw
                std = max(math.sqrt(swq / swv), min_std)
                dev2 = (v - mean) ** 2
                if n >= warmup:
                    z[c, i] = (v - mean) / std
            else:
                dev2 = 0.0
            n += 1
            sw, swx = alpha + (1 - alpha) * sw, alpha * v + (1 - alpha) * swx
            swv, swq = var_alpha + (1 - var_alpha) * swv, var_alpha * dev2 + (1 - var_alpha) * swq
    return z


@pytest.mark.parametrize("var_halflife", [None, 200.0])
def test_baseline_equals_a_per_channel_loop_with_and_without_gaps(
    var_halflife: float | None,
) -> None:
    x = mixed_fleet(5)
    det = EwmaBaseline(x.shape[0], halflife=30, warmup=40, min_std=1e-6,
                       var_halflife=var_halflife)
    t = np.arange(x.shape[1], dtype=np.int64) * S
    z = np.concatenate([det.update(t[b], x[:, b]).z
                        for b in blocks(x.shape[1], (25, 90, 1, 200))], axis=1)
    alpha = 1 - 0.5 ** (1 / 30)
    var_alpha = alpha if var_halflife is None else 1 - 0.5 ** (1 / var_halflife)
    assert_allclose(z, baseline_loop(x, alpha, var_alpha, 40, 1e-6), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("gaps", [False, True])
def test_baseline_chunks_of_rows_give_the_same_result(
    monkeypatch: pytest.MonkeyPatch, gaps: bool,
) -> None:
    # Without gaps every row takes the fast path; with some gappy rows the others are gathered.
    x = mixed_fleet(6) if gaps else 50.0 + np.random.default_rng(6).normal(0.0, 1.0, (30, 300))
    t = np.arange(x.shape[1], dtype=np.int64) * S
    whole = EwmaBaseline(x.shape[0], halflife=20, warmup=10).update(t, x)
    monkeypatch.setattr(baseline_mod, "_CHUNK_SAMPLES", 1)
    rowwise = EwmaBaseline(x.shape[0], halflife=20, warmup=10).update(t, x)
    assert_array_equal(rowwise.z, whole.z)
    assert_array_equal(rowwise.std, whole.std)


def limit_loop(x: np.ndarray, high: float, clear_high: float, low: float, clear_low: float,
               duration_us: int) -> tuple[np.ndarray, np.ndarray]:
    out_hi = np.zeros(x.shape, bool)
    out_lo = np.zeros(x.shape, bool)
    for c in range(x.shape[0]):
        on_h = on_l = False
        start_h = start_l = 0
        for i, v in enumerate(x[c].tolist()):
            if math.isnan(v):
                continue                                   # state kept, no output
            if v > high:
                if not on_h:
                    on_h, start_h = True, i * S
            elif v < clear_high:
                on_h = False
            if v < low:
                if not on_l:
                    on_l, start_l = True, i * S
            elif v > clear_low:
                on_l = False
            out_hi[c, i] = on_h and i * S - start_h >= duration_us
            out_lo[c, i] = on_l and i * S - start_l >= duration_us
    return out_hi, out_lo


def test_limit_equals_a_per_channel_loop_on_both_sides() -> None:
    x = mixed_fleet(7)
    x[5::9, 100:140] -= 30.0                               # some channels dip below the low
    rule = LimitRule(x.shape[0], high=85.0, clear_high=80.0, low=30.0, clear_low=35.0,
                     duration_s=5.0)
    t = np.arange(x.shape[1], dtype=np.int64) * S
    out = [rule.update(t[b], x[:, b]) for b in blocks(x.shape[1], (120, 3, 200))]
    hi = np.concatenate([r.high for r in out], axis=1)
    lo = np.concatenate([r.low for r in out], axis=1)
    score = np.concatenate([r.score for r in out], axis=1)
    ref_hi, ref_lo = limit_loop(x, 85.0, 80.0, 30.0, 35.0, 5 * S)
    assert_array_equal(hi, ref_hi)
    assert_array_equal(lo, ref_lo)
    assert hi.any()
    assert lo.any()
    assert_array_equal(np.isnan(score), np.isnan(x))
    assert_array_equal(np.nan_to_num(score, nan=0.0), (ref_hi | ref_lo).astype(float))


def test_health_gap_free_rows_equal_the_general_path() -> None:
    x = mixed_fleet(8)
    x[10, 200:300] = 50.0                                  # stuck for 100 s
    x[11] = np.round(x[11])                                # coarse steps: repeats
    x[12, 300:330] = np.nan                                # silent for 30 s
    t = np.arange(x.shape[1], dtype=np.int64) * S
    kw = {"phys_min": 0.0, "phys_max": 85.0, "stuck_s": 30.0, "no_data_s": 10.0, "warmup": 5}
    fast, ref = SensorHealth(x.shape[0], **kw), SensorHealth(x.shape[0], **kw)
    everything = np.arange(x.shape[0])
    seen = dict.fromkeys(("stuck", "out_of_range", "spike", "no_data"), 0)
    for b in blocks(x.shape[1], (80, 1, 150)):
        got = fast.update(t[b], x[:, b])
        # The reference: the general path (forward fill, running weights) on every row.
        want = type(got)(*(np.zeros(got.stuck.shape, bool) for _ in range(4)))
        ref._general(x[:, b], t[b], everything, want)
        for name in seen:
            assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
            seen[name] += int(getattr(got, name).sum())
        for key, arr in ref.state_dict().items():
            assert_allclose(fast.state_dict()[key], arr, rtol=1e-12, err_msg=key)
    assert all(seen.values()), seen                        # every kind of problem occurred
