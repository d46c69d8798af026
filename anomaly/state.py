"""Streaming state that survives a worker restart.

A detector keeps everything it needs between blocks in numpy arrays whose first axis is the
channel (or asset). :class:`StreamingDetector` gives each detector the same checkpoint API
(``state_dict`` / ``load_state`` / ``to_bytes`` / ``from_bytes``) and a way to grow the arrays when
new devices appear (``add_channels``).
"""

from __future__ import annotations

import io
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.validation import check_at_least


class StreamingDetector:
    """Base class: per-channel state arrays named in ``_state_names``.

    Subclasses implement :meth:`_initial_state` (fresh rows for `n` new channels) and keep every
    array listed in ``_state_names`` as an attribute whose first axis has length ``channels``.
    Per-channel parameters (limits, baselines) are stored the same way, so a checkpoint restores a
    detector completely.
    """

    _state_names: ClassVar[tuple[str, ...]] = ()
    #: Those of ``_state_names`` that are per-channel *parameters* (kept by :meth:`reset`).
    _param_names: ClassVar[tuple[str, ...]] = ()

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        raise NotImplementedError

    @property
    def channels(self) -> int:
        """Number of channels (rows) the detector currently tracks."""
        return int(getattr(self, self._state_names[0]).shape[0])

    def _set_state(self, state: dict[str, NDArray[Any]]) -> None:
        for key in self._state_names:
            setattr(self, key, state[key])

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Copy of every state array, keyed by name."""
        return {key: np.array(getattr(self, key), copy=True) for key in self._state_names}

    def load_state(self, state: dict[str, NDArray[Any]]) -> None:
        """Restore arrays produced by :meth:`state_dict` (checked for names and shapes)."""
        missing = set(self._state_names) - set(state)
        if missing:
            raise ValueError(f"`state` lacks arrays {sorted(missing)}")
        n = int(np.asarray(state[self._state_names[0]]).shape[0])
        template = self._initial_state(n)
        new: dict[str, NDArray[Any]] = {}
        for key in self._state_names:
            arr = np.asarray(state[key])
            if arr.shape != template[key].shape:
                raise ValueError(
                    f"`state[{key!r}]` must have shape {template[key].shape}, got {arr.shape}"
                )
            new[key] = arr.astype(template[key].dtype, copy=True)
        self._set_state(new)

    def to_bytes(self) -> bytes:
        """Serialise the state to ``.npz`` bytes (no pickle)."""
        buf = io.BytesIO()
        np.savez(buf, **self.state_dict())  # type: ignore[arg-type]
        return buf.getvalue()

    def load_bytes(self, data: bytes) -> None:
        """Restore state written by :meth:`to_bytes`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            self.load_state({key: npz[key] for key in npz.files})

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs: Any) -> Self:
        """Build a detector (constructor `kwargs` for settings) and restore its state."""
        det = cls(**kwargs)
        det.load_bytes(data)
        return det

    def reset(self, rows: ArrayLike, *, keep: tuple[str, ...] = ()) -> None:
        """Start the selected rows afresh, as :meth:`add_channels` would, keeping the arrays
        named in ``_param_names`` and `keep` (per-channel parameters such as limits or a noise
        floor: they describe the channel, not what it has learned).

        `rows` is a boolean mask over the channels or an array of row indices. A machine that
        was repaired is a new machine for its adaptive detectors: what they learned before is
        about the faulty one.

        >>> class Mean(StreamingDetector):
        ...     _state_names = ("floor", "total")
        ...     _param_names = ("floor",)
        ...     def __init__(self, n):
        ...         self._set_state(self._initial_state(n))
        ...     def _initial_state(self, n):
        ...         return {"floor": np.zeros(n), "total": np.zeros(n)}
        >>> m = Mean(3)
        >>> m.floor[:], m.total[:] = [1.0, 2.0, 3.0], [10.0, 20.0, 30.0]
        >>> m.reset(np.array([False, True, True]))
        >>> m.floor.tolist(), m.total.tolist()
        ([1.0, 2.0, 3.0], [10.0, 0.0, 0.0])
        """
        r = np.asarray(rows)
        if r.dtype == bool:
            if r.shape != (self.channels,):
                raise ValueError(f"`rows` mask must be shaped ({self.channels},), got {r.shape}")
            idx = np.flatnonzero(r)
        elif r.size == 0:
            idx = np.zeros(0, np.int64)
        elif np.issubdtype(r.dtype, np.integer) and r.ndim == 1:
            if r.min() < 0 or r.max() >= self.channels:
                raise ValueError(f"`rows` must index 0..{self.channels - 1}")
            idx = r.astype(np.int64)
        else:
            raise TypeError("`rows` must be a boolean mask or integer row indices")
        unknown = set(keep) - set(self._state_names)
        if unknown:
            raise ValueError(f"`keep` names unknown arrays {sorted(unknown)}")
        if idx.size == 0:
            return
        fresh = self._initial_state(idx.size)
        for key in self._state_names:
            if key in keep or key in self._param_names:
                continue
            getattr(self, key)[idx] = fresh[key]

    def add_channels(self, n: int, **params: ArrayLike) -> None:
        """Append `n` fresh channels; `params` override per-channel parameters of the new rows.

        A scalar applies to every new channel, an array must be shaped ``(n, ...)``.
        """
        check_at_least(n, 0, name="n")
        fresh = self._initial_state(n)
        for key, value in params.items():
            if key not in fresh:
                raise ValueError(f"unknown per-channel parameter `{key}`")
            arr = np.asarray(value, dtype=fresh[key].dtype)
            try:
                fresh[key] = np.broadcast_to(arr, fresh[key].shape).copy()
            except ValueError as exc:
                raise ValueError(
                    f"`{key}` must broadcast to {fresh[key].shape}, got {arr.shape}"
                ) from exc
        grown = {
            key: np.concatenate([getattr(self, key), fresh[key]], axis=0)
            for key in self._state_names
        }
        self._set_state(grown)


_LONG_AGO = np.iinfo(np.int64).min // 2
_FAR_AHEAD = np.iinfo(np.int64).max // 2


class _FlagTime(StreamingDetector):
    """Per row: one time at which a flag was true, kept between blocks: the latest
    (:class:`LastTrue`) or the earliest (:class:`FirstTrue`), `_none` until there is one. The
    state array is named by ``_state_names[0]``."""

    _none: ClassVar[int]
    _pick: ClassVar[Any]             # np.maximum or np.minimum

    def __init__(self, rows: int = 0) -> None:
        check_at_least(rows, 0, name="rows")
        self._set_state(self._initial_state(rows))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {self._state_names[0]: np.full(n, self._none, np.int64)}

    def update(self, t: NDArray[np.int64], flag: NDArray[np.bool_]) -> NDArray[np.int64]:
        """`t` int64 (T,), `flag` bool (rows, T); returns the time up to each sample."""
        f = np.asarray(flag, dtype=bool)
        if f.ndim != 2 or f.shape[0] != self.channels or f.shape[1] != t.shape[0]:
            raise ValueError(f"`flag` must be shaped ({self.channels}, {t.shape[0]}), "
                             f"got {f.shape}")
        if f.shape[1] == 0:
            return np.zeros(f.shape, np.int64)
        name = self._state_names[0]
        at = self._pick.accumulate(np.where(f, t[None, :], self._none), axis=1)
        at = self._pick(at, getattr(self, name)[:, None])
        setattr(self, name, at[:, -1].copy())
        return np.asarray(at, dtype=np.int64)


class LastTrue(_FlagTime):
    """Per row: the time at which a flag was last true (long ago if never), carried between
    blocks; e.g. when a machine last ran, to tell how long it has been stopped.

    >>> lt = LastTrue(1)
    >>> t = np.arange(5, dtype=np.int64) * 10
    >>> lt.update(t, np.array([[True, False, False, True, False]])).tolist()
    [[0, 0, 0, 30, 30]]
    >>> lt.update(t + 50, np.zeros((1, 5), bool))[0, -1].item()
    30
    """

    _state_names: ClassVar[tuple[str, ...]] = ("last",)
    _none: ClassVar[int] = _LONG_AGO
    _pick: ClassVar[Any] = np.maximum
    last: NDArray[Any]


class FirstTrue(_FlagTime):
    """Per row: the time at which a flag was first true (far ahead if never yet), carried
    between blocks; e.g. since when a channel has been seen, to tell how much of its
    behaviour is known.

    >>> ft = FirstTrue(1)
    >>> t = np.arange(4, dtype=np.int64) * 10
    >>> ft.update(t, np.array([[False, True, False, True]])).tolist()[0][1:]
    [10, 10, 10]
    >>> ft.update(t + 40, np.ones((1, 4), bool))[0, -1].item()
    10
    """

    _state_names: ClassVar[tuple[str, ...]] = ("first",)
    _none: ClassVar[int] = _FAR_AHEAD
    _pick: ClassVar[Any] = np.minimum
    first: NDArray[Any]
