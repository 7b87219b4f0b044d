"""The task's GLUE metric over the full dev set, through the same runtime as the latency runs.

    encoder = TextEncoder(tokenizer, session.input_names, max_seq_len=128)
    encoded = encoder.encode(dev.texts_a, dev.texts_b)
    result = evaluate(session, encoder, encoded, dev.task, dev.labels, batch_size=32)

Every dev row is tokenized once (truncated to the run's ``max_seq_len``, no padding). Rows are then
ordered by token count and cut into batches of ``batch_size``, each padded to its longest row (or to
the engine's smallest sequence, if larger), so that batches hold rows of similar length and little
padding; the logits are put back in file order before scoring. Tokenizing, ordering and padding are
``Predictor``'s own (:class:`~nxm_deploy.runtime.encoding.TextEncoder`). A model's prediction for a
row does not depend on the rows it is batched with (the attention mask hides the padding), up to
float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nxm_deploy.data import compute_metrics, main_metric_value
from nxm_deploy.data.tasks import GlueTask
from nxm_deploy.runtime.encoding import Encoded, TextEncoder
from nxm_deploy.runtime.session import Session

__all__ = ["AccuracyResult", "agreement", "evaluate"]


@dataclass(frozen=True)
class AccuracyResult:
    logits: np.ndarray  # (N, num_labels), file order
    metrics: dict[str, float]
    main: float
    seconds: float
    batches: int

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "main": self.main,
            "seconds": round(self.seconds, 3),
            "batches": self.batches,
        }


def evaluate(
    session: Session,
    encoder: TextEncoder,
    encoded: Encoded,
    task: GlueTask,
    labels: Sequence[int | float],
    batch_size: int,
) -> AccuracyResult:
    """Logits for every row through ``session``, and the task's metrics on them."""
    min_seq = session.limits[0][1] if session.limits else 1
    if session.limits:
        batch_size = min(batch_size, session.limits[1][0])
    batches = encoder.batches(encoded, batch_size, min_seq)
    logits: np.ndarray | None = None
    start = time.perf_counter()
    for batch in batches:
        out = session.run(batch.feed)  # (b, num_labels)
        if logits is None:
            logits = np.empty((len(encoded), out.shape[1]), dtype=np.float32)
        logits[batch.rows] = out
    seconds = time.perf_counter() - start
    assert logits is not None  # a dev split is never empty (the loader refuses one)
    metrics = compute_metrics(task, logits, labels)
    return AccuracyResult(logits, metrics, main_metric_value(task, metrics), seconds, len(batches))


def agreement(task: GlueTask, dense: np.ndarray, sparse: np.ndarray) -> float | None:
    """Fraction of rows where both models predict the same class (None for regression)."""
    if task.is_regression:
        return None
    return float(np.mean(dense.argmax(axis=1) == sparse.argmax(axis=1)))
