"""Triton Python-backend model: ``1/model.onnx`` on ONNX Runtime (CPU), for a Triton whose build lacks
the ONNX Runtime backend (written by nxm-deploy export --triton-repo --triton-backend python).

Same inputs and outputs as the ``onnxruntime_onnx`` model: the token inputs (int64 [batch, sequence])
in, ``logits`` out. The requests of one dynamic batch that share a sequence length run as one call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub's module


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        import onnxruntime as ort

        config = json.loads(args["model_config"])
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def _run(self, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        joined = {n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}
        logits = self.session.run([self.output], joined)[0]
        cuts = np.cumsum([len(f[self.inputs[0]]) for f in feeds])[:-1]
        return np.split(logits, cuts)

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds = [
            {n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests
        ]
        responses: list[Any] = [None] * len(requests)
        by_length: dict[int, list[int]] = {}
        for i, feed in enumerate(feeds):
            by_length.setdefault(feed[self.inputs[0]].shape[1], []).append(i)
        for group in by_length.values():
            try:
                outs = self._run([feeds[i] for i in group])
            except Exception:  # one bad request: run each alone, so that it fails alone
                outs = []
                for i in group:
                    try:
                        outs.append(self._run([feeds[i]])[0])
                    except Exception as exc:
                        outs.append(exc)
            for i, out in zip(group, outs, strict=True):
                if isinstance(out, Exception):
                    error = pb_utils.TritonError(f"ONNX Runtime: {str(out).splitlines()[0]}")
                    responses[i] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                else:
                    responses[i] = pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor(self.output, out)]
                    )
        return responses
