"""Vibration bursts for spectral analysis: shaft harmonics, noise and bearing defect impacts.

A worn outer race makes a rolling element strike the defect ``BPFO`` times per shaft
revolution; each strike rings the housing's structural resonance (a few kHz) and decays
within a millisecond or so. Envelope analysis of the burst shows lines at BPFO and its
harmonics whose height grows with the fault severity.
"""

from __future__ import annotations

import base64

import numpy as np
from numpy.typing import NDArray

from simulators.signals import hash_uniform

__all__ = ["SAMPLE_RATE_HZ", "N_SAMPLES", "bearing_bursts", "encode_f32le"]

SAMPLE_RATE_HZ = 25_600
N_SAMPLES = 4096
_RESONANCE_HZ = 3_200.0
_DECAY_S = 0.0006


def bearing_bursts(
    *,
    key: NDArray[np.uint64],
    t_us: NDArray[np.int64],
    shaft_rpm: NDArray[np.float64],
    severity: NDArray[np.float64],
    bpfo_order: NDArray[np.float64],
    n_samples: int = N_SAMPLES,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> NDArray[np.float32]:
    """Acceleration bursts (g), one row per burst, reproducible from ``(key, t_us)``.

    Parameters
    ----------
    key, t_us, shaft_rpm, severity, bpfo_order : ndarray, shape (B,)
        Per burst: device key, time, shaft speed, bearing-wear severity in [0, 1] and the
        bearing's outer-race defect frequency as a multiple of shaft speed.

    Returns
    -------
    ndarray of float32, shape (B, n_samples)

    Examples
    --------
    >>> b = bearing_bursts(key=np.array([1, 1], dtype=np.uint64), t_us=np.array([0, 0]),
    ...                    shaft_rpm=np.array([1500.0, 1500.0]), severity=np.array([0.0, 1.0]),
    ...                    bpfo_order=np.array([3.6, 3.6]), n_samples=1024)
    >>> b.shape, bool(np.abs(b[1]).max() > np.abs(b[0]).max())
    ((2, 1024), True)
    """
    b = key.shape[0]
    for name, arr in (("t_us", t_us), ("shaft_rpm", shaft_rpm), ("severity", severity),
                      ("bpfo_order", bpfo_order)):
        if arr.shape != (b,):
            raise ValueError(f"`{name}` must have shape ({b},), got {arr.shape}")
    t = np.arange(n_samples, dtype=np.float64) / sample_rate_hz  # (N,)
    f_shaft = (shaft_rpm / 60.0)[:, None]
    burst_key = key ^ t_us.astype(np.uint64)
    phase = 2 * np.pi * hash_uniform(burst_key, np.zeros(b, dtype=np.int64))[:, None]
    x = 0.15 * np.sin(2 * np.pi * f_shaft * t + phase)  # 1x: residual unbalance
    x += 0.05 * np.sin(4 * np.pi * f_shaft * t + 2 * phase)  # 2x: misalignment
    # Defect impacts: time since the last strike, ringing the resonance.
    f_def = f_shaft * bpfo_order[:, None]
    since = np.mod(t[None, :] + phase / (2 * np.pi * np.maximum(f_def, 1e-9)),
                   1.0 / np.maximum(f_def, 1e-9))
    ring = np.exp(-since / _DECAY_S) * np.sin(2 * np.pi * _RESONANCE_HZ * since)
    x += (2.5 * severity**1.5)[:, None] * ring
    # White-ish sensor noise from a hash: independent of how bursts are batched.
    u = hash_uniform(burst_key[:, None], np.arange(1, n_samples + 1, dtype=np.int64)[None, :])
    x += 0.08 * (u - 0.5) * np.sqrt(12.0)
    return x.astype(np.float32)


def encode_f32le(samples: NDArray[np.float32]) -> str:
    """The contract's ``f32le-base64`` encoding of one burst.

    >>> encode_f32le(np.array([1.0], dtype=np.float32))
    'AACAPw=='
    """
    return base64.b64encode(np.asarray(samples, dtype="<f4").tobytes()).decode("ascii")
