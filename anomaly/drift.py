"""Two-sided CUSUM for slow degradation (drift away from a healthy reference level).

The reference mean and standard deviation of each channel are learned from its first ``warmup``
valid samples (or set with :meth:`Cusum.fit` from a known healthy period) and then frozen, so a
slow drift accumulates instead of being absorbed. The recursion ``S = max(0, S + z - k)`` is solved
in closed form with a cumulative sum and a running minimum, so a block is processed at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_channel_param, as_times, check_at_least, check_positive

# Samples per chunk of rows (256 KiB of float64): the few temporaries of a chunk stay in cache
# (L2/L3) between passes; measured best among 8-64 Ki on this machine.
_CHUNK_SAMPLES = 32_768


def cusum_path(
    increments: NDArray[np.float64], start: NDArray[np.float64],
    out: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Solve ``S[t] = max(0, S[t-1] + increments[t])`` along the last axis, ``S[-1] = start``.

    `out` (may be `increments` itself) receives the result instead of a new array.

    Examples
    --------
    >>> cusum_path(np.array([[1.0, -3.0, 2.0, 0.5]]), np.array([1.0]))
    array([[2. , 0. , 2. , 2.5]])
    """
    c = np.cumsum(increments, axis=-1, out=out)
    floor = np.minimum.accumulate(c, axis=-1)
    np.minimum(floor, -start[..., None], out=floor)
    return np.asarray(np.subtract(c, floor, out=c), dtype=np.float64)


@dataclass(frozen=True)
class CusumResult:
    """``score`` = max(upper, lower) / threshold (>= 1 means drift), NaN where not scored;
    ``direction`` is +1 for upward drift, -1 for downward, 0 otherwise."""

    score: NDArray[np.float64]
    direction: NDArray[np.int8]


class Cusum(StreamingDetector):
    """Two-sided CUSUM on the z-score against a frozen healthy reference.

    Parameters
    ----------
    channels : int
        Number of channels.
    k : float
        Allowance in reference standard deviations (half the shift to detect quickly).
    h : float
        Decision threshold in reference standard deviations.
    warmup : int
        Valid samples used to learn the reference when :meth:`fit` was not called.
    min_std : float or array (channels,)
        Floor for the reference standard deviation.
    z_clip : float
        Each sample's z-score is clipped to this before it is accumulated.

    Examples
    --------
    >>> det = Cusum(1, k=0.5, h=10, warmup=50)
    >>> rng = np.random.default_rng(42)
    >>> x = rng.normal(0, 1, (1, 300)) + np.r_[np.zeros(150), np.linspace(0, 3, 150)]
    >>> s = det.update(np.arange(300, dtype=np.int64), x).score
    >>> bool(np.nanmax(s[0, :150]) < 1), bool(s[0, -1] > 1)
    (True, True)
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "min_std", "count", "ref_sum", "ref_sumsq", "upper", "lower",
    )
    _param_names: ClassVar[tuple[str, ...]] = ("min_std",)
    min_std: NDArray[Any]
    count: NDArray[Any]
    ref_sum: NDArray[Any]
    ref_sumsq: NDArray[Any]
    upper: NDArray[Any]
    lower: NDArray[Any]

    def __init__(
        self,
        channels: int = 0,
        *,
        k: float = 0.5,
        h: float = 8.0,
        warmup: int = 100,
        min_std: ArrayLike = 1e-9,
        z_clip: float = np.inf,
    ) -> None:
        check_at_least(channels, 0, name="channels")
        if not k >= 0:
            raise ValueError(f"`k` must be >= 0, got {k}")
        self.k = float(k)
        self.h = check_positive(h, name="h")
        check_at_least(warmup, 2, name="warmup")
        self.warmup = int(warmup)
        self.z_clip = float(z_clip)
        if not self.z_clip > self.k:
            raise ValueError(f"`z_clip` must be > `k`, got {z_clip}")
        state = self._initial_state(channels)
        state["min_std"] = as_channel_param(min_std, name="min_std", channels=channels)
        self._set_state(state)

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {
            "min_std": np.full(n, 1e-9),
            "count": np.zeros(n, np.int64),
            "ref_sum": np.zeros(n),
            "ref_sumsq": np.zeros(n),
            "upper": np.zeros(n),
            "lower": np.zeros(n),
        }

    def fit(self, healthy: ArrayLike) -> None:
        """Set the reference from a healthy block (channels, T) and reset the sums."""
        x = as_block(healthy, name="healthy", channels=self.channels)
        n = np.sum(~np.isnan(x), axis=1)
        if bool(np.any(n < 2)):
            raise ValueError("`healthy` needs at least 2 valid samples per channel")
        mean = np.nanmean(x, axis=1)
        # Scale the sums to `warmup` samples so update() sees a finished reference.
        self.ref_sum = mean * self.warmup
        self.ref_sumsq = (np.nanvar(x, axis=1) + mean**2) * self.warmup
        self.count = np.full(self.channels, self.warmup, np.int64)
        self.upper = np.zeros(self.channels)
        self.lower = np.zeros(self.channels)

    def update(self, times: ArrayLike, values: ArrayLike) -> CusumResult:
        """Process one block. `times`: int64 µs, shape (T,); `values`: shape (channels, T)."""
        x = as_block(values, name="values", channels=self.channels)
        as_times(times, name="times", length=x.shape[1])
        n_c, n_t = x.shape
        score = np.empty((n_c, n_t))
        direction = np.empty((n_c, n_t), np.int8)
        if n_t == 0:
            return CusumResult(score=score, direction=direction)
        # A scored sample is always measured against the *finished* reference (every warm-up
        # sample comes before it), so channels still learning their reference only need the
        # block's sums over their warm-up samples, not running sums; after that every channel
        # goes through the same kernel, whose reference is one constant per row. Rows are
        # processed in chunks small enough that a chunk's temporaries stay in the CPU cache.
        cold = np.flatnonzero(self.count < self.warmup)
        step = max(1, _CHUNK_SAMPLES // n_t)
        if cold.size:
            xc = x[cold]
            valid = ~np.isnan(xc)
            if valid.all():
                idx = self.count[cold, None] + np.arange(1, n_t + 1)
            else:
                idx = self.count[cold, None] + np.cumsum(valid, axis=1)
            learn = valid & (idx <= self.warmup)
            xl = np.where(learn, xc, 0.0)
            self.ref_sum[cold] += xl.sum(axis=1)
            self.ref_sumsq[cold] += np.einsum("ij,ij->i", xl, xl)
            scored = valid & (idx > self.warmup)
            self.count[cold] = idx[:, -1]
            for a in range(0, cold.size, step):
                rows = cold[a:a + step]
                if scored[a:a + step].any():
                    self._kernel(xc[a:a + step], rows, scored[a:a + step], score, direction)
                else:                       # still learning: nothing scored, sums unchanged
                    score[rows], direction[rows] = np.nan, 0
        n_warm = n_c - cold.size
        warm: NDArray[np.intp] | None = None
        if cold.size:
            warm = np.setdiff1d(np.arange(n_c), cold, assume_unique=True)
        for a in range(0, n_warm, step):
            sel: slice | NDArray[np.intp] = (slice(a, min(a + step, n_warm)) if warm is None
                                             else warm[a:a + step])
            self._kernel(x[sel], sel, None, score, direction)
        return CusumResult(score=score, direction=direction)

    def _kernel(self, x: NDArray[np.float64], rows: slice | NDArray[np.intp],
                scored: NDArray[np.bool_] | None, score: NDArray[np.float64],
                direction: NDArray[np.int8]) -> None:
        """Both CUSUM paths of rows `rows` (block `x`) against their finished reference.

        `scored` marks the samples that count (None: every valid one; then the sample count
        is updated here too). The upper path is :func:`cusum_path` in place; the lower one uses
        ``-z - k = -(z + k)``: with ``D = cumsum(z + k)`` the Lindley form gives
        ``lower = max(running max of D, lower_before) - D``, the same numbers as running
        :func:`cusum_path` on the negated increments, without negating."""
        n = self.warmup
        mean = self.ref_sum[rows] / n
        std = np.maximum(np.sqrt(np.maximum(self.ref_sumsq[rows] / n - mean**2, 0.0)),
                         self.min_std[rows])
        z = np.subtract(x, mean[:, None])
        np.divide(z, std[:, None], out=z)
        # Clipping bounds how fast the sums grow, so they also fall back in bounded time after
        # a large excursion ends (with z_clip = 2k, no longer than the excursion lasted).
        np.clip(z, -self.z_clip, self.z_clip, out=z)
        skip = None
        if scored is not None:
            skip = ~scored
        elif np.isnan(z).any():
            skip = np.isnan(x)
        if skip is not None:
            np.copyto(z, self.k, where=skip)         # increments z - k = 0 where not scored
        up = np.subtract(z, self.k)
        cusum_path(up, self.upper[rows], out=up)
        if skip is not None:
            np.copyto(z, -self.k, where=skip)        # increments -z - k = 0 where not scored
        lo = np.add(z, self.k, out=z)
        np.cumsum(lo, axis=1, out=lo)
        ceil = np.maximum.accumulate(lo, axis=1)
        np.maximum(ceil, self.lower[rows][:, None], out=ceil)
        np.subtract(ceil, lo, out=lo)
        self.upper[rows], self.lower[rows] = up[:, -1], lo[:, -1]
        # A slice of rows is a view: write the outputs in place instead of copying them in.
        s = np.maximum(up, lo, out=score[rows] if isinstance(rows, slice) else ceil)
        s /= self.h
        d = np.subtract(np.greater(up, lo).view(np.int8), np.less(up, lo).view(np.int8),
                        out=direction[rows] if isinstance(rows, slice) else None)
        if skip is not None:
            s[skip] = np.nan
            d[skip] = 0
        if scored is None:
            self.count[rows] += x.shape[1] if skip is None else x.shape[1] - skip.sum(axis=1)
        if not isinstance(rows, slice):
            score[rows], direction[rows] = s, d
