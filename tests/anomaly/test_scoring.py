"""The benchmark scorers against small cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from evaluation.nab_score import (
    PROFILES,
    corpus_score,
    file_score,
    prepare_file,
    probation_rows,
    scaled_sigmoid,
)
from evaluation.skab import Confusion, confusion

STD = PROFILES["standard"]


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


MAX_TP = 2 * sig(5) - 1  # weight of a detection at the very start of a window


def detections(n: int, rows: list[int]) -> np.ndarray:
    d = np.zeros(n, bool)
    d[rows] = True
    return d


def test_probationary_period_is_15_percent_capped_at_750() -> None:
    assert (probation_rows(100), probation_rows(4032), probation_rows(6000)) == (15, 604, 750)


def test_scaled_sigmoid_matches_nab_formula() -> None:
    assert_allclose(scaled_sigmoid([-0.5, 0.5, 3.0, 3.01]),
                    [2 * sig(2.5) - 1, 2 * sig(-2.5) - 1, 2 * sig(-15) - 1, -1.0])


def test_earliest_detection_in_window_scores_full_weight() -> None:
    f = prepare_file(40, [(20, 29)], STD)
    assert file_score(f, detections(40, [20]), STD) == pytest.approx(1.0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    # Window 20..29 (W = 10); the first detection at 25: pos = -(29 - 25 + 1) / 10 = -0.5.
    f = prepare_file(40, [(20, 29)], STD)
    expected = (2 * sig(2.5) - 1) / MAX_TP
    assert file_score(f, detections(40, [25, 26, 29]), STD) == pytest.approx(expected)


def test_missed_window_costs_a_fn() -> None:
    f = prepare_file(40, [(20, 29)], STD)
    assert file_score(f, detections(40, []), STD) == -1.0
    low_fn = PROFILES["reward_low_FN_rate"]
    assert file_score(prepare_file(40, [(20, 29)], low_fn), detections(40, []), low_fn) == -2.0


def test_false_positive_before_first_window_costs_full_a_fp() -> None:
    f = prepare_file(40, [(20, 29)], STD)
    assert file_score(f, detections(40, [10, 20]), STD) == pytest.approx(1.0 - 0.11)


def test_false_positive_after_window_is_weighted_by_distance() -> None:
    # Window 20..29 (W = 10). A detection at 32: x = (32 - 29) / (10 - 1) = 1/3.
    f = prepare_file(60, [(20, 29)], STD)
    near = 0.11 * (2 * sig(-5 / 3) - 1)
    assert file_score(f, detections(60, [20, 32]), STD) == pytest.approx(1.0 + near)
    # x = (59 - 29) / 9 > 3: the full cost.
    assert file_score(f, detections(60, [20, 59]), STD) == pytest.approx(1.0 - 0.11)


def test_detections_in_the_probationary_period_are_ignored() -> None:
    f = prepare_file(100, [(50, 59)], STD)      # P = 15
    assert file_score(f, detections(100, [3, 50]), STD) == pytest.approx(1.0)


def test_corpus_is_normalised_between_null_and_perfect_detector() -> None:
    n = 40
    windows = [(20, 29)]
    perfect = np.zeros(n)
    perfect[20] = 1.0
    assert corpus_score([(perfect, windows)], STD).normalised == pytest.approx(100.0)
    assert corpus_score([(np.zeros(n), windows)], STD).normalised == pytest.approx(0.0)
    # Two files, one window each; one hit at pos -0.5, one miss, one FP in an empty file:
    # S = w(-0.5) - 1 - 0.11; S_null = -2, S_perfect = 2.
    a = np.zeros(n)
    a[25] = 0.9
    empty = np.zeros(n)
    empty[30] = 0.9
    r = corpus_score([(a, windows), (np.zeros(n), windows), (empty, [])], STD)
    raw = (2 * sig(2.5) - 1) / MAX_TP - 1 - 0.11
    assert r.raw == pytest.approx(raw)
    assert r.normalised == pytest.approx(100 * (raw + 2) / 4)


def test_corpus_threshold_is_the_best_for_all_files() -> None:
    s = np.zeros(40)
    s[20], s[10] = 0.8, 0.4                   # raising the threshold above 0.4 drops the FP
    r = corpus_score([(s, [(20, 29)])], STD, thresholds=[0.3, 0.5, 0.9])
    assert (r.threshold, r.raw) == (0.5, pytest.approx(1.0))


def test_window_outside_file_is_rejected() -> None:
    with pytest.raises(ValueError, match="window 0"):
        prepare_file(10, [(5, 12)], STD)


def test_skab_metrics_pool_rows_over_files() -> None:
    a = confusion([1, 1, 0, 0], [1, 0, 0, 1])       # TP 1, FP 1, TN 1, FN 1
    b = confusion([1, 1, 1, 0], [1, 1, 1, 0])       # TP 3, TN 1
    c = a + b
    assert (c.tp, c.fp, c.tn, c.fn) == (4, 1, 2, 1)
    assert c.f1 == pytest.approx(8 / 10)
    assert c.far == pytest.approx(100 / 3)
    assert c.mar == pytest.approx(20.0)


def test_skab_metrics_of_no_rows_are_nan() -> None:
    c = Confusion()
    assert math.isnan(c.f1)
    assert math.isnan(c.far)
    assert math.isnan(c.mar)


def test_skab_confusion_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="equal length"):
        confusion([1, 0], [1])
