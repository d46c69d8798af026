"""Calibration: a channel's raw evidence turned into an anomaly probability.

A detector's raw score means different things on different channels: a z-score of 6 is routine
for a spiky server metric and unheard of for a bearing temperature. The *anomaly likelihood*
(Ahmad et al., "Unsupervised real-time anomaly detection for streaming data", 2017, the
post-processing of Numenta's HTM detector) asks instead how unusual the recent raw scores are
for this channel: the mean of the last few raw scores against the long-run distribution of the
channel's own raw scores (mean and spread, learned online). Its upper tail probability ``q``
becomes the calibrated score ``-log10(q) / decades`` (clipped to [0, 1]), so one threshold means
the same on every channel: 0.5 is a tail of ``10**(-decades / 2)`` whatever the channel, machine
or data set.

Everything is an EWMA (``lfilter``), so the whole fleet is calibrated in a few array passes
with the state carried between blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

from anomaly.baseline import ewma_with_prior, lagged_ewma
from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_times, check_positive

_LN10 = float(np.log(10.0))


@dataclass(frozen=True)
class LikelihoodResult:
    """Per channel and sample: ``z`` (recent mean against the long-run distribution, in long-run
    standard deviations) and ``score`` (calibrated, in [0, 1]); NaN without data or while
    warming up."""

    z: NDArray[np.float64]
    score: NDArray[np.float64]


class AnomalyLikelihood(StreamingDetector):
    """Calibrated anomaly score of a raw score stream, per channel.

    Parameters
    ----------
    channels : int
        Number of channels.
    short : float
        Half-life (samples of the stream) of the recent mean of the raw scores.
    long : float
        Half-life (samples of the stream) of the long-run mean and variance of the raw scores.
        They are those *before* the newest sample (lagged by one), so a burst is measured
        against the time before it. A missing sample adds nothing but ages what was learned,
        like every sample does, so on a sparse channel the memory is shorter in readings.
    warmup : int
        Valid samples a channel must have seen before it is scored (NaN before).
    min_std : float
        Floor of the long-run standard deviation (a channel whose raw score never moved is not
        infinitely surprised by the first small change).
    decades : float
        Tail probability ``10**-decades`` maps to score 1.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> raw = np.abs(rng.normal(size=(1, 3000))) * [[1.0], [10.0]]   # one 10x noisier
    >>> raw[:, 2500:2510] += [[5.0], [50.0]]          # the same burst, in its own units
    >>> lk = AnomalyLikelihood(2, short=3, long=1000, warmup=500, min_std=1e-3)
    >>> s = lk.update(np.arange(3000, dtype=np.int64), raw).score
    >>> bool(np.isnan(s[0, 400])), bool(np.nanmax(s[:, 600:2500]) < 0.5)
    (True, True)
    >>> np.round(s[:, 2505], 3).tolist()        # calibrated: the same score on both
    [0.761, 0.761]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("sw_short", "swx_short", "sw_long", "swx_long",
                                               "swq_long", "count")
    sw_short: NDArray[Any]
    swx_short: NDArray[Any]
    sw_long: NDArray[Any]
    swx_long: NDArray[Any]
    swq_long: NDArray[Any]
    count: NDArray[Any]

    def __init__(self, channels: int = 0, *, short: float = 5.0, long: float = 2000.0,
                 warmup: int = 300, min_std: float = 0.02, decades: float = 10.0) -> None:
        if channels < 0:
            raise ValueError(f"`channels` must be >= 0, got {channels}")
        self.alpha_short = 1.0 - 0.5 ** (1.0 / check_positive(short, name="short"))
        self.alpha_long = 1.0 - 0.5 ** (1.0 / check_positive(long, name="long"))
        if warmup < 1:
            raise ValueError(f"`warmup` must be >= 1, got {warmup}")
        self.warmup = int(warmup)
        self.min_std = check_positive(min_std, name="min_std")
        self.decades = check_positive(decades, name="decades")
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"sw_short": np.zeros(n), "swx_short": np.zeros(n), "sw_long": np.zeros(n),
                "swx_long": np.zeros(n), "swq_long": np.zeros(n), "count": np.zeros(n, np.int64)}

    def update(self, times: ArrayLike, raw: ArrayLike) -> LikelihoodResult:
        """Calibrate a block of raw scores (channels, T); NaN = no score (learns nothing)."""
        x = as_block(raw, name="raw", channels=self.channels)
        as_times(times, name="times", length=x.shape[1])
        if x.shape[1] == 0:
            empty = np.zeros(x.shape)
            return LikelihoodResult(z=empty, score=empty)
        valid = ~np.isnan(x)
        w = valid.astype(np.float64)
        xw = np.where(valid, x, 0.0)
        a_s, a_l = self.alpha_short, self.alpha_long
        sw_s = ewma_with_prior(w, a_s, self.sw_short)
        swx_s = ewma_with_prior(xw, a_s, self.swx_short)
        sw_l, self.sw_long = lagged_ewma(w, a_l, self.sw_long)
        swx_l, self.swx_long = lagged_ewma(xw, a_l, self.swx_long)
        swq_l, self.swq_long = lagged_ewma(xw * xw, a_l, self.swq_long)
        self.sw_short, self.swx_short = sw_s[:, -1].copy(), swx_s[:, -1].copy()
        count = self.count[:, None] + np.cumsum(valid, axis=1)
        self.count = count[:, -1].copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            recent = swx_s / sw_s
            mean = swx_l / sw_l
            var = swq_l / sw_l - mean * mean
            std = np.sqrt(np.maximum(var, self.min_std ** 2))
            z = np.where(valid & (count > self.warmup) & (sw_l > 0), (recent - mean) / std,
                         np.nan)
        # log of the upper tail probability, accurate far into the tail.
        log_q = log_ndtr(-np.where(np.isnan(z), 0.0, z))
        score = np.where(np.isnan(z), np.nan,
                         np.clip(-log_q / (_LN10 * self.decades), 0.0, 1.0))
        return LikelihoodResult(z=z, score=score)
