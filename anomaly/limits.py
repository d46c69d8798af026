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
from anomaly.validation import as_block, as_channel_param, as_times, check_at_least

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

    Notes
    -----
    Rows without a decisive sample keep `prev_on`, and rows where every sample is decisive
    follow `trip`; only the rows in between need the forward fill of the last decisive sample.

    Examples
    --------
    >>> x = np.array([[1, 5, 4, 2, 1]])
    >>> hysteresis(x > 4, x < 3, np.array([False])).astype(int)
    array([[0, 1, 1, 0, 0]])
    """
    t = trip.shape[1]
    decisive = trip | clear
    on = np.empty(trip.shape, bool)
    on[:] = prev_on[:, None]
    if t == 0:
        return on
    n_decisive = np.count_nonzero(decisive, axis=1)
    every = np.flatnonzero(n_decisive == t)
    if every.size:
        on[every] = trip[every]
    some = np.flatnonzero((n_decisive > 0) & (n_decisive < t))
    if some.size:
        idx = np.where(decisive[some], np.arange(t, dtype=np.int32), -1)
        last = np.maximum.accumulate(idx, axis=1)
        decided = np.take_along_axis(trip[some], np.maximum(last, 0), axis=1)
        on[some] = np.where(last >= 0, decided, prev_on[some, None])
    return on


def run_start(
    on: NDArray[np.bool_],
    times: NDArray[np.int64],
    prev_on: NDArray[np.bool_],
    prev_start: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Time at which the current on-run began, per sample (undefined where `on` is False).

    Only rows where a run begins inside the block need work; the others carry `prev_start`.

    Examples
    --------
    >>> on = np.array([[False, True, True, False, True]])
    >>> t = np.arange(5, dtype=np.int64) * 10
    >>> run_start(on, t, np.array([False]), np.array([0]))[0, [1, 2, 4]]
    array([10, 10, 40])
    """
    n_t = on.shape[1]
    start = np.empty(on.shape, np.int64)
    start[:] = prev_start[:, None]
    if n_t == 0:
        return start
    rising = np.empty(on.shape, bool)
    np.greater(on[:, 1:], on[:, :-1], out=rising[:, 1:])       # on and not on before
    rising[:, 0] = on[:, 0] & ~prev_on
    rows = np.flatnonzero(rising.any(axis=1))
    if rows.size:
        idx = np.where(rising[rows], np.arange(n_t, dtype=np.int32), -1)
        last = np.maximum.accumulate(idx, axis=1)
        start[rows] = np.where(last >= 0, times[np.maximum(last, 0)], prev_start[rows, None])
    return start


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
    _param_names: ClassVar[tuple[str, ...]] = (
        "high_level", "clear_high_level", "low_level", "clear_low_level", "duration_us",
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
        check_at_least(channels, 0, name="channels")
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
        high_side: bool,
        fired_out: NDArray[np.bool_],
    ) -> None:
        """One side of the rule; writes where it fires into `fired_out` (left False elsewhere).

        Only channels whose switch is on, or that reach the trip level somewhere in the block,
        can change state or fire; the rest (nearly all of a healthy fleet) are skipped after one
        pass that takes each row's extreme. The low side compares ``x < low`` instead of
        ``-x > -low``: the same decisions without negating the block.
        """
        if high_side:
            trip_level, clear_level = self.high_level, self.clear_high_level
            prev_on, prev_start = self.on_high, self.start_high
        else:
            trip_level, clear_level = self.low_level, self.clear_low_level
            prev_on, prev_start = self.on_low, self.start_low
        if not (prev_on.any() or bool(np.any(~np.isnan(trip_level)))):
            return
        # Comparisons with NaN are False, so missing data and disabled sides never switch;
        # fmax/fmin skip NaN, so a row's extreme is that of its valid samples.
        with np.errstate(invalid="ignore"):
            if high_side:
                busy = np.fmax.reduce(x, axis=1) > trip_level
            else:
                busy = np.fmin.reduce(x, axis=1) < trip_level
        rows = np.flatnonzero(busy | prev_on)
        if rows.size == 0:
            return
        xr = x[rows]
        with np.errstate(invalid="ignore"):
            if high_side:
                trip = xr > trip_level[rows, None]
                clear = xr < clear_level[rows, None]
            else:
                trip = xr < trip_level[rows, None]
                clear = xr > clear_level[rows, None]
        on = hysteresis(trip, clear, prev_on[rows])
        start = run_start(on, times, prev_on[rows], prev_start[rows])
        fired_out[rows] = on & (times[None, :] - start >= self.duration_us[rows, None])
        prev_on[rows], prev_start[rows] = on[:, -1], start[:, -1]

    def update(self, times: ArrayLike, values: ArrayLike) -> LimitResult:
        """Process one block. `times`: int64 µs, shape (T,); `values`: shape (channels, T)."""
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        hi = np.zeros(x.shape, bool)
        lo = np.zeros(x.shape, bool)
        if x.shape[1]:
            self._side(t, x, True, hi)
            self._side(t, x, False, lo)
        missing = np.isnan(x)
        # Fresh zeros are untouched pages until written: only the rows that fired are filled.
        score = np.zeros(x.shape)
        fired = np.flatnonzero(hi.any(axis=1) | lo.any(axis=1))
        score[fired] = hi[fired] | lo[fired]
        if missing.any():
            score[missing] = np.nan
            hi &= ~missing
            lo &= ~missing
        return LimitResult(high=hi, low=lo, score=score)
