"""Triton Python-backend model: logits in, labels out (written by nxm-deploy export --triton-repo).

Input ``logits`` (FP32, one per label; one for a regression task). Outputs: ``label`` (BYTES, the
most probable label name of ``labels.txt`` in this model's folder; empty for regression), ``scores``
(FP32 softmax probabilities in class-id order) or, for regression, ``value`` (the score).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub's module


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        path = Path(args["model_repository"]) / "labels.txt"
        self.labels = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []

    def _one(self, request: Any) -> Any:
        logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy().astype(np.float64)
        if not self.labels:  # regression: the value, no label
            label = np.full((len(logits), 1), b"", dtype=np.object_)
            return [
                pb_utils.Tensor("label", label),
                pb_utils.Tensor("value", logits[:, :1].astype(np.float32)),
            ]
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        label = np.array([[self.labels[i].encode()] for i in probs.argmax(axis=1)], dtype=np.object_)
        return [pb_utils.Tensor("label", label), pb_utils.Tensor("scores", probs.astype(np.float32))]

    def execute(self, requests: list[Any]) -> list[Any]:
        return [pb_utils.InferenceResponse(output_tensors=self._one(r)) for r in requests]
