"""Sensor and device health: stuck (flatline), out of physical range, spikes, no data.

These are *device* problems: a stuck thermometer says nothing about the pump it sits on, so the
fusion step reports them as ``kind="device"`` alerts and keeps them out of the equipment score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.baseline import ewma_with_prior
from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_channel_param, as_times, check_positive

_NEVER = np.iinfo(np.int64).min


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
        if channels < 0:
            raise ValueError(f"`channels` must be >= 0, got {channels}")
        self.spike_k = check_positive(spike_k, name="spike_k")
        self.alpha = 1.0 - 0.5 ** (1.0 / check_positive(step_halflife, name="step_halflife"))
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
        n_t = x.shape[1]
        valid = ~np.isnan(x)
        if n_t == 0:
            empty = np.zeros(x.shape, bool)
            return HealthResult(empty, empty, empty, empty)
        last = forward_fill(x, self.last_value)                 # last valid value up to t
        before = np.concatenate([self.last_value[:, None], last[:, :-1]], axis=1)
        with np.errstate(invalid="ignore"):
            changed = valid & ~(x == before)
            out_of_range = valid & ((x < self.phys_min[:, None]) | (x > self.phys_max[:, None]))
        tt = np.broadcast_to(t, x.shape)
        changed_at = np.maximum.accumulate(np.where(changed, tt, _NEVER), axis=1)
        changed_at = np.maximum(changed_at, self.changed_at[:, None])
        stuck = valid & (changed_at > _NEVER) & (tt - changed_at >= self.stuck_us[:, None])
        valid_at = np.maximum(np.maximum.accumulate(np.where(valid, tt, _NEVER), axis=1),
                              self.valid_at[:, None])
        no_data = ~valid & (valid_at > _NEVER) & (tt - valid_at >= self.no_data_us[:, None])
        # Spikes: the step into the previous valid sample and the step out of it are both large
        # and of opposite sign. Steps are measured between consecutive valid samples.
        before2 = np.concatenate([self.prev_value[:, None],
                                  forward_fill(np.where(valid, before, np.nan),
                                               self.prev_value)[:, :-1]], axis=1)
        step_in = before - before2
        step_out = x - before
        step = np.abs(np.where(valid & ~np.isnan(step_out), step_out, 0.0))
        w = (valid & ~np.isnan(step_out)).astype(np.float64)
        s_step = ewma_with_prior(step, self.alpha, self.step_sum)
        s_w = ewma_with_prior(w, self.alpha, self.step_w)
        with np.errstate(invalid="ignore", divide="ignore"):
            typical = np.concatenate([(self.step_sum / self.step_w)[:, None],
                                      (s_step / s_w)[:, :-1]], axis=1)
        seen = self.steps_seen[:, None] + np.cumsum(w, axis=1)
        lim = self.spike_k * np.maximum(typical, 1e-12)
        with np.errstate(invalid="ignore"):
            spike = (valid & (seen > self.warmup) & (np.abs(step_in) > lim)
                     & (np.abs(step_out) > lim) & (np.sign(step_in) != np.sign(step_out)))
        # State for the next block.
        self.prev_value = np.where(valid[:, -1], before[:, -1], before2[:, -1])
        self.last_value = last[:, -1].copy()
        self.changed_at = changed_at[:, -1].copy()
        self.valid_at = valid_at[:, -1].copy()
        self.step_sum, self.step_w = s_step[:, -1].copy(), s_w[:, -1].copy()
        self.steps_seen = self.steps_seen + w.sum(axis=1).astype(np.int64)
        return HealthResult(stuck=stuck, out_of_range=out_of_range, spike=spike,
                            no_data=no_data)

    def silent(self, now_us: int) -> NDArray[np.bool_]:
        """Channels with no valid sample for ``no_data_s`` up to `now_us` (a block with no rows
        at all cannot show this per sample)."""
        return (self.valid_at > _NEVER) & (now_us - self.valid_at >= self.no_data_us)
