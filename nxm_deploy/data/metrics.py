"""GLUE metrics in numpy: accuracy, F1, Matthews correlation, Pearson, Spearman, and the GLUE score.

Metric values are fractions (accuracy and F1 in [0, 1], correlations in [-1, 1]); ``task_score`` and
``glue_score`` are in points (0-100), as GLUE reports them. Degenerate inputs that leave a correlation
undefined (a constant prediction or label vector) give 0.0, as scikit-learn does for MCC, so that a
collapsed model reads as "no correlation" and the result stays valid JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from nxm_deploy.data.tasks import GlueTask, get_task, normalize_task_name


def accuracy(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of class ids equal to the labels."""
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y))


def f1(predictions: ArrayLike, labels: ArrayLike, positive: int = 1) -> float:
    """F1 of the positive class (id ``positive``, 1 for GLUE): 2 tp / (2 tp + fp + fn); 0.0 when
    there is no positive at all."""
    p, y = _pair(predictions, labels)
    tp = int(np.sum((p == positive) & (y == positive)))
    wrong = int(np.sum((p == positive) != (y == positive)))  # fp + fn
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def macro_f1(predictions: ArrayLike, labels: ArrayLike) -> float:
    """The unweighted mean over the classes present (in labels or predictions) of each one's F1."""
    p, y = _pair(predictions, labels)
    return float(np.mean([f1(p, y, int(c)) for c in np.unique(np.concatenate([p, y]))]))


def matthews_correlation(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Matthews correlation coefficient (multiclass form, Gorodkin 2004); 0.0 when undefined."""
    p, y = _pair(predictions, labels)
    _, codes = np.unique(np.concatenate([y, p]), return_inverse=True)
    k = int(codes.max()) + 1
    n = len(y)
    conf = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k).astype(np.float64)
    t_sum, p_sum = conf.sum(axis=1), conf.sum(axis=0)  # (K,) true and predicted counts
    total, correct = conf.sum(), np.trace(conf)
    cov_tp = correct * total - t_sum @ p_sum
    cov_pp = total**2 - p_sum @ p_sum
    cov_tt = total**2 - t_sum @ t_sum
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(np.clip(cov_tp / np.sqrt(cov_tt * cov_pp), -1.0, 1.0))


def pearson(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Pearson correlation; 0.0 when either side is constant."""
    x, y = _pair(predictions, labels, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x @ x) * (y @ y))
    if denom == 0:
        return 0.0
    return float(np.clip((x @ y) / denom, -1.0, 1.0))


def spearmanr(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Spearman rank correlation: Pearson of the ranks, tied values sharing their average rank."""
    x, y = _pair(predictions, labels, dtype=np.float64)
    return pearson(_average_ranks(x), _average_ranks(y))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` (N,); a run of ties gets the mean of the ranks it spans."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.concatenate([[True], xs[1:] != xs[:-1]])  # (N,) first of each run of equal values
    run = np.cumsum(starts) - 1  # (N,) run index of each sorted position
    bounds = np.concatenate([np.flatnonzero(starts), [len(x)]])  # (R+1,) run start positions
    mean_rank = (bounds[:-1] + bounds[1:] + 1) / 2.0  # (R,) mean of 1-based ranks start+1..end
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = mean_rank[run]
    return ranks


def _pair(a: ArrayLike, b: ArrayLike, dtype: type | None = None) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=dtype).ravel(), np.asarray(b, dtype=dtype).ravel()
    if len(x) != len(y):
        raise ValueError(f"{len(x)} predictions for {len(y)} labels")
    if len(x) == 0:
        raise ValueError("no predictions to score")
    return x, y


METRICS: Mapping[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "macro_f1": macro_f1,
    "matthews_correlation": matthews_correlation,
    "pearson": pearson,
    "spearmanr": spearmanr,
}


def compute_metrics(task: GlueTask | str, predictions: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """The task's official metrics, keyed as in ``task.metrics``.

    ``predictions``: logits (N, C) (argmax is taken) or class ids (N,) for classification; values (N,)
    or (N, 1) for regression (STS-B). ``labels``: class ids or scores (N,)."""
    task = get_task(task)
    p = np.asarray(predictions)
    if task.is_regression:
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        if p.ndim != 1:
            raise ValueError(f"{task.name} predictions must be (N,) or (N, 1) scores, got shape {p.shape}")
        p = p.astype(np.float64)
    else:
        if p.ndim == 2:
            if p.shape[1] != task.num_labels:
                raise ValueError(f"{task.name} logits must be (N, {task.num_labels}), got shape {p.shape}")
            p = p.argmax(axis=1)
        elif p.ndim != 1 or (p.size and not np.all(np.mod(p, 1) == 0)):
            raise ValueError(f"{task.name} predictions must be logits (N, C) or class ids (N,)")
        p = p.astype(np.int64)
    return {
        name: f1(p, labels, task.positive_id) if name == "f1" else METRICS[name](p, labels)
        for name in task.metrics
    }


def main_metric_value(task: GlueTask | str, metrics: Mapping[str, float]) -> float:
    """The value of ``task.main_metric`` in ``metrics`` (a ``compute_metrics`` result)."""
    task = get_task(task)
    if task.main_metric not in metrics:
        raise ValueError(f"{task.name} metrics lack its main metric {task.main_metric!r}: {dict(metrics)}")
    return float(metrics[task.main_metric])


def task_score(task: GlueTask | str, metrics: Mapping[str, float]) -> float:
    """The task's GLUE score in points: 100 x the mean of its official metrics (MRPC: F1 and accuracy;
    STS-B: Pearson and Spearman; others: their one metric)."""
    task = get_task(task)
    missing = [m for m in task.metrics if m not in metrics]
    if missing:
        raise ValueError(f"{task.name} metrics lack {', '.join(missing)}: {dict(metrics)}")
    return 100.0 * float(np.mean([metrics[m] for m in task.metrics]))


_MNLI_MATCHED = {"mnli", "mnlim", "mnlimatched", "mnlidevmatched"}
_MNLI_MISMATCHED = {"mnlimm", "mnlimismatched", "mnlidevmismatched"}


def glue_score(per_task_metrics: Mapping[str | GlueTask, Mapping[str, float]]) -> float:
    """The GLUE score in points: the unweighted mean, over the tasks given, of each ``task_score``.

    Keys are task names in any spelling ``get_task`` accepts. MNLI counts as one task: its matched
    dev metrics go under ``MNLI`` (or ``MNLI-m``); if ``MNLI-mm`` (mismatched) is given too, MNLI's
    score is the mean of the two. Only the tasks present are averaged: pass all nine for a full score.
    """
    if not per_task_metrics:
        raise ValueError("glue_score needs the metrics of at least one task")
    scores: dict[str, float] = {}
    for key, metrics in per_task_metrics.items():
        k = normalize_task_name(key.name if isinstance(key, GlueTask) else key)
        slot = "MNLI-mm" if k in _MNLI_MISMATCHED else "MNLI" if k in _MNLI_MATCHED else get_task(key).name
        if slot in scores:
            raise ValueError(f"glue_score got {slot} twice (last as {key!r})")
        scores[slot] = task_score("MNLI" if slot.startswith("MNLI") else slot, metrics)
    if "MNLI-mm" in scores and "MNLI" in scores:
        scores["MNLI"] = (scores["MNLI"] + scores.pop("MNLI-mm")) / 2
    return float(np.mean(list(scores.values())))
