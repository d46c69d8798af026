"""The worker's detector bank run over columns read from files (NAB, SKAB, any CSV).

The detect worker pivots the store into a ``(channels, time)`` block per step and calls
:meth:`DetectorBank.update`; :func:`run_bank` does the same with columns that are already in
memory, in blocks of the worker's size, so a benchmark figure describes the bank and fusion the
product runs, not a separate code path. What comes back is what the worker turns into alerts:
per asset the fused score and whether an equipment alert is open at each sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.bank import BankConfig, ChannelSpec, DetectorBank
from anomaly.validation import as_block, as_times

#: Samples per block, as the worker's default slice (600 s at 1 s).
BLOCK = 600


@dataclass(frozen=True)
class OfflineResult:
    """Per asset (bank order) and sample: the fused equipment score in [0, 1] (0 where the bank
    has no score), whether an equipment alert is open, and whether a device alert is open."""

    assets: list[str]
    score: NDArray[np.float64]
    alert: NDArray[np.bool_]
    device_alert: NDArray[np.bool_]


def _open_state(events: Sequence[tuple[int, int, str]], assets: int, n: int) -> NDArray[np.bool_]:
    """Per asset and sample: is an alert open, from (asset, sample, state) transitions in time
    order (a loop over events, which are rare, never over samples)."""
    delta = np.zeros((assets, n + 1), np.int64)
    for a, i, state in events:
        if state == "open":
            delta[a, i] += 1
        elif state == "clear":
            delta[a, i] -= 1
    return np.asarray(np.cumsum(delta, axis=1)[:, :n] > 0, dtype=np.bool_)


def run_bank(specs: Sequence[ChannelSpec], times: ArrayLike, values: ArrayLike,
             config: BankConfig | None = None, *, block: int = BLOCK,
             extra: Mapping[str, tuple[ArrayLike, str]] | None = None) -> OfflineResult:
    """Stream `values` (channels in `specs` order, T) at `times` (int64 µs, T) through a fresh
    :class:`DetectorBank` in blocks of `block` samples.

    `extra` is per-asset evidence from a detector outside the bank, fused as the worker fuses
    its bearing check (``DetectorBank.update(..., extra=)``): name -> (score (assets, T) in
    [0, 1], NaN = none; the failure mode it points to).

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> x = rng.normal(20.0, 0.5, (1, 3000))
    >>> x[0, 2000:] += 10.0                     # a step the adaptive baseline has not seen
    >>> r = run_bank([ChannelSpec("m1", "temp_c")], np.arange(3000) * 1_000_000, x)
    >>> bool(r.alert[0, :2000].any()), bool(r.alert[0, 2000:2010].any())
    (False, True)
    """
    x = as_block(values, name="values", channels=len(specs))
    t = as_times(times, name="times", length=x.shape[1])
    if block < 1:
        raise ValueError(f"`block` must be >= 1, got {block}")
    bank = DetectorBank(specs, config)
    n_a, n = len(bank.assets), x.shape[1]
    evidence = {name: (np.asarray(sc, dtype=np.float64),
                       np.full((n_a, n), bank.mode_index(mode), np.int64))
                for name, (sc, mode) in (extra or {}).items()}
    score = np.zeros((n_a, n))
    eq: list[tuple[int, int, str]] = []
    dev: list[tuple[int, int, str]] = []
    for lo in range(0, n, block):            # blocks, as the worker's steps; not samples
        hi = min(lo + block, n)
        r = bank.update(t[lo:hi], x[:, lo:hi],
                        extra={k: (sc[:, lo:hi], m[:, lo:hi]) for k, (sc, m) in evidence.items()})
        score[:, lo:hi] = np.nan_to_num(r.asset_score, nan=0.0)
        eq += [(e.asset, lo + e.sample, e.state) for e in r.equipment_events]
        dev += [(e.asset, lo + e.sample, e.state) for e in r.device_events]
    return OfflineResult(assets=list(bank.assets), score=score, alert=_open_state(eq, n_a, n),
                         device_alert=_open_state(dev, n_a, n))
