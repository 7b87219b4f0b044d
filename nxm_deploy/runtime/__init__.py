"""Serve an export directory: ``Predictor`` (ONNX Runtime or TensorRT, thread-safe, batched) and a
Triton Inference Server model repository writer (``triton``). See docs/serving.md.

    from nxm_deploy.runtime import Predictor
    predictor = Predictor.from_export("exports/rte-admm")
    predictor.predict([("A man is sleeping.", "Nobody sleeps.")])[0].label

onnxruntime, tensorrt and transformers are imported when a Predictor is opened, not on import.
"""

from nxm_deploy.runtime.errors import (
    BackendUnavailableError,
    ExportDirError,
    InferenceError,
    PredictInputError,
)
from nxm_deploy.runtime.facts import ExportDir, ServingFacts
from nxm_deploy.runtime.predictor import DEFAULT_MAX_BATCH, Prediction, Predictor, predictions_from_logits

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
    "predictions_from_logits",
]
