"""Choosing settings honestly: cross-validation on the development corpora.

NAB: leave one category out. For each category (the synthetic files form one, each real-data
folder another), the settings are those of a small grid that score best on the *other*
categories, and the category left out is scored with them at the product's fixed open level
(0.5, so no threshold is chosen on it either). The left-out scores, pooled over the folds, are
the estimate of what the detector does on data nobody tuned to.

SKAB: settings chosen on ``valve1`` (best F1 with FAR <= 10 %) are scored on ``valve2``, and the
reverse. Labels are read only to score.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from evaluation import nab, skab
from evaluation.nab_score import PROFILES, NabProfile, file_score, prepare_file

#: The product's open level: the one threshold every detection is judged at.
OPEN_LEVEL = 0.5

#: The grid searched for NAB (every combination).
#: The short-memory change source (half-life 10) and hourly time-of-day slots are fixed: every
#: fold of the earlier 144-point grid (change source on/off, 24/48 slots) chose them; so are the
#: calibration's tail decades (5) and the recurrence half-life (300), which every fold of the
#: 216-point grid before this one chose.
NAB_GRID: dict[str, tuple[float, ...]] = {
    "clear_hold_s": (1800.0, 4 * 3600.0),
    "seasonal_support": (0.5, 1.0, 1.5),
    "seasonal_halflife": (10.0, 20.0),
    "recurrence_count": (0.0, 4.0, 6.0),
    "spread_halflife": (0.0, 12.0),
    "seasonal_override": (float("inf"), 3.0, 4.0),
}
#: The grid searched for SKAB.
SKAB_GRID: dict[str, tuple[float, ...]] = {
    "margin": (2.0, 2.5, 3.0),
    "clear_hold_s": (0.0, 5.0, 30.0),
}

S = TypeVar("S")


def grid(base: S, axes: dict[str, tuple[float, ...]]) -> list[S]:
    """Every combination of `axes` applied to the settings dataclass `base`."""
    names = list(axes)
    return [replace(base, **dict(zip(names, combo, strict=True)))  # type: ignore[type-var]
            for combo in itertools.product(*(axes[n] for n in names))]


def describe(settings: Any) -> str:
    return ", ".join(f"{f.name}={getattr(settings, f.name):g}" for f in fields(settings))


def nab_category(key: str) -> str:
    """The cross-validation fold of a NAB file: ``synthetic`` or its real-data folder."""
    folder = key.split("/", 1)[0]
    return "synthetic" if folder.startswith("artificial") else folder


@dataclass(frozen=True)
class NabCounts:
    """A raw NAB score at a fixed threshold and the number of windows it is out of."""

    raw: float
    windows: int

    def normalised(self, profile: NabProfile) -> float:
        perfect, null = profile.a_tp * self.windows, -profile.a_fn * self.windows
        return 100.0 * (self.raw - null) / (perfect - null) if self.windows else float("nan")

    def __add__(self, other: NabCounts) -> NabCounts:
        return NabCounts(self.raw + other.raw, self.windows + other.windows)


Scored = dict[str, tuple[NDArray[np.float64], list[tuple[int, int]]]]


def nab_counts(scored: Scored, keys: Sequence[str], profile: NabProfile,
               threshold: float = OPEN_LEVEL) -> NabCounts:
    total = NabCounts(0.0, 0)
    for k in keys:
        score, windows = scored[k]
        pf = prepare_file(score.size, windows, profile)
        total = total + NabCounts(file_score(pf, score >= threshold, profile), pf.n_windows)
    return total


@dataclass(frozen=True)
class Fold:
    """One held-out part: what was chosen without it and what it scored."""

    name: str
    settings: Any
    train: float          # standard score on the other parts (what the choice maximised)
    held_out: dict[str, float]


@dataclass(frozen=True)
class NabCrossval:
    folds: list[Fold]
    pooled: dict[str, float]          # left-out scores pooled over every fold, per profile
    tuned: dict[str, float]           # the best grid point on all files (in-sample), per profile
    tuned_settings: Any


SELECTIONS = ("pooled", "mean")


def nab_crossval(data: Path, axes: dict[str, tuple[float, ...]] | None = None,
                 progress: Callable[[str], None] | None = None,
                 select: str = "pooled") -> NabCrossval:
    """Leave-one-category-out over the NAB files under `data` (a NAB repository or its
    ``data/`` folder); see :func:`nab_crossval_by` for `select`."""
    return nab_crossval_by(data, axes, progress, selects=(select,))[select]


def nab_crossval_by(data: Path, axes: dict[str, tuple[float, ...]] | None = None,
                    progress: Callable[[str], None] | None = None,
                    selects: Sequence[str] = SELECTIONS) -> dict[str, NabCrossval]:
    """The cross-validation under each rule in `selects` for choosing a grid point on the
    training categories, from one run of the grid:

    * ``pooled``: the best standard score of the training files pooled (categories weigh by
      their windows);
    * ``mean``: the best mean of the training categories' standard scores (each category,
      a kind of data, weighs the same).
    """
    unknown = [x for x in selects if x not in SELECTIONS]
    if unknown:
        raise ValueError(f"selection rule(s) {unknown}: use {', '.join(SELECTIONS)}")
    if (data / "data").is_dir():
        data = data / "data"
    windows = nab.find_windows(data)
    if windows is None:
        raise ValueError(f"{data}: no labels/combined_windows.json to score against")
    files = nab.nab_files(data)
    cats = sorted({nab_category(f.key) for f in files})
    points = grid(nab.NabSettings(), axes or NAB_GRID)
    runs: list[Scored] = []
    for i, st in enumerate(points):             # one run of the corpus per grid point
        if progress:
            progress(f"{i + 1}/{len(points)} {describe(st)}")
        runs.append({f.key: (nab.detect(f, st), nab.windows_as_rows(f, windows.get(f.key, [])))
                     for f in files})
    std = PROFILES["standard"]
    keys_of = {c: [f.key for f in files if nab_category(f.key) == c] for c in cats}
    by_cat = {c: [nab_counts(r, keys_of[c], std).normalised(std) for r in runs] for c in cats}

    def score(select: str, among: list[str]) -> list[float]:
        if select == "mean":
            return [float(np.mean([by_cat[c][i] for c in among])) for i in range(len(runs))]
        keys = [key for c in among for key in keys_of[c]]
        return [nab_counts(r, keys, std).normalised(std) for r in runs]

    out = {}
    for select in selects:
        folds, pooled = [], dict.fromkeys(PROFILES, NabCounts(0.0, 0))
        for c in cats:
            train_scores = score(select, [o for o in cats if o != c])
            best = int(np.argmax(train_scores))
            held = {}
            for name, prof in PROFILES.items():
                counts = nab_counts(runs[best], keys_of[c], prof)
                pooled[name] = pooled[name] + counts
                held[name] = counts.normalised(prof)
            folds.append(Fold(c, points[best], train_scores[best], held))
        best_all = int(np.argmax(score(select, cats)))
        all_keys = [f.key for f in files]
        tuned = {name: nab_counts(runs[best_all], all_keys, prof).normalised(prof)
                 for name, prof in PROFILES.items()}
        out[select] = NabCrossval(folds=folds,
                                  pooled={n: c.normalised(PROFILES[n])
                                          for n, c in pooled.items()},
                                  tuned=tuned, tuned_settings=points[best_all])
    return out


@dataclass(frozen=True)
class SkabFold:
    train: str
    test: str
    settings: skab.SkabSettings
    train_score: skab.Confusion
    held_out: skab.Confusion


def _choose(scores: Sequence[skab.Confusion], far_max: float = 10.0) -> int:
    """Best F1 among the settings with FAR <= `far_max` (best F1 overall when none is)."""
    ok = [i for i, c in enumerate(scores) if c.far <= far_max] or list(range(len(scores)))
    return max(ok, key=lambda i: scores[i].f1)


def skab_crossval(data: Path, axes: dict[str, tuple[float, ...]] | None = None
                  ) -> list[SkabFold]:
    """Tune on each of ``valve1`` / ``valve2`` under `data`, score on the other; the last
    entry is the choice on both groups together (in-sample: what ships as the default)."""
    groups = {g: skab.skab_files(data / g) for g in ("valve1", "valve2")}
    missing = [g for g, p in groups.items() if not p]
    if missing:
        raise ValueError(f"{data}: no labelled SKAB files in {missing}")
    points = grid(skab.SkabSettings(), axes or SKAB_GRID)
    by_group = {g: [skab.run(p, settings=st) for st in points] for g, p in groups.items()}
    out = []
    for train, test in (("valve1", "valve2"), ("valve2", "valve1")):
        best = _choose(by_group[train])
        out.append(SkabFold(train, test, points[best], by_group[train][best],
                            by_group[test][best]))
    both = [a + b for a, b in zip(by_group["valve1"], by_group["valve2"], strict=True)]
    best = _choose(both)
    out.append(SkabFold("valve1+valve2", "valve1+valve2", points[best], both[best], both[best]))
    return out
