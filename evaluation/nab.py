"""NAB (Numenta Anomaly Benchmark): reading its files, running the detector, writing results.

For detector ``D`` the results of data file ``<category>/<name>.csv`` go to
``OUT/D/<category>/D_<name>.csv`` with columns ``timestamp,value,anomaly_score,label``, one row
per data row.

The detector is the worker's :class:`~anomaly.bank.DetectorBank` (through
:func:`evaluation.offline.run_bank`): each file is one channel of an unknown machine, with what a
channel gets when no equipment model describes it (no limits, no sensor-health assumptions: a
server metric may sit flat or jump), and calibrated scores (:mod:`anomaly.likelihood`). A row's
``anomaly_score`` is the fused score where the bank *opens* an alert and 0 elsewhere: what the
product raises, once per persisting condition, at its one fixed open level (0.5). Nothing is
fitted per file; one :class:`NabSettings` serves every file. Labels are read only to fill the
``label`` column and to score, never by the detector.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from anomaly.bank import BankConfig, ChannelSpec
from evaluation.nab_score import PROFILES, CorpusScore, corpus_score
from evaluation.offline import run_bank

DETECTOR = "aftercare"


@dataclass(frozen=True)
class NabFile:
    """One NAB data file: its key (``<category>/<name>.csv``), timestamps and values."""

    key: str
    timestamps: tuple[str, ...]
    times_us: NDArray[np.int64]
    values: NDArray[np.float64]


def _parse_time(text: str) -> int:
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # NAB timestamps carry no zone; they are read as UTC
    return int(dt.timestamp() * 1_000_000)


def read_nab(path: Path, key: str) -> NabFile:
    """Read a ``timestamp,value`` CSV; an empty or non-numeric value is NaN ("no data")."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise ValueError(f"{path}: header must be `timestamp,value`")
    body = [r for r in rows[1:] if r]
    try:
        times = np.array([_parse_time(r[0]) for r in body], np.int64)
    except ValueError:
        raise ValueError(f"{path}: a timestamp is not ISO 8601") from None
    values = np.full(len(body), np.nan)
    for i, r in enumerate(body):  # parsing text, once per file, outside the detector
        try:
            values[i] = float(r[1])
        except (ValueError, IndexError):
            values[i] = np.nan
    order = np.argsort(times, kind="stable")
    return NabFile(key=key, timestamps=tuple(body[i][0] for i in order), times_us=times[order],
                   values=values[order])


def nab_files(data: Path) -> list[NabFile]:
    """Every ``*.csv`` under `data`, keyed by its path relative to `data`."""
    return [read_nab(p, p.relative_to(data).as_posix()) for p in sorted(data.rglob("*.csv"))]


@dataclass(frozen=True)
class NabSettings:
    """The bank settings NAB runs with (chosen by leave-one-category-out, see
    :mod:`evaluation.crossval`): the calibration's tail scale (decades of probability to score 1),
    spread floor and warm-up (samples), how long the score must stay low before an open alert
    clears (so a persisting anomaly is one alert), how unusual for the time of day a deviation
    from the plain baseline must be to count (``BankConfig.seasonal_support``), the
    short-memory baseline's half-life (``BankConfig.change_halflife``, samples), the
    time-of-day baseline's slots per day and half-life (samples of a slot), and after how many
    separate excursions (decayed with a half-life in samples) a level is routine for a channel
    (``BankConfig.recurrence_count``, :class:`anomaly.likelihood.Recurrence`), the half-life
    (samples) of the recent step spread against the long-run one (``BankConfig.spread_halflife``,
    :class:`anomaly.spread.SpreadChange`) and the plain baseline's calibrated z from which the
    time of day no longer gates it (``BankConfig.seasonal_override``), and after how long a
    channel's weekends may get a rhythm of their own (``BankConfig.seasonal_weekly_s``: three
    weeks, set by design, not chosen on the corpus, whose development files have no weekly
    rhythm to learn; see bench/README.md)."""

    likelihood_decades: float = 5.0
    likelihood_min_std: float = 0.05
    likelihood_warmup: int = 150
    clear_hold_s: float = 4 * 3600.0
    seasonal_support: float = 0.5
    change_halflife: float = 10.0
    seasonal_slots: int = 24
    seasonal_halflife: float = 20.0
    recurrence_count: float = 4.0
    recurrence_halflife: float = 300.0
    spread_halflife: float = 12.0
    seasonal_override: float = float("inf")
    seasonal_weekly_s: float = 21 * 86_400.0

    def config(self) -> BankConfig:
        inf = float("inf")
        return BankConfig(calibrate=True, seasonal=True, likelihood_short=1.0,
                          likelihood_long=2000.0, likelihood_log=False,
                          likelihood_decades=self.likelihood_decades,
                          likelihood_min_std=self.likelihood_min_std,
                          likelihood_warmup=self.likelihood_warmup, baseline_warmup=60,
                          change_halflife=self.change_halflife,
                          seasonal_slots=self.seasonal_slots,
                          seasonal_halflife=self.seasonal_halflife,
                          clear_hold_s=self.clear_hold_s, seasonal_support=self.seasonal_support,
                          recurrence_count=self.recurrence_count,
                          recurrence_halflife=self.recurrence_halflife,
                          spread_halflife=self.spread_halflife,
                          seasonal_override=self.seasonal_override,
                          seasonal_weekly_s=self.seasonal_weekly_s,
                          no_data_s=inf, stuck_s=inf, anchor_lag_s=0.0)


#: What an unmodelled channel is: no limits, may stay flat (stuck) or step (no spike check);
#: level changes are watched by the baseline, slow drift is not separately scored.
GENERIC = ChannelSpec("", "value", stuck=False, steps=True, drift=False)


def detect(f: NabFile, settings: NabSettings | None = None) -> NDArray[np.float64]:
    """Anomaly score in [0, 1] for every row: the bank's fused score where it opens an alert,
    else 0. Causal: the score of a row uses only the rows before and at it."""
    n = f.values.size
    if n == 0:
        return np.zeros(0)
    spec = ChannelSpec(f.key, GENERIC.metric, stuck=GENERIC.stuck, steps=GENERIC.steps,
                       drift=GENERIC.drift)
    times = np.maximum.accumulate(f.times_us)
    r = run_bank([spec], times, f.values[None, :], (settings or NabSettings()).config())
    alert = r.alert[0]
    opens = alert & ~np.r_[False, alert[:-1]]
    return np.where(opens, r.score[0], 0.0)


def windows_as_rows(f: NabFile, windows: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """Inclusive row ranges of windows given as ``[start, end]`` timestamps."""
    out = []
    for start, end in windows:
        lo = int(np.searchsorted(f.times_us, _parse_time(start), side="left"))
        hi = int(np.searchsorted(f.times_us, _parse_time(end), side="right")) - 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def find_windows(data: Path) -> dict[str, list[list[str]]] | None:
    """``combined_windows.json`` next to or inside `data` (NAB's layout), if there is one."""
    for p in (data / "labels" / "combined_windows.json",
              data.parent / "labels" / "combined_windows.json"):
        if p.is_file():
            raw = json.loads(p.read_text(encoding="utf-8"))
            return {str(k): list(v) for k, v in raw.items()}
    return None


def write_results(out: Path, f: NabFile, score: NDArray[np.float64],
                  windows: Sequence[tuple[int, int]]) -> Path:
    """Write one NAB results file and return its path."""
    category, _, name = f.key.rpartition("/")
    dest = out / DETECTOR / category / f"{DETECTOR}_{name}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    label = np.zeros(f.values.size, np.int64)
    for lo, hi in windows:
        label[lo:hi + 1] = 1
    with dest.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        for ts, v, s, lab in zip(f.timestamps, f.values, score, label, strict=True):
            w.writerow([ts, "" if np.isnan(v) else repr(float(v)), f"{float(s):.6f}", int(lab)])
    return dest


@dataclass(frozen=True)
class NabRun:
    files: int
    scores: dict[str, CorpusScore]


def run(data: Path, out: Path, settings: NabSettings | None = None) -> NabRun:
    """Score every CSV under `data`, write results under `out`, and (when the label windows are
    found) score the corpus on every profile. `data` is NAB's ``data/`` folder or the
    repository holding it (with ``labels/combined_windows.json``)."""
    if (data / "data").is_dir() and (data / "labels" / "combined_windows.json").is_file():
        data = data / "data"      # the NAB repository itself: its CSVs sit under data/
    all_windows = find_windows(data)
    corpus = []
    files = nab_files(data)
    for f in files:
        score = detect(f, settings)
        win = windows_as_rows(f, all_windows.get(f.key, [])) if all_windows else []
        write_results(out, f, score, win)
        corpus.append((score, win))
    scores = ({name: corpus_score(corpus, prof) for name, prof in PROFILES.items()}
              if all_windows is not None else {})
    return NabRun(files=len(files), scores=scores)
