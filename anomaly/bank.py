"""The streaming detector bank: every channel of the fleet in one (channels, time) array.

Per channel: limit rules (duration + hysteresis), an adaptive EWMA baseline (per hour of day for
metrics with a daily cycle), two-sided CUSUM for slow drift, and sensor health. Per asset: the
fused equipment score and failure mode, and the device-problem flag, each with an
:class:`~anomaly.fusion.AlertTracker` so one persisting condition is one alert.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.baseline import EwmaBaseline
from anomaly.drift import Cusum
from anomaly.fusion import (
    DEVICE_PROBLEMS,
    AlertTracker,
    Transition,
    failure_mode_for,
    ratio_to_score,
    reduce_max,
)
from anomaly.health import HealthResult, SensorHealth
from anomaly.limits import LimitRule
from anomaly.state import StreamingDetector
from anomaly.validation import as_block, as_times

NAN = float("nan")


@dataclass(frozen=True)
class ChannelSpec:
    """One (asset, metric) channel and its configuration from the equipment model."""

    asset: str
    metric: str
    high: float = NAN
    clear_high: float | None = None
    low: float = NAN
    clear_low: float | None = None
    duration_s: float = 0.0
    phys_min: float = NAN
    phys_max: float = NAN
    min_std: float = 1e-6
    daily: bool = False


@dataclass(frozen=True)
class BankConfig:
    """Settings shared by every channel (the per-channel ones live in :class:`ChannelSpec`)."""

    z_limit: float = 8.0
    baseline_halflife: float = 600.0
    baseline_warmup: int = 120
    cusum_k: float = 1.0
    cusum_h: float = 40.0
    cusum_warmup: int = 600
    stuck_s: float = 900.0
    no_data_s: float = 300.0
    clear_hold_s: float = 120.0


@dataclass(frozen=True)
class BankResult:
    """One block's output: per-channel detector ratios (1 = threshold), per-asset scores."""

    limit: NDArray[np.float64]
    baseline: NDArray[np.float64]
    baseline_mean: NDArray[np.float64]
    cusum: NDArray[np.float64]
    health: HealthResult
    channel_score: NDArray[np.float64]
    asset_score: NDArray[np.float64]
    asset_mode: NDArray[np.int64]
    device_score: NDArray[np.float64]
    device_mode: NDArray[np.int64]
    equipment_events: list[Transition] = field(default_factory=list)
    device_events: list[Transition] = field(default_factory=list)


class DetectorBank:
    """All detectors of a fleet; channels can be added as devices appear.

    Examples
    --------
    >>> specs = [ChannelSpec("pump-1", "temp_c", high=95, clear_high=90, duration_s=5),
    ...          ChannelSpec("pump-1", "flow_l_min"), ChannelSpec("pump-2", "temp_c")]
    >>> bank = DetectorBank(specs, BankConfig(clear_hold_s=5))
    >>> rng = np.random.default_rng(42)
    >>> x = rng.normal([[70.0], [30.0], [70.0]], 0.5, (3, 600))
    >>> x[0, 400:] = 99.0                       # pump-1 overheats from t = 400 s on
    >>> r = bank.update(np.arange(600, dtype=np.int64) * 1_000_000, x)
    >>> [(e.asset, e.state, bank.modes[e.mode]) for e in r.equipment_events]
    [(0, 'open', 'overheating')]
    """

    def __init__(self, specs: Sequence[ChannelSpec] = (), config: BankConfig | None = None) -> None:
        self.config = config or BankConfig()
        c = self.config
        self.specs: list[ChannelSpec] = []
        self.assets: list[str] = []
        self.modes: list[str] = ["abnormal behaviour"]
        self.limit = LimitRule(0)
        self.baseline = EwmaBaseline(0, halflife=c.baseline_halflife, warmup=c.baseline_warmup)
        self.daily = EwmaBaseline(0, halflife=c.baseline_halflife, warmup=c.baseline_warmup,
                                  slots_per_day=96)
        self.cusum = Cusum(0, k=c.cusum_k, h=c.cusum_h, warmup=c.cusum_warmup,
                           z_clip=2 * c.cusum_k)
        self.health = SensorHealth(0, stuck_s=c.stuck_s, no_data_s=c.no_data_s)
        self.equipment = AlertTracker(0, clear_hold_s=c.clear_hold_s)
        self.device = AlertTracker(0, clear_hold_s=c.clear_hold_s)
        self._index()
        self.add(specs)

    # ----------------------------------------------------------------- channels
    def _index(self) -> None:
        asset_idx = np.array([self.assets.index(s.asset) for s in self.specs], np.int64)
        self.asset_of = asset_idx
        self.mode_of = np.array([self.modes.index(failure_mode_for(s.metric))
                                 for s in self.specs], np.int64)
        self.daily_rows = np.array([i for i, s in enumerate(self.specs) if s.daily], np.int64)
        self._order = np.argsort(asset_idx, kind="stable")
        sorted_assets = asset_idx[self._order]
        self._starts = np.flatnonzero(np.r_[True, sorted_assets[1:] != sorted_assets[:-1]]) \
            if sorted_assets.size else np.zeros(0, np.int64)
        self._group = sorted_assets[self._starts] if sorted_assets.size else self._starts

    def add(self, specs: Sequence[ChannelSpec]) -> None:
        """Append channels (a new device or metric); their detectors start fresh."""
        specs = [s for s in specs if (s.asset, s.metric) not in self.keys()]
        if not specs:
            return
        n = len(specs)
        new_assets = [a for a in dict.fromkeys(s.asset for s in specs) if a not in self.assets]
        self.assets += new_assets
        for s in specs:
            mode = failure_mode_for(s.metric)
            if mode not in self.modes:
                self.modes.append(mode)
        col = {k: np.array([getattr(s, k) for s in specs], np.float64)
               for k in ("high", "low", "duration_s", "phys_min", "phys_max", "min_std")}
        chi = np.array([s.high if s.clear_high is None else s.clear_high for s in specs])
        clo = np.array([s.low if s.clear_low is None else s.clear_low for s in specs])
        self.limit.add_channels(n, high_level=col["high"], clear_high_level=chi,
                                low_level=col["low"], clear_low_level=clo,
                                duration_us=np.round(col["duration_s"] * 1e6).astype(np.int64))
        self.baseline.add_channels(n, min_std=col["min_std"])
        self.daily.add_channels(n, min_std=col["min_std"])
        self.cusum.add_channels(n, min_std=col["min_std"])
        inf = np.iinfo(np.int64).max
        self.health.add_channels(
            n, phys_min=col["phys_min"], phys_max=col["phys_max"],
            stuck_us=np.full(n, inf if np.isinf(self.config.stuck_s)
                             else int(self.config.stuck_s * 1e6), np.int64),
            no_data_us=np.full(n, inf if np.isinf(self.config.no_data_s)
                               else int(self.config.no_data_s * 1e6), np.int64))
        self.equipment.add_channels(len(new_assets))
        self.device.add_channels(len(new_assets))
        self.specs += specs
        self._index()

    def keys(self) -> list[tuple[str, str]]:
        """(asset, metric) of every channel, in row order."""
        return [(s.asset, s.metric) for s in self.specs]

    @property
    def channels(self) -> int:
        return len(self.specs)

    # ---------------------------------------------------------------- streaming
    def update(self, times: ArrayLike, values: ArrayLike) -> BankResult:
        """Process one block: `times` int64 µs (T,), `values` (channels, T), NaN = no data."""
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        c = self.config
        lim = self.limit.update(t, x).score
        base = self.baseline.update(t, x)
        z, mean = base.z, base.mean
        if self.daily_rows.size:
            d = self.daily.update(t, x[self.daily_rows])
            z[self.daily_rows], mean[self.daily_rows] = d.z, d.mean
        base_ratio = np.abs(z) / c.z_limit
        drift = self.cusum.update(t, x).score
        health = self.health.update(t, x)
        problem = health.any()
        # A sick sensor is a device problem: its readings are not evidence about the equipment.
        ratio = np.fmax(np.fmax(lim, base_ratio), drift)
        chan = np.where(problem, 0.0, ratio_to_score(ratio))
        n_a = len(self.assets)
        asset = reduce_max(chan, self._order, self._starts, n_a, self._group)
        # Failure mode: the mode of the strongest channel of the asset at that sample.
        best = np.full((n_a, x.shape[1]), -1.0)
        mode = np.zeros((n_a, x.shape[1]), np.int64)
        if self.channels and x.shape[1]:
            val = np.nan_to_num(chan, nan=0.0)
            # Rows in ascending score per column, so the last write per asset is the strongest.
            rank = np.argsort(val, axis=0, kind="stable")
            cols = np.broadcast_to(np.arange(x.shape[1]), rank.shape)
            mode[self.asset_of[rank], cols] = self.mode_of[rank]
            best[self.asset_of[rank], cols] = val[rank, cols]
        kinds = np.stack([health.stuck, health.out_of_range, health.spike, health.no_data])
        dev_ch = np.where(kinds.any(axis=0), 1.0, 0.0)
        dev_kind = np.argmax(kinds, axis=0)
        device = reduce_max(dev_ch, self._order, self._starts, n_a, self._group)
        dev_mode = np.zeros((n_a, x.shape[1]), np.int64)
        if self.channels and x.shape[1]:
            rank = np.argsort(dev_ch, axis=0, kind="stable")
            cols = np.broadcast_to(np.arange(x.shape[1]), rank.shape)
            dev_mode[self.asset_of[rank], cols] = dev_kind[rank, cols]
        eq_events = self.equipment.update(t, asset, mode)
        dv_events = self.device.update(t, device, dev_mode)
        return BankResult(limit=lim, baseline=base_ratio, baseline_mean=mean, cusum=drift,
                          health=health, channel_score=chan, asset_score=asset, asset_mode=mode,
                          device_score=device, device_mode=dev_mode,
                          equipment_events=eq_events, device_events=dv_events)

    def device_problem(self, index: int) -> str:
        return DEVICE_PROBLEMS[index]

    # --------------------------------------------------------------- checkpoint
    def _parts(self) -> dict[str, StreamingDetector]:
        return {"limit": self.limit, "baseline": self.baseline, "daily": self.daily,
                "cusum": self.cusum, "health": self.health, "equipment": self.equipment,
                "device": self.device}

    def to_bytes(self) -> bytes:
        """Every detector's state as one ``.npz`` (no pickle); channel keys included."""
        arrays: dict[str, NDArray[Any]] = {
            "keys": np.array([f"{a}\x1f{m}" for a, m in self.keys()], dtype=np.str_),
            "assets": np.array(self.assets, dtype=np.str_),
        }
        for name, part in self._parts().items():
            for key, arr in part.state_dict().items():
                arrays[f"{name}.{key}"] = arr
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, specs: Sequence[ChannelSpec], config: BankConfig | None = None
    ) -> DetectorBank:
        """Restore a checkpoint written by :meth:`to_bytes`; `specs` give the channels' config
        (matched by key) and may add channels the checkpoint did not know."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        keys = [tuple(str(k).split("\x1f", 1)) for k in arrays["keys"]]
        by_key = {(s.asset, s.metric): s for s in specs}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise ValueError(f"checkpoint has channels without a spec: {missing[:3]}")
        bank = cls([by_key[(k[0], k[1])] for k in keys], config)
        if [str(a) for a in arrays["assets"]] != bank.assets:
            raise ValueError("checkpoint assets do not match its channels")
        for name, part in bank._parts().items():
            prefix = f"{name}."
            part.load_state({k[len(prefix):]: v for k, v in arrays.items()
                             if k.startswith(prefix)})
        known = set(keys)
        bank.add([s for s in specs if (s.asset, s.metric) not in known])
        return bank
