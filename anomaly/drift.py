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
from anomaly.validation import as_block, as_channel_param, as_times, check_positive


def cusum_path(increments: NDArray[np.float64], start: NDArray[np.float64]) -> NDArray[np.float64]:
    """Solve ``S[t] = max(0, S[t-1] + increments[t])`` along the last axis, ``S[-1] = start``.

    Examples
    --------
    >>> cusum_path(np.array([[1.0, -3.0, 2.0, 0.5]]), np.array([1.0]))
    array([[2. , 0. , 2. , 2.5]])
    """
    c = np.cumsum(increments, axis=-1)
    floor = np.minimum(np.minimum.accumulate(c, axis=-1), -start[..., None])
    return np.asarray(c - floor, dtype=np.float64)


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
        if channels < 0:
            raise ValueError(f"`channels` must be >= 0, got {channels}")
        if not k >= 0:
            raise ValueError(f"`k` must be >= 0, got {k}")
        self.k = float(k)
        self.h = check_positive(h, name="h")
        if warmup < 2:
            raise ValueError(f"`warmup` must be >= 2, got {warmup}")
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
        valid = ~np.isnan(x)
        xv = np.where(valid, x, 0.0)
        idx = self.count[:, None] + np.cumsum(valid, axis=1)
        warm = valid & (idx <= self.warmup)
        s1 = self.ref_sum[:, None] + np.cumsum(np.where(warm, xv, 0.0), axis=1)
        s2 = self.ref_sumsq[:, None] + np.cumsum(np.where(warm, xv * xv, 0.0), axis=1)
        scored = valid & (idx > self.warmup)
        mean = s1 / self.warmup
        std = np.maximum(np.sqrt(np.maximum(s2 / self.warmup - mean**2, 0.0)),
                         self.min_std[:, None])
        # Clipping bounds how fast the sums grow, so they also fall back in bounded time after
        # a large excursion ends (with z_clip = 2k, no longer than the excursion lasted).
        z = np.clip(np.where(scored, (xv - mean) / std, 0.0), -self.z_clip, self.z_clip)
        up = cusum_path(np.where(scored, z - self.k, 0.0), self.upper)
        lo = cusum_path(np.where(scored, -z - self.k, 0.0), self.lower)
        if x.shape[1]:
            self.ref_sum, self.ref_sumsq = s1[:, -1].copy(), s2[:, -1].copy()
            self.upper, self.lower = up[:, -1].copy(), lo[:, -1].copy()
            self.count = idx[:, -1].copy()
        score = np.where(scored, np.maximum(up, lo) / self.h, np.nan)
        direction = np.where(scored & (up > lo), 1, np.where(scored & (lo > up), -1, 0))
        return CusumResult(score=score, direction=direction.astype(np.int8))
