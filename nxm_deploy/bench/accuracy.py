"""The task's GLUE metric over the full dev set, through the same runtime as the latency runs.

    encoded = encode_split(tokenizer, dev, max_seq_len=128)
    result = evaluate(runner, tokenizer, encoded, dev.task, dev.labels, batch_size=32)

Every dev row is tokenized once (truncated to the run's ``max_seq_len``, no padding). Rows are then
ordered by token count and cut into batches of ``batch_size``, each padded to its longest row (or to
the engine's smallest sequence, if larger), so that batches hold rows of similar length and little
padding; the logits are put back in file order before scoring. A model's prediction for a row does not
depend on the rows it is batched with (the attention mask hides the padding), up to float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nxm_deploy.bench.backends import Runner
from nxm_deploy.data import compute_metrics, main_metric_value
from nxm_deploy.data.tasks import GlueTask, TaskSplit

__all__ = ["AccuracyResult", "EncodedSplit", "encode_split", "evaluate"]


@dataclass(frozen=True)
class EncodedSplit:
    """Token ids of every dev row (lists, unpadded), truncated to ``max_seq_len``."""

    features: dict[str, list[list[int]]]
    max_seq_len: int

    def __len__(self) -> int:
        return len(self.features["input_ids"])

    def lengths(self) -> np.ndarray:
        return np.asarray([len(ids) for ids in self.features["input_ids"]])  # (N,)


def encode_split(tokenizer: Any, split: TaskSplit, max_seq_len: int) -> EncodedSplit:
    enc = tokenizer(split.texts_a, split.texts_b, truncation=True, max_length=max_seq_len)
    return EncodedSplit({k: list(v) for k, v in enc.items()}, max_seq_len)


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


def _batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(lengths, kind="stable")  # (N,) shortest first, ties in file order
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _padded(tokenizer: Any, encoded: EncodedSplit, rows: np.ndarray, min_seq: int) -> dict[str, np.ndarray]:
    chunk = {k: [v[i] for i in rows] for k, v in encoded.features.items()}
    longest = max(len(ids) for ids in chunk["input_ids"])
    out = tokenizer.pad(chunk, padding="max_length", max_length=max(longest, min_seq), return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}


def evaluate(
    runner: Runner,
    tokenizer: Any,
    encoded: EncodedSplit,
    task: GlueTask,
    labels: Sequence[int | float],
    batch_size: int,
) -> AccuracyResult:
    """Logits for every row through ``runner``, and the task's metrics on them."""
    min_seq = runner.limits[0][1] if runner.limits else 1
    if runner.limits:
        batch_size = min(batch_size, runner.limits[1][0])
    chunks = _batches(encoded.lengths(), batch_size)
    logits: np.ndarray | None = None
    start = time.perf_counter()
    for rows in chunks:
        out = runner.predict(_padded(tokenizer, encoded, rows, min_seq))  # (b, num_labels)
        if logits is None:
            logits = np.empty((len(encoded), out.shape[1]), dtype=np.float32)
        logits[rows] = out
    seconds = time.perf_counter() - start
    assert logits is not None  # a dev split is never empty (the loader refuses one)
    metrics = compute_metrics(task, logits, labels)
    return AccuracyResult(logits, metrics, main_metric_value(task, metrics), seconds, len(chunks))


def agreement(task: GlueTask, dense: np.ndarray, sparse: np.ndarray) -> float | None:
    """Fraction of rows where both models predict the same class (None for regression)."""
    if task.is_regression:
        return None
    return float(np.mean(dense.argmax(axis=1) == sparse.argmax(axis=1)))
