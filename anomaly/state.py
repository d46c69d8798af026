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


class StreamingDetector:
    """Base class: per-channel state arrays named in ``_state_names``.

    Subclasses implement :meth:`_initial_state` (fresh rows for `n` new channels) and keep every
    array listed in ``_state_names`` as an attribute whose first axis has length ``channels``.
    Per-channel parameters (limits, baselines) are stored the same way, so a checkpoint restores a
    detector completely.
    """

    _state_names: ClassVar[tuple[str, ...]] = ()

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

    def add_channels(self, n: int, **params: ArrayLike) -> None:
        """Append `n` fresh channels; `params` override per-channel parameters of the new rows.

        A scalar applies to every new channel, an array must be shaped ``(n, ...)``.
        """
        if n < 0:
            raise ValueError(f"`n` must be >= 0, got {n}")
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
