"""Load an export directory and predict: the piece a serving pipeline imports.

    from nxm_deploy.runtime import Predictor

    predictor = Predictor.from_export("exports/rte-admm")            # backend="ort"; or "trt"
    [p] = predictor.predict([("A man is sleeping.", "Nobody sleeps.")])
    p.label, p.scores, p.truncated    # 'not_entailment', {'entailment': 0.08, 'not_entailment': 0.92}, False

One ``Predictor`` serves any number of threads at once (see ``encoding`` and ``sessions`` for how);
create it once per process and share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nxm_deploy.errors import PredictInputError
from nxm_deploy.runtime.encoding import Batch, Encoded, TextEncoder, split_inputs
from nxm_deploy.runtime.exportdir import BACKENDS, ExportDir, ServingFacts
from nxm_deploy.runtime.ort_session import OrtSession
from nxm_deploy.runtime.session import Session, require_tensorrt

__all__ = ["DEFAULT_MAX_BATCH", "Prediction", "Predictor", "open_session", "predictions_from_logits"]

DEFAULT_MAX_BATCH = 32

Item = str | tuple[str, str]


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one input.

    Classification: ``label`` is the most probable label name (``label_id`` its class id) and
    ``scores`` maps every label name to its softmax probability (they sum to 1); ``value`` is None.
    Regression (STS-B): ``value`` is the predicted score; ``label`` and ``label_id`` are None and
    ``scores`` is empty. ``truncated`` says whether the input had more tokens than the export's
    ``max_seq_len`` and was cut to fit.
    """

    label: str | None
    label_id: int | None
    scores: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "label_id": self.label_id,
            "scores": dict(self.scores),
            "value": self.value,
            "truncated": self.truncated,
        }


def open_session(
    backend: str, export: ExportDir, threads: int | None = None, ort_provider: str = "cpu"
) -> Session:
    """The session for ``backend`` (``"ort"`` or ``"trt"``) over ``export``'s model file;
    ``ort_provider``: ONNX Runtime's ``cpu``, ``cuda`` or ``tensorrt`` provider (``ort`` only)."""
    facts = export.facts
    if backend == "trt":
        require_tensorrt()  # before looking for the engine: the environment is the first problem
        from nxm_deploy.runtime.trt_session import TrtSession

        return TrtSession(export.model_file("trt"), input_names=facts.input_names, output=facts.output_name,
                          evidence=export.tensorrt.to_json())  # fmt: skip
    path = export.model_file(backend)  # refuses an unknown backend
    return OrtSession(path, threads, input_names=facts.input_names, output=facts.output_name,
                      provider=ort_provider)  # fmt: skip


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)  # (N, C)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predictions_from_logits(
    logits: np.ndarray, facts: ServingFacts, truncated: Sequence[bool]
) -> list[Prediction]:
    """One :class:`Prediction` per row of ``logits`` (N, outputs), e.g. as Triton returned them."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != facts.num_outputs or len(logits) != len(truncated):
        raise PredictInputError(
            f"expected logits of shape ({len(truncated)}, {facts.num_outputs}), got {logits.shape}"
        )
    if facts.is_regression:
        return [
            Prediction(None, None, {}, float(v), bool(t))
            for v, t in zip(logits[:, 0], truncated, strict=True)
        ]
    probs = _softmax(logits)  # (N, C)
    ids = probs.argmax(axis=1)  # (N,)
    return [
        Prediction(
            facts.labels[i], int(i), dict(zip(facts.labels, map(float, row), strict=True)), None, bool(t)
        )
        for i, row, t in zip(ids, probs, truncated, strict=True)
    ]


class Predictor:
    """Tokenizer + model of one export directory, behind ``predict``."""

    def __init__(
        self,
        export: ExportDir,
        session: Session,
        encoder: TextEncoder,
        max_batch: int,
        min_seq: int = 1,
    ) -> None:
        self.export = export
        self.session = session
        self.encoder = encoder
        self.max_batch = max_batch
        self.min_seq = min_seq
        self.facts = export.facts

    @classmethod
    def from_export(
        cls,
        export_dir: str | os.PathLike[str],
        backend: str = "ort",
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        threads: int | None = None,
        ort_provider: str = "cpu",
    ) -> Predictor:
        """Open ``export_dir`` (written by ``nxm-deploy export``) on ``backend``.

        ``backend``: ``"ort"`` runs ``model.onnx`` on ONNX Runtime (CPU; ``threads`` sets its intra-op
        threads; ``ort_provider`` ``"cuda"`` or ``"tensorrt"`` runs it on the GPU through
        ``onnxruntime-gpu``, with a one-line :class:`BackendUnavailableError` where that provider is
        missing); ``"trt"`` runs ``model.engine`` through TensorRT on the GPU, and raises
        :class:`BackendUnavailableError` where TensorRT or an NVIDIA GPU is missing.
        ``max_batch``: the most rows per model call (capped by a TensorRT engine's profile).
        Raises :class:`ExportDirError` for a path that is not a complete export directory.
        """
        if backend not in BACKENDS:
            raise PredictInputError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
            raise PredictInputError(f"max_batch must be a positive integer, got {max_batch!r}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise PredictInputError(
                f"threads must be a positive integer (or None: ONNX Runtime's default), got {threads!r}"
            )
        export = ExportDir.read(export_dir)
        if ort_provider != "cpu" and backend != "ort":
            raise PredictInputError(
                f"ort_provider={ort_provider!r} applies to backend 'ort', not {backend!r}"
            )
        session = open_session(backend, export, threads, ort_provider)
        max_seq, min_seq = export.facts.max_seq_len, 1
        if session.limits is not None:  # a TensorRT profile bounds batch and sequence
            (_, min_seq), (max_b, max_s) = session.limits
            max_batch, max_seq = min(max_batch, max_b), min(max_seq, max_s)
        encoder = TextEncoder.from_dir(export.path, export.facts, max_seq)
        return cls(export, session, encoder, max_batch, min_seq)

    # ---- facts --------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self.session.backend

    @property
    def task(self) -> str | None:
        return self.facts.task

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names in class-id order; () for regression."""
        return self.facts.labels

    @property
    def is_pair(self) -> bool | None:
        return self.facts.is_pair

    @property
    def is_regression(self) -> bool:
        return self.facts.is_regression

    @property
    def max_seq_len(self) -> int:
        """Inputs with more tokens than this are truncated (and flagged)."""
        return self.encoder.max_seq_len

    def info(self) -> dict[str, Any]:
        """What a health endpoint would show: the model, its task and the runtime."""
        run = self.export.source_run
        return {
            "export_dir": str(self.export.path.resolve()),
            "task": self.task,
            "labels": list(self.labels),
            "is_pair": self.is_pair,
            "regression": self.is_regression,
            "max_seq_len": self.max_seq_len,
            "max_batch": self.max_batch,
            "method": run.facts.method,
            "pattern": str(run.facts.pattern) if run.facts.pattern else None,
            "base_model": run.facts.base_model,
            **self.session.info(),
        }

    # ---- prediction ---------------------------------------------------------------------------

    def encode(self, inputs: Iterable[Item]) -> Encoded:
        """Check and tokenize ``inputs`` (see :meth:`predict`)."""
        texts_a, texts_b = split_inputs(inputs, self.facts)
        return self.encoder.encode(texts_a, texts_b)

    def batches(self, encoded: Encoded, buckets: Sequence[int] | None = None) -> list[Batch]:
        return self.encoder.batches(encoded, self.max_batch, self.min_seq, buckets)

    def logits(self, inputs: Iterable[Item]) -> tuple[np.ndarray, list[bool]]:
        """Raw model outputs, float32 (N, outputs) in input order, and the truncation flags."""
        encoded = self.encode(inputs)
        out = np.empty((len(encoded), self.facts.num_outputs), dtype=np.float32)
        for batch in self.batches(encoded):
            out[batch.rows] = self.session.run(batch.feed)  # (b, outputs)
        return out, encoded.truncated

    def predict(self, inputs: Iterable[Item]) -> list[Prediction]:
        """One :class:`Prediction` per input, in input order.

        ``inputs``: a list of sentences (``["great film", ...]``) for a single-sentence task, or of
        ``(sentence1, sentence2)`` pairs (tuples, or two-item lists as JSON gives them) for a pair
        task (RTE, MRPC, STS-B, ...). Rows are batched
        (at most ``max_batch`` per model call, each batch padded to its longest row) and cut to
        ``max_seq_len`` tokens. Raises :class:`PredictInputError` (a ``ValueError``) for an empty
        list, a dict or set (not a list), mixed sentences and pairs, the kind of input the task does not
        take, or a text that is not valid Unicode (a lone surrogate such as ``"\\ud800"``, which
        ``surrogateescape`` decoding leaves for bytes that are not UTF-8): the error names its row.
        """
        logits, truncated = self.logits(inputs)
        return predictions_from_logits(logits, self.facts, truncated)

    def predict_one(self, text: str, text_pair: str | None = None) -> Prediction:
        """``predict`` for a single sentence, or a single pair."""
        return self.predict([text if text_pair is None else (text, text_pair)])[0]
