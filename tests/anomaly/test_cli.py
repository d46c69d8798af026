"""`aftercare anomaly nab|skab` on small corpora written here, and on the shared benchmark data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation.cli import main

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def write_nab_corpus(root: Path) -> Path:
    rng = np.random.default_rng(42)
    data = root / "data"
    (data / "fake").mkdir(parents=True)
    t0 = np.datetime64("2024-01-01T00:00")
    stamps = [str(t0 + np.timedelta64(5 * i, "m")).replace("T", " ") + ":00"
              for i in range(2000)]
    x = 10 * np.sin(2 * np.pi * np.arange(2000) / 288) + 0.3 * rng.normal(size=2000)
    x[1500:1520] += 15.0
    for name, values in (("jump.csv", x), ("quiet.csv", x[:1400])):
        with (data / "fake" / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            w.writerows(zip(stamps, values, strict=False))
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps({
        "fake/jump.csv": [[stamps[1480] + ".000000", stamps[1560] + ".000000"]],
        "fake/quiet.csv": []}))
    return data


def test_nab_writes_results_in_nab_layout_and_scores(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = write_nab_corpus(tmp_path)
    out = tmp_path / "results"
    assert main(["nab", "--data", str(data), "--out", str(out)]) == 0
    result = out / "aftercare" / "fake" / "aftercare_jump.csv"
    with result.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == 2000
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    labels = np.array([int(r["label"]) for r in rows])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert np.flatnonzero(labels).tolist() == list(range(1480, 1561))
    # One alert, opened as the jump arrives: on its second sample, once it has held for the
    # bank's open_hold_s (the bank's scores are its alert openings).
    assert np.flatnonzero(scores).tolist() == [1501]
    assert scores[1501] >= 0.5
    assert (out / "aftercare" / "fake" / "aftercare_quiet.csv").is_file()
    # Detected at row 1501 of window 1480..1560: pos = -60/81, weight 0.952 -> 100 * 1.952 / 2.
    assert "NAB standard: 98.2" in capsys.readouterr().out


def test_nab_given_the_repository_root_scores_the_same(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_nab_corpus(tmp_path)
    assert main(["nab", "--data", str(data.parent), "--out", str(tmp_path / "r")]) == 0
    assert "NAB standard: 98.2" in capsys.readouterr().out
    assert (tmp_path / "r" / "aftercare" / "fake" / "aftercare_jump.csv").is_file()


def test_nab_without_labels_still_writes_results(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = write_nab_corpus(tmp_path)
    (tmp_path / "labels" / "combined_windows.json").unlink()
    assert main(["nab", "--data", str(data), "--out", str(tmp_path / "r")]) == 0
    assert "not scored" in capsys.readouterr().out
    with (tmp_path / "r" / "aftercare" / "fake" / "aftercare_jump.csv").open() as fh:
        assert {r["label"] for r in csv.DictReader(fh)} == {"0"}


def test_nab_rejects_a_file_that_is_not_nab_format(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.csv").write_text("time;value\n1;2\n")
    assert main(["nab", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "header must be `timestamp,value`" in capsys.readouterr().err


def write_skab_file(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 900
    cols = ["Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature",
            "Thermocouple", "Voltage", "Volume Flow RateRMS"]
    x = rng.normal([0.03, 0.04, 1.0, 0.06, 70, 25, 230, 32],
                   [0.002, 0.002, 0.27, 0.25, 0.3, 0.1, 1.0, 0.4], (n, 8))
    label = np.zeros(n, int)
    label[600:800] = 1
    x[600:800, 7] -= 2.0                                        # the valve closes
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write("datetime;" + ";".join(cols) + ";anomaly;changepoint\n")
        for i in range(n):
            fh.write(f"2020-03-09 10:{i // 60 % 60:02d}:{i % 60:02d};"
                     + ";".join(f"{v:.5f}" for v in x[i]) + f";{label[i]}.0;0.0\n")


def test_skab_prints_metrics_and_writes_predictions(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_skab_file(tmp_path / "data" / "valve1" / "0.csv", 1)
    write_skab_file(tmp_path / "data" / "valve2" / "0.csv", 2)
    out = tmp_path / "pred"
    assert main(["skab", "--data", str(tmp_path / "data"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 files" in printed
    f1 = float(printed.split("F1 ")[1].split()[0])
    assert f1 > 0.9
    lines = (out / "valve1" / "0.csv").read_text().splitlines()
    assert lines[0] == "datetime;anomaly"
    assert len(lines) == 901
    assert {ln.rsplit(";", 1)[1] for ln in lines[1:401]} == {"0"}   # the fit rows


def test_skab_without_labelled_files_is_an_error(tmp_path: Path) -> None:
    assert main(["skab", "--data", str(tmp_path)]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not (DATASETS / "skab").is_dir(), reason="shared SKAB data not present")
def test_skab_valves_meet_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["skab", "--data", str(DATASETS / "skab" / "data")]) == 0
    out = capsys.readouterr().out
    f1 = float(out.split("F1 ")[1].split()[0])
    far = float(out.split("FAR ")[1].split()[0])
    assert f1 >= 0.85
    assert far <= 10.0


def _nab_subset(root: Path, categories: list[str]) -> Path:
    """A NAB repository layout under `root` holding only the given data categories."""
    nab = DATASETS / "nab"
    (root / "data").mkdir(parents=True)
    for c in categories:
        shutil.copytree(nab / "data" / c, root / "data" / c)
    shutil.copytree(nab / "labels", root / "labels")
    return root


NAB_SYNTHETIC = ["artificialNoAnomaly", "artificialWithAnomaly"]
SYNTHETIC_BAR = 85.0


@pytest.mark.slow
@pytest.mark.skipif(not (DATASETS / "nab").is_dir(), reason="shared NAB data not present")
def test_nab_synthetic_corpus_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The synthetic files through the worker's bank with the shipped NAB settings. The bar
    # follows the honest protocol (bench/README.md, anomaly section): the old bar (75) was met
    # by a detector tuned on exactly these files; settings are now chosen by leave-one-
    # category-out over all 41 files, and the bar sits just under what the synthetic fold
    # scores held out (settings chosen on the real-data files only: 88.3 since routine
    # excursions are no news, 84.6 before).
    repo = _nab_subset(tmp_path / "nab", [c for c in NAB_SYNTHETIC
                                          if (DATASETS / "nab" / "data" / c).is_dir()])
    out = tmp_path / "out"
    assert main(["nab", "--data", str(repo), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert float(text.split("NAB standard: ")[1].split()[0]) >= SYNTHETIC_BAR
    n_synthetic = sum(len(list((repo / "data" / c).glob("*.csv"))) for c in NAB_SYNTHETIC
                      if (repo / "data" / c).is_dir())
    assert len(list((out / "aftercare").rglob("aftercare_*.csv"))) == n_synthetic


@pytest.mark.slow
@pytest.mark.skipif(not (DATASETS / "nab").is_dir(), reason="shared NAB data not present")
def test_nab_whole_shared_corpus_is_scored(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nab", "--data", str(DATASETS / "nab"), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "NAB standard: " in text
    n_files = len(list((DATASETS / "nab" / "data").rglob("*.csv")))
    assert len(list((tmp_path / "aftercare").rglob("aftercare_*.csv"))) == n_files
