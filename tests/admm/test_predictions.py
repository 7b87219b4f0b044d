"""predictions.tsv: what a run keeps so two runs can be compared example by example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nxm_deploy.admm.predictions import read_predictions, write_predictions
from nxm_deploy.errors import UserError


def test_a_regression_task_keeps_its_scores_and_a_classifier_its_classes(tmp_path: Path) -> None:
    scores = np.array([[0.0], [2.5], [4.999999], [5.0]])
    write_predictions(tmp_path / "s.tsv", True, {"dev": (scores, np.array([0.0, 2.0, 5.0, 5.0]))})
    back = read_predictions(tmp_path / "s.tsv")["dev"]
    assert back.prediction.dtype == np.float64 and back.prediction.tolist() == pytest.approx(scores[:, 0])
    assert back.label.tolist() == [0.0, 2.0, 5.0, 5.0]  # whole scores stay scores, not classes

    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0]])
    splits = {"dev_matched": (logits, np.array([1, 1, 1])), "dev_mismatched": (logits[:1], np.array([0]))}
    write_predictions(tmp_path / "c.tsv", False, splits)
    back2 = read_predictions(tmp_path / "c.tsv")
    assert back2["dev_matched"].prediction.tolist() == [1, 0, 1]
    assert back2["dev_matched"].correct().tolist() == [True, False, True]
    assert back2["dev_mismatched"].correct().tolist() == [False]


def test_a_missing_or_foreign_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_predictions(tmp_path)
    (tmp_path / "predictions.tsv").write_text("id,label\n1,0\n")
    with pytest.raises(UserError, match="not a predictions file"):
        read_predictions(tmp_path)
