"""Distribution change: a channel's recent step-to-step spread against its long-run spread.

The adaptive baselines (:mod:`anomaly.baseline`) ask whether a value is far from where the
channel usually is. Some changes move no value out of range: a server whose load bursts every
few minutes falls quiet, a sensor's noise doubles, a smooth signal starts to jitter. What
changes is the *distribution* of the channel's movements. :class:`SpreadChange` scores it as
``|log(v_recent / v_long)|``, where ``v`` is the mean square of the step between consecutive
readings over a short (recent) and a long memory (lagged by one, so a change is measured
against the time before it). Steps, not deviations from a mean, so a level shift is one large
step, not a lasting spread change; the raw score is meant to be calibrated per channel
(:class:`anomaly.likelihood.AnomalyLikelihood`), which decides how unusual a given ratio is
for that channel.

Everything is an EWMA (``lfilter``) over the whole block, with the state carried between blocks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.baseline import ewma_with_prior, lagged_ewma
from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_times, check_at_least, check_positive, halflife_alpha


class SpreadChange(StreamingDetector):
    """Per channel: ``|log|`` of the recent against the long-run mean square step.

    Parameters
    ----------
    channels : int
        Number of channels.
    short, long : float
        Half-lives (samples of the stream) of the recent and the long-run mean square step.
    warmup : int
        Steps a channel must have seen before it is scored (NaN before).
    floor : float
        Relative floor of both mean squares (a fraction of the long-run one), so a channel
        that rests perfectly still for a while scores a bounded ``log(1 / floor)``; a channel
        that never moved scores 0.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> x = rng.normal(0.0, 1.0, (1, 3000)) * [[1.0], [100.0]]   # same shape, other units
    >>> x[:, 2000:] *= 0.1                                     # both fall quiet at 2000
    >>> sc = SpreadChange(2, short=10, long=1000, warmup=200)
    >>> s = sc.update(np.arange(3000, dtype=np.int64), x)
    >>> bool(np.isnan(s[0, 100])), bool(np.nanmax(s[:, 300:2000]) < 2.0)
    (True, True)
    >>> np.round(s[:, 2100], 2).tolist()                     # the same change on both
    [4.59, 4.59]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("last", "sw_short", "sq_short", "sw_long",
                                               "sq_long", "count")
    last: NDArray[Any]
    sw_short: NDArray[Any]
    sq_short: NDArray[Any]
    sw_long: NDArray[Any]
    sq_long: NDArray[Any]
    count: NDArray[Any]

    def __init__(self, channels: int = 0, *, short: float = 12.0, long: float = 2000.0,
                 warmup: int = 150, floor: float = 1e-4) -> None:
        check_at_least(channels, 0, name="channels")
        self.alpha_short = halflife_alpha(short, name="short")
        self.alpha_long = halflife_alpha(long, name="long")
        check_at_least(warmup, 1, name="warmup")
        self.warmup = int(warmup)
        self.floor = check_positive(floor, name="floor")
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"last": np.full(n, np.nan), "sw_short": np.zeros(n), "sq_short": np.zeros(n),
                "sw_long": np.zeros(n), "sq_long": np.zeros(n),
                "count": np.zeros(n, np.int64)}

    def update(self, times: ArrayLike, values: ArrayLike) -> NDArray[np.float64]:
        """Raw spread-change score of a block (channels, T); NaN = no data (learns nothing,
        and the next reading's step is taken from the last one before the gap)."""
        x = as_block(values, name="values", channels=self.channels)
        as_times(times, name="times", length=x.shape[1])
        if x.shape[1] == 0:
            return np.zeros(x.shape)
        # The last reading before each sample (carried over gaps and from the previous block).
        have = ~np.isnan(x)
        idx = np.where(have, np.arange(x.shape[1])[None, :], -1)
        np.maximum.accumulate(idx, axis=1, out=idx)
        filled = np.where(idx >= 0, np.take_along_axis(x, np.maximum(idx, 0), axis=1),
                          self.last[:, None])
        prev = np.concatenate([self.last[:, None], filled[:, :-1]], axis=1)
        step = x - prev
        valid = ~np.isnan(step)
        w = valid.astype(np.float64)
        q = np.where(valid, step * step, 0.0)
        a_s, a_l = self.alpha_short, self.alpha_long
        sw_s = ewma_with_prior(w, a_s, self.sw_short)
        sq_s = ewma_with_prior(q, a_s, self.sq_short)
        sw_l, self.sw_long = lagged_ewma(w, a_l, self.sw_long)
        sq_l, self.sq_long = lagged_ewma(q, a_l, self.sq_long)
        self.sw_short, self.sq_short = sw_s[:, -1].copy(), sq_s[:, -1].copy()
        self.last = filled[:, -1].copy()
        count = self.count[:, None] + np.cumsum(valid, axis=1)
        self.count = count[:, -1].copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            v_long = sq_l / sw_l
            v_short = sq_s / sw_s
            eps = self.floor * v_long
            ratio = np.log((v_short + eps) / (v_long + eps))
            ratio = np.where(v_long > 0, ratio, 0.0)
        ok = valid & (count > self.warmup) & (sw_l > 0)
        return np.where(ok, np.abs(ratio), np.nan)
