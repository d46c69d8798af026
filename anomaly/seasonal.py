"""Change score of a univariate series against its own cycle (a day, a shift, a duty cycle).

Each sample is compared with the sample one period earlier (or with the previous sample when the
series has no cycle), and the size of that difference is measured against a slowly adapting
scale of such differences. The period is estimated from the first rows (autocorrelation), as a
benchmark protocol allows. The score is then *onset-weighted*: a sample scores high only if it is
clearly above the highest score of the recent past, so a persisting condition raises one alarm,
not one per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import maximum_filter1d

from anomaly.baseline import ewma_with_prior
from anomaly.state import StreamingDetector
from anomaly.validation import (
    as_1d_float,
    as_block,
    as_times,
    check_at_least,
    check_positive,
    halflife_alpha,
)


def estimate_period(values: ArrayLike, *, min_acf: float = 0.5) -> int:
    """Dominant period in samples (0 when there is no clear cycle), from the autocorrelation.

    The candidate is the highest autocorrelation peak after its first zero crossing, within half
    the series; it must reach `min_acf`. NaN samples count as the mean.

    Examples
    --------
    >>> t = np.arange(600)
    >>> estimate_period(np.sin(2 * np.pi * t / 50))
    50
    >>> estimate_period(np.random.default_rng(42).normal(size=600))
    0
    >>> estimate_period(np.ones(10))
    0
    """
    x = as_1d_float(values, name="values")
    n = x.size
    if n < 4 or np.all(np.isnan(x)):
        return 0
    x = np.where(np.isnan(x), np.nanmean(x), x) - np.nanmean(x)
    if not np.any(x):
        return 0
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    ac = ac / ac[0] * n / (n - np.arange(n))  # unbiased: long lags have fewer pairs
    negative = np.flatnonzero(ac < 0)
    if negative.size == 0 or negative[0] >= n // 2:
        return 0
    lo = int(negative[0])
    seg = ac[lo:n // 2]
    if seg.size < 3:
        return 0
    peaks = np.flatnonzero((seg[1:-1] >= seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
    if peaks.size == 0:
        return 0
    # The first peak nearly as high as the highest: the period, not one of its multiples.
    p = lo + int(peaks[np.argmax(seg[peaks] >= 0.9 * seg[peaks].max())])
    return p if ac[p] >= min_acf else 0


@dataclass(frozen=True)
class SeasonalResult:
    """``z``: |difference| / scale (NaN without data); ``score``: onset-weighted score in [0, 1]."""

    z: NDArray[np.float64]
    score: NDArray[np.float64]


class SeasonalChange(StreamingDetector):
    """Onset-weighted change score against the value one period earlier, per channel.

    Parameters
    ----------
    channels : int
        Number of channels.
    scale_halflife : float
        Half-life (samples) of the mean absolute difference used as the scale.
    refractory : int
        Samples of score history an onset must stand out from.
    floor_rel : float
        Scale floor as a fraction of the fitted value range (sensor resolution).
    softness : float
        ``score = 1 - exp(-z / softness)`` before onset weighting.

    Examples
    --------
    >>> t = np.arange(2000)
    >>> x = np.sin(2 * np.pi * t / 100)[None, :]
    >>> x[0, 1500:1520] += 1.0
    >>> det = SeasonalChange(1)
    >>> det.fit(x[:, :400])
    >>> s = det.update(t.astype(np.int64), x).score[0]
    >>> int(np.nanargmax(s)), bool(np.nanmax(s[:1500]) < 0.01)
    (1500, True)
    """

    _state_names: ClassVar[tuple[str, ...]] = ("lag", "floor", "scale", "history", "recent")
    lag: NDArray[Any]
    floor: NDArray[Any]
    scale: NDArray[Any]
    history: NDArray[Any]
    recent: NDArray[Any]

    def __init__(
        self,
        channels: int = 0,
        *,
        max_lag: int = 2048,
        scale_halflife: float = 864.0,
        refractory: int = 600,
        floor_rel: float = 0.05,
        softness: float = 8.0,
    ) -> None:
        check_at_least(channels, 0, name="channels")
        if max_lag < 1 or refractory < 1:
            raise ValueError("`max_lag` and `refractory` must be >= 1")
        self.max_lag = int(max_lag)
        self.alpha = halflife_alpha(scale_halflife, name="scale_halflife")
        self.refractory = int(refractory)
        self.floor_rel = float(floor_rel)
        self.softness = check_positive(softness, name="softness")
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {
            "lag": np.ones(n, np.int64),
            "floor": np.full(n, 1e-9),
            "scale": np.full(n, np.nan),
            "history": np.full((n, self.max_lag), np.nan),
            "recent": np.zeros((n, self.refractory)),
        }

    def fit(self, first_rows: ArrayLike) -> None:
        """Period, scale and floor of every channel from its first rows (channels, T)."""
        x = as_block(first_rows, name="first_rows", channels=self.channels)
        lags = [estimate_period(row) for row in x]  # once per channel at fit, not per sample
        self.lag = np.clip(np.array([p if p else 1 for p in lags], np.int64), 1, self.max_lag)
        with np.errstate(all="ignore"):
            span = np.nanmax(x, axis=1) - np.nanmin(x, axis=1) if x.shape[1] else np.zeros(
                self.channels)
        self.floor = np.maximum(np.nan_to_num(self.floor_rel * span), 1e-9)
        idx = np.arange(x.shape[1])[None, :] - self.lag[:, None]
        lagged = np.take_along_axis(x, np.maximum(idx, 0), axis=1)
        d = np.where(idx >= 0, np.abs(x - lagged), np.nan)
        with np.errstate(all="ignore"):
            self.scale = np.nanmean(d, axis=1) if x.shape[1] else np.full(self.channels, np.nan)

    def update(self, times: ArrayLike, values: ArrayLike) -> SeasonalResult:
        """Process one block. `times`: int64 µs (T,); `values`: (channels, T)."""
        x = as_block(values, name="values", channels=self.channels)
        as_times(times, name="times", length=x.shape[1])
        n_t = x.shape[1]
        if n_t == 0:
            return SeasonalResult(np.zeros_like(x), np.zeros_like(x))
        buf = np.concatenate([self.history, x], axis=1)
        col = self.max_lag + np.arange(n_t)[None, :] - self.lag[:, None]
        d = np.abs(x - np.take_along_axis(buf, col, axis=1))
        valid = ~np.isnan(d)
        # Scale before each sample: EWMA of |d| over valid samples (NaN holds it).
        init = np.where(np.isnan(self.scale), 0.0, self.scale)
        seen = ~np.isnan(self.scale)
        w = ewma_with_prior(valid.astype(np.float64), self.alpha, seen.astype(np.float64))
        sw = ewma_with_prior(np.where(valid, d, 0.0), self.alpha, init)
        with np.errstate(invalid="ignore", divide="ignore"):
            cur = sw / w
            prev = np.concatenate([self.scale[:, None], cur[:, :-1]], axis=1)
        prev = np.where(np.isnan(prev), 0.0, prev)
        z = np.where(valid, d / np.maximum(1.25 * prev, self.floor[:, None]), np.nan)
        s = 1.0 - np.exp(-np.where(valid, z, 0.0) / self.softness)
        allrec = np.concatenate([self.recent, s], axis=1)
        r = self.refractory
        # Causal max of the previous `r` scores: a centred filter shifted to end at t-1.
        peak = maximum_filter1d(allrec, r, axis=1, origin=(r - 1) // 2)[:, r - 1:-1]
        onset = np.clip(s - peak, 0.0, None) / np.maximum(1.0 - peak, 1e-12) * s
        self.history = buf[:, -self.max_lag:].copy()
        self.recent = allrec[:, -r:].copy()
        last = cur[:, -1]
        self.scale = np.where(np.isnan(last), self.scale, last)
        return SeasonalResult(z=z, score=np.where(valid, onset, np.nan))


class WeekdayChoice(StreamingDetector):
    """Per channel: does a working week's rhythm explain it better than one rhythm a day?

    A channel's time-of-day baseline holds one rhythm for every day. Where weekends differ
    (an office building, a shop's traffic, a plant that stops on Sundays) a second baseline
    with separate weekend slots (:class:`anomaly.baseline.EwmaBaseline` with
    ``weekend_split``) explains it better, but only once it has seen a few weekends: on a
    few weeks of data it has half the samples per slot and does worse. So the split view is
    used for a channel once the channel has been seen for `after_s` seconds **and** the split
    baseline's absolute errors, summed over the samples since then where both baselines
    were warm, are at least `margin` (a fraction) below the daily baseline's. Each error is
    measured in the daily baseline's spread and counts at most `clip` of them, so one wild
    reading (a fault, a glitch) cannot decide the choice, and no reading can overflow the sums.
    The choice is made per block from what was known before it (causal).

    >>> ch = WeekdayChoice(1, after_s=2.0, margin=0.1)
    >>> t = np.arange(4, dtype=np.int64) * 1_000_000
    >>> x, scale = np.ones((1, 4)), np.ones((1, 4))
    >>> day = np.full((1, 4), 0.0); week = np.full((1, 4), 0.9)
    >>> ch.update(t, x, day, week, scale).tolist()
    [False]
    >>> ch.update(t + 4_000_000, x, day, week, scale).tolist()
    [True]
    >>> x[0, 0], week[0, 1] = np.inf, np.nan          # neither counts; the sums stay finite
    >>> _ = ch.update(t + 8_000_000, x, day, week, scale)
    >>> bool(np.isfinite(ch.err_day[0])), ch.update(t, x, day, week, scale).tolist()
    (True, [True])
    """

    _state_names: ClassVar[tuple[str, ...]] = ("first", "err_day", "err_week")
    first: NDArray[Any]
    err_day: NDArray[Any]
    err_week: NDArray[Any]

    def __init__(self, channels: int = 0, *, after_s: float = 21 * 86_400.0,
                 margin: float = 0.1, clip: float = 10.0) -> None:
        check_at_least(channels, 0, name="channels")
        check_positive(after_s, name="after_s")
        check_positive(clip, name="clip")
        self.clip = float(clip)
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"`margin` must be in [0, 1), got {margin}")
        self.after_us = int(round(after_s * 1e6))
        self.margin = float(margin)
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"first": np.full(n, np.iinfo(np.int64).max // 2, np.int64),
                "err_day": np.zeros(n), "err_week": np.zeros(n)}

    def update(self, times: ArrayLike, values: ArrayLike, day_mean: ArrayLike,
               week_mean: ArrayLike, scale: ArrayLike) -> NDArray[np.bool_]:
        """One block: `times` int64 µs (T,); `values`, each baseline's mean before every
        sample (NaN: not warm) and the daily baseline's spread, shaped (channels, T). Returns,
        per channel, whether the split view is chosen for this block."""
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        md = as_block(day_mean, name="day_mean", channels=self.channels)
        mw = as_block(week_mean, name="week_mean", channels=self.channels)
        sd = as_block(scale, name="scale", channels=self.channels)
        if md.shape != x.shape or mw.shape != x.shape or sd.shape != x.shape:
            raise ValueError(f"baseline means and scale must be shaped {x.shape}")
        chosen = (self.err_week < (1.0 - self.margin) * self.err_day) & (self.err_day > 0)
        if not x.shape[1]:
            return chosen
        seen = np.isfinite(x)
        any_seen = seen.any(axis=1)
        first_here = t[np.argmax(seen, axis=1)]
        self.first = np.where(any_seen, np.minimum(self.first, first_here), self.first)
        mature = t[None, :] - self.first[:, None] >= self.after_us
        with np.errstate(all="ignore"):
            sd = np.where(sd > 0, sd, np.nan)
            ed = np.abs(x - md) / sd
            ew = np.abs(x - mw) / sd
            # NaN (not warm, no reading, no positive spread) counts for neither.
            both = mature & ~np.isnan(ed) & ~np.isnan(ew)
            self.err_day = self.err_day + np.where(both, np.minimum(ed, self.clip), 0.0).sum(1)
            self.err_week = self.err_week + np.where(both, np.minimum(ew, self.clip), 0.0).sum(1)
        return chosen
