"""Fault catalogue, ground-truth labels and their vectorised effects.

Two kinds of fault, because they call for different responses from the service desk
(the ``kind`` column of the ground truth):

* ``equipment``: the machine degrades (bearing wear, cooling failure, leak, clogged filter,
  cavitation, current imbalance). Severity grows from 0 at ``onset`` to 1 at ``failure_at``
  as ``((t - onset) / (failure_at - onset)) ** shape``; at ``failure_at`` the machine trips
  (stops) unless ``trip: false``, until ``end_at`` (the repair).
* ``device``: the machine is fine, the telemetry lies: one channel (``metric``) is stuck,
  drifts, spikes or drops out, or the whole device goes offline or its clock is skewed.

Each injected fault is one :class:`FaultLabel`; the same labels drive the generator, so the
labels file is the ground truth by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEVICE_FAULTS",
    "EQUIPMENT_FAULTS",
    "FAULT_KIND",
    "FaultLabel",
    "FaultArrays",
    "SENSOR_FAULTS",
    "severity",
]

F64 = NDArray[np.float64]
FaultKind = Literal["equipment", "device"]

EQUIPMENT_FAULTS = (
    "bearing_wear",
    "cooling_failure",
    "leak",
    "clogged_filter",
    "cavitation",
    "current_imbalance",
)
SENSOR_FAULTS = ("stuck_value", "drift", "spikes", "dropout")
DEVICE_FAULTS = ("device_offline", "clock_skew")

FAULT_KIND: dict[str, FaultKind] = {
    **{f: "equipment" for f in EQUIPMENT_FAULTS},
    **{f: "device" for f in SENSOR_FAULTS},
    **{f: "device" for f in DEVICE_FAULTS},
}

#: Parameters each fault accepts (others are rejected by the scenario loader).
FAULT_PARAMS: dict[str, frozenset[str]] = {
    **{f: frozenset({"shape", "ramp_s", "trip"}) for f in EQUIPMENT_FAULTS},
    "stuck_value": frozenset(),
    "drift": frozenset({"rate_per_h"}),
    "spikes": frozenset({"probability", "magnitude"}),
    "dropout": frozenset({"probability"}),
    "device_offline": frozenset(),
    "clock_skew": frozenset({"skew_s"}),
}


@dataclass(frozen=True)
class FaultLabel:
    """Ground truth for one injected fault on one device (times are aware UTC).

    ``failure_at`` is when an equipment fault reaches full severity and the machine trips
    (None: it never fails within the run); ``end_at`` is the repair (None: never).
    ``metric`` names the lying channel of a stuck/drift/spikes/dropout fault.
    """

    device: str
    fault: str
    onset: datetime
    failure_at: datetime | None = None
    end_at: datetime | None = None
    metric: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fault not in FAULT_KIND:
            raise ValueError(
                f"unknown fault {self.fault!r}; known: {', '.join(FAULT_KIND)}"
            )
        if self.onset.tzinfo is None:
            raise ValueError("`onset` must be timezone-aware")
        if (self.metric is None) != (self.fault not in SENSOR_FAULTS):
            raise ValueError(f"fault {self.fault!r} needs a metric exactly when it is one of "
                             f"{', '.join(SENSOR_FAULTS)}")
        unknown = set(self.params) - FAULT_PARAMS[self.fault]
        if unknown:
            raise ValueError(
                f"fault {self.fault!r} takes no parameter {sorted(unknown)[0]!r}; it takes: "
                f"{', '.join(sorted(FAULT_PARAMS[self.fault])) or 'none'}"
            )
        for name, when in (("failure_at", self.failure_at), ("end_at", self.end_at)):
            if when is not None and when < self.onset:
                raise ValueError(f"`{name}` of {self.fault} on {self.device} is before its onset")

    @property
    def kind(self) -> FaultKind:
        return FAULT_KIND[self.fault]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO 8601 times), as written to the labels file."""

        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat().replace("+00:00", "Z")

        return {
            "device": self.device, "fault": self.fault, "kind": self.kind,
            "metric": self.metric, "onset": iso(self.onset),
            "failure_at": iso(self.failure_at), "end_at": iso(self.end_at),
            "params": dict(self.params),
        }


def severity(
    t_s: F64, onset_s: F64, failure_s: F64, end_s: F64, ramp_s: F64, shape: F64
) -> F64:
    """Fault severity in [0, 1] for every step and fault.

    Parameters
    ----------
    t_s : ndarray, shape (T,)
        Epoch seconds.
    onset_s, failure_s, end_s, ramp_s, shape : ndarray, shape (F,)
        Per fault. ``failure_s`` NaN means no failure: severity reaches 1 after ``ramp_s``.
        ``end_s`` inf means the fault lasts to the end of the run.

    Returns
    -------
    ndarray, shape (T, F)
        0 before onset and from ``end_s`` on, rising as ``x ** shape`` in between.

    Examples
    --------
    >>> severity(np.array([0., 5., 10., 20.]), np.array([0.]), np.array([10.]),
    ...          np.array([15.]), np.array([1.]), np.array([1.])).ravel().tolist()
    [0.0, 0.5, 1.0, 0.0]
    """
    top = np.where(np.isnan(failure_s), onset_s + ramp_s, failure_s)
    width = np.maximum(top - onset_s, 1e-9)
    tt = t_s[:, None]
    x = np.clip((tt - onset_s) / width, 0.0, 1.0) ** shape
    active = (tt >= onset_s) & (tt < end_s)
    return np.where(active, x, 0.0)


@dataclass
class FaultArrays:
    """All faults of one type within one device group, as arrays (one entry per fault)."""

    fault: str
    device_idx: NDArray[np.int64]
    onset_s: F64
    failure_s: F64
    end_s: F64
    ramp_s: F64
    shape: F64
    trip: NDArray[np.bool_]
    channel_idx: NDArray[np.int64]
    amount: F64  # drift rate/h, spike magnitude, clock skew s (by fault type)
    probability: F64
    stuck_value: F64  # captured at onset for stuck_value; NaN until then

    def window(self, t_s: F64) -> NDArray[np.bool_]:
        """(T, F): whether each fault is active at each step."""
        tt = t_s[:, None]
        return np.asarray((tt >= self.onset_s) & (tt < self.end_s), dtype=np.bool_)

    def severity(self, t_s: F64) -> F64:
        return severity(t_s, self.onset_s, self.failure_s, self.end_s, self.ramp_s, self.shape)

    def tripped(self, t_s: F64) -> NDArray[np.bool_]:
        """(T, F): failed and tripped (machine stopped) at each step."""
        tt = t_s[:, None]
        failed = (tt >= self.failure_s) & (tt < self.end_s) & self.trip
        return np.asarray(failed, dtype=np.bool_)
