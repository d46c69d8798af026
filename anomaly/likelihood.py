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
from scipy.signal import lfilter
from scipy.special import log_ndtr

from anomaly.baseline import ewma_with_prior, lagged_ewma
from anomaly.limits import hysteresis, run_start
from anomaly.state import StreamingDetector
from anomaly.validation import (
    as_block,
    as_times,
    check_at_least,
    check_positive,
    halflife_alpha,
    halflife_decay,
)

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
        check_at_least(channels, 0, name="channels")
        self.alpha_short = halflife_alpha(short, name="short")
        self.alpha_long = halflife_alpha(long, name="long")
        check_at_least(warmup, 1, name="warmup")
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


#: Score levels at which :class:`Recurrence` counts a channel's excursions.
RECURRENCE_LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: An excursion longer than this many times the mean length of the routine ones is news.
RECURRENCE_LONGER = 2.0


class Recurrence(StreamingDetector):
    """Routine excursions: a calibrated score capped below the lowest level the channel has
    already reached in ``count`` separate, finished excursions within recent memory.

    A channel whose load spikes to 95 % every few hours, or whose disk writes burst at every
    backup, is surprising the first time; the fifth such burst in a week is how the channel
    works, and a persisting condition is one excursion however long it lasts. Per channel and
    level of :data:`RECURRENCE_LEVELS` an excursion starts when the score reaches the level and
    ends when it falls `gap` below it (NaN keeps the state); it counts once it has ended, if
    it lasted at least `min_duration_s` (the bank passes its open hold: an excursion that could
    have opened an alert; a lone wild sample never could). The decayed number of counted
    excursions (half-life `halflife` samples of the stream, so memory is bounded and a pattern
    that stops recurring becomes news again) decides the cap. The current excursion never
    counts against itself; a routine one is capped just below the lowest routine level. One
    that reaches a level no earlier excursion reached as often keeps its score, and so does one
    that lasts longer than :data:`RECURRENCE_LONGER` times the mean length of the counted ones
    at its level (a fault that persists is not a routine burst, however high the bursts go).

    Parameters
    ----------
    channels : int
        Number of channels.
    count : float
        Counted excursions that make a level routine (each weighs its decay, the sum is
        rounded to the nearest whole).
    halflife : float
        Half-life, in samples of the stream, of the excursion counts.
    gap : float
        How far below a level the score must fall to end an excursion.
    min_duration_s : float
        How long (first to last sample) an excursion must last to count.

    Examples
    --------
    >>> spikes = np.zeros((1, 60))
    >>> spikes[0, 5::10] = 0.7                              # the same burst every 10 samples
    >>> spikes[0, 55] = 0.95                                # then a bigger one
    >>> rc = Recurrence(1, count=2, halflife=1000)
    >>> out = rc.update(np.arange(60, dtype=np.int64), spikes)
    >>> (out[0, 5::10] >= 0.5).tolist()                     # news twice, then routine
    [True, True, False, False, False, True]
    >>> float(out[0, 55])                                   # higher than the routine ones
    0.95
    >>> brief = Recurrence(1, count=2, halflife=1000, min_duration_s=1e-6)
    >>> out = brief.update(np.arange(60, dtype=np.int64) * 1_000_000, spikes)
    >>> bool((out[0, 5::10] >= 0.5).all())                  # one-sample bursts never count
    True
    """

    _state_names: ClassVar[tuple[str, ...]] = ("counts", "lengths", "on", "since", "last_t")
    counts: NDArray[Any]
    lengths: NDArray[Any]
    on: NDArray[Any]
    since: NDArray[Any]
    last_t: NDArray[Any]

    def __init__(self, channels: int = 0, *, count: float = 3.0, halflife: float = 2000.0,
                 gap: float = 0.2, min_duration_s: float = 0.0) -> None:
        check_at_least(channels, 0, name="channels")
        self.count = check_positive(count, name="count")
        self.decay = halflife_decay(halflife, name="halflife")
        self.gap = check_positive(gap, name="gap")
        if not min_duration_s >= 0:
            raise ValueError(f"`min_duration_s` must be >= 0, got {min_duration_s}")
        self.min_us = int(round(min_duration_s * 1e6))
        self.levels = np.asarray(RECURRENCE_LEVELS, dtype=np.float64)
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k = len(RECURRENCE_LEVELS)
        return {"counts": np.zeros((n, k)), "lengths": np.zeros((n, k)),
                "on": np.zeros((n, k), bool),
                "since": np.zeros((n, k), np.int64), "last_t": np.zeros(n, np.int64)}

    def update(self, times: ArrayLike, score: ArrayLike) -> NDArray[np.float64]:
        """Cap a block of scores (channels, T) in [0, 1] (NaN = none, passed through)."""
        s = as_block(score, name="score", channels=self.channels)
        t = as_times(times, name="times", length=s.shape[1])
        if s.shape[1] == 0:
            return s.copy()
        out = s.copy()
        # Only channels in an excursion or reaching the lowest level do any work; the others
        # (a healthy fleet: nearly all) just age their counts.
        with np.errstate(invalid="ignore"):
            busy = np.flatnonzero((s >= self.levels[0]).any(axis=1) | self.on.any(axis=1))
        idle = np.ones(self.channels, bool)
        idle[busy] = False
        age = self.decay ** s.shape[1]
        self.counts[idle] *= age
        self.lengths[idle] *= age
        if busy.size:
            out[busy] = self._cap(t, s[busy], busy)
        self.last_t[:] = t[-1]
        return out

    def _cap(self, t: NDArray[np.int64], s: NDArray[np.float64],
             rows: NDArray[np.intp]) -> NDArray[np.float64]:
        lowest = np.full(s.shape, np.inf)       # the lowest routine level so far
        own = np.zeros(s.shape, bool)           # is the sample's own level routine
        d = self.decay
        # Time of the sample before each one (the previous block's last for the first).
        t_prev = np.concatenate([self.last_t[rows, None],
                                 np.broadcast_to(t[None, :-1], (s.shape[0], t.size - 1))],
                                axis=1)
        with np.errstate(invalid="ignore"):
            # One pass per level (a handful, ascending), each over every channel at once.
            for b, level in enumerate(self.levels):
                prev, since = self.on[rows, b], self.since[rows, b]
                on = hysteresis(s >= level, s < level - self.gap, prev)
                start = run_start(on, t, prev, since)
                was_on = np.concatenate([prev[:, None], on[:, :-1]], axis=1)
                began = np.concatenate([since[:, None], start[:, :-1]], axis=1)
                length = (t_prev - began).astype(np.float64)       # µs, first to last
                ended = was_on & ~on & (length >= self.min_us)
                n, zf = lfilter([1.0], [1.0, -d], ended.astype(np.float64), axis=-1,
                                zi=(d * self.counts[rows, b])[:, None])
                total, zl = lfilter([1.0], [1.0, -d], np.where(ended, length, 0.0), axis=-1,
                                    zi=(d * self.lengths[rows, b])[:, None])
                self.on[rows, b], self.since[rows, b] = on[:, -1], start[:, -1]
                self.counts[rows, b], self.lengths[rows, b] = zf[:, 0] / d, zl[:, 0] / d
                routine = n >= self.count - 0.5         # decayed count, to the nearest whole
                lowest = np.where(routine & np.isinf(lowest), level, lowest)
                usual = (t[None, :] - start) <= RECURRENCE_LONGER * total / np.maximum(n, 1e-12)
                own = np.where(s >= level, routine & usual, own)
            return np.where(own, np.nextafter(lowest, 0.0), s)
