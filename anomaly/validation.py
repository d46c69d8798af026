"""Boundary checks shared by every public numeric entry point of ``anomaly``.

They turn user input into well-typed float64/int64 arrays or raise a ``TypeError`` /
``ValueError`` that names the offending argument; past this boundary the code assumes clean arrays.
NaN is accepted everywhere and means "no data".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _as_float_array(values: ArrayLike, *, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def as_1d_float(values: ArrayLike, *, name: str) -> NDArray[np.float64]:
    """Return `values` as a 1-D float64 array.

    >>> as_1d_float([1, 2], name="values")
    array([1., 2.])
    """
    arr = _as_float_array(values, name=name)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {arr.shape}")
    return arr


def as_block(
    values: ArrayLike, *, name: str, channels: int | None = None
) -> NDArray[np.float64]:
    """Return `values` as a float64 block shaped ``(channels, time)``.

    >>> as_block([[1, 2, 3]], name="values", channels=1).shape
    (1, 3)
    """
    arr = _as_float_array(values, name=name)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (channels, time), got shape {arr.shape}")
    if channels is not None and arr.shape[0] != channels:
        raise ValueError(f"`{name}` must have {channels} channel rows, got {arr.shape[0]}")
    return arr


def as_times(times: ArrayLike, *, name: str, length: int) -> NDArray[np.int64]:
    """Return `times` (integer epoch microseconds) as a non-decreasing int64 array.

    >>> as_times([0, 1_000_000], name="times", length=2)
    array([      0, 1000000])
    """
    arr = np.asarray(times)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must be integer epoch microseconds, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(f"`{name}` must be 1-D of length {length}, got shape {arr.shape}")
    if arr.size > 1 and bool(np.any(np.diff(arr) < 0)):
        raise ValueError(f"`{name}` must be non-decreasing")
    return arr


def as_channel_param(
    value: ArrayLike, *, name: str, channels: int, default: float = np.nan
) -> NDArray[np.float64]:
    """Broadcast a scalar or per-channel parameter to a float64 array of shape ``(channels,)``.

    >>> as_channel_param(3, name="high", channels=2)
    array([3., 3.])
    """
    if value is None:
        return np.full(channels, default)
    arr = _as_float_array(value, name=name)
    if arr.ndim == 0:
        return np.full(channels, float(arr))
    if arr.shape != (channels,):
        raise ValueError(f"`{name}` must be a scalar or shaped ({channels},), got {arr.shape}")
    return arr.copy()


def check_positive(value: float, *, name: str) -> float:
    """Return `value` as float if it is finite and > 0, else raise ``ValueError``.

    >>> check_positive(2, name="window_s")
    2.0
    """
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
    return v


def halflife_decay(halflife: float, *, name: str) -> float:
    """The per-sample weight kept by an exponential memory with this half-life (samples).

    >>> halflife_decay(1, name="halflife")
    0.5
    """
    return float(0.5 ** (1.0 / check_positive(halflife, name=name)))


def halflife_alpha(halflife: float, *, name: str) -> float:
    """The EWMA weight of the newest sample for this half-life: ``1 - halflife_decay``.

    >>> halflife_alpha(1, name="halflife")
    0.5
    """
    return 1.0 - halflife_decay(halflife, name=name)


def check_at_least(value: float, minimum: float, *, name: str) -> None:
    """Raise ``ValueError`` naming `name` unless `value` >= `minimum`.

    >>> check_at_least(0, 1, name="warmup")
    Traceback (most recent call last):
    ValueError: `warmup` must be >= 1, got 0
    """
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
