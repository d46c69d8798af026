"""Limit rules with a duration and hysteresis: "above 95 for 60 s, clear below 90".

The rule state is a two-level hysteresis switch per channel: it turns on when the value crosses
the trip level and off only when it falls back past the separate clear level; the rule *fires*
once the switch has stayed on for ``duration_s``. Everything is computed for a whole block at once
(forward-filling the last decisive sample), so there is no Python loop over channels or samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_channel_param, as_times

_NO_START = np.iinfo(np.int64).min


def hysteresis(
    trip: NDArray[np.bool_], clear: NDArray[np.bool_], prev_on: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Two-level switch: on after a `trip` sample, off after a `clear` sample, else unchanged.

    Parameters
    ----------
    trip, clear : ndarray of bool, shape (channels, time)
        Samples that turn the switch on / off (`trip` wins if both are set).
    prev_on : ndarray of bool, shape (channels,)
        Switch state before the block.

    Returns
    -------
    ndarray of bool, shape (channels, time)

    Examples
    --------
    >>> x = np.array([[1, 5, 4, 2, 1]])
    >>> hysteresis(x > 4, x < 3, np.array([False])).astype(int)
    array([[0, 1, 1, 0, 0]])
    """
    t = trip.shape[1]
    code = np.where(trip, 1, np.where(clear, -1, 0))
    idx = np.where(code != 0, np.arange(t), -1)
    last = np.maximum.accumulate(idx, axis=1) if t else idx
    decided = np.take_along_axis(code, np.maximum(last, 0), axis=1) == 1
    return np.where(last >= 0, decided, prev_on[:, None])


def run_start(
    on: NDArray[np.bool_],
    times: NDArray[np.int64],
    prev_on: NDArray[np.bool_],
    prev_start: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Time at which the current on-run began, per sample (undefined where `on` is False).

    Examples
    --------
    >>> on = np.array([[False, True, True, False, True]])
    >>> t = np.arange(5, dtype=np.int64) * 10
    >>> run_start(on, t, np.array([False]), np.array([0]))[0, [1, 2, 4]]
    array([10, 10, 40])
    """
    before = np.concatenate([prev_on[:, None], on[:, :-1]], axis=1)
    rising = on & ~before
    idx = np.where(rising, np.arange(on.shape[1]), -1)
    last = np.maximum.accumulate(idx, axis=1) if on.shape[1] else idx
    return np.where(last >= 0, times[np.maximum(last, 0)], prev_start[:, None])


@dataclass(frozen=True)
class LimitResult:
    """Output of :meth:`LimitRule.update` for one block.

    ``high``/``low`` tell which side fired; ``score`` is 1.0 where the rule fires, 0.0 where it
    does not and NaN where there was no data.
    """

    high: NDArray[np.bool_]
    low: NDArray[np.bool_]
    score: NDArray[np.float64]


class LimitRule(StreamingDetector):
    """Per-channel high/low limits with separate clear levels and a minimum duration.

    Parameters
    ----------
    channels : int
        Number of channels.
    high, clear_high, low, clear_low : float or array of shape (channels,), optional
        Trip and clear levels; NaN (the default) disables that side. ``clear_high`` defaults to
        ``high`` and ``clear_low`` to ``low`` (no hysteresis).
    duration_s : float or array of shape (channels,)
        How long the switch must stay on before the rule fires.

    Notes
    -----
    A NaN sample neither trips nor clears: the switch keeps its state and its output is NaN.

    Examples
    --------
    >>> rule = LimitRule(1, high=95, clear_high=90, duration_s=2)
    >>> t = np.arange(6, dtype=np.int64) * 1_000_000
    >>> rule.update(t, [[96, 97, 92, 93, 89, 96]]).high.astype(int)
    array([[0, 0, 1, 1, 0, 0]])
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "high_level", "clear_high_level", "low_level", "clear_low_level", "duration_us",
        "on_high", "start_high", "on_low", "start_low",
    )
    high_level: NDArray[Any]
    clear_high_level: NDArray[Any]
    low_level: NDArray[Any]
    clear_low_level: NDArray[Any]
    duration_us: NDArray[Any]
    on_high: NDArray[Any]
    start_high: NDArray[Any]
    on_low: NDArray[Any]
    start_low: NDArray[Any]

    def __init__(
        self,
        channels: int = 0,
        *,
        high: ArrayLike = np.nan,
        clear_high: ArrayLike | None = None,
        low: ArrayLike = np.nan,
        clear_low: ArrayLike | None = None,
        duration_s: ArrayLike = 0.0,
    ) -> None:
        if channels < 0:
            raise ValueError(f"`channels` must be >= 0, got {channels}")
        hi = as_channel_param(high, name="high", channels=channels)
        lo = as_channel_param(low, name="low", channels=channels)
        chi = hi if clear_high is None else as_channel_param(
            clear_high, name="clear_high", channels=channels)
        clo = lo if clear_low is None else as_channel_param(
            clear_low, name="clear_low", channels=channels)
        if bool(np.any(chi > hi)):
            raise ValueError("`clear_high` must be <= `high`")
        if bool(np.any(clo < lo)):
            raise ValueError("`clear_low` must be >= `low`")
        dur = as_channel_param(duration_s, name="duration_s", channels=channels)
        if bool(np.any(~(dur >= 0))):
            raise ValueError("`duration_s` must be >= 0")
        state = self._initial_state(channels)
        state.update(
            high_level=hi, clear_high_level=chi, low_level=lo, clear_low_level=clo,
            duration_us=np.round(dur * 1e6).astype(np.int64),
        )
        self._set_state(state)

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {
            "high_level": np.full(n, np.nan),
            "clear_high_level": np.full(n, np.nan),
            "low_level": np.full(n, np.nan),
            "clear_low_level": np.full(n, np.nan),
            "duration_us": np.zeros(n, np.int64),
            "on_high": np.zeros(n, bool),
            "start_high": np.full(n, _NO_START, np.int64),
            "on_low": np.zeros(n, bool),
            "start_low": np.full(n, _NO_START, np.int64),
        }

    def _side(
        self,
        times: NDArray[np.int64],
        x: NDArray[np.float64],
        trip_level: NDArray[np.float64],
        clear_level: NDArray[np.float64],
        prev_on: NDArray[np.bool_],
        prev_start: NDArray[np.int64],
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.int64]]:
        # Comparisons with NaN are False, so missing data and disabled sides never switch.
        trip = x > trip_level[:, None]
        clear = x < clear_level[:, None]
        on = hysteresis(trip, clear, prev_on)
        start = run_start(on, times, prev_on, prev_start)
        fired = on & (times[None, :] - start >= self.duration_us[:, None])
        if x.shape[1]:
            prev_on, prev_start = on[:, -1].copy(), start[:, -1].copy()
        return fired, prev_on, prev_start

    def update(self, times: ArrayLike, values: ArrayLike) -> LimitResult:
        """Process one block. `times`: int64 µs, shape (T,); `values`: shape (channels, T)."""
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        hi, self.on_high, self.start_high = self._side(
            t, x, self.high_level, self.clear_high_level, self.on_high, self.start_high)
        lo, self.on_low, self.start_low = self._side(
            t, -x, -self.low_level, -self.clear_low_level, self.on_low, self.start_low)
        score = np.where(np.isnan(x), np.nan, (hi | lo).astype(np.float64))
        return LimitResult(high=hi & ~np.isnan(x), low=lo & ~np.isnan(x), score=score)
