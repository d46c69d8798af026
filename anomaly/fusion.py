"""Fusion: per-asset anomaly score in [0, 1], a failure mode, and alerts that do not flap.

Every detector reports a *ratio* (1.0 = its own alarm threshold). A ratio ``r`` becomes the score
``1 - 2**(-r)``: 0 for nothing, 0.5 at the threshold, towards 1 for far beyond it, whatever the
detector. The asset's score is the largest of its channels'. An alert opens when the score reaches
``open_level`` and clears only after it has stayed below ``clear_level`` for ``clear_hold_s``, so a
persisting condition is one alert; its severity only escalates while it is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.limits import hysteresis, run_start
from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_times

# Metric-name keywords -> the equipment failure mode a deviation there points to, most
# specific first, as catalogue codes (what the simulator labels and the CRM's failure-mode
# catalogue use). An equipment model can override this per metric (``anomaly.models``).
FAILURE_MODES: tuple[tuple[str, str], ...] = (
    ("vibration", "bearing_wear"),
    ("accel", "bearing_wear"),
    ("bearing", "bearing_wear"),
    ("imbalance", "current_imbalance"),
    ("filter", "clogged_filter"),
    ("strainer", "clogged_filter"),
    ("temp", "overheating"),
    ("thermo", "overheating"),
    ("flow", "leak"),
    ("pressure", "leak"),
    ("current", "motor_overload"),
    ("power", "motor_overload"),
    ("voltage", "supply_fault"),
)
UNKNOWN_MODE = "abnormal_behaviour"
# Device problems, in the order of the bank's device-problem kinds. "sensor drift": a sensor
# whose reading has walked away from the truth, e.g. a vibration sensor that reads as if the
# machine ran while it stands still. "device offline": the whole device silent for longer than a
# few of its own reporting intervals.
DEVICE_PROBLEMS = ("sensor stuck", "sensor out of range", "sensor spikes", "no data",
                   "sensor drift", "device offline")
SEVERITIES = ("info", "warning", "critical")


def failure_mode_for(metric: str) -> str:
    """Failure mode suggested by a metric's name.

    >>> failure_mode_for("bearing_vibration_rms_mm_s"), failure_mode_for("level_m")
    ('bearing_wear', 'abnormal_behaviour')
    """
    name = metric.lower()
    for key, mode in FAILURE_MODES:
        if key in name:
            return mode
    return UNKNOWN_MODE


def ratio_to_score(ratio: ArrayLike) -> NDArray[np.float64]:
    """Map a detector ratio (1 = threshold) to [0, 1]; NaN stays NaN.

    >>> ratio_to_score([0.0, 1.0, 2.0, np.nan])
    array([0.  , 0.5 , 0.75,  nan])
    """
    r = np.asarray(ratio, dtype=np.float64)
    return np.where(np.isnan(r), np.nan, 1.0 - np.exp2(-np.clip(r, 0.0, 60.0)))


def reduce_max(
    x: NDArray[np.float64], order: NDArray[np.int64], starts: NDArray[np.int64], groups: int,
    group_of_start: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Row-wise max within groups of rows (rows `order`-sorted, groups starting at `starts`);
    NaN counts as 0, groups without rows are 0.

    >>> x = np.array([[1.0, 0.2], [0.5, 0.9], [np.nan, 0.1]])
    >>> reduce_max(x, np.array([0, 2, 1]), np.array([0, 2]), 2, np.array([0, 1]))
    array([[1. , 0.2],
           [0.5, 0.9]])
    """
    out = np.zeros((groups, x.shape[1]))
    if starts.size and x.shape[1]:
        out[group_of_start] = np.maximum.reduceat(np.nan_to_num(x[order], nan=0.0), starts,
                                                  axis=0)
    return out


def reduce_argmax(
    x: NDArray[np.float64], label: NDArray[np.int64], order: NDArray[np.int64],
    starts: NDArray[np.int64], groups: int, group_of_start: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per group and column: the largest `x` of its rows (-1 for a group without rows) and the
    `label` (per row, or per row and column) of that row, the last row on a tie (grouped as in
    :func:`reduce_max`; `x` must hold no NaN). Group maxima, no sort per column.

    >>> x = np.array([[1.0, 0.2], [0.5, 0.9], [0.0, 0.2]])     # rows 0 and 2 tie in column 1
    >>> top, pick = reduce_argmax(x, np.array([7, 8, 9]), np.array([0, 2, 1]),
    ...                           np.array([0, 2]), 3, np.array([0, 1]))
    >>> top.tolist(), pick.tolist()
    ([[1.0, 0.2], [0.5, 0.9], [-1.0, -1.0]], [[7, 9], [8, 8], [0, 0]])
    """
    top = np.full((groups, x.shape[1]), -1.0)
    pick = np.zeros((groups, x.shape[1]), np.int64)
    if starts.size and x.shape[1]:
        xs = x[order]
        top_g = np.maximum.reduceat(xs, starts, axis=0)
        sizes = np.diff(np.r_[starts, xs.shape[0]])
        at_top = xs == np.repeat(top_g, sizes, axis=0)
        pos = np.maximum.reduceat(
            np.where(at_top, np.arange(xs.shape[0], dtype=np.int32)[:, None], -1),
            starts, axis=0)
        rows = order[pos]
        top[group_of_start] = top_g
        pick[group_of_start] = (label[rows] if label.ndim == 1
                                else np.take_along_axis(label, rows, axis=0))
    return top, pick


@dataclass(frozen=True)
class Transition:
    """One alert event to publish: which asset, at which sample, and what happened."""

    asset: int
    sample: int
    state: str
    severity: str
    score: float
    opened_at_us: int
    revision: int
    mode: int


class AlertTracker(StreamingDetector):
    """Open/update/clear decisions per asset from its score, with hysteresis and a hold time.

    Examples
    --------
    >>> tr = AlertTracker(1, clear_hold_s=2)
    >>> t = np.arange(8, dtype=np.int64) * 1_000_000
    >>> ev = tr.update(t, [[0.1, 0.6, 0.2, 0.6, 0.9, 0.1, 0.1, 0.1]], np.zeros((1, 8), np.int64))
    >>> [(e.sample, e.state, e.severity) for e in ev]
    [(1, 'open', 'warning'), (4, 'update', 'critical'), (7, 'clear', 'critical')]
    """

    _state_names: ClassVar[tuple[str, ...]] = (
        "on", "opened_at", "revision", "level", "below_since", "below", "mode",
    )
    on: NDArray[Any]
    opened_at: NDArray[Any]
    revision: NDArray[Any]
    level: NDArray[Any]
    below_since: NDArray[Any]
    below: NDArray[Any]
    mode: NDArray[Any]

    def __init__(
        self,
        assets: int = 0,
        *,
        open_level: float = 0.5,
        clear_level: float = 0.3,
        critical_level: float = 0.8,
        clear_hold_s: float = 60.0,
    ) -> None:
        if not 0 <= clear_level <= open_level <= critical_level <= 1:
            raise ValueError("need 0 <= clear_level <= open_level <= critical_level <= 1")
        self.open_level, self.clear_level = float(open_level), float(clear_level)
        self.critical_level = float(critical_level)
        self.clear_hold_us = int(round(clear_hold_s * 1e6))
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {
            "on": np.zeros(n, bool),
            "opened_at": np.zeros(n, np.int64),
            "revision": np.zeros(n, np.int64),
            "level": np.zeros(n, np.int64),
            "below_since": np.zeros(n, np.int64),
            "below": np.zeros(n, bool),
            "mode": np.zeros(n, np.int64),
        }

    def update(self, times: ArrayLike, score: ArrayLike, mode: ArrayLike) -> list[Transition]:
        """Advance over a block of asset scores (assets, T) with the failure mode index each
        sample points to; return the transitions in time order."""
        s = as_block(score, name="score", channels=self.channels)
        t = as_times(times, name="times", length=s.shape[1])
        m = np.asarray(mode, dtype=np.int64)
        if m.shape != s.shape:
            raise ValueError(f"`mode` must be shaped {s.shape}, got {m.shape}")
        n_t = s.shape[1]
        if n_t == 0:
            return []
        ok = ~np.isnan(s)
        below = ok & (s < self.clear_level)
        start = run_start(below, t, self.below, self.below_since)
        clear = below & (t[None, :] - start >= self.clear_hold_us)
        on = hysteresis(ok & (s >= self.open_level), clear, self.on)
        prev = np.concatenate([self.on[:, None], on[:, :-1]], axis=1)
        opens, clears = on & ~prev, ~on & prev
        lvl = np.where(on, np.where(s >= self.critical_level, 2, 1), 0)
        # Severity only escalates within one alert: a running max that restarts at each open.
        run = np.cumsum(opens, axis=1)
        carried = np.where(run == 0, self.level[:, None], 0)
        esc = np.maximum.accumulate(np.maximum(lvl, carried) + 3 * run, axis=1) - 3 * run
        esc = np.where(on, esc, 0)
        prev_esc = np.concatenate([self.level[:, None], esc[:, :-1]], axis=1)
        ups = on & ~opens & (esc > prev_esc)
        events: list[Transition] = []
        opened_at, revision = self.opened_at.copy(), self.revision.copy()
        cur_mode, level = self.mode.copy(), self.level.copy()
        a_idx, t_idx = np.nonzero(opens | clears | ups)
        # Loop over *events* (rare), never over samples or channels.
        for k in np.argsort(t_idx, kind="stable"):
            a, i = int(a_idx[k]), int(t_idx[k])
            if opens[a, i]:
                opened_at[a], revision[a], cur_mode[a] = t[i], 0, m[a, i]
                state = "open"
                level[a] = esc[a, i]
            elif clears[a, i]:
                revision[a] += 1
                state = "clear"
            else:
                revision[a] += 1
                state = "update"
                level[a] = esc[a, i]
            events.append(Transition(
                asset=a, sample=i, state=state, severity=SEVERITIES[max(int(level[a]), 1)],
                score=float(np.nan_to_num(s[a, i])), opened_at_us=int(opened_at[a]),
                revision=int(revision[a]), mode=int(cur_mode[a])))
        self.on, self.level = on[:, -1].copy(), esc[:, -1].copy()
        self.below, self.below_since = below[:, -1].copy(), start[:, -1].copy()
        self.opened_at, self.revision, self.mode = opened_at, revision, cur_mode
        return events
