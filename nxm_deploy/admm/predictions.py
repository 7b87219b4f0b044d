"""The dev predictions a run keeps: ``predictions.tsv`` in the run directory, one line per dev row,
so two runs can be compared example by example (McNemar, a paired bootstrap) long after training.

    write_predictions(run_dir / PREDICTIONS_FILE, task, {"dev": (logits, labels)})
    rows = read_predictions("runs/rte-admm")   # {"dev": Predictions(index, label, prediction)}

Columns: ``split`` (the dev split's name), ``index`` (the row's position in that split's file order),
``label`` (the gold label: a class index, or the score of a regression task) and ``prediction`` (the
predicted class index, or the predicted score; a regression task's scores are written with six
decimals, so a decimal point marks them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import UserError

__all__ = ["PREDICTIONS_FILE", "Predictions", "read_predictions", "write_predictions"]

PREDICTIONS_FILE = "predictions.tsv"
_HEADER = "split\tindex\tlabel\tprediction"


@dataclass(frozen=True)
class Predictions:
    """One dev split's rows in file order: gold ``label`` and ``prediction`` (int classes or floats)."""

    index: np.ndarray
    label: np.ndarray
    prediction: np.ndarray

    def correct(self) -> np.ndarray:
        """Per row, whether the predicted class is the gold one (classification only)."""
        return self.label == self.prediction


def _as_predictions(output: np.ndarray, regression: bool) -> np.ndarray:
    out = np.asarray(output)
    if regression:
        return out.reshape(len(out), -1)[:, 0].astype(np.float64)
    return out.argmax(axis=-1).astype(np.int64)


def write_predictions(path: Path, regression: bool, splits: dict[str, tuple[Any, Any]]) -> None:
    """Write ``splits`` (split name -> (model outputs [N, C], gold labels [N])) to ``path``
    (a temporary file, then renamed)."""
    lines = [_HEADER]
    for name, (output, labels) in splits.items():
        pred = _as_predictions(output, regression)
        gold = np.asarray(labels).reshape(-1)
        for i, (y, p) in enumerate(zip(gold, pred, strict=True)):
            if regression:
                lines.append(f"{name}\t{i}\t{float(y):.6f}\t{float(p):.6f}")
            else:
                lines.append(f"{name}\t{i}\t{int(y)}\t{int(p)}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def read_predictions(where: str | Path) -> dict[str, Predictions]:
    """The predictions a run kept (``where``: the run directory or the file itself), by split."""
    path = Path(where)
    if path.is_dir():
        path = path / PREDICTIONS_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist: runs keep their dev predictions since nxm-deploy 0.3.0")
    lines = path.read_text().splitlines()
    if not lines or lines[0] != _HEADER:
        raise UserError(f"{path} is not a predictions file (its first line must be {_HEADER!r})")
    cols: dict[str, list[list[str]]] = {}
    for n, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 4:
            raise UserError(f"{path} line {n}: expected 4 tab-separated columns, got {len(parts)}")
        cols.setdefault(parts[0], []).append(parts[1:])
    out = {}
    for name, rows in cols.items():
        a = np.array(rows)
        regression = any("." in v for v in a[:, 1:].ravel())
        kind = np.float64 if regression else np.int64
        out[name] = Predictions(a[:, 0].astype(np.int64), a[:, 1].astype(kind), a[:, 2].astype(kind))
    return out
