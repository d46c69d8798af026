"""Adaptive baseline: EWMA mean and variance per channel (optionally per time-of-day slot).

The score is the signed z-score of each sample against the baseline *before* that sample, so it is
causal. Missing samples (NaN) carry weight 0: they neither move the baseline nor get a score. The
recursions run through :func:`scipy.signal.lfilter` with the filter state carried between blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import lfilter

from anomaly.state import StreamingDetector
from anomaly.validation import (
    as_block,
    as_channel_param,
    as_times,
    check_at_least,
    halflife_alpha,
)

_US_PER_DAY = 86_400 * 1_000_000
# Samples per chunk of rows (256 KiB of float64): the few temporaries of a chunk stay in cache
# (L2/L3) between passes; measured best among 8-64 Ki on this machine.
_CHUNK_SAMPLES = 32_768


def ewma_with_prior(
    x: NDArray[np.float64], alpha: float, prior: NDArray[np.float64]
) -> NDArray[np.float64]:
    """EWMA along the last axis, ``y[t] = alpha*x[t] + (1-alpha)*y[t-1]``, with ``y[-1] = prior``.

    Examples
    --------
    >>> ewma_with_prior(np.array([[1.0, 1.0, 1.0]]), 0.5, np.array([0.0]))
    array([[0.5  , 0.75 , 0.875]])
    """
    zi = ((1.0 - alpha) * prior)[..., None]
    y, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], x, axis=-1, zi=zi)
    return np.asarray(y, dtype=np.float64)


def lagged_ewma(
    x: NDArray[np.float64], alpha: float, prior: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The EWMA of :func:`ewma_with_prior` *before* each sample, and its value after the last.

    ``out[..., 0] = prior`` and ``out[..., t] = y[t-1]``: one filter pass with a one-sample
    delay (numerator ``[0, alpha]``) instead of filtering and then shifting a copy.

    Examples
    --------
    >>> lagged_ewma(np.array([[1.0, 1.0, 1.0]]), 0.5, np.array([0.0]))
    (array([[0.  , 0.5 , 0.75]]), array([0.875]))
    """
    y, zf = lfilter([0.0, alpha], [1.0, -(1.0 - alpha)], x, axis=-1, zi=prior[..., None])
    return np.asarray(y, dtype=np.float64), np.asarray(zf[..., 0], dtype=np.float64)


def _weight_before(decay: NDArray[np.float64], prior: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weight sum before each sample of a gap-free block, ``1 - decay[t] * (1 - prior)``, with
    ``decay[t] = (1-alpha)**t``. Rows that share their prior (every channel with the same
    history of valid samples) share one row, broadcast instead of materialised."""
    if prior.size and prior.min() == prior.max():
        row = np.subtract(1.0, decay * (1.0 - prior[0]))
        row[0] = prior[0]
        return np.asarray(row[None, :], dtype=np.float64)
    out = np.multiply(decay[None, :], (1.0 - prior)[:, None])
    np.subtract(1.0, out, out=out)
    out[:, 0] = prior
    return out


@dataclass(frozen=True)
class BaselineResult:
    """Per-sample z-score and the baseline (mean, std) it was measured against."""

    z: NDArray[np.float64]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]


class EwmaBaseline(StreamingDetector):
    """Z-score against an exponentially weighted mean/variance learned online.

    Parameters
    ----------
    channels : int
        Number of channels.
    halflife : float
        Half-life of the baseline memory in (valid) samples of the same slot.
    min_std : float or array (channels,)
        Floor for the baseline standard deviation (sensor resolution), so a flat signal does not
        give infinite scores for the smallest step.
    warmup : int
        Samples a slot must have seen before it emits scores (NaN before).
    slots_per_day : int
        1 for a plain baseline; e.g. 24 keeps a separate baseline for every hour of the day so a
        daily cycle is not reported as an anomaly.
    weekend_split : bool
        Saturdays and Sundays (UTC) get time-of-day slots of their own (slot numbers
        ``slots_per_day`` on), so a working week's rhythm is learned apart from the weekend's.
    var_halflife : float, optional
        Half-life of the variance memory (default: `halflife`). A variance that forgets more
        slowly than the mean keeps a slow ramp visible: with one half-life for both, a linear
        ramp's lag behind the mean and the spread learned from that lag grow together and the
        z-score settles near 1.
    var_clip : float
        Deviations entering the variance are clipped to this many standard deviations of the
        spread known at the start of the block (inf: no clipping), so an excursion cannot
        teach the baseline that it is normal within a few minutes.

    Examples
    --------
    >>> det = EwmaBaseline(1, halflife=10, warmup=5)
    >>> x = np.array([[10.0, 10.2, 9.8, 10.1, 9.9, 10.0, 20.0]])
    >>> z = det.update(np.arange(7, dtype=np.int64), x).z
    >>> bool(np.isnan(z[0, 4])), bool(z[0, 6] > 10)
    (True, True)
    """

    _state_names: ClassVar[tuple[str, ...]] = ("min_std", "sum_wx", "sum_w", "sum_wq", "count",
                                               "sum_wv")
    _param_names: ClassVar[tuple[str, ...]] = ("min_std",)
    min_std: NDArray[Any]
    sum_wx: NDArray[Any]
    sum_w: NDArray[Any]
    sum_wq: NDArray[Any]
    count: NDArray[Any]
    sum_wv: NDArray[Any]

    def __init__(
        self,
        channels: int = 0,
        *,
        halflife: float = 60.0,
        min_std: ArrayLike = 1e-9,
        warmup: int = 30,
        slots_per_day: int = 1,
        var_halflife: float | None = None,
        var_clip: float = np.inf,
        weekend_split: bool = False,
    ) -> None:
        check_at_least(channels, 0, name="channels")
        self.alpha = halflife_alpha(halflife, name="halflife")
        vh = halflife if var_halflife is None else var_halflife
        self.var_alpha = halflife_alpha(vh, name="var_halflife")
        if not var_clip > 0:
            raise ValueError(f"`var_clip` must be > 0, got {var_clip}")
        self.var_clip = float(var_clip)
        check_at_least(warmup, 1, name="warmup")
        if slots_per_day < 1 or _US_PER_DAY % slots_per_day:
            raise ValueError(f"`slots_per_day` must divide a day evenly, got {slots_per_day}")
        self.warmup = int(warmup)
        self.slots_per_day = int(slots_per_day)
        self.weekend_split = bool(weekend_split)
        state = self._initial_state(channels)
        state["min_std"] = as_channel_param(min_std, name="min_std", channels=channels)
        self._set_state(state)

    @property
    def slots(self) -> int:
        """Slots per channel: the times of day, twice over with :attr:`weekend_split`."""
        return self.slots_per_day * (2 if self.weekend_split else 1)

    def slot_of(self, times: NDArray[np.int64]) -> NDArray[np.int64]:
        """The slot of each time (µs since the epoch, UTC).

        >>> b = EwmaBaseline(1, slots_per_day=24, weekend_split=True)
        >>> day = 86_400 * 10**6        # 1970-01-01 was a Thursday: the 3rd day on is a Sunday
        >>> b.slot_of(np.array([0, 3 * day + day // 2, 4 * day + day // 2])).tolist()
        [0, 36, 12]
        """
        slot = (times % _US_PER_DAY) // (_US_PER_DAY // self.slots_per_day)
        if self.weekend_split:
            weekday = (times // _US_PER_DAY + 3) % 7          # Monday 0
            slot = slot + self.slots_per_day * (weekday >= 5)
        return np.asarray(slot, dtype=np.int64)

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k = self.slots
        return {
            "min_std": np.full(n, 1e-9),
            "sum_wx": np.zeros((n, k)),
            "sum_w": np.zeros((n, k)),
            "sum_wq": np.zeros((n, k)),
            "count": np.zeros((n, k), np.int64),
            "sum_wv": np.zeros((n, k)),
        }

    def load_state(self, state: dict[str, NDArray[Any]]) -> None:
        """As the base class; a checkpoint from before ``sum_wv`` existed (one half-life for
        mean and variance) gets it from ``sum_w``."""
        if "sum_wv" not in state and "sum_w" in state:
            state = {**state, "sum_wv": np.asarray(state["sum_w"])}
        super().load_state(state)

    def _var_limit(self, s: int) -> NDArray[np.float64]:
        """Largest squared deviation the variance takes in, per channel, for this block."""
        if np.isinf(self.var_clip):
            return np.full(self.channels, np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(self.sum_wq[:, s] / self.sum_wv[:, s])
        std = np.maximum(np.nan_to_num(std), self.min_std)
        return np.where(self.count[:, s] >= self.warmup, (self.var_clip * std) ** 2, np.inf)

    def _run_slot(
        self, x: NDArray[np.float64], s: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Update slot `s` with block `x` (channels, n); return z, mean, std before each sample.

        Channels without a gap in the block (nearly all, most of the time) take the gap-free
        path; only the rows with gaps pay for the weights."""
        gap = np.isnan(x).any(axis=1)
        if not gap.any():
            return self._run_slot_dense(x, s)
        if gap.all():
            return self._run_slot_gaps(x, s, slice(None))
        z, mean, std = self._run_slot_dense(x, s, np.flatnonzero(~gap))
        rows = np.flatnonzero(gap)
        z[rows], mean[rows], std[rows] = self._run_slot_gaps(x[rows], s, rows)
        return z, mean, std

    def _run_slot_gaps(
        self, x: NDArray[np.float64], s: int, rows: slice | NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`_run_slot` for channel rows `rows` whose block `x` may have gaps (NaN
        samples carry weight 0)."""
        a = self.alpha
        valid = ~np.isnan(x)
        w = valid.astype(np.float64)
        xw = np.where(valid, x, 0.0)
        sum_w, sum_wx = self.sum_w[rows, s], self.sum_wx[rows, s]
        sum_wv, sum_wq = self.sum_wv[rows, s], self.sum_wq[rows, s]
        sw = ewma_with_prior(w, a, sum_w)
        swx = ewma_with_prior(w * xw, a, sum_wx)
        prev_sw = np.concatenate([sum_w[:, None], sw[:, :-1]], axis=1)
        prev_swx = np.concatenate([sum_wx[:, None], swx[:, :-1]], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = prev_swx / prev_sw
        dev2 = np.where(valid & (prev_sw > 0), (xw - np.nan_to_num(mean)) ** 2, 0.0)
        dev2 = np.minimum(dev2, self._var_limit(s)[rows, None])
        av = self.var_alpha
        swv = sw if av == a else ewma_with_prior(w, av, sum_wv)
        prev_swv = np.concatenate([sum_wv[:, None], swv[:, :-1]], axis=1)
        swq = ewma_with_prior(w * dev2, av, sum_wq)
        prev_swq = np.concatenate([sum_wq[:, None], swq[:, :-1]], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = prev_swq / prev_swv
        std = np.maximum(np.sqrt(var), self.min_std[rows, None])
        seen = self.count[rows, s, None] + np.cumsum(valid, axis=1) - valid
        z = np.where(valid & (seen >= self.warmup), (x - mean) / std, np.nan)
        self.sum_w[rows, s], self.sum_wx[rows, s] = sw[:, -1], swx[:, -1]
        self.sum_wq[rows, s], self.sum_wv[rows, s] = swq[:, -1], swv[:, -1]
        self.count[rows, s] += valid.sum(axis=1)
        return z, mean, std

    def _run_slot_dense(
        self, x: NDArray[np.float64], s: int, rows: NDArray[np.intp] | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`_run_slot` for the rows `rows` (None: all) of `x` that have no gaps: the same
        numbers with fewer array passes. Returns full-size arrays; other rows are left unset.

        The weight sum has a closed form; the sums *before* each sample come straight out of
        :func:`lagged_ewma` (no shifted copies); and channels go through in chunks of rows small
        enough that a chunk's temporaries stay in the CPU cache between passes."""
        n_c, n = x.shape
        z, mean, std = np.empty((n_c, n)), np.empty((n_c, n)), np.empty((n_c, n))
        # (1-a)**t for t = 0..n-1: the weight sum before sample t is 1 - (1-a)**t * (1 - w0).
        decay = np.power(1.0 - self.alpha, np.arange(n), dtype=np.float64)
        decay_v = decay if self.var_alpha == self.alpha else (
            np.power(1.0 - self.var_alpha, np.arange(n), dtype=np.float64))
        limit = None if np.isinf(self.var_clip) else self._var_limit(s)
        step = max(1, _CHUNK_SAMPLES // n)
        if rows is None:
            for r0 in range(0, n_c, step):
                r = slice(r0, min(r0 + step, n_c))
                self._dense_chunk(x[r], s, r, decay, decay_v, limit, z[r], mean[r], std[r])
            return z, mean, std
        for r0 in range(0, rows.size, step):
            # Scattered rows: gather a chunk, work on it in cache, scatter the results back.
            idx = rows[r0:r0 + step]
            zc, mc, sc = (np.empty((idx.size, n)) for _ in range(3))
            self._dense_chunk(x[idx], s, idx, decay, decay_v, limit, zc, mc, sc)
            z[idx], mean[idx], std[idx] = zc, mc, sc
        return z, mean, std

    def _dense_chunk(
        self, x: NDArray[np.float64], s: int, r: slice | NDArray[np.intp],
        decay: NDArray[np.float64],
        decay_v: NDArray[np.float64], limit: NDArray[np.float64] | None,
        z: NDArray[np.float64], mean: NDArray[np.float64], std: NDArray[np.float64],
    ) -> None:
        """Channel rows `r` of :meth:`_run_slot_dense`; writes into `z`, `mean`, `std`."""
        a, av = self.alpha, self.var_alpha
        n = x.shape[1]
        prior_w = self.sum_w[r, s]
        prev_sw = _weight_before(decay, prior_w)
        prev_swx, last_wx = lagged_ewma(x, a, self.sum_wx[r, s])
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(prev_swx, prev_sw, out=mean)
        d = np.subtract(x, mean, out=prev_swx)
        dev2 = np.multiply(d, d)
        first = np.flatnonzero(prior_w <= 0)
        if first.size:
            dev2[first, 0] = 0.0          # no baseline before a channel's very first sample
        if limit is not None:
            np.minimum(dev2, limit[r, None], out=dev2)
        if av == a:
            prev_swv = prev_sw
            last_wv = 1.0 - (1.0 - a) ** n * (1.0 - prior_w)
        else:
            prior_wv = self.sum_wv[r, s]
            prev_swv = _weight_before(decay_v, prior_wv)
            last_wv = 1.0 - (1.0 - av) ** n * (1.0 - prior_wv)
        prev_swq, last_wq = lagged_ewma(dev2, av, self.sum_wq[r, s])
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(prev_swq, prev_swv, out=std)
        np.sqrt(std, out=std)
        np.maximum(std, self.min_std[r, None], out=std)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(d, std, out=z)
        count = self.count[r, s]
        young = np.flatnonzero(count < self.warmup)
        if young.size:
            k = int(min(n, self.warmup))
            seen = count[young, None] + np.arange(k)[None, :]
            z[young[:, None], np.arange(k)[None, :]] = np.where(
                seen >= self.warmup, z[young, :k], np.nan)
        self.sum_w[r, s] = 1.0 - (1.0 - a) ** n * (1.0 - prior_w)
        self.sum_wv[r, s] = last_wv
        self.sum_wx[r, s], self.sum_wq[r, s] = last_wx, last_wq
        self.count[r, s] += n

    def learned(self, slot: int = 0) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Per channel, what has been learned so far in time-of-day `slot`, as the next
        sample would be judged: its mean and standard deviation stacked on axis 0 (NaN mean
        where nothing was learned), and whether the warm-up is over.

        >>> b = EwmaBaseline(1, halflife=100, warmup=3)
        >>> _ = b.update(np.arange(4, dtype=np.int64), [[1.0, 3.0, 1.0, 3.0]])
        >>> (mean, std), known = b.learned()
        >>> bool(1.0 < mean[0] < 3.0), bool(std[0] > 0), known.tolist()
        (True, True, [True])
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sum_wx[:, slot] / self.sum_w[:, slot]
            std = np.sqrt(self.sum_wq[:, slot] / self.sum_wv[:, slot])
        std = np.maximum(np.nan_to_num(std), self.min_std)
        return np.stack([mean, std]), self.count[:, slot] >= self.warmup

    def update(self, times: ArrayLike, values: ArrayLike) -> BaselineResult:
        """Process one block. `times`: int64 µs, shape (T,); `values`: shape (channels, T)."""
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        if x.shape[1] == 0:
            return BaselineResult(x.copy(), x.copy(), x.copy())
        slot = self.slot_of(t)
        if slot[0] == slot[-1] and (self.slots == 1 or bool(np.all(slot == slot[0]))):
            return BaselineResult(*self._run_slot(x, int(slot[0])))
        z = np.full(x.shape, np.nan)
        mean = np.full(x.shape, np.nan)
        std = np.full(x.shape, np.nan)
        # One lfilter pass per time-of-day slot present in the block (at most slots_per_day),
        # never a loop over channels or samples.
        for s in np.unique(slot):
            cols = np.flatnonzero(slot == s)
            z[:, cols], mean[:, cols], std[:, cols] = self._run_slot(x[:, cols], int(s))
        return BaselineResult(z, mean, std)
