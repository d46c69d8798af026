"""Multivariate detectors per asset: Hotelling T² / SPE against a PCA baseline, and a Hotelling T²
of causally smoothed inputs against a healthy period with a hysteresis alarm.

Both work on fleets of assets that share a channel layout: blocks are shaped
``(assets, k, time)`` and every model array carries the asset on its first axis, so one batched
``einsum`` scores the whole fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from anomaly.baseline import ewma_with_prior
from anomaly.limits import hysteresis
from anomaly.state import StreamingDetector
from anomaly.validation import as_times, check_positive


def _as_fleet_block(values: ArrayLike, *, name: str, k: int | None = None) -> NDArray[np.float64]:
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"`{name}` must be 3-D (assets, channels, time), got shape {arr.shape}")
    if k is not None and arr.shape[1] != k:
        raise ValueError(f"`{name}` must have {k} channels per asset, got {arr.shape[1]}")
    return np.asarray(arr, dtype=np.float64)


def _standardise_fit(
    x: NDArray[np.float64], rel_floor: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n_valid = np.sum(~np.isnan(x), axis=2)
    if bool(np.any(n_valid < 3)):
        raise ValueError("`healthy` needs at least 3 valid samples per channel")
    mean = np.nanmean(x, axis=2)
    # The relative floor stands for sensor resolution: a change smaller than rel_floor of the
    # operating level is not treated as significant, however quiet the healthy period was.
    scale = np.maximum(np.nanstd(x, axis=2), rel_floor * np.abs(mean))
    return mean, np.maximum(scale, 1e-12)


@dataclass(frozen=True)
class MultivariateResult:
    """Per asset and sample: statistics divided by their control limit (> 1 is out of control),
    and the per-channel contribution (assets, k, T) that explains them. NaN where any channel of
    the asset had no data."""

    t2: NDArray[np.float64]
    spe: NDArray[np.float64]
    contribution: NDArray[np.float64]


class PcaDetector(StreamingDetector):
    """Hotelling T² and SPE (Q) against a PCA model of a healthy period, per asset.

    Parameters
    ----------
    assets, k : int
        Number of assets and channels per asset.
    variance : float
        Fraction of the healthy variance the retained components explain.
    alpha : float
        False-alarm level of the control limits (F distribution for T², Box's
        chi-square approximation for SPE).
    smooth_halflife : float
        Half-life (samples) of a causal EWMA applied to the standardised inputs; 0 disables it.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> base = rng.normal(size=(1, 1, 600))
    >>> x = np.concatenate([base, base, base], axis=1) + 0.1 * rng.normal(size=(1, 3, 600))
    >>> det = PcaDetector(1, 3)
    >>> det.fit(x[:, :, :400])
    >>> x[0, 2, 500:] += 2.0      # breaks the correlation between channels
    >>> r = det.update(np.arange(600, dtype=np.int64), x)
    >>> bool(np.mean(r.spe[0, 400:500] > 1) < 0.1), bool(np.mean(r.spe[0, 500:] > 1) > 0.9)
    (True, True)
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "mean", "scale", "loadings", "inv_eig", "t2_limit", "spe_limit", "smooth",
    )
    mean: NDArray[Any]
    scale: NDArray[Any]
    loadings: NDArray[Any]
    inv_eig: NDArray[Any]
    t2_limit: NDArray[Any]
    spe_limit: NDArray[Any]
    smooth: NDArray[Any]

    def __init__(
        self,
        assets: int = 0,
        k: int = 1,
        *,
        variance: float = 0.9,
        alpha: float = 0.01,
        smooth_halflife: float = 0.0,
        rel_floor: float = 0.0,
    ) -> None:
        if assets < 0 or k < 1:
            raise ValueError(f"`assets` must be >= 0 and `k` >= 1, got {assets}, {k}")
        if not 0 < variance <= 1:
            raise ValueError(f"`variance` must be in (0, 1], got {variance}")
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must be in (0, 1), got {alpha}")
        self.k = int(k)
        self.variance = float(variance)
        self.alpha = float(alpha)
        self.rel_floor = float(rel_floor)
        self.smooth_alpha = (
            1.0 - 0.5 ** (1.0 / smooth_halflife) if smooth_halflife > 0 else 1.0
        )
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k = self.k
        return {
            "mean": np.zeros((n, k)),
            "scale": np.ones((n, k)),
            "loadings": np.zeros((n, k, k)),
            "inv_eig": np.zeros((n, k)),
            "t2_limit": np.full(n, np.inf),
            "spe_limit": np.full(n, np.inf),
            "smooth": np.full((n, k), np.nan),
        }

    def fit(self, healthy: ArrayLike) -> None:
        """Learn the PCA model of every asset from a healthy block (assets, k, T)."""
        x = _as_fleet_block(healthy, name="healthy", k=self.k)
        if x.shape[0] != self.channels:
            raise ValueError(f"`healthy` must have {self.channels} assets, got {x.shape[0]}")
        mean, scale = _standardise_fit(x, self.rel_floor)
        z = (x - mean[:, :, None]) / scale[:, :, None]
        z = self._smooth(z, prior=z[:, :, 0].copy())[0]
        z = z - np.nanmean(z, axis=2, keepdims=True)
        z = np.where(np.isnan(z), 0.0, z)
        n = x.shape[2]
        cov = np.einsum("aik,ajk->aij", z, z) / max(n - 1, 1)
        eig, vec = np.linalg.eigh(cov)
        eig, vec = eig[:, ::-1].clip(min=0.0), vec[:, :, ::-1]
        frac = np.cumsum(eig, axis=1) / np.maximum(eig.sum(axis=1, keepdims=True), 1e-300)
        r = np.minimum(np.sum(frac < self.variance, axis=1) + 1, self.k)
        keep = np.arange(self.k)[None, :] < r[:, None]
        self.loadings = np.where(keep[:, None, :], vec, 0.0)
        self.inv_eig = np.where(keep, 1.0 / np.maximum(eig, 1e-12), 0.0)
        self.t2_limit = r * (n - 1) * (n + 1) / (n * np.maximum(n - r, 1)) * stats.f.ppf(
            1 - self.alpha, r, np.maximum(n - r, 1))
        rest = np.where(keep, 0.0, eig)
        th1, th2 = rest.sum(axis=1), (rest**2).sum(axis=1)
        g = th2 / np.maximum(th1, 1e-300)
        dof = th1**2 / np.maximum(th2, 1e-300)
        self.spe_limit = np.where(
            th1 > 0, g * stats.chi2.ppf(1 - self.alpha, np.maximum(dof, 1e-3)), 1e-12)
        self.mean, self.scale = mean, scale
        self.smooth = np.full((self.channels, self.k), np.nan)

    def _smooth(
        self, z: NDArray[np.float64], prior: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.smooth_alpha >= 1.0 or z.shape[2] == 0:
            return z, z[:, :, -1] if z.shape[2] else prior
        prior = np.where(np.isnan(prior), z[:, :, 0], prior)
        zs = ewma_with_prior(z, self.smooth_alpha, prior)
        return zs, zs[:, :, -1]

    def update(self, times: ArrayLike, values: ArrayLike) -> MultivariateResult:
        """Process one block. `times`: int64 µs (T,); `values`: (assets, k, T)."""
        x = _as_fleet_block(values, name="values", k=self.k)
        if x.shape[0] != self.channels:
            raise ValueError(f"`values` must have {self.channels} assets, got {x.shape[0]}")
        as_times(times, name="times", length=x.shape[2])
        z = (x - self.mean[:, :, None]) / self.scale[:, :, None]
        z, last = self._smooth(z, self.smooth)
        if x.shape[2]:
            self.smooth = last.copy()
        scores = np.einsum("akr,akt->art", self.loadings, z)
        t2 = np.einsum("art,ar->at", scores**2, self.inv_eig)
        resid = z - np.einsum("akr,art->akt", self.loadings, scores)
        spe = np.sum(resid**2, axis=1)
        return MultivariateResult(
            t2=t2 / self.t2_limit[:, None], spe=spe / self.spe_limit[:, None],
            contribution=resid**2 / self.spe_limit[:, None, None],
        )


@dataclass(frozen=True)
class T2AlarmResult:
    """``score``: smoothed T² / threshold per asset and sample (NaN without data); ``alarm``: the
    hysteresis state (on above 1, off below ``clear``); ``deviation``: (assets, k, T) smoothed
    standardised deviation from the healthy centre, for evidence."""

    score: NDArray[np.float64]
    alarm: NDArray[np.bool_]
    deviation: NDArray[np.float64]


class SmoothedT2(StreamingDetector):
    """Hotelling T² of EWMA-smoothed, standardised channels against a healthy period.

    Smoothing first averages out the sample noise, so a small sustained shift of correlated
    channels (a valve closing a little: flow down, pressure and current barely moving) stands out
    while single noisy samples do not. The centre, covariance and threshold (the ``quantile`` of
    the healthy statistic times ``margin``) are frozen at :meth:`fit`, so a persisting fault is
    never learned away. The alarm trips above the threshold and clears below ``clear`` times it.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> x = rng.normal(size=(2, 3, 900))
    >>> x[1, 0, 600:] += 1.5
    >>> det = SmoothedT2(2, 3)
    >>> det.fit(x[:, :, :400])
    >>> r = det.update(np.arange(400, 900, dtype=np.int64), x[:, :, 400:])
    >>> bool(r.alarm[0].mean() < 0.05), bool(r.alarm[1, 220:].mean() > 0.9)
    (True, True)
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "mean", "scale", "centre", "inv_cov", "threshold", "smooth", "alarm_on",
    )
    mean: NDArray[Any]
    scale: NDArray[Any]
    centre: NDArray[Any]
    inv_cov: NDArray[Any]
    threshold: NDArray[Any]
    smooth: NDArray[Any]
    alarm_on: NDArray[Any]

    def __init__(
        self,
        assets: int = 0,
        k: int = 1,
        *,
        halflife: float = 5.0,
        quantile: float = 0.99,
        margin: float = 2.5,
        clear: float = 0.5,
        rel_floor: float = 1e-3,
        skip: int = 50,
    ) -> None:
        if assets < 0 or k < 1:
            raise ValueError(f"`assets` must be >= 0 and `k` >= 1, got {assets}, {k}")
        if not 0 < quantile < 1:
            raise ValueError(f"`quantile` must be in (0, 1), got {quantile}")
        if not 0 < clear <= 1:
            raise ValueError(f"`clear` must be in (0, 1], got {clear}")
        if skip < 0:
            raise ValueError(f"`skip` must be >= 0, got {skip}")
        self.k = int(k)
        self.alpha = 1.0 - 0.5 ** (1.0 / check_positive(halflife, name="halflife"))
        self.quantile = float(quantile)
        self.margin = check_positive(margin, name="margin")
        self.clear = float(clear)
        self.rel_floor = float(rel_floor)
        self.skip = int(skip)
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k = self.k
        return {
            "mean": np.zeros((n, k)),
            "scale": np.ones((n, k)),
            "centre": np.zeros((n, k)),
            "inv_cov": np.zeros((n, k, k)),
            "threshold": np.full(n, np.inf),
            "smooth": np.zeros((n, k)),
            "alarm_on": np.zeros(n, bool),
        }

    def _smooth(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Standardise and smooth; a missing sample holds the filter (NaN in, NaN out)."""
        z: NDArray[np.float64] = (x - self.mean[:, :, None]) / self.scale[:, :, None]
        if z.shape[2] == 0:
            return z
        valid = ~np.isnan(z)
        # Hold the previous smoothed value through gaps: feed the filter its own last output.
        filled = np.where(valid, z, np.nan)
        prev = np.concatenate([self.smooth[:, :, None], filled[:, :, :-1]], axis=2)
        idx = np.where(~np.isnan(prev), np.arange(prev.shape[2]), 0)
        held = np.take_along_axis(prev, np.maximum.accumulate(idx, axis=2), axis=2)
        step = np.where(valid, z, held)
        zs = ewma_with_prior(step, self.alpha, self.smooth)
        self.smooth = zs[:, :, -1].copy()
        return np.where(valid, zs, np.nan)

    def fit(self, healthy: ArrayLike) -> None:
        """Learn centre, covariance and threshold of every asset from a healthy block (a, k, T)."""
        x = _as_fleet_block(healthy, name="healthy", k=self.k)
        if x.shape[0] != self.channels:
            raise ValueError(f"`healthy` must have {self.channels} assets, got {x.shape[0]}")
        if x.shape[2] < self.skip + self.k + 2:
            raise ValueError(f"`healthy` needs more than {self.skip + self.k + 2} samples")
        self.mean, self.scale = _standardise_fit(x, self.rel_floor)
        first = (x[:, :, 0] - self.mean) / self.scale
        self.smooth = np.where(np.isnan(first), 0.0, first)
        zs = self._smooth(x)[:, :, self.skip:]
        self.centre = np.nanmean(zs, axis=2)
        dev = np.nan_to_num(zs - self.centre[:, :, None])  # gaps add nothing to the covariance
        eye = np.broadcast_to(np.eye(self.k), (self.channels, self.k, self.k))
        cov = np.einsum("ait,ajt->aij", dev, dev) / dev.shape[2] + 1e-3 * eye
        self.inv_cov = np.linalg.inv(cov)
        dist = np.einsum("ait,aij,ajt->at", dev, self.inv_cov, dev)
        self.threshold = np.maximum(np.quantile(dist, self.quantile, axis=1) * self.margin, 1e-12)
        self.alarm_on = np.zeros(self.channels, bool)

    def update(self, times: ArrayLike, values: ArrayLike) -> T2AlarmResult:
        """Process one block. `times`: int64 µs (T,); `values`: (assets, k, T)."""
        x = _as_fleet_block(values, name="values", k=self.k)
        if x.shape[0] != self.channels:
            raise ValueError(f"`values` must have {self.channels} assets, got {x.shape[0]}")
        as_times(times, name="times", length=x.shape[2])
        dev = self._smooth(x) - self.centre[:, :, None]
        dist = np.einsum("ait,aij,ajt->at", dev, self.inv_cov, dev)
        score = dist / self.threshold[:, None]
        ok = ~np.isnan(score)
        alarm = hysteresis(ok & (score > 1.0), ok & (score < self.clear), self.alarm_on)
        if x.shape[2]:
            self.alarm_on = alarm[:, -1].copy()
        return T2AlarmResult(score=score, alarm=alarm & ok, deviation=dev)
