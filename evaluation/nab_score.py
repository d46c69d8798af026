"""The Numenta Anomaly Benchmark score, as NAB's own scorer computes it.

Per file with ``N`` rows the first ``P = min(floor(0.15 N), 750)`` rows are probationary and not
scored. A row whose score is >= the threshold is a detection. Inside a window ``[L, R]`` (width
``W``) only the earliest detection counts, weighted
``A_TP * (2 sigma(-5 pos) - 1) / (2 sigma(5) - 1)`` with ``pos = -(R - i + 1) / W``; a window
without a detection costs ``-A_FN``. A detection outside every window costs ``-A_FP`` before the
first window, and ``A_FP * (2 sigma(-5 x) - 1)`` with ``x = (i - R') / (W' - 1)`` after the last
closed window ``(R', W')`` (``-A_FP`` when ``x > 3``). The corpus score is normalised to
``100 (S - S_null) / (S_perfect - S_null)`` at the threshold that is best for the whole corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class NabProfile:
    """Costs of a true positive, a false positive and a missed window."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": NabProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": NabProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def scaled_sigmoid(x: ArrayLike) -> NDArray[np.float64]:
    """NAB's ``2 sigma(-5 x) - 1``, and -1 beyond ``x > 3``.

    >>> scaled_sigmoid([-1.0, 0.0, 4.0]).round(4)
    array([ 0.9866,  0.    , -1.    ])
    """
    v = np.asarray(x, dtype=np.float64)
    return np.where(v > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * v)) - 1.0)


def probation_rows(n: int) -> int:
    """Rows at the start of a file that NAB does not score.

    >>> probation_rows(4032), probation_rows(10_000)
    (604, 750)
    """
    return min(int(np.floor(0.15 * n)), 750)


@dataclass(frozen=True)
class ScoredFile:
    """What the threshold sweep needs of one file: each row's weight as a detection and which
    window (or -1) it falls in."""

    window: NDArray[np.int64]
    tp_weight: NDArray[np.float64]
    fp_weight: NDArray[np.float64]
    scored: NDArray[np.bool_]
    n_windows: int


def prepare_file(n: int, windows: Sequence[tuple[int, int]], profile: NabProfile) -> ScoredFile:
    """Per-row weights of a file of `n` rows with windows given as inclusive row ranges.

    >>> f = prepare_file(20, [(10, 13)], PROFILES["standard"])
    >>> f.window[9:15].tolist(), round(float(f.tp_weight[10]), 4), float(f.fp_weight[5])
    ([-1, 0, 0, 0, 0, -1], 1.0, -0.11)
    """
    i = np.arange(n)
    window = np.full(n, -1, np.int64)
    tp = np.zeros(n)
    fp = np.full(n, -profile.a_fp)
    max_tp = float(scaled_sigmoid(-1.0))
    for w, (left, right) in enumerate(sorted(windows)):
        if not 0 <= left <= right < n:
            raise ValueError(f"window {w} ({left}, {right}) is outside 0..{n - 1}")
        width = right - left + 1
        inside = slice(left, right + 1)
        window[inside] = w
        tp[inside] = profile.a_tp * scaled_sigmoid(-(right - i[inside] + 1) / width) / max_tp
        after = i > right
        x = (i[after] - right) / max(width - 1, 1)
        fp[after] = profile.a_fp * scaled_sigmoid(x)
    return ScoredFile(window=window, tp_weight=tp, fp_weight=fp,
                      scored=i >= probation_rows(n), n_windows=len(windows))


def file_score(f: ScoredFile, detected: NDArray[np.bool_], profile: NabProfile) -> float:
    """Raw NAB score of one file for a boolean detection per row.

    >>> prof = PROFILES["standard"]
    >>> f = prepare_file(20, [(10, 13)], prof)
    >>> d = np.zeros(20, bool); d[10] = True       # earliest possible detection
    >>> round(file_score(f, d, prof), 4)
    1.0
    >>> d[5] = True                                # plus one false positive before the window
    >>> round(file_score(f, d, prof), 4)
    0.89
    """
    det = detected & f.scored
    total = float(np.sum(f.fp_weight[det & (f.window < 0)]))
    hit_rows = np.flatnonzero(det & (f.window >= 0))
    wins, first = np.unique(f.window[hit_rows], return_index=True)
    total += float(np.sum(f.tp_weight[hit_rows[first]]))
    total -= profile.a_fn * (f.n_windows - wins.size)
    return total


@dataclass(frozen=True)
class CorpusScore:
    threshold: float
    raw: float
    normalised: float


def corpus_score(
    files: Sequence[tuple[NDArray[np.float64], Sequence[tuple[int, int]]]],
    profile: NabProfile,
    thresholds: ArrayLike | None = None,
) -> CorpusScore:
    """Best normalised score over `thresholds` (default: 0.00, 0.01, ..., 1.00) for a corpus of
    ``(anomaly_score per row, windows as row ranges)``.

    >>> s = np.zeros(20); s[11] = 0.9; s[16] = 0.5
    >>> r = corpus_score([(s, [(10, 13)])], PROFILES["standard"])
    >>> round(r.threshold, 2), round(r.normalised, 2)
    (0.51, 98.35)
    """
    grid = np.round(np.linspace(0.0, 1.0, 101), 2) if thresholds is None else np.asarray(
        thresholds, dtype=np.float64)
    prepared = [(np.asarray(s, dtype=np.float64), prepare_file(len(s), w, profile))
                for s, w in files]
    n_windows = sum(f.n_windows for _, f in prepared)
    perfect, null = profile.a_tp * n_windows, -profile.a_fn * n_windows
    best = CorpusScore(threshold=float("nan"), raw=-np.inf, normalised=-np.inf)
    for theta in grid:
        raw = sum(file_score(f, s >= theta, profile) for s, f in prepared)
        if raw > best.raw:
            norm = 100.0 * (raw - null) / (perfect - null) if perfect != null else float("nan")
            best = CorpusScore(threshold=float(theta), raw=raw, normalised=norm)
    return best
