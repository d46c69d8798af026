"""Sensor and device health: stuck (flatline), out of physical range, spikes, no data.

These are *device* problems: a stuck thermometer says nothing about the pump it sits on, so the
fusion step reports them as ``kind="device"`` alerts and keeps them out of the equipment score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.baseline import _CHUNK_SAMPLES, _weight_before, ewma_with_prior, lagged_ewma
from anomaly.state import StreamingDetector
from anomaly.validation import (
    as_block,
    as_channel_param,
    as_times,
    check_at_least,
    check_positive,
    halflife_alpha,
)

_NEVER = np.iinfo(np.int64).min


def _rows(rows: slice | NDArray[np.intp], sub: NDArray[np.intp]) -> NDArray[np.intp]:
    """Absolute row numbers of `sub` (positions within `rows`)."""
    if isinstance(rows, slice):
        return np.asarray(sub + (rows.start or 0), dtype=np.intp)
    return np.asarray(rows[sub], dtype=np.intp)


def forward_fill(
    values: NDArray[np.float64], prior: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Replace each NaN by the last valid value before it (`prior` before the block).

    >>> forward_fill(np.array([[np.nan, 1.0, np.nan, 3.0]]), np.array([7.0]))
    array([[7., 1., 1., 3.]])
    """
    full = np.concatenate([prior[:, None], values], axis=1)
    idx = np.where(~np.isnan(full), np.arange(full.shape[1]), 0)
    return np.take_along_axis(full, np.maximum.accumulate(idx, axis=1), axis=1)[:, 1:]


@dataclass(frozen=True)
class HealthResult:
    """Per channel and sample: which device problem is present (False where no data)."""

    stuck: NDArray[np.bool_]
    out_of_range: NDArray[np.bool_]
    spike: NDArray[np.bool_]
    no_data: NDArray[np.bool_]

    def any(self) -> NDArray[np.bool_]:
        """Any problem, per channel and sample."""
        return self.stuck | self.out_of_range | self.spike | self.no_data


class SensorHealth(StreamingDetector):
    """Per-channel sensor checks.

    Parameters
    ----------
    channels : int
        Number of channels.
    phys_min, phys_max : float or array (channels,)
        Physically possible range of the sensor; NaN disables a side.
    stuck_s : float or array (channels,)
        A value that has not changed at all for this long is a stuck sensor (inf disables).
    no_data_s : float or array (channels,)
        No valid sample for this long is "no data" (the device or the sensor is offline).
    spike_k : float
        A sample that jumps more than `spike_k` times the typical step away from its neighbours
        *and back* is a spike (decided one sample later, so it stays causal).
    step_halflife : float
        Half-life (samples) of the typical absolute step.

    Examples
    --------
    >>> h = SensorHealth(1, phys_min=0, phys_max=100, stuck_s=3, no_data_s=5)
    >>> t = np.arange(8, dtype=np.int64) * 1_000_000
    >>> r = h.update(t, [[20, 21, 20, 120, 21, 21, 21, 21]])
    >>> r.out_of_range.astype(int)[0].tolist(), r.stuck.astype(int)[0].tolist()
    ([0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1])
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "phys_min", "phys_max", "stuck_us", "no_data_us", "last_value", "prev_value",
        "changed_at", "valid_at", "step_sum", "step_w", "steps_seen",
    )
    _param_names: ClassVar[tuple[str, ...]] = ("phys_min", "phys_max", "stuck_us", "no_data_us")
    phys_min: NDArray[Any]
    phys_max: NDArray[Any]
    stuck_us: NDArray[Any]
    no_data_us: NDArray[Any]
    last_value: NDArray[Any]
    prev_value: NDArray[Any]
    changed_at: NDArray[Any]
    valid_at: NDArray[Any]
    step_sum: NDArray[Any]
    step_w: NDArray[Any]
    steps_seen: NDArray[Any]

    def __init__(
        self,
        channels: int = 0,
        *,
        phys_min: ArrayLike = np.nan,
        phys_max: ArrayLike = np.nan,
        stuck_s: ArrayLike = np.inf,
        no_data_s: ArrayLike = np.inf,
        spike_k: float = 12.0,
        step_halflife: float = 100.0,
        warmup: int = 20,
    ) -> None:
        check_at_least(channels, 0, name="channels")
        self.spike_k = check_positive(spike_k, name="spike_k")
        self.alpha = halflife_alpha(step_halflife, name="step_halflife")
        self.warmup = int(warmup)
        state = self._initial_state(channels)
        state["phys_min"] = as_channel_param(phys_min, name="phys_min", channels=channels)
        state["phys_max"] = as_channel_param(phys_max, name="phys_max", channels=channels)
        for key, value in (("stuck_us", stuck_s), ("no_data_us", no_data_s)):
            sec = as_channel_param(value, name=key.replace("_us", "_s"), channels=channels)
            if bool(np.any(~(sec > 0))):
                raise ValueError(f"`{key.replace('_us', '_s')}` must be > 0")
            finite = np.round(np.where(np.isinf(sec), 0.0, np.minimum(sec, 1e12)) * 1e6)
            state[key] = np.where(np.isinf(sec), np.iinfo(np.int64).max,
                                  finite.astype(np.int64))
        self._set_state(state)

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {
            "phys_min": np.full(n, np.nan),
            "phys_max": np.full(n, np.nan),
            "stuck_us": np.full(n, np.iinfo(np.int64).max, np.int64),
            "no_data_us": np.full(n, np.iinfo(np.int64).max, np.int64),
            "last_value": np.full(n, np.nan),
            "prev_value": np.full(n, np.nan),
            "changed_at": np.full(n, _NEVER, np.int64),
            "valid_at": np.full(n, _NEVER, np.int64),
            "step_sum": np.zeros(n),
            "step_w": np.zeros(n),
            "steps_seen": np.zeros(n, np.int64),
        }

    def update(self, times: ArrayLike, values: ArrayLike) -> HealthResult:
        """Process one block. `times`: int64 µs (T,); `values`: (channels, T)."""
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        n_c, n_t = x.shape
        out = HealthResult(*(np.zeros((n_c, n_t), bool) for _ in range(4)))
        if n_t == 0:
            return out
        # Channels with no gap in the block (nearly all, most of the time) take the gap-free
        # path, the others the general one on their rows only. A channel's very first sample
        # has no value before it: it goes through the general path alone, the rest of its
        # block through the gap-free one (the state carries over exactly as between blocks).
        gap = np.isnan(x).any(axis=1)
        slow = np.flatnonzero(gap)
        if slow.size:
            self._general(x[slow], t, slow, out)
        first = np.flatnonzero(~gap & np.isnan(self.last_value))
        if first.size:
            self._general(x[first, :1], t[:1], first, HealthResult(
                out.stuck[:, :1], out.out_of_range[:, :1], out.spike[:, :1], out.no_data[:, :1]))
            if n_t > 1:
                self._dense_rows(x[:, 1:], t[1:], first, HealthResult(
                    out.stuck[:, 1:], out.out_of_range[:, 1:], out.spike[:, 1:],
                    out.no_data[:, 1:]))
        rest = None if not (slow.size or first.size) else np.flatnonzero(
            ~gap & ~np.isin(np.arange(n_c), first))
        self._dense_rows(x, t, rest, out)
        return out

    def _dense_rows(self, x: NDArray[np.float64], t: NDArray[np.int64],
                    rows: NDArray[np.intp] | None, out: HealthResult) -> None:
        """:meth:`_dense` on `rows` (None: all), in chunks that fit in the CPU cache."""
        n = x.shape[0] if rows is None else rows.size
        step = max(1, _CHUNK_SAMPLES // x.shape[1])
        for r0 in range(0, n, step):
            sel: slice | NDArray[np.intp] = (slice(r0, min(r0 + step, n)) if rows is None
                                             else rows[r0:r0 + step])
            self._dense(x[sel], t, sel, out)

    def _dense(self, x: NDArray[np.float64], t: NDArray[np.int64],
               rows: slice | NDArray[np.intp], out: HealthResult) -> None:
        """Rows without gaps and with a value before the block: every sample is valid,
        so there is nothing to forward-fill, no "no data", the step weights have a closed
        form, and the step into a sample is the step out of the one before."""
        n_t = x.shape[1]
        last_value, prev_value = self.last_value[rows], self.prev_value[rows]
        # step_out[t] = x[t] - x[t-1]; step_in[t] = step_out[t-1] (x[-1] = last_value, and
        # the step into it is last_value - prev_value).
        step_out = np.empty_like(x)
        np.subtract(x[:, 1:], x[:, :-1], out=step_out[:, 1:])
        step_out[:, 0] = x[:, 0] - last_value
        same = np.empty(x.shape, bool)
        np.equal(x[:, 1:], x[:, :-1], out=same[:, 1:])
        same[:, 0] = x[:, 0] == last_value
        # Stuck: only rows where some sample repeats the one before can be stuck.
        repeats = np.flatnonzero(same.any(axis=1))
        changed_at = np.full(x.shape[0], t[-1])
        if repeats.size:
            c_at = np.maximum.accumulate(np.where(same[repeats], _NEVER, t), axis=1)
            np.maximum(c_at, self.changed_at[rows][repeats, None], out=c_at)
            sub = _rows(rows, repeats)
            out.stuck[sub] = (c_at > _NEVER) & (t - c_at >= self.stuck_us[sub, None])
            changed_at[repeats] = c_at[:, -1]
        # Out of range: only rows whose extremes leave the range.
        lo_, hi_ = self.phys_min[rows], self.phys_max[rows]
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero((x.min(axis=1) < lo_) | (x.max(axis=1) > hi_))
        if bad.size:
            sub = _rows(rows, bad)
            xb = x[bad]
            out.out_of_range[sub] = (xb < lo_[bad, None]) | (xb > hi_[bad, None])
        # Spikes: large opposite steps into and out of the previous sample.
        step = np.abs(step_out)
        prev_sum, last_sum = lagged_ewma(step, self.alpha, self.step_sum[rows])
        prior_w = self.step_w[rows]
        decay = np.power(1.0 - self.alpha, np.arange(n_t), dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            typical = np.divide(prev_sum, _weight_before(decay, prior_w), out=prev_sum)
        np.maximum(typical, 1e-12, out=typical)
        lim = np.multiply(typical, self.spike_k, out=typical)
        big_out = step > lim
        big_in = np.empty_like(big_out)
        np.greater(step[:, :-1], lim[:, 1:], out=big_in[:, 1:])
        step_in0 = last_value - prev_value
        with np.errstate(invalid="ignore"):
            big_in[:, 0] = np.abs(step_in0) > lim[:, 0]
        np.logical_and(big_out, big_in, out=big_out)
        opposite = np.empty_like(big_out)
        np.less(step_out[:, 1:] * step_out[:, :-1], 0.0, out=opposite[:, 1:])
        with np.errstate(invalid="ignore"):
            opposite[:, 0] = step_in0 * step_out[:, 0] < 0.0
        np.logical_and(big_out, opposite, out=big_out)
        seen = self.steps_seen[rows]
        first_ok = np.maximum(self.warmup - seen, 0)       # seen after sample t: seen + t + 1
        late = np.flatnonzero(first_ok > 0)
        if late.size:
            big_out[late] &= np.arange(n_t)[None, :] >= first_ok[late, None]
        out.spike[rows] = big_out
        # State for the next block.
        self.prev_value[rows] = x[:, -2] if n_t > 1 else last_value
        self.last_value[rows] = x[:, -1]
        self.changed_at[rows] = changed_at
        self.valid_at[rows] = t[-1]
        self.step_sum[rows] = last_sum
        self.step_w[rows] = 1.0 - (1.0 - self.alpha) ** n_t * (1.0 - prior_w)
        self.steps_seen[rows] = seen + n_t

    def _general(self, x: NDArray[np.float64], t: NDArray[np.int64], rows: NDArray[np.intp],
                 out: HealthResult) -> None:
        """Any rows (gaps, never-seen channels): forward-fill the last valid value."""
        valid = ~np.isnan(x)
        last_value, prev_value = self.last_value[rows], self.prev_value[rows]
        last = forward_fill(x, last_value)                      # last valid value up to t
        before = np.concatenate([last_value[:, None], last[:, :-1]], axis=1)
        phys_min, phys_max = self.phys_min[rows, None], self.phys_max[rows, None]
        with np.errstate(invalid="ignore"):
            changed = valid & ~(x == before)
            out.out_of_range[rows] = valid & ((x < phys_min) | (x > phys_max))
        tt = np.broadcast_to(t, x.shape)
        changed_at = np.maximum.accumulate(np.where(changed, tt, _NEVER), axis=1)
        changed_at = np.maximum(changed_at, self.changed_at[rows, None])
        out.stuck[rows] = (valid & (changed_at > _NEVER)
                           & (tt - changed_at >= self.stuck_us[rows, None]))
        valid_at = np.maximum(np.maximum.accumulate(np.where(valid, tt, _NEVER), axis=1),
                              self.valid_at[rows, None])
        out.no_data[rows] = (~valid & (valid_at > _NEVER)
                             & (tt - valid_at >= self.no_data_us[rows, None]))
        # Spikes: the step into the previous valid sample and the step out of it are both large
        # and of opposite sign. Steps are measured between consecutive valid samples.
        before2 = np.concatenate([prev_value[:, None],
                                  forward_fill(np.where(valid, before, np.nan),
                                               prev_value)[:, :-1]], axis=1)
        step_in = before - before2
        step_out = x - before
        stepped = valid & ~np.isnan(step_out)
        step = np.abs(np.where(stepped, step_out, 0.0))
        w = stepped.astype(np.float64)
        step_sum, step_w = self.step_sum[rows], self.step_w[rows]
        s_step = ewma_with_prior(step, self.alpha, step_sum)
        s_w = ewma_with_prior(w, self.alpha, step_w)
        with np.errstate(invalid="ignore", divide="ignore"):
            typical = np.concatenate([(step_sum / step_w)[:, None],
                                      (s_step / s_w)[:, :-1]], axis=1)
        seen = self.steps_seen[rows, None] + np.cumsum(w, axis=1)
        lim = self.spike_k * np.maximum(typical, 1e-12)
        with np.errstate(invalid="ignore"):
            out.spike[rows] = (valid & (seen > self.warmup) & (np.abs(step_in) > lim)
                               & (np.abs(step_out) > lim)
                               & (np.sign(step_in) != np.sign(step_out)))
        # State for the next block.
        self.prev_value[rows] = np.where(valid[:, -1], before[:, -1], before2[:, -1])
        self.last_value[rows] = last[:, -1]
        self.changed_at[rows] = changed_at[:, -1]
        self.valid_at[rows] = valid_at[:, -1]
        self.step_sum[rows], self.step_w[rows] = s_step[:, -1], s_w[:, -1]
        self.steps_seen[rows] += w.sum(axis=1).astype(np.int64)

    def silent(self, now_us: int) -> NDArray[np.bool_]:
        """Channels with no valid sample for ``no_data_s`` up to `now_us` (a block with no rows
        at all cannot show this per sample)."""
        return (self.valid_at > _NEVER) & (now_us - self.valid_at >= self.no_data_us)


class ReportingSilence(StreamingDetector):
    """Per device: silent for longer than a few of its *own* reporting intervals.

    The interval is learned from the device's data: an EWMA (half-life ``halflife`` samples of
    the grid) of the time between samples with any reading, each gap clipped to twice the
    interval known so far so one outage does not teach that outages are normal. A device is
    silent where its last reading lies more than ``intervals`` times that interval (and at
    least ``min_silence_s``) behind the latest reading of the *fleet* (every device in the
    detector), once ``warmup`` gaps have been seen. Measured against the fleet, not the
    clock: when everything goes quiet at once (an ingest or broker outage, the end of a
    replay) no device is called offline; a device whose rate is not known yet never is.

    Examples
    --------
    >>> rs = ReportingSilence(2, intervals=3, warmup=3, min_silence_s=0)
    >>> t = np.arange(40, dtype=np.int64) * 1_000_000
    >>> has = np.stack([np.arange(40) % 5 == 0, np.arange(40) % 2 == 0])
    >>> has[0, 21:] = False                 # device 0 (every 5 s) falls silent after t = 20 s
    >>> off = rs.update(t, has)
    >>> int(np.argmax(off[0])), bool(off[0, :21].any()), bool(off[1].any())
    (36, False, False)
    >>> rs.interval_s().round(1).tolist()
    [5.0, 2.0]
    >>> later = rs.update(t + 40_000_000, np.zeros((2, 40), bool))  # then the whole fleet
    >>> bool(later[0].all()), bool(later[1].any())       # device 0 stays offline, 1 is not
    (True, False)
    """

    _state_names: ClassVar[tuple[str, ...]] = ("last_at", "sum_w", "sum_gap", "gaps")
    last_at: NDArray[Any]
    sum_w: NDArray[Any]
    sum_gap: NDArray[Any]
    gaps: NDArray[Any]

    def __init__(self, devices: int = 0, *, intervals: float = 3.0, halflife: float = 50.0,
                 warmup: int = 10, min_silence_s: float = 30.0) -> None:
        check_at_least(devices, 0, name="devices")
        self.intervals = check_positive(intervals, name="intervals")
        self.alpha = halflife_alpha(halflife, name="halflife")
        check_at_least(warmup, 1, name="warmup")
        self.warmup = int(warmup)
        if not min_silence_s >= 0:
            raise ValueError(f"`min_silence_s` must be >= 0, got {min_silence_s}")
        self.min_silence_us = float(min_silence_s) * 1e6
        self._set_state(self._initial_state(devices))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"last_at": np.full(n, _NEVER, np.int64), "sum_w": np.zeros(n),
                "sum_gap": np.zeros(n), "gaps": np.zeros(n, np.int64)}

    def interval_s(self) -> NDArray[np.float64]:
        """The learned reporting interval of every device in seconds (NaN: none yet)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.where(self.sum_w > 0, self.sum_gap / self.sum_w / 1e6, np.nan),
                              dtype=np.float64)

    def update(self, times: ArrayLike, has_data: ArrayLike) -> NDArray[np.bool_]:
        """`has_data` (devices, T): any reading of the device at that sample. Returns "silent
        for too long" per device and sample."""
        h = np.asarray(has_data, dtype=bool)
        if h.ndim != 2 or h.shape[0] != self.channels:
            raise ValueError(f"`has_data` must be shaped ({self.channels}, T), got {h.shape}")
        t = as_times(times, name="times", length=h.shape[1])
        if h.shape[1] == 0:
            return np.zeros(h.shape, bool)
        # Time of the last reading up to and including each sample, and before it.
        last = np.maximum.accumulate(np.where(h, t[None, :], _NEVER), axis=1)
        last = np.maximum(last, self.last_at[:, None])
        before = np.concatenate([self.last_at[:, None], last[:, :-1]], axis=1)
        known = self.sum_w > 0
        interval = np.where(known, self.sum_gap / np.where(known, self.sum_w, 1.0), np.inf)
        gap = np.where(h & (before != _NEVER), (t[None, :] - before).astype(np.float64), np.nan)
        gap = np.minimum(gap, 2.0 * interval[:, None])
        counted = ~np.isnan(gap)
        w = ewma_with_prior(counted.astype(np.float64), self.alpha, self.sum_w)
        g = ewma_with_prior(np.where(counted, gap, 0.0), self.alpha, self.sum_gap)
        gaps = self.gaps[:, None] + np.cumsum(counted, axis=1)
        # The interval as known before each sample decides it (lagged by one sample).
        w_b = np.concatenate([self.sum_w[:, None], w[:, :-1]], axis=1)
        g_b = np.concatenate([self.sum_gap[:, None], g[:, :-1]], axis=1)
        ready = np.concatenate([self.gaps[:, None], gaps[:, :-1]], axis=1) >= self.warmup
        with np.errstate(invalid="ignore", divide="ignore"):
            limit = np.maximum(self.intervals * g_b / w_b, self.min_silence_us)
        fleet = last.max(axis=0) if last.shape[0] else np.full(last.shape[1], _NEVER)
        silent = ready & (last != _NEVER) & ((fleet[None, :] - last) > limit)
        self.last_at, self.gaps = last[:, -1].copy(), gaps[:, -1].copy()
        self.sum_w, self.sum_gap = w[:, -1].copy(), g[:, -1].copy()
        return np.asarray(silent, dtype=np.bool_)


@dataclass(frozen=True)
class CounterResult:
    """(channels, T): ``counter`` a counter as far as known at the sample; ``moved`` the channel
    has changed value at least ``min_rises`` times so far (one that has not is a constant, such
    as a setpoint, whatever its value)."""

    counter: NDArray[np.bool_]
    moved: NDArray[np.bool_]


class CounterLearner(StreamingDetector):
    """Per channel: has it shown itself to be a *counter* (running hours, energy, cycles)? One
    that has risen at least `min_rises` times and never fallen. A counter standing still is a
    machine at rest, not a frozen sensor, and its level says nothing about the machine's
    condition; an equipment model names its counters, this learns them where none does. It
    also counts each channel's changes of value, which tells a constant from a frozen sensor.

    >>> cl = CounterLearner(2, min_rises=3)
    >>> t = np.arange(6, dtype=np.int64)
    >>> x = np.array([[1.0, 2.0, np.nan, 3.0, 4.0, 4.0], [5.0, 6.0, 7.0, 6.5, 8.0, 9.0]])
    >>> r = cl.update(t, x)
    >>> r.counter.astype(int).tolist(), r.moved.astype(int)[1].tolist()
    ([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]], [0, 0, 0, 1, 1, 1])
    """

    _state_names: ClassVar[tuple[str, ...]] = ("last", "rises", "fell", "moves")
    last: NDArray[Any]
    rises: NDArray[Any]
    fell: NDArray[Any]
    moves: NDArray[Any]

    def __init__(self, channels: int = 0, *, min_rises: int = 60) -> None:
        check_at_least(channels, 0, name="channels")
        check_at_least(min_rises, 1, name="min_rises")
        self.min_rises = int(min_rises)
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"last": np.full(n, np.nan), "rises": np.zeros(n, np.int64),
                "fell": np.zeros(n, bool), "moves": np.zeros(n, np.int64)}

    def update(self, times: ArrayLike, values: ArrayLike) -> CounterResult:
        """Learn from a block (channels, T) and say what is known at each of its samples."""
        x = as_block(values, name="values", channels=self.channels)
        as_times(times, name="times", length=x.shape[1])
        if x.shape[1] == 0:
            empty = np.zeros(x.shape, bool)
            return CounterResult(empty, empty)
        filled = forward_fill(x, self.last)
        prev = np.concatenate([self.last[:, None], filled[:, :-1]], axis=1)
        with np.errstate(invalid="ignore"):
            step = filled - prev                       # NaN before a channel's first value
        fresh = ~np.isnan(x) & ~np.isnan(step)
        rises = self.rises[:, None] + np.cumsum(fresh & (step > 0), axis=1)
        moves = self.moves[:, None] + np.cumsum(fresh & (step != 0), axis=1)
        fell = self.fell[:, None] | np.logical_or.accumulate(fresh & (step < 0), axis=1)
        self.last, self.rises = filled[:, -1].copy(), rises[:, -1].copy()
        self.moves, self.fell = moves[:, -1].copy(), fell[:, -1].copy()
        return CounterResult(np.asarray((rises >= self.min_rises) & ~fell, dtype=np.bool_),
                             np.asarray(moves >= self.min_rises, dtype=np.bool_))
