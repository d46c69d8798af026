"""SKAB (Skoltech Anomaly Benchmark): reading its files, its metrics and the detector run.

The published protocol: per file, fit on the first 400 rows, evaluate every later row; TP, FP,
TN and FN are counted per row and pooled over all files. F1 = 2TP / (2TP + FP + FN),
FAR = 100 FP / (FP + TN), MAR = 100 FN / (FN + TP).

The detector is the worker's :class:`~anomaly.bank.DetectorBank` (through
:func:`evaluation.offline.run_bank`): every column is a channel of one pump with calibrated scores
(:mod:`anomaly.likelihood`), and the pump's hydraulic group (motor current, pressure, flow: the
correlated channels a pump's equipment model names for its multivariate check) is watched by
:class:`anomaly.multivariate.SmoothedT2`, fitted on the protocol's first rows and fused into the
bank as per-asset evidence, as the worker fuses its bearing check. A row is predicted anomalous
while the bank has an equipment alert open. Labels are read only to score, never by the detector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.bank import BankConfig, ChannelSpec
from anomaly.fusion import ratio_to_score
from anomaly.multivariate import SmoothedT2
from evaluation.offline import run_bank

FIT_ROWS = 400
CHANNELS = ("Current", "Pressure", "Volume Flow RateRMS")


@dataclass(frozen=True)
class Confusion:
    """Row counts pooled over files."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn,
                         self.fn + other.fn)

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else float("nan")

    @property
    def far(self) -> float:
        """False alarm rate in %."""
        d = self.fp + self.tn
        return 100.0 * self.fp / d if d else float("nan")

    @property
    def mar(self) -> float:
        """Missed alarm rate in %."""
        d = self.fn + self.tp
        return 100.0 * self.fn / d if d else float("nan")


def confusion(predicted: ArrayLike, labels: ArrayLike) -> Confusion:
    """Row-wise confusion counts of 0/1 predictions against 0/1 labels.

    >>> c = confusion([0, 1, 1, 0, 1], [0, 1, 0, 1, 1])
    >>> (c.tp, c.fp, c.tn, c.fn), round(c.f1, 4), round(c.far, 1), round(c.mar, 1)
    ((2, 1, 1, 1), 0.6667, 50.0, 33.3)
    """
    p = np.asarray(predicted).astype(bool)
    y = np.asarray(labels).astype(bool)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"`predicted` and `labels` must be 1-D of equal length, got "
                         f"{p.shape} and {y.shape}")
    return Confusion(tp=int(np.sum(p & y)), fp=int(np.sum(p & ~y)), tn=int(np.sum(~p & ~y)),
                     fn=int(np.sum(~p & y)))


@dataclass(frozen=True)
class SkabFile:
    """One SKAB file: column names, values (channels, rows) and the labels (rows,) if present."""

    path: Path
    columns: tuple[str, ...]
    values: NDArray[np.float64]
    labels: NDArray[np.int64] | None
    timestamps: tuple[str, ...]


def read_skab(path: Path) -> SkabFile:
    """Read a `;`-separated SKAB CSV (``datetime`` first; ``anomaly``/``changepoint`` optional)."""
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().strip().split(";")
        rows = [line.rstrip("\n").split(";") for line in fh if line.strip()]
    if not header or header[0] != "datetime":
        raise ValueError(f"{path}: first column must be `datetime`, got {header[:1]}")
    body = np.array([r[1:] for r in rows], dtype=object)
    try:
        table = body.astype(np.float64) if rows else np.zeros((0, len(header) - 1))
    except ValueError:
        raise ValueError(f"{path}: a value is not a number") from None
    names = header[1:]
    keep = [i for i, c in enumerate(names) if c not in {"anomaly", "changepoint"}]
    labels = (table[:, names.index("anomaly")].astype(np.int64) if "anomaly" in names else None)
    return SkabFile(path=path, columns=tuple(names[i] for i in keep), values=table[:, keep].T,
                    labels=labels, timestamps=tuple(r[0] for r in rows))


@dataclass(frozen=True)
class SkabSettings:
    """The settings SKAB runs with (chosen on one valve group and scored on the other, see
    :mod:`evaluation.crossval`): the hydraulic group's smoothing half-life (samples) and threshold
    margin over the fit rows' 99th percentile, and how long the score must stay low before an
    open alert clears."""

    halflife: float = 5.0
    margin: float = 2.0
    clear_hold_s: float = 0.0

    def config(self) -> BankConfig:
        inf = float("inf")
        return BankConfig(calibrate=True, likelihood_short=5.0, likelihood_long=2000.0,
                          likelihood_log=False, recurrence_count=0.0,
                          clear_hold_s=self.clear_hold_s,
                          no_data_s=inf, stuck_s=inf, anchor_lag_s=0.0)


def detect(f: SkabFile, settings: SkabSettings | None = None) -> NDArray[np.int64]:
    """0/1 prediction for every row after the first :data:`FIT_ROWS` (learned from those)."""
    st = settings or SkabSettings()
    missing = [c for c in CHANNELS if c not in f.columns]
    if missing:
        raise ValueError(f"{f.path}: lacks columns {missing}")
    n = f.values.shape[1]
    if n <= FIT_ROWS:
        raise ValueError(f"{f.path}: needs more than {FIT_ROWS} rows, has {n}")
    t = np.arange(n, dtype=np.int64) * 1_000_000
    group = f.values[[f.columns.index(c) for c in CHANNELS]][None, :, :]
    det = SmoothedT2(1, len(CHANNELS), halflife=st.halflife, margin=st.margin)
    det.fit(group[:, :, :FIT_ROWS])
    t2 = np.full((1, n), np.nan)
    t2[:, FIT_ROWS:] = ratio_to_score(det.update(t[FIT_ROWS:], group[:, :, FIT_ROWS:]).score)
    # Unknown equipment: no limits, no sensor-health assumptions about a test bed's channels.
    specs = [ChannelSpec("pump", c, stuck=False, steps=True) for c in f.columns]
    r = run_bank(specs, t, f.values, st.config(), extra={"hydraulic_t2": (t2, "leak")})
    return np.asarray(r.alert[0, FIT_ROWS:], dtype=np.int64)


def skab_files(data: Path) -> list[Path]:
    """Every CSV under `data` with a SKAB header, sorted; the unlabelled anomaly-free file is
    skipped because the protocol scores labelled files only."""
    out = []
    for p in sorted(data.rglob("*.csv")):
        with p.open(encoding="utf-8") as fh:
            head = fh.readline()
        if head.startswith("datetime;") and ";anomaly" in head:
            out.append(p)
    return out


def run(paths: Iterable[Path], out: Path | None = None, root: Path | None = None,
        settings: SkabSettings | None = None) -> Confusion:
    """Detect on every file, write per-row predictions under `out` (mirroring `root`), and
    return the pooled confusion counts."""
    total = Confusion()
    for p in paths:
        f = read_skab(p)
        pred = detect(f, settings)
        if f.labels is None:
            raise ValueError(f"{p}: has no `anomaly` column to score against")
        total = total + confusion(pred, f.labels[FIT_ROWS:])
        if out is not None:
            rel = p.relative_to(root) if root is not None else Path(p.name)
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            full = np.r_[np.zeros(FIT_ROWS, np.int64), pred]
            lines = ["datetime;anomaly"] + [f"{ts};{v}" for ts, v in zip(f.timestamps, full,
                                                                          strict=True)]
            dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return total
