"""Deterministic signal building blocks shared by the equipment models.

Everything here is a pure function of time (plus per-device keys) or carries its state
explicitly, so a fleet generated in one chunk equals the same fleet generated in many
chunks. Time is epoch seconds (float64, UTC); arrays are shaped ``(steps, devices)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = [
    "ambient_temp_c",
    "first_order_lag",
    "hash_uniform",
    "schedule_running",
    "SCHEDULES",
    "value_noise",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: Operating schedules: name -> code used in the per-device ``schedule`` array.
SCHEDULES: dict[str, int] = {"continuous": 0, "two_shift": 1, "one_shift": 2}


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    # splitmix64 finaliser; uint64 arithmetic wraps, which is what a hash wants.
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def hash_uniform(key: NDArray[np.uint64], index: NDArray[np.int64]) -> NDArray[np.float64]:
    """Uniform numbers in [0, 1) that depend only on ``(key, index)``.

    Parameters
    ----------
    key : ndarray of uint64
        Per-device keys, broadcast against ``index``.
    index : ndarray of int64
        Block numbers (e.g. ``floor(t / period)``).

    Returns
    -------
    ndarray of float64
        Same shape as ``broadcast(key, index)``. Reproducible across calls and chunkings.

    Examples
    --------
    >>> u = hash_uniform(np.array([1, 2], dtype=np.uint64), np.array([[0], [1]]))
    >>> u.shape, bool(((u >= 0) & (u < 1)).all())
    ((2, 2), True)
    """
    with np.errstate(over="ignore"):
        h = _mix64(np.asarray(key, dtype=np.uint64) ^ _mix64(np.asarray(index).astype(np.uint64)))
    return (h >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def value_noise(
    t_s: NDArray[np.float64], key: NDArray[np.uint64], period_s: float | NDArray[np.float64]
) -> NDArray[np.float64]:
    """Smooth random curve in [0, 1): hashed knots every ``period_s``, smoothstep between.

    Parameters
    ----------
    t_s : ndarray, shape (T,)
        Epoch seconds.
    key : ndarray of uint64, shape (D,)
        One key per device; different keys give independent curves.
    period_s : float or ndarray, shape (D,)
        Distance between knots in seconds.

    Returns
    -------
    ndarray of float64, shape (T, D)
    """
    x = t_s[:, None] / period_s
    k = np.floor(x)
    f = x - k
    ki = k.astype(np.int64)
    u0 = hash_uniform(key[None, :], ki)
    u1 = hash_uniform(key[None, :], ki + 1)
    w = f * f * (3.0 - 2.0 * f)
    return u0 + (u1 - u0) * w


def _local_clock(
    t_s: NDArray[np.float64], utc_offset_h: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    local = t_s[:, None] + utc_offset_h[None, :] * 3600.0
    day = np.floor(local / 86400.0)
    hour = (local - day * 86400.0) / 3600.0
    # 1970-01-01 was a Thursday: +3 makes Monday 0.
    weekday = ((day.astype(np.int64) + 3) % 7).astype(np.int64)
    return hour, weekday


def schedule_running(
    t_s: NDArray[np.float64],
    schedule: NDArray[np.int64],
    utc_offset_h: NDArray[np.float64],
    key: NDArray[np.uint64],
    stop_probability: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Whether each machine runs: shift pattern, weekends off, and random stops.

    ``continuous`` runs around the clock; ``two_shift`` Monday-Friday 06:00-22:00 local;
    ``one_shift`` Monday-Friday 07:00-16:00 local. Inside those hours a machine is stopped
    for a whole 15-minute block with probability ``stop_probability`` (start/stop cycles).

    Examples
    --------
    >>> t = np.array([0.0, 2 * 86400.0 + 10 * 3600.0])  # Thu 00:00, Sat 10:00 UTC
    >>> schedule_running(t, np.array([0, 1]), np.zeros(2), np.array([1, 2], dtype=np.uint64),
    ...                  np.zeros(2)).tolist()
    [[True, False], [True, False]]
    """
    hour, weekday = _local_clock(t_s, utc_offset_h)
    workday = weekday < 5
    two = workday & (hour >= 6.0) & (hour < 22.0)
    one = workday & (hour >= 7.0) & (hour < 16.0)
    on = np.where(schedule == 0, True, np.where(schedule == 1, two, one))
    block = np.floor(t_s / 900.0).astype(np.int64)
    stopped = hash_uniform(key[None, :] ^ np.uint64(0x5151), block[:, None]) < stop_probability
    return np.asarray(on & ~stopped, dtype=np.bool_)


def ambient_temp_c(
    t_s: NDArray[np.float64],
    mean_c: NDArray[np.float64],
    utc_offset_h: NDArray[np.float64],
    key: NDArray[np.uint64],
) -> NDArray[np.float64]:
    """Ambient temperature: daily cycle (peak 15:00 local, +-5 K) plus slow weather.

    Returns
    -------
    ndarray of float64, shape (T, D)
    """
    hour, _ = _local_clock(t_s, utc_offset_h)
    daily = 5.0 * np.sin(2.0 * np.pi * (hour - 9.0) / 24.0)
    weather = 6.0 * (value_noise(t_s, key ^ np.uint64(0xA3B1), 6 * 3600.0) - 0.5)
    return np.asarray(mean_c[None, :] + daily + weather, dtype=np.float64)


def first_order_lag(
    x: NDArray[np.float64], *, alpha: float, state: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """First-order lag ``y[n] = alpha * y[n-1] + (1 - alpha) * x[n]`` along axis 0.

    Parameters
    ----------
    x : ndarray, shape (T, D)
        Input (e.g. the temperature a machine would settle at).
    alpha : float
        ``exp(-dt / tau)``; 0 means no lag.
    state : ndarray, shape (D,) or None
        Last output of the previous chunk; None starts at ``x[0]`` (steady state).

    Returns
    -------
    y : ndarray, shape (T, D)
    new_state : ndarray, shape (D,)
        Pass back in for the next chunk; chunked and whole runs give the same ``y``.

    Examples
    --------
    >>> y, s = first_order_lag(np.array([[0.0], [1.0], [1.0]]), alpha=0.5, state=None)
    >>> y.ravel().tolist()
    [0.0, 0.5, 0.75]
    """
    if x.shape[0] == 0:
        return x.copy(), (state if state is not None else np.zeros(x.shape[1]))
    prev = x[0] if state is None else state
    zi = (alpha * prev)[None, :]
    y, _ = signal.lfilter([1.0 - alpha], [1.0, -alpha], x, axis=0, zi=zi)
    y = np.asarray(y, dtype=np.float64)
    return y, y[-1].copy()
