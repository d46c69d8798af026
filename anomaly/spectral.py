"""Spectral checks on vibration bursts: energy in the bands of a machine's fault frequencies.

A burst (``devices/{id}/waveform``) is a few thousand accelerometer samples. Bearing wear shows
first as energy around the bearing's defect frequencies long before the overall RMS moves, so
each burst is reduced to band energies with :func:`scipy.signal.welch` and each band is compared
with its own healthy level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import welch

from anomaly.state import StreamingDetector
from anomaly.validation import check_positive


def band_energy(
    bursts: ArrayLike, *, sample_rate_hz: float, bands_hz: ArrayLike, nperseg: int = 1024
) -> NDArray[np.float64]:
    """Energy (integrated PSD) of every burst in every band.

    Parameters
    ----------
    bursts : array (n, L)
        Equal-length bursts; a burst holding NaN gives NaN energies.
    bands_hz : array (b, 2)
        ``[low, high)`` edges in Hz.

    Returns
    -------
    array (n, b)

    Examples
    --------
    >>> fs = 25600.0
    >>> t = np.arange(4096) / fs
    >>> x = np.sin(2 * np.pi * 1000 * t)[None, :]
    >>> e = band_energy(x, sample_rate_hz=fs, bands_hz=[[900, 1100], [3000, 4000]])
    >>> bool(e[0, 0] > 0.4), bool(e[0, 1] < 1e-3)
    (True, True)
    """
    x = np.asarray(bursts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`bursts` must be 2-D (bursts, samples), got shape {x.shape}")
    bands = np.asarray(bands_hz, dtype=np.float64)
    if bands.ndim != 2 or bands.shape[1] != 2 or bool(np.any(bands[:, 1] <= bands[:, 0])):
        raise ValueError("`bands_hz` must be shaped (b, 2) with low < high")
    fs = check_positive(sample_rate_hz, name="sample_rate_hz")
    if x.shape[0] == 0:
        return np.zeros((0, bands.shape[0]))
    f, pxx = welch(x, fs=fs, nperseg=min(nperseg, x.shape[1]), axis=-1)
    df = f[1] - f[0] if f.size > 1 else fs
    inband = (f[None, :] >= bands[:, :1]) & (f[None, :] < bands[:, 1:])   # (b, F)
    return np.asarray(pxx @ inband.T.astype(np.float64) * df, dtype=np.float64)


@dataclass(frozen=True)
class SpectralResult:
    """``score``: per burst and band, log10 energy above the healthy level divided by
    ``log10(ratio)`` (>= 1 means the band grew by `ratio` or more)."""

    score: NDArray[np.float64]
    energy: NDArray[np.float64]


class BandEnergyDetector(StreamingDetector):
    """Band energies of each channel's bursts against a healthy level learned from its first
    ``warmup`` bursts (mean of log10 energy), then frozen.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> fs = 25600.0
    >>> det = BandEnergyDetector(1, sample_rate_hz=fs, bands_hz=[[900, 1100]], warmup=3)
    >>> noise = rng.normal(0, 0.1, (4, 4096))
    >>> ch = np.zeros(4, np.int64)
    >>> s = det.update(ch, noise).score[:, 0]
    >>> bool(np.isnan(s[:3]).all()), bool(abs(s[3]) < 0.5)
    (True, True)
    >>> tone = noise[:1] + np.sin(2 * np.pi * 1000 * np.arange(4096) / fs)
    >>> bool(det.update(ch[:1], tone).score[0, 0] > 1)
    True
    """

    _state_names: ClassVar[tuple[str, ...]] = ("log_sum", "count")
    log_sum: NDArray[Any]
    count: NDArray[Any]

    def __init__(
        self,
        channels: int = 0,
        *,
        sample_rate_hz: float = 25600.0,
        bands_hz: ArrayLike = ((0.0, 1.0),),
        warmup: int = 10,
        ratio: float = 4.0,
    ) -> None:
        self.sample_rate_hz = check_positive(sample_rate_hz, name="sample_rate_hz")
        self.bands_hz = np.asarray(bands_hz, dtype=np.float64)
        if self.bands_hz.ndim != 2 or self.bands_hz.shape[1] != 2:
            raise ValueError("`bands_hz` must be shaped (b, 2)")
        self.warmup = int(warmup)
        if ratio <= 1:
            raise ValueError(f"`ratio` must be > 1, got {ratio}")
        self.log_ratio = float(np.log10(ratio))
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        b = self.bands_hz.shape[0]
        return {"log_sum": np.zeros((n, b)), "count": np.zeros(n, np.int64)}

    def update(self, channel: ArrayLike, bursts: ArrayLike) -> SpectralResult:
        """Score bursts (n, L) of the given channels (n,), in time order."""
        ch = np.asarray(channel, dtype=np.int64)
        e = band_energy(bursts, sample_rate_hz=self.sample_rate_hz, bands_hz=self.bands_hz)
        if ch.shape != (e.shape[0],) or bool(np.any((ch < 0) | (ch >= self.channels))):
            raise ValueError("`channel` must hold one valid channel index per burst")
        le = np.log10(np.maximum(e, 1e-30))
        # Rank of each burst among the earlier bursts of its channel in this call.
        order = np.argsort(ch, kind="stable")
        sorted_ch = ch[order]
        first = np.searchsorted(sorted_ch, sorted_ch, side="left")
        rank = np.empty_like(ch)
        rank[order] = np.arange(ch.size) - first
        seen = self.count[ch] + rank
        learning = seen < self.warmup
        # Learned level before each burst: healthy sums of earlier learning bursts.
        contrib = np.where(learning[:, None], le, 0.0)
        cs = np.zeros_like(le)
        cs[order] = np.cumsum(contrib[order], axis=0)
        grp_start = np.zeros_like(le)
        grp_start[order] = (np.cumsum(contrib[order], axis=0) - contrib[order])[first]
        prior_sum = self.log_sum[ch] + cs - contrib - grp_start
        n_learned = np.minimum(seen, self.warmup)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = prior_sum / n_learned[:, None]
        score = np.where(learning[:, None], np.nan, (le - level) / self.log_ratio)
        np.add.at(self.log_sum, ch, contrib)
        np.add.at(self.count, ch, 1)
        return SpectralResult(score=score, energy=e)
