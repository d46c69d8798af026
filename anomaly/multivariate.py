"""Multivariate detectors per asset: a Hotelling T² of causally smoothed inputs against a
healthy period with a hysteresis alarm (:class:`SmoothedT2`, the SKAB pump test bed), and the
worker's per-asset T² / SPE of each equipment model's correlated group (:class:`AssetT2`).

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
from anomaly.limits import hysteresis, run_start
from anomaly.state import StreamingDetector
from anomaly.validation import (
    as_times,
    check_at_least,
    check_positive,
    halflife_alpha,
    halflife_decay,
)


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
        check_at_least(skip, 0, name="skip")
        self.k = int(k)
        self.alpha = halflife_alpha(halflife, name="halflife")
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


# --------------------------------------------------------------------------------------------
# Streaming, per-asset Hotelling T² / SPE for the detector bank (anomaly.bank.DetectorBank).
# --------------------------------------------------------------------------------------------

#: Most channels one asset's correlated group may hold (groups are padded to this width, so every
#: asset of the fleet is scored by the same batched einsum whatever its group size).
GROUP_WIDTH = 6


@dataclass(frozen=True)
class AssetT2Result:
    """One block of :class:`AssetT2`, per asset and sample (NaN: learning, no group or a group
    channel without usable data).

    ``t2`` and ``spe`` are the statistics over their control limits times the margin (1 = the
    alarm threshold); ``ratio`` is the larger of the two after the duration gate (held at 0.99,
    just below 1, until it has stayed at or above 1 for ``duration_s``); ``top`` is the group
    slot of the channel contributing most to the larger statistic (-1 where there is none) and
    ``share`` its share of that statistic (near 1: one channel alone moved)."""

    t2: NDArray[np.float64]
    spe: NDArray[np.float64]
    ratio: NDArray[np.float64]
    top: NDArray[np.int64]
    share: NDArray[np.float64]


class AssetT2(StreamingDetector):
    """Hotelling T² and SPE (Q) of each asset's group of correlated process channels against a
    PCA model of that asset's own healthy operation, learned while streaming.

    Each asset has up to :data:`GROUP_WIDTH` channels (``used`` marks the slots it fills). The
    model is the exponentially weighted mean and covariance of the asset's valid samples (every
    used channel finite; the caller masks stopped, settling and suspect samples to NaN): the
    first ``learn`` valid samples build it with equal weights, after which the asset is scored
    and the model keeps learning, with half-life ``halflife`` samples, only from samples under
    both alarm thresholds, so a slowly moving operating point is followed while a broken
    correlation is not learned. A block is scored against the model as it stood before the
    block (causal), then the block's healthy samples update it.

    Standardised channels are projected on the principal components that explain ``variance``
    of the healthy variance (at most ``k - 1`` of the asset's ``k`` channels, so a residual space
    remains): T² is the Mahalanobis distance inside that subspace (limit: chi-square
    ``1 - alpha`` quantile with r degrees of freedom), SPE the squared residual outside it
    (limit: Box's chi-square approximation). ``t2_margin`` and ``spe_margin`` widen the limits
    (healthy samples are autocorrelated and not Gaussian). The contribution of each channel
    (``z_j * (P Λ⁻¹ Pᵀ z)_j`` for T², ``residual_j²`` for SPE; each sums to its statistic) names
    the channel that moved.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> load = rng.uniform(0.5, 1.0, 2000)
    >>> x = np.stack([load, 2 * load, 3 * load]) + 0.01 * rng.normal(size=(3, 2000))
    >>> x[2, 1500:] -= 0.3               # channel 2 leaves the others, within its own range
    >>> det = AssetT2(1, learn=600, duration_s=0)
    >>> used = np.array([[True, True, True, False, False, False]])
    >>> vals = np.full((1, GROUP_WIDTH, 2000), np.nan)
    >>> vals[0, :3] = x
    >>> t = np.arange(2000, dtype=np.int64) * 1_000_000
    >>> r = det.update(t[:1000], vals[:, :, :1000], used)
    >>> r = det.update(t[1000:], vals[:, :, 1000:], used)
    >>> bool(np.nanmax(r.ratio[0, :400]) < 1), bool(np.all(r.ratio[0, 500:] > 1))
    (True, True)
    >>> int(r.top[0, 600])
    2
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "weight", "s1", "s2", "above", "above_since",
    )
    weight: NDArray[Any]
    s1: NDArray[Any]
    s2: NDArray[Any]
    above: NDArray[Any]
    above_since: NDArray[Any]

    def __init__(
        self,
        assets: int = 0,
        *,
        learn: int = 1800,
        halflife: float = 3600.0,
        variance: float = 0.95,
        alpha: float = 1e-3,
        t2_margin: float = 10.0,
        spe_margin: float = 3.0,
        duration_s: float = 120.0,
        rel_floor: float = 1e-3,
    ) -> None:
        check_at_least(assets, 0, name="assets")
        if learn < GROUP_WIDTH + 2:
            raise ValueError(f"`learn` must be >= {GROUP_WIDTH + 2}, got {learn}")
        if not 0 < variance < 1:
            raise ValueError(f"`variance` must be in (0, 1), got {variance}")
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must be in (0, 1), got {alpha}")
        check_at_least(duration_s, 0, name="duration_s")
        self.learn = int(learn)
        self.decay = halflife_decay(halflife, name="halflife")
        self.variance = float(variance)
        self.alpha = float(alpha)
        self.t2_margin = check_positive(t2_margin, name="t2_margin")
        self.spe_margin = check_positive(spe_margin, name="spe_margin")
        self.duration_us = int(round(duration_s * 1e6))
        self.rel_floor = float(rel_floor)
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k = GROUP_WIDTH
        return {
            "weight": np.zeros(n),             # (effective) number of samples learned
            "s1": np.zeros((n, k)),            # weighted sums of x
            "s2": np.zeros((n, k, k)),         # weighted sums of x xᵀ
            "above": np.zeros(n, bool),        # duration gate: ratio >= 1 at the last sample
            "above_since": np.zeros(n, np.int64),
        }

    def ready(self, used: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Assets whose model is learned (and that have a group of at least 2 channels)."""
        return np.asarray((self.weight >= self.learn) & (used.sum(axis=1) >= 2), dtype=np.bool_)

    def _model(self, used: NDArray[np.bool_]) -> tuple[NDArray[np.float64], ...]:
        """Mean, scale, loadings (n, k, k), inverse eigenvalues and both limits, from the sums."""
        n, k = used.shape
        w = np.maximum(self.weight, 1.0)
        mean = self.s1 / w[:, None]
        cov = self.s2 / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
        var = np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None)
        # The relative floor stands for sensor resolution (as in _standardise_fit).
        scale = np.maximum(np.sqrt(var), self.rel_floor * np.abs(mean) + 1e-12)
        corr = cov / (scale[:, :, None] * scale[:, None, :])
        both = used[:, :, None] & used[:, None, :]
        corr = np.where(both, corr, 0.0) + 1e-9 * np.eye(k)
        eig, vec = np.linalg.eigh(corr)
        eig, vec = eig[:, ::-1].clip(min=0.0), vec[:, :, ::-1]
        frac = np.cumsum(eig, axis=1) / np.maximum(eig.sum(axis=1, keepdims=True), 1e-300)
        k_used = used.sum(axis=1)
        r = np.clip(np.minimum(np.sum(frac < self.variance, axis=1) + 1, k_used - 1), 1, k)
        keep = np.arange(k)[None, :] < r[:, None]
        loadings = np.where(keep[:, None, :], vec, 0.0)
        inv_eig = np.where(keep, 1.0 / np.maximum(eig, 1e-12), 0.0)
        t2_limit = stats.chi2.ppf(1 - self.alpha, r) * self.t2_margin
        rest = np.where(keep, 0.0, eig)
        th1, th2 = rest.sum(axis=1), (rest**2).sum(axis=1)
        g = th2 / np.maximum(th1, 1e-300)
        dof = th1**2 / np.maximum(th2, 1e-300)
        spe_limit = np.maximum(g * stats.chi2.ppf(1 - self.alpha, np.maximum(dof, 1e-3)),
                               1e-9) * self.spe_margin
        return mean, scale, loadings, inv_eig, t2_limit, spe_limit

    def update(self, times: ArrayLike, values: ArrayLike, used: ArrayLike,
               named: ArrayLike | None = None) -> AssetT2Result:
        """Process one block: `times` int64 µs (T,); `values` (assets, GROUP_WIDTH, T), NaN = no
        usable data; `used` (assets, GROUP_WIDTH) bool, the slots each asset's group fills;
        `named` (same shape, default `used`): the slots ``top`` may name (an operating input
        such as the ambient temperature explains a fault, it is not one), falling back to every
        used slot when none of the named ones contributes."""
        x = _as_fleet_block(values, name="values", k=GROUP_WIDTH)
        if x.shape[0] != self.channels:
            raise ValueError(f"`values` must have {self.channels} assets, got {x.shape[0]}")
        t = as_times(times, name="times", length=x.shape[2])
        u = np.asarray(used)
        if u.dtype != np.bool_ or u.shape != x.shape[:2]:
            raise ValueError(f"`used` must be bool shaped {x.shape[:2]}, got {u.dtype} {u.shape}")
        n_a, k, n_t = x.shape
        nm = u if named is None else np.asarray(named)
        if nm.dtype != np.bool_ or nm.shape != u.shape:
            raise ValueError(f"`named` must be bool shaped {u.shape}")
        nm = nm & u
        x = np.where(u[:, :, None], x, 0.0)                 # padding slots: constant, no data
        valid = ~np.isnan(x).any(axis=1) & (u.sum(axis=1) >= 2)[:, None]
        ready = self.ready(u)
        nan = np.full((n_a, n_t), np.nan)
        t2r, sper, top = nan.copy(), nan.copy(), np.full((n_a, n_t), -1, np.int64)
        share = nan.copy()
        if ready.any() and n_t:
            mean, scale, load, inv_eig, t2_lim, spe_lim = self._model(u)
            z = np.where(u[:, :, None], (x - mean[:, :, None]) / scale[:, :, None], 0.0)
            scores = np.einsum("akr,akt->art", load, z)
            t2 = np.einsum("art,ar->at", scores**2, inv_eig)
            resid = z - np.einsum("akr,art->akt", load, scores)
            spe = np.sum(resid**2, axis=1)
            # Per-channel contributions: each sums over channels to its statistic.
            t2_c = z * np.einsum("akr,ar,art->akt", load, inv_eig, scores)
            ok = ready[:, None] & valid
            t2r = np.where(ok, t2 / t2_lim[:, None], np.nan)
            sper = np.where(ok, spe / spe_lim[:, None], np.nan)
            contrib = np.where((t2r >= sper)[:, None, :], t2_c / t2_lim[:, None, None],
                               resid**2 / spe_lim[:, None, None])
            contrib = np.where(u[:, :, None], contrib, -np.inf)
            top = np.where(ok, np.argmax(contrib, axis=1), -1)
            # Among the named slots, where the asset has any.
            top_named = np.argmax(np.where(nm[:, :, None], contrib, -np.inf), axis=1)
            top = np.where(ok & nm.any(axis=1)[:, None], top_named, top)
            best = np.take_along_axis(contrib, np.maximum(top, 0)[:, None, :], axis=1)[:, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(ok, best / np.fmax(t2r, sper), np.nan)
        ratio = np.fmax(t2r, sper)
        # Duration gate: a statistic must stay at or above its threshold for duration_s.
        above = ratio >= 1.0
        if n_t:
            start = run_start(above, t, self.above, self.above_since)
            young = above & (t[None, :] - start < self.duration_us)
            ratio = np.where(young, 0.99, ratio)
            self.above, self.above_since = above[:, -1].copy(), start[:, -1].copy()
        self._learn(x, valid, ready, sper, t2r)
        return AssetT2Result(t2=t2r, spe=sper, ratio=ratio, top=top, share=share)

    def _learn(self, x: NDArray[np.float64], valid: NDArray[np.bool_],
               ready: NDArray[np.bool_], spe_ratio: NDArray[np.float64],
               t2_ratio: NDArray[np.float64]) -> None:
        """Fold the block's healthy samples into the sums (after it was scored: causal)."""
        if x.shape[2] == 0:
            return
        # Learning phase: the first `learn` valid samples, equal weights. Then every sample
        # under the alarm thresholds of both statistics: the operating point may wander (it is
        # followed), a sample beyond a threshold is not learned.
        healthy = ~(spe_ratio >= 1.0) & ~(t2_ratio >= 1.0)
        count = np.cumsum(valid, axis=1) + self.weight[:, None]
        take = valid & np.where(ready[:, None], healthy, count <= self.learn)
        xt = np.where(take[:, None, :], x, 0.0)
        n = take.sum(axis=1).astype(np.float64)
        keep = np.where(ready, self.decay**n, 1.0)
        self.weight = self.weight * keep + n
        self.s1 = self.s1 * keep[:, None] + xt.sum(axis=2)
        self.s2 = self.s2 * keep[:, None, None] + np.einsum("akt,ajt->akj", xt, xt)


# --------------------------------------------------------------------------------------------
# Operating regimes of machines nobody described (anomaly.bank.DetectorBank, generic channels).
# --------------------------------------------------------------------------------------------

#: Most channels of one asset the operating-regime model relates (slots beyond are not modelled).
REGIME_WIDTH = 12
_MAX_ABS = 1e100


class OperatingRegime(StreamingDetector):
    """How far each channel of an asset stands from what the asset's *other* channels, at the
    same sample, say it should read: the asset's operating regime, learned from its own
    history with no model of the machine.

    A machine's program moves its channels together: a CNC spindle's speed step raises its
    vibration and its current, a heavier cut its load and current. Against its own history
    each such channel makes an excursion; against the others it does not. The model is the
    exponentially weighted mean and covariance of the asset's valid samples (every used slot
    finite), as in :class:`AssetT2`; the standardised covariance, with ``ridge`` added to its
    diagonal (a share of each channel's variance no other channel can explain: sensor noise),
    is inverted to the precision matrix P, and the **conditional z** of channel i is
    ``(P z)_i / sqrt(P_ii)``: its residual from the linear regression on every other channel,
    in units of that regression's residual spread (the Gaussian conditional of x_i given the
    rest). A channel that follows the others scores near 0 however far its own value moved; a
    fault that breaks the relation (coolant flow falling at an unchanged speed, vibration up at
    the same speed) scores far from it.

    :meth:`score` returns NaN until ``learn`` samples were learned, where a used slot has no
    valid sample, and for assets with fewer than 3 used slots (2 channels cannot tell which of
    them broke the relation). :meth:`learn` folds the samples the caller found healthy into
    the sums with half-life ``halflife`` samples (equal weights while learning), after they
    were scored: causal.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> speed = rng.choice([0.25, 0.5, 1.0], 4000)            # a program's speed steps
    >>> x = np.stack([speed, 3 * speed + 1, rng.uniform(0, 1, 4000), speed + 0.5])
    >>> x = x + 0.01 * rng.normal(size=x.shape)
    >>> x[1, 3500:] += 0.3                 # channel 1 leaves the others, within its own range
    >>> reg = OperatingRegime(1, learn=1000)
    >>> vals = np.full((1, REGIME_WIDTH, 4000), np.nan)
    >>> vals[0, :4] = x
    >>> used = np.arange(REGIME_WIDTH)[None, :] < 4
    >>> reg.learn(vals[:, :, :3000], used, np.ones((1, 3000), bool))
    >>> z = reg.score(vals[:, :, 3000:], used)
    >>> bool(np.abs(z[0, :4, :500]).max() < 3), bool(np.median(np.abs(z[0, 1, 500:])) > 5)
    (True, True)
    """

    _state_names: ClassVar[tuple[str, ...]] = ("weight", "s1", "s2", "used")
    weight: NDArray[Any]
    s1: NDArray[Any]
    s2: NDArray[Any]
    used: NDArray[Any]

    def __init__(self, assets: int = 0, *, learn: int = 3600, halflife: float = 86400.0,
                 ridge: float = 1e-3, rel_floor: float = 1e-3) -> None:
        check_at_least(assets, 0, name="assets")
        check_at_least(learn, REGIME_WIDTH + 2, name="learn")
        self.learn_n = int(learn)
        self.decay = halflife_decay(halflife, name="halflife")
        self.ridge = check_positive(ridge, name="ridge")
        self.rel_floor = float(rel_floor)
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k = REGIME_WIDTH
        return {"weight": np.zeros(n), "s1": np.zeros((n, k)), "s2": np.zeros((n, k, k)),
                "used": np.zeros((n, k), bool)}          # the slots the sums describe

    def _check(self, values: ArrayLike, used: ArrayLike
               ) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
        """Checked block cut to the slots any asset uses (slots fill from the first: the rest
        cost nothing), its used slots and the usable values (assets, k, T). An asset whose
        used slots changed (a channel added, or found to be a counter) learns afresh: the sums
        describe one set of channels."""
        x = _as_fleet_block(values, name="values")
        if x.shape[0] != self.channels or x.shape[1] > REGIME_WIDTH:
            raise ValueError(f"`values` must have {self.channels} assets and at most "
                             f"{REGIME_WIDTH} channels each, got shape {x.shape}")
        u = np.asarray(used)
        if u.dtype != np.bool_ or u.shape != x.shape[:2]:
            raise ValueError(f"`used` must be bool shaped {x.shape[:2]}, got {u.dtype} {u.shape}")
        full = np.zeros((x.shape[0], REGIME_WIDTH), bool)
        full[:, :u.shape[1]] = u
        changed = (full != self.used).any(axis=1)
        if changed.any():
            self.reset(changed)
            self.used[changed] = full[changed]
        k = int(np.flatnonzero(u.any(axis=0)).max(initial=-1)) + 1
        x, u = x[:, :k], u[:, :k]
        x = np.where(u[:, :, None], x, 0.0)                 # padding slots: constant, no data
        # A value is usable where it is a number whose square the sums can hold (no sensor
        # reads 1e100; an infinity or such a value would poison the model).
        with np.errstate(invalid="ignore"):
            ok: NDArray[np.bool_] = np.abs(x) < _MAX_ABS
        return x, u, ok

    @staticmethod
    def _valid(ok: NDArray[np.bool_], slots: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Samples (assets, T) where every one of `slots` has a usable value, of assets with
        at least 3 such slots."""
        return np.asarray((ok | ~slots[:, :, None]).all(axis=1)
                          & (slots.sum(axis=1) >= 3)[:, None], dtype=np.bool_)

    def score(self, values: ArrayLike, used: ArrayLike,
              absent: ArrayLike | None = None, *, marginal: bool = False
              ) -> NDArray[np.float64]:
        """Conditional z (assets, k, T) of a block: `values` (assets, k, T), NaN = no usable
        sample, the asset's channels in its first slots (k <= REGIME_WIDTH, the same slots
        every block); `used` (assets, k) bool, the slots each asset fills.

        `absent` (assets, k) bool, default none: slots whose sensor gives nothing usable in
        this block (dead, found stuck, a metric no longer sent). They are left out of the
        block's regression and get no score: the others are related among themselves (the
        Gaussian conditional given the channels present), so one broken sensor does not blind
        the asset's model for as long as it stays broken. Any other slot without a value
        (the machine stopped or settling) leaves its sample unscored.

        `marginal`: the residual in units of the channel's own (marginal) standard deviation
        instead of the regression's residual spread: how far, on the scale the channel moves
        through, not how surprising (a tightly explained channel's conditional z is large for
        a residual its operating range dwarfs)."""
        shape = np.shape(values)
        x, u, ok = self._check(values, used)
        n_t = x.shape[2]
        out = np.full(shape, np.nan)
        k = u.shape[1]
        present = u.copy()
        if absent is not None:
            gone = np.asarray(absent)
            if gone.dtype != np.bool_ or gone.shape != np.shape(used):
                raise ValueError(f"`absent` must be bool shaped {np.shape(used)}, got "
                                 f"{gone.dtype} {gone.shape}")
            present &= ~gone[:, :k]
        valid = self._valid(ok, present)
        ready = (self.weight >= self.learn_n) & (present.sum(axis=1) >= 3)
        if not ready.any() or n_t == 0:
            return out
        a = np.flatnonzero(ready)
        ua = present[a]
        w = self.weight[a]
        mean = self.s1[a, :k] / w[:, None]
        cov = self.s2[a, :k, :k] / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
        var = np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None)
        scale = np.maximum(np.sqrt(var), self.rel_floor * np.abs(mean) + 1e-12)
        corr = cov / (scale[:, :, None] * scale[:, None, :])
        corr = np.where(ua[:, :, None] & ua[:, None, :], corr, 0.0) + self.ridge * np.eye(k)
        prec = np.linalg.inv(corr)
        with np.errstate(invalid="ignore"):
            z = np.where(ua[:, :, None] & valid[a][:, None, :],
                         (x[a] - mean[:, :, None]) / scale[:, :, None], 0.0)
        pii = np.diagonal(prec, axis1=1, axis2=2)[:, :, None]
        cz = np.matmul(prec, z) / (pii if marginal else np.sqrt(pii))
        out[a, :k] = np.where(ua[:, :, None] & valid[a][:, None, :], cz, np.nan)
        return out

    def learn(self, values: ArrayLike, used: ArrayLike, take: ArrayLike) -> None:
        """Fold the samples `take` (assets, T) marks (and that are valid) into the model."""
        x, u, ok = self._check(values, used)
        valid = self._valid(ok, u)
        tk = np.asarray(take, dtype=bool)
        if tk.shape != valid.shape:
            raise ValueError(f"`take` must be shaped {valid.shape}, got {tk.shape}")
        if x.shape[2] == 0:
            return
        k = u.shape[1]
        take_ = valid & tk
        xt = np.where(take_[:, None, :], x, 0.0)
        n = take_.sum(axis=1).astype(np.float64)
        ready = self.weight >= self.learn_n
        keep = np.where(ready, self.decay**n, 1.0)
        self.weight = self.weight * keep + n
        self.s1[:, :k] = self.s1[:, :k] * keep[:, None] + xt.sum(axis=2)
        self.s2[:, :k, :k] = self.s2[:, :k, :k] * keep[:, None, None] \
            + np.matmul(xt, xt.transpose(0, 2, 1))


class RegimeAnchor(StreamingDetector):
    """A lagged reference for :class:`OperatingRegime`: snapshots of each asset's regime sums,
    taken every ``period_s``, scored against the newest one at least ``lag_s`` old.

    The regime model keeps learning (half-life a day) from every sample no alert is made of, so
    a fault that develops over half a day, slowly enough never to open an alert, is learned as
    it grows: the conditional z of the wearing channel climbs, then falls back. Against the
    model as it stood ``lag_s`` earlier it keeps climbing, while a change over weeks moves the
    reference along. A snapshot is only kept if no equipment alert was open while it was
    learned (since the previous snapshot): a reference never describes a fault the bank saw.

    State per asset: a ring of ``slots`` snapshots (newest first; time -1 = empty), the time
    of the last snapshot and whether an alert was open since.

    >>> rng = np.random.default_rng(1)
    >>> speed = rng.choice([0.5, 1.0], 3 * 3600)
    >>> x = np.stack([speed, 2 * speed, speed + 0.2]) + 0.01 * rng.normal(size=(3, speed.size))
    >>> vals = np.full((1, REGIME_WIDTH, speed.size), np.nan)
    >>> vals[0, :3] = x
    >>> used = np.arange(REGIME_WIDTH)[None, :] < 3
    >>> reg, anchor = OperatingRegime(1, learn=600), RegimeAnchor(1, lag_s=3600, period_s=1200)
    >>> t = np.arange(speed.size, dtype=np.int64) * 1_000_000
    >>> for i in range(0, speed.size, 600):
    ...     reg.learn(vals[:, :, i:i + 600], used, np.ones((1, 600), bool))
    ...     anchor.snapshot(reg, int(t[i + 599]), np.zeros(1, bool))
    >>> bool(np.isnan(anchor.score(vals[:, :, :10], used, None, 0)).all())   # nothing old enough
    True
    >>> later = vals[:, :, -600:].copy()
    >>> later[0, 1] += 0.2               # channel 1 has left the others since the reference
    >>> z = anchor.score(later, used, None, int(t[-1]))
    >>> np.round(np.median(np.abs(z[0, :3]), axis=1)).tolist()     # channel 1 stands out
    [4.0, 8.0, 4.0]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("snap_t", "snap_w", "snap_s1", "snap_s2",
                                                "snap_used", "last_t", "dirty")
    snap_t: NDArray[Any]
    snap_w: NDArray[Any]
    snap_s1: NDArray[Any]
    snap_s2: NDArray[Any]
    snap_used: NDArray[Any]
    last_t: NDArray[Any]
    dirty: NDArray[Any]

    def __init__(self, assets: int = 0, *, lag_s: float = 86400.0, period_s: float = 21600.0,
                 slots: int = 6, learn: int = 3600, min_learned: float = 0.0,
                 ridge: float = 1e-3, rel_floor: float = 1e-3) -> None:
        check_at_least(assets, 0, name="assets")
        check_at_least(slots, 1, name="slots")
        self.lag_us = int(round(check_positive(lag_s, name="lag_s") * 1e6))
        self.period_us = int(round(check_positive(period_s, name="period_s") * 1e6))
        self.slots = int(slots)
        self.min_learned = float(min_learned)
        self._model = OperatingRegime(0, learn=learn, ridge=ridge, rel_floor=rel_floor)
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        k, r = REGIME_WIDTH, self.slots
        return {"snap_t": np.full((n, r), -1, np.int64), "snap_w": np.zeros((n, r)),
                "snap_s1": np.zeros((n, r, k)), "snap_s2": np.zeros((n, r, k, k)),
                "snap_used": np.zeros((n, r, k), bool),
                "last_t": np.full(n, np.iinfo(np.int64).min // 2, np.int64),
                "dirty": np.zeros(n, bool)}

    _ring: ClassVar[tuple[str, ...]] = ("snap_t", "snap_w", "snap_s1", "snap_s2", "snap_used")

    def load_state(self, state: dict[str, NDArray[Any]]) -> None:
        """As :meth:`StreamingDetector.load_state`; a ring saved with another number of
        slots keeps its newest snapshots (as many as fit) instead of refusing the checkpoint
        (`anchor_slots` changed between a worker's runs)."""
        st = dict(state)
        t = np.asarray(st.get("snap_t", np.zeros((0, self.slots))))
        if t.ndim == 2 and t.shape[1] != self.slots:
            fresh = self._initial_state(t.shape[0])
            keep = min(t.shape[1], self.slots)
            for key in self._ring:
                arr = fresh[key]
                arr[:, :keep] = np.asarray(st[key])[:, :keep]
                st[key] = arr
        super().load_state(st)

    def snapshot(self, regime: OperatingRegime, now: int, alerted: ArrayLike) -> None:
        """After a block ending at `now` (µs): note the assets with an alert open in it
        (`alerted`, (assets,) bool), and push a snapshot of every asset whose last one is
        ``period_s`` old, whose regime has learned enough and that had no alert meanwhile."""
        a = np.asarray(alerted, dtype=bool)
        self.dirty |= a
        due = now - self.last_t >= self.period_us
        if not due.any():
            return
        keep = due & ~self.dirty & (regime.weight >= max(regime.learn_n, self.min_learned))
        if keep.any():
            i = np.flatnonzero(keep)
            for name, new in (("snap_t", now), ("snap_w", regime.weight[i]),
                              ("snap_s1", regime.s1[i]), ("snap_s2", regime.s2[i]),
                              ("snap_used", regime.used[i])):
                arr = getattr(self, name)
                arr[i, 1:] = arr[i, :-1]
                arr[i, 0] = new
        self.last_t[due] = now
        self.dirty[due] = False

    def score(self, values: ArrayLike, used: ArrayLike, absent: ArrayLike | None,
              now: int, *, marginal: bool = False) -> NDArray[np.float64]:
        """Conditional z (assets, k, T) of a block against each asset's newest snapshot taken
        at least ``lag_s`` before `now` (the block's end, µs), as
        :meth:`OperatingRegime.score`; NaN where an asset has none, or its channels changed
        since."""
        n = self.channels
        old = (self.snap_t >= 0) & (self.snap_t <= now - self.lag_us)
        has = old.any(axis=1)
        r = np.argmax(old, axis=1)                 # newest first: the first old enough
        ai = np.arange(n)
        u = np.zeros((n, REGIME_WIDTH), bool)
        uu = np.asarray(used)
        u[:, :uu.shape[1]] = uu
        has &= (self.snap_used[ai, r] == u).all(axis=1)
        #: Per asset: had a reference for the last block scored (not state: recomputed).
        self.referenced = has
        m = self._model
        if m.channels != n:
            m._set_state(m._initial_state(n))
        m.weight = np.where(has, self.snap_w[ai, r], 0.0)
        m.s1 = self.snap_s1[ai, r]
        m.s2 = self.snap_s2[ai, r]
        m.used = u.copy()
        return m.score(values, used, absent, marginal=marginal)
