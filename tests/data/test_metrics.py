"""GLUE metrics against values computed by hand (in the comments), including ties and degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nxm_deploy.data import (
    accuracy,
    compute_metrics,
    f1,
    glue_score,
    main_metric_value,
    matthews_correlation,
    pearson,
    spearmanr,
    task_score,
)
from nxm_deploy.data.metrics import _average_ranks

# preds vs labels: tp = 2 (idx 0, 4), fp = 1 (idx 1), fn = 1 (idx 3), tn = 1 (idx 2).
PREDS = [1, 1, 0, 0, 1]
LABELS = [1, 0, 0, 1, 1]


def test_accuracy():
    assert accuracy(PREDS, LABELS) == pytest.approx(3 / 5)
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75


def test_f1_of_class_one():
    assert f1(PREDS, LABELS) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # 2/3
    assert f1([0, 0, 0], [0, 0, 0]) == 0.0  # no positives at all
    assert f1([0, 0], [1, 1]) == 0.0
    assert f1([1, 1], [1, 1]) == 1.0


def test_matthews_binary():
    # (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 - 1) / sqrt(3*3*2*2) = 1/6
    assert matthews_correlation(PREDS, LABELS) == pytest.approx(1 / 6)
    assert matthews_correlation([0, 1, 1, 0], [0, 1, 1, 0]) == pytest.approx(1.0)
    assert matthews_correlation([1, 0, 0, 1], [0, 1, 1, 0]) == pytest.approx(-1.0)


def test_matthews_degenerate_is_zero():
    assert matthews_correlation([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0  # one predicted class
    assert matthews_correlation([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # one true class
    assert matthews_correlation([1, 1], [1, 1]) == 0.0


def test_matthews_multiclass():
    # C = [[2,0,0],[0,0,1],[0,0,1]]: n=4, correct=3, t=(2,1,1), p=(2,0,2)
    # cov(t,p) = 3*4 - (4+0+2) = 6; cov(p,p) = 16 - 8 = 8; cov(t,t) = 16 - 6 = 10 -> 6/sqrt(80)
    assert matthews_correlation([0, 2, 2, 0], [0, 1, 2, 0]) == pytest.approx(6 / math.sqrt(80))


def test_pearson():
    # dx = (-1, 0, 1), dy = (-4/3, -1/3, 5/3): sum dx dy = 3, sxx = 2, syy = 42/9 -> 9/sqrt(84)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(9 / math.sqrt(84))
    assert pearson([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([2, 2, 2], [1, 2, 3]) == 0.0  # constant: undefined, reported as 0


def test_average_ranks_share_ties():
    assert _average_ranks(np.array([10.0, 20, 20, 20, 5])).tolist() == [2, 4, 4, 4, 1]
    assert _average_ranks(np.array([3.0, 1, 2])).tolist() == [3, 1, 2]


def test_spearman_with_ties():
    # ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4): sum dx dy = 4.5, sxx = 4.5, syy = 5 -> 3/sqrt(10)
    assert spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearmanr([1, 10, 100, 1000], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)  # monotone
    assert spearmanr([1, 1, 1], [1, 2, 3]) == 0.0


def test_lengths_must_match():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="no predictions"):
        accuracy([], [])


def test_compute_metrics_from_logits_and_ids():
    logits = np.array([[0.1, 0.9], [0.2, 0.3], [2.0, -1.0], [1.0, 0.0], [-3.0, 3.0]])  # argmax = PREDS
    from_logits = compute_metrics("MRPC", logits, LABELS)
    assert from_logits == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})
    assert list(from_logits) == ["f1", "accuracy"]
    assert compute_metrics("mrpc", np.array(PREDS), LABELS) == from_logits
    assert compute_metrics("CoLA", PREDS, LABELS) == pytest.approx({"matthews_correlation": 1 / 6})
    assert compute_metrics("rte", [0.0, 1.0], [0, 1]) == {"accuracy": 1.0}  # integral floats are ids


def test_compute_metrics_regression():
    expected = {"pearson": 9 / math.sqrt(84), "spearmanr": 1.0}
    assert compute_metrics("sts-b", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == pytest.approx(expected)
    assert compute_metrics("STS-B", [[1.0], [2.0], [3.0]], [1.0, 2.0, 4.0]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="shape"):
        compute_metrics("STS-B", np.zeros((3, 2)), [1.0, 2.0, 4.0])


def test_compute_metrics_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        compute_metrics("MNLI", np.zeros((4, 2)), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="class ids"):
        compute_metrics("SST-2", [0.2, 0.7], [0, 1])


def test_main_metric_value():
    assert main_metric_value("MRPC", {"f1": 0.9, "accuracy": 0.8}) == 0.9
    assert main_metric_value("stsb", {"pearson": 0.85, "spearmanr": 0.84}) == 0.85
    assert main_metric_value("cola", {"matthews_correlation": 0.5}) == 0.5
    with pytest.raises(ValueError, match="main metric 'accuracy'"):
        main_metric_value("RTE", {"f1": 0.5})


def test_task_and_glue_scores_in_points():
    assert task_score("MRPC", {"f1": 0.9, "accuracy": 0.8}) == pytest.approx(85.0)
    per_task = {
        "MRPC": {"f1": 0.9, "accuracy": 0.8},  # 85
        "sts-b": {"pearson": 0.9, "spearmanr": 0.8},  # 85
        "rte": {"accuracy": 0.7},  # 70
    }
    assert glue_score(per_task) == pytest.approx(80.0)
    # MNLI counts once: the mean of matched (80) and mismatched (82) -> 81.
    with_mnli = {**per_task, "MNLI-m": {"accuracy": 0.80}, "MNLI-mm": {"accuracy": 0.82}}
    assert glue_score(with_mnli) == pytest.approx((85 + 85 + 70 + 81) / 4)
    assert glue_score({"mnli": {"accuracy": 0.8}}) == pytest.approx(80.0)


def test_glue_score_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one task"):
        glue_score({})
    with pytest.raises(ValueError, match="RTE twice"):
        glue_score({"rte": {"accuracy": 0.7}, "RTE": {"accuracy": 0.7}})
    with pytest.raises(ValueError, match="MRPC metrics lack accuracy"):
        glue_score({"mrpc": {"f1": 0.9}})
