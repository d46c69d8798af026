"""Spectral checks on vibration bursts: the bearing's defect frequencies in the envelope
spectrum.

A burst (``devices/{id}/waveform``) is a few thousand accelerometer samples. Bearing wear shows
first as energy at the bearing's defect frequencies long before the overall RMS moves, so each
burst's envelope spectrum is read at those frequencies and compared with the asset's own healthy
level (:class:`BearingCheck`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import welch

from anomaly.fusion import ratio_to_score
from anomaly.state import StreamingDetector
from anomaly.validation import as_times, check_at_least, check_positive

if TYPE_CHECKING:
    from anomaly.bank import DetectorBank

#: Defect frequencies scored, in this order: outer race, inner race, rolling element.
DEFECTS = ("bpfo", "bpfi", "bsf")


@dataclass(frozen=True)
class BearingGeometry:
    """A rolling bearing: number of rolling elements and ball / pitch diameter (contact angle
    0). Its defect frequencies are fixed multiples ("orders") of the shaft speed.

    >>> BearingGeometry(8, 0.22).orders().round(3).tolist()     # bpfo, bpfi, bsf
    [3.12, 4.88, 2.163]
    """

    balls: int
    pitch_ratio: float

    def __post_init__(self) -> None:
        if self.balls < 3 or not 0 < self.pitch_ratio < 1:
            raise ValueError("a bearing needs >= 3 balls and 0 < pitch_ratio < 1")

    def orders(self) -> NDArray[np.float64]:
        n, r = self.balls, self.pitch_ratio
        return np.array([n / 2 * (1 - r), n / 2 * (1 + r), (1 - r * r) / (2 * r)])


def shaft_speed_hz(bursts: ArrayLike, *, sample_rate_hz: float, low_hz: float = 3.0,
                   high_hz: float = 400.0) -> NDArray[np.float64]:
    """Shaft speed of each burst from its strongest low-frequency line (the 1x unbalance line),
    for machines without a speed channel (a tachless estimate).

    The burst is Hann-windowed and zero-padded to a grid of about 1 Hz; the peak between
    `low_hz` and `high_hz` is taken and refined by a parabola through the log magnitudes of it and
    its neighbours. NaN for a burst holding NaN.

    >>> fs = 25600.0
    >>> t = np.arange(4096) / fs
    >>> x = 0.15 * np.sin(2 * np.pi * 24.7 * t) + 0.05 * np.sin(2 * np.pi * 49.4 * t)
    >>> round(float(shaft_speed_hz(x[None, :], sample_rate_hz=fs)[0]), 1)
    24.7
    """
    x = np.asarray(bursts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`bursts` must be 2-D (bursts, samples), got shape {x.shape}")
    fs = check_positive(sample_rate_hz, name="sample_rate_hz")
    if not 0 < low_hz < high_hz:
        raise ValueError("need 0 < low_hz < high_hz")
    if x.shape[0] == 0:
        return np.zeros(0)
    n_fft = int(2 ** np.ceil(np.log2(max(fs, x.shape[1]))))
    win = np.hanning(x.shape[1])
    spec = np.abs(np.fft.rfft((x - x.mean(axis=1, keepdims=True)) * win, n=n_fft, axis=1))
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    band = np.flatnonzero((f >= low_hz) & (f <= min(high_hz, fs / 2)))
    k = band[np.argmax(spec[:, band], axis=1)]
    rows = np.arange(x.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, mid, hi = (np.log(spec[rows, np.clip(k + d, 0, f.size - 1)]) for d in (-1, 0, 1))
        shift = np.clip(0.5 * (lo - hi) / (lo - 2 * mid + hi), -0.5, 0.5)
    peak = f[k] + np.nan_to_num(shift) * (f[1] - f[0])
    return np.where(np.isnan(x).any(axis=1), np.nan, peak)


def envelope_levels(
    bursts: ArrayLike, *, sample_rate_hz: float, fault_hz: ArrayLike, highpass_hz: float = 1000.0,
    rel_width: float = 0.05, harmonics: int = 3, nperseg: int = 2048,
) -> NDArray[np.float64]:
    """Mean power spectral density of each burst's envelope around fault frequencies.

    Impacts of a rolling element on a defect ring the housing at a few kHz, once per defect
    passing: the raw spectrum shows the resonance, the *envelope* of the high-passed signal
    shows lines at the defect frequency and its harmonics. Per burst and fault frequency, the
    envelope PSD (:func:`scipy.signal.welch`) is averaged over the bands
    ``h * f * (1 ± rel_width)`` for ``h = 1..harmonics`` (each at least 1.5 frequency bins wide;
    harmonics above 0.9 Nyquist are left out). A mean PSD, not an integral, so the level does
    not grow with the speed (wider bands at higher frequencies).

    Parameters
    ----------
    bursts : array (n, L)
    fault_hz : array (n, d)
        Fault frequencies of each burst (its shaft speed times the bearing's orders); NaN gives
        NaN.

    Returns
    -------
    array (n, d)

    Examples
    --------
    >>> fs, n = 25600.0, 4096
    >>> t = np.arange(n) / fs
    >>> rng = np.random.default_rng(42)
    >>> since = np.mod(t, 1 / 80.0)                  # an impact every 1/80 s, ringing 3.2 kHz
    >>> ring = np.exp(-since / 6e-4) * np.sin(2 * np.pi * 3200 * since)
    >>> noise = 0.08 * rng.normal(size=(2, n))
    >>> e = envelope_levels(noise + [[0.0], [0.5]] * ring, sample_rate_hz=fs,
    ...                     fault_hz=[[80.0, np.nan], [80.0, np.nan]])
    >>> bool(e[1, 0] > 10 * e[0, 0]), bool(np.isnan(e[:, 1]).all())
    (True, True)
    """
    x = np.asarray(bursts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`bursts` must be 2-D (bursts, samples), got shape {x.shape}")
    fh = np.asarray(fault_hz, dtype=np.float64)
    if fh.ndim != 2 or fh.shape[0] != x.shape[0]:
        raise ValueError(f"`fault_hz` must be shaped ({x.shape[0]}, d), got {fh.shape}")
    fs = check_positive(sample_rate_hz, name="sample_rate_hz")
    if not 0 < rel_width < 0.5 or harmonics < 1:
        raise ValueError("need 0 < rel_width < 0.5 and harmonics >= 1")
    if x.shape[0] == 0:
        return np.zeros(fh.shape)
    # Analytic signal of the high-passed burst: keep positive frequencies above highpass_hz.
    spec = np.fft.fft(x - x.mean(axis=1, keepdims=True), axis=1)
    f_all = np.fft.fftfreq(x.shape[1], 1.0 / fs)
    env = np.abs(np.fft.ifft(spec * np.where(f_all >= highpass_hz, 2.0, 0.0), axis=1))
    f, pxx = welch(env, fs=fs, nperseg=min(nperseg, x.shape[1]), axis=-1)   # (n, F)
    df = f[1] - f[0] if f.size > 1 else fs
    h = np.arange(1, harmonics + 1, dtype=np.float64)
    centre = fh[:, :, None] * h                                              # (n, d, H)
    half = np.maximum(centre * rel_width, 1.5 * df)
    inband = (np.abs(f - centre[..., None]) <= half[..., None]) \
        & (centre[..., None] <= 0.45 * fs)                                    # (n, d, H, F)
    inband = inband.any(axis=2)                                              # (n, d, F)
    count = inband.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.einsum("ndf,nf->nd", inband.astype(np.float64), pxx) / count
    bad = np.asarray(np.isnan(x).any(axis=1), dtype=np.bool_)
    return np.where(np.isnan(fh) | (count == 0) | bad[:, None], np.nan, level)


@dataclass(frozen=True)
class BurstScore:
    """Per burst: ``ratio`` = log10 rise of the strongest defect band over the asset's healthy
    level divided by ``log10(ratio)`` (1 = the alarm threshold; NaN while learning), which
    defect (index into :data:`DEFECTS`), and that band's level and healthy level (g²/Hz)."""

    ratio: NDArray[np.float64]
    defect: NDArray[np.int64]
    level: NDArray[np.float64]
    healthy: NDArray[np.float64]


@dataclass(frozen=True)
class HeldScore:
    """Per asset and grid sample: the latest burst's :class:`BurstScore` fields, held until the
    next burst (at most ``hold_s``; NaN / -1 before the first scored burst)."""

    ratio: NDArray[np.float64]
    defect: NDArray[np.int64]
    level: NDArray[np.float64]
    healthy: NDArray[np.float64]


class BearingCheck(StreamingDetector):
    """Per asset: envelope levels at its bearing's defect frequencies (:func:`envelope_levels`)
    against the asset's own healthy level, the mean log10 level of its first ``warmup`` bursts
    (then frozen, so a wearing bearing is never learned away).

    A burst scores ``log10(level / healthy) / log10(ratio)`` in its strongest defect band;
    :meth:`hold` spreads the scores over the worker's time grid, each held until the asset's
    next burst. The shaft speed comes from the caller (a speed channel) or, where it passes NaN,
    from the burst's 1x line (:func:`shaft_speed_hz`).

    Examples
    --------
    >>> fs, n = 25600.0, 4096
    >>> t = np.arange(n) / fs
    >>> rng = np.random.default_rng(42)
    >>> shaft = 0.15 * np.sin(2 * np.pi * 25 * t)
    >>> since = np.mod(t, 1 / (25 * 3.12))                 # outer-race impacts at BPFO
    >>> ring = np.exp(-since / 6e-4) * np.sin(2 * np.pi * 3200 * since)
    >>> healthy = shaft + 0.08 * rng.normal(size=(4, n))
    >>> check = BearingCheck(1, warmup=3)
    >>> orders = np.tile(BearingGeometry(8, 0.22).orders(), (4, 1))
    >>> s = check.score(np.zeros(4, np.int64), healthy, sample_rate_hz=fs, orders=orders)
    >>> bool(np.isnan(s.ratio[:3]).all()), bool(abs(s.ratio[3]) < 0.5)
    (True, True)
    >>> worn = healthy[:1] + 0.3 * ring
    >>> s = check.score(np.zeros(1, np.int64), worn, sample_rate_hz=fs, orders=orders[:1])
    >>> bool(s.ratio[0] > 1), DEFECTS[int(s.defect[0])]
    (True, 'bpfo')
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "log_sum", "count", "last_ratio", "last_defect", "last_level", "last_healthy", "last_us",
    )
    log_sum: NDArray[Any]
    count: NDArray[Any]
    last_ratio: NDArray[Any]
    last_defect: NDArray[Any]
    last_level: NDArray[Any]
    last_healthy: NDArray[Any]
    last_us: NDArray[Any]

    def __init__(self, assets: int = 0, *, warmup: int = 5, ratio: float = 4.0,
                 hold_s: float = 1800.0) -> None:
        check_at_least(warmup, 1, name="warmup")
        if ratio <= 1:
            raise ValueError(f"`ratio` must be > 1, got {ratio}")
        self.warmup = int(warmup)
        self.log_ratio = float(np.log10(ratio))
        self.hold_us = int(round(check_positive(hold_s, name="hold_s") * 1e6))
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        d = len(DEFECTS)
        return {"log_sum": np.zeros((n, d)), "count": np.zeros(n, np.int64),
                "last_ratio": np.full(n, np.nan), "last_defect": np.full(n, -1, np.int64),
                "last_level": np.full(n, np.nan), "last_healthy": np.full(n, np.nan),
                "last_us": np.full(n, np.iinfo(np.int64).min // 2, np.int64)}

    def score(self, asset: ArrayLike, bursts: ArrayLike, *, sample_rate_hz: float,
              orders: ArrayLike, shaft_hz: ArrayLike | None = None) -> BurstScore:
        """Score bursts (n, L) of assets (n,), in time order; `orders` (n, len(DEFECTS)) are
        the defect frequencies per shaft revolution (NaN: unknown bearing, not scored)."""
        a = np.asarray(asset, dtype=np.int64)
        x = np.asarray(bursts, dtype=np.float64)
        if x.ndim != 2 or a.shape != (x.shape[0],):
            raise ValueError("`bursts` must be (n, L) and `asset` (n,)")
        if bool(np.any((a < 0) | (a >= self.channels))):
            raise ValueError("`asset` must hold valid asset indices")
        o = np.asarray(orders, dtype=np.float64)
        if o.shape != (x.shape[0], len(DEFECTS)):
            raise ValueError(f"`orders` must be shaped ({x.shape[0]}, {len(DEFECTS)})")
        est = shaft_speed_hz(x, sample_rate_hz=sample_rate_hz)
        f0 = est if shaft_hz is None else np.asarray(shaft_hz, dtype=np.float64)
        if f0.shape != est.shape:
            raise ValueError(f"`shaft_hz` must be shaped ({x.shape[0]},)")
        f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, est)
        level = envelope_levels(x, sample_rate_hz=sample_rate_hz, fault_hz=f0[:, None] * o)
        le = np.log10(np.maximum(level, 1e-30))
        usable = np.asarray(~np.isnan(level).any(axis=1), dtype=np.bool_)
        # Rank of each usable burst among the earlier usable bursts of its asset in this call.
        order = np.argsort(a, kind="stable")
        sa = a[order]
        first = np.searchsorted(sa, sa, side="left")
        used_sorted = usable[order].astype(np.int64)
        before = np.cumsum(used_sorted) - used_sorted
        rank = np.empty_like(a)
        rank[order] = before - before[first]
        seen = self.count[a] + rank
        learning = usable & (seen < self.warmup)
        contrib = np.where(learning[:, None], le, 0.0)
        cs = np.zeros_like(le)
        cs[order] = np.cumsum(contrib[order], axis=0)
        start = np.zeros_like(le)
        start[order] = (np.cumsum(contrib[order], axis=0) - contrib[order])[first]
        prior = self.log_sum[a] + cs - contrib - start
        with np.errstate(invalid="ignore", divide="ignore"):
            healthy = prior / np.minimum(seen, self.warmup)[:, None]
        rise = np.where(usable[:, None] & ~learning[:, None], le - healthy, np.nan)
        defect = np.where(usable & ~learning, np.argmax(np.nan_to_num(rise, nan=-np.inf),
                                                        axis=1), -1)
        pick = np.maximum(defect, 0)[:, None]
        ratio = np.take_along_axis(rise, pick, axis=1)[:, 0] / self.log_ratio
        np.add.at(self.log_sum, a, contrib)
        np.add.at(self.count, a, usable.astype(np.int64))
        lvl = np.take_along_axis(level, pick, axis=1)[:, 0]
        base = 10.0 ** np.take_along_axis(healthy, pick, axis=1)[:, 0]
        scored = defect >= 0
        return BurstScore(ratio=ratio, defect=defect, level=np.where(scored, lvl, np.nan),
                          healthy=np.where(scored, base, np.nan))

    def hold(self, times: ArrayLike, asset: ArrayLike, burst_us: ArrayLike,
             scores: BurstScore) -> HeldScore:
        """Spread burst scores over the grid `times` (T,) (a burst counts from the first grid
        time at or after it: causal), each held until the asset's next scored burst, for at
        most ``hold_s``. Bursts must fall within (times[0] - step, times[-1]]."""
        t = as_times(times, name="times", length=np.asarray(times).shape[0])
        a = np.asarray(asset, dtype=np.int64)
        bu = np.asarray(burst_us, dtype=np.int64)
        n_a, n_t = self.channels, t.shape[0]
        if a.shape != bu.shape or a.shape != scores.ratio.shape:
            raise ValueError("`asset`, `burst_us` and `scores` must have one entry per burst")
        keep = scores.defect >= 0
        if n_t and keep.any() and bool(bu[keep].max() > t[-1]):
            raise ValueError("a burst lies after the block's last grid time")
        a, bu = a[keep], bu[keep]
        fields = (scores.ratio[keep], scores.defect[keep], scores.level[keep],
                  scores.healthy[keep])
        col = np.searchsorted(t, bu, side="left")
        # Latest burst per (asset, column) wins: write in time order.
        srt = np.argsort(bu, kind="stable")
        idx = np.full((n_a, n_t), -1, np.int64)
        idx[a[srt], col[srt]] = srt
        filled = np.maximum.accumulate(np.where(idx >= 0, np.arange(n_t), -1), axis=1) \
            if n_t else idx
        src = np.where(filled >= 0, np.take_along_axis(idx, np.maximum(filled, 0), axis=1), -1)
        prior = (self.last_ratio, self.last_defect, self.last_level, self.last_healthy)
        at = np.where(src >= 0, bu[np.maximum(src, 0)] if bu.size else 0, self.last_us[:, None])
        fresh = t[None, :] - at <= self.hold_us
        out = []
        for new, old in zip(fields, prior, strict=True):     # four fields, not samples
            v = np.where(src >= 0, new[np.maximum(src, 0)] if new.size else old[:, None],
                         old[:, None])
            out.append(np.where(fresh, v, -1 if v.dtype == np.int64 else np.nan))
        if n_t:
            self.last_ratio, self.last_defect = out[0][:, -1].copy(), out[1][:, -1].copy()
            self.last_level, self.last_healthy = out[2][:, -1].copy(), out[3][:, -1].copy()
            self.last_us = at[:, -1].copy()
        return HeldScore(ratio=out[0], defect=out[1].astype(np.int64), level=out[2],
                         healthy=out[3])


def spectral_extra(
    bank: DetectorBank, check: BearingCheck, times: NDArray[np.int64],
    values: NDArray[np.float64], devices: Sequence[str], burst_us: NDArray[np.int64],
    bursts: Sequence[NDArray[np.floating[Any]]], rates: NDArray[np.float64],
    burst_rpm: NDArray[np.float64] | None = None, *,
    orders_for: Callable[[str], NDArray[np.float64]],
    speed_metric_for: Callable[[str], str],
) -> tuple[dict[str, tuple[NDArray[np.float64], NDArray[np.int64]]], HeldScore]:
    """Score a block's bursts and turn them into the bank's ``extra["spectral"]`` evidence:
    per asset and grid sample, the score of its latest burst (held until the next one) with
    failure mode ``bearing_wear``. Shared by the worker and the scenario evaluation.

    `devices`, `burst_us`, `bursts`, `rates`: one entry per burst, in time order. Bursts of
    devices the bank does not know (no telemetry yet) are skipped. The shaft speed is the one
    the device sent with the burst (`burst_rpm`, NaN where it did not), else the asset's speed
    channel at the burst's grid sample where its kind has one (`speed_metric_for`), else
    estimated from the burst. `orders_for` gives a device's bearing defect orders (NaN: none).
    The worker passes its catalogue's, the scenario evaluation its simulated models'.
    """
    if check.channels != len(bank.assets):
        raise ValueError("`check` must have one row per bank asset")
    index = {name: k for k, name in enumerate(bank.assets)}
    known = np.array([d in index for d in devices], bool)
    asset = np.array([index.get(d, -1) for d in devices], np.int64)
    cols = np.clip(np.searchsorted(times, burst_us, side="left"), 0, max(len(times) - 1, 0))
    where = {key: row for row, key in enumerate(bank.keys())}
    speed_row = np.array([where.get((d, speed_metric_for(d)), -1) for d in devices], np.int64)
    shaft_hz = np.full(len(devices), np.nan)
    has = known & (speed_row >= 0)
    if has.any() and values.shape[1]:
        shaft_hz[has] = values[speed_row[has], cols[has]] / 60.0
    if burst_rpm is not None:
        sent = np.asarray(burst_rpm, np.float64)
        if sent.shape != (len(devices),):
            raise ValueError(f"`burst_rpm` must be shaped ({len(devices)},)")
        shaft_hz = np.where(np.isfinite(sent) & (sent > 0), sent / 60.0, shaft_hz)
    scores = BurstScore(ratio=np.full(len(devices), np.nan),
                        defect=np.full(len(devices), -1, np.int64),
                        level=np.full(len(devices), np.nan),
                        healthy=np.full(len(devices), np.nan))
    lengths = np.array([len(b) for b in bursts], np.int64)
    # One vectorised call per (sample rate, burst length): a fleet uses one or two.
    for fs, length in {(float(f), int(n)) for f, n in zip(rates, lengths, strict=True)}:
        pick = np.flatnonzero(known & (rates == fs) & (lengths == length)).tolist()
        if not pick:
            continue
        orders = np.stack([orders_for(devices[k]) for k in pick])
        got = check.score(asset[pick], np.stack([bursts[k] for k in pick]),
                          sample_rate_hz=fs, orders=orders, shaft_hz=shaft_hz[pick])
        for name in ("ratio", "defect", "level", "healthy"):
            getattr(scores, name)[pick] = getattr(got, name)
    held = check.hold(times, np.maximum(asset, 0), burst_us,
                      BurstScore(ratio=scores.ratio, defect=np.where(known, scores.defect, -1),
                                 level=scores.level, healthy=scores.healthy))
    mode = np.full(held.ratio.shape, bank.mode_index("bearing_wear"), np.int64)
    return {"spectral": (ratio_to_score(held.ratio), mode)}, held
