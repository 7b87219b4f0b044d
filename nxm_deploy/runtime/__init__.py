"""Run an export directory: ``Predictor`` (ONNX Runtime or TensorRT, thread-safe, batched), the
sessions it shares with ``bench`` (one per backend), and a Triton Inference Server model repository
writer (``triton``). See docs/serving.md.

    from nxm_deploy.runtime import Predictor
    predictor = Predictor.from_export("exports/rte-admm")
    predictor.predict([("A man is sleeping.", "Nobody sleeps.")])[0].label

- ``exportdir``: the export directory and the facts serving needs (labels, inputs, max_seq_len);
- ``session``: the ``Session`` interface; one module per backend: ``ort_session``, ``trt_session``,
  ``torch_session``;
- ``encoding``: text in, padded batches out (thread-safe tokenization, truncation, bucketing);
- ``predictor``, ``triton``, ``pool`` (objects one thread at a time), ``availability`` (TensorRT/GPU).

onnxruntime, tensorrt, torch and transformers are imported when a session opens, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.errors import BackendUnavailableError, ExportDirError, InferenceError, PredictInputError
from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.runtime.exportdir import ExportDir, ServingFacts
    from nxm_deploy.runtime.predictor import (
        DEFAULT_MAX_BATCH,
        Prediction,
        Predictor,
        open_session,
        predictions_from_logits,
    )
    from nxm_deploy.runtime.session import Session

__all__ = [
    "DEFAULT_MAX_BATCH",
    "BackendUnavailableError",
    "ExportDir",
    "ExportDirError",
    "InferenceError",
    "PredictInputError",
    "Prediction",
    "Predictor",
    "ServingFacts",
    "Session",
    "open_session",
    "predictions_from_logits",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DEFAULT_MAX_BATCH": "nxm_deploy.runtime.predictor",
        "ExportDir": "nxm_deploy.runtime.exportdir",
        "Prediction": "nxm_deploy.runtime.predictor",
        "Predictor": "nxm_deploy.runtime.predictor",
        "ServingFacts": "nxm_deploy.runtime.exportdir",
        "Session": "nxm_deploy.runtime.session",
        "open_session": "nxm_deploy.runtime.predictor",
        "predictions_from_logits": "nxm_deploy.runtime.predictor",
    },
)
