"""The client side of a Triton model written by ``nxm_deploy.runtime.triton``: requests shaped the way
its ``nxm_serving.json`` says (the request contract: rows padded to fixed sequence buckets), and
predictions from what Triton returns.

    requests = TritonRequests.from_model_dir("triton_repo/rte")
    plan = requests.encode([("A man is sleeping.", "Nobody sleeps.")])
    predictions = requests.decode(plan, [send(batch.feed) for batch in plan.batches])

A serving file that lacks a field, or holds one that is not what the writer writes (a bucket of -3),
is one :class:`ExportDirError` line naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import ExportDirError, PredictInputError
from nxm_deploy.io import read_json
from nxm_deploy.runtime.encoding import Batch, TextEncoder, split_inputs
from nxm_deploy.runtime.exportdir import ServingFacts
from nxm_deploy.runtime.predictor import Item, Prediction, predictions_from_logits

__all__ = ["SERVING_FILE", "TritonPlan", "TritonRequests"]

SERVING_FILE = "nxm_serving.json"


def _read_buckets(value: Any, max_seq_len: int, path: Path, redo: str) -> tuple[int, ...]:
    """``sequence_buckets`` of a serving file: increasing token counts from 2 up to ``max_seq_len``."""
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(b, int) and not isinstance(b, bool) for b in value)
    )
    if ok and (value[0] < 2 or value[-1] > max_seq_len or value != sorted(set(value))):
        ok = False
    if not ok:
        raise ExportDirError(
            f"{path}: sequence_buckets {value!r} must be increasing token counts from 2 up to max_seq_len "
            f"{max_seq_len}; {redo}"
        )
    return tuple(value)


@dataclass(frozen=True)
class TritonPlan:
    """The requests for one call: each batch is one Triton request (rows of one bucket)."""

    batches: list[Batch]
    truncated: list[bool]


class TritonRequests:
    """Client-side shaping for a model written by :func:`write_triton_repo` (see "Request contract")."""

    def __init__(
        self, encoder: TextEncoder, facts: ServingFacts, buckets: Sequence[int], max_batch: int, name: str
    ) -> None:
        self.encoder, self.facts, self.name = encoder, facts, name
        self.buckets, self.max_batch = tuple(buckets), max_batch

    @classmethod
    def from_model_dir(cls, model_dir: str | os.PathLike[str]) -> TritonRequests:
        """Read ``<repo>/<name>/`` (its ``nxm_serving.json`` and tokenizer files)."""
        from nxm_deploy.models import load_tokenizer

        model_dir = Path(model_dir)
        if not (model_dir / SERVING_FILE).is_file():
            raise ExportDirError(
                f"{model_dir} has no {SERVING_FILE}: pass <repo>/<name> written by nxm-deploy"
            )
        path = model_dir / SERVING_FILE
        body = read_json(path, "Triton serving file")
        redo = "write the model again with 'nxm-deploy export ... --triton-repo'"
        missing = [k for k in ("facts", "sequence_buckets", "max_batch_size", "name") if k not in body]
        if missing:
            raise ExportDirError(f"{path} has no {', '.join(missing)}; {redo}")
        try:
            facts = ServingFacts.from_json(body["facts"])
        except KeyError as exc:
            raise ExportDirError(f"{path}: its facts have no {exc}; {redo}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise ExportDirError(f"{path}: {exc}; {redo}") from exc
        if facts.max_seq_len < 2:
            raise ExportDirError(f"{path}: facts.max_seq_len {facts.max_seq_len} is below 2 tokens; {redo}")
        buckets = _read_buckets(body["sequence_buckets"], facts.max_seq_len, path, redo)
        max_batch = body["max_batch_size"]
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ExportDirError(
                f"{path}: max_batch_size must be a positive integer, got {max_batch!r}; {redo}"
            )
        encoder = TextEncoder(load_tokenizer(model_dir.resolve()), facts.input_names, buckets[-1])
        return cls(encoder, facts, buckets, max_batch, str(body["name"]))

    def encode(self, inputs: Iterable[Item]) -> TritonPlan:
        """Check and tokenize ``inputs`` (as ``Predictor.predict`` takes them) into bucketed requests."""
        texts_a, texts_b = split_inputs(inputs, self.facts)
        encoded = self.encoder.encode(texts_a, texts_b)
        return TritonPlan(
            self.encoder.batches(encoded, self.max_batch, buckets=self.buckets), encoded.truncated
        )

    def decode(self, plan: TritonPlan, outputs: Sequence[np.ndarray]) -> list[Prediction]:
        """Predictions in input order from the ``logits`` Triton returned for each of ``plan.batches``."""
        if len(outputs) != len(plan.batches):
            raise PredictInputError(f"{len(outputs)} outputs for {len(plan.batches)} requests")
        logits = np.empty((len(plan.truncated), self.facts.num_outputs), dtype=np.float32)
        for batch, out in zip(plan.batches, outputs, strict=True):
            logits[batch.rows] = np.asarray(out, dtype=np.float32).reshape(len(batch.rows), -1)
        return predictions_from_logits(logits, self.facts, plan.truncated)
