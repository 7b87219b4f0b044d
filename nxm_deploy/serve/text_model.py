"""The Triton Python-backend model that ``nxm-deploy serve`` runs (copied to ``<repo>/<name>/1/model.py``):
raw text in, a ``Predictor`` inside, labels out. Triton loads it in its Python backend stub, which
imports this virtual environment's packages (``process.server_env``).

Inputs (BYTES, one text per row, the batch dimension up to ``max_batch_size``): ``text``, and
``text_pair`` for a pair task. Outputs: ``label`` (BYTES; empty for a regression task), ``scores``
(FP32, one per label, in class-id order; ``value``, the score, for a regression task) and
``truncated`` (BOOL). A request that cannot be answered (not UTF-8, too long, an empty batch, a text
the task does not take) gets its own error response; the other requests of a dynamic batch are
answered as usual.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub's module

from nxm_deploy.errors import UserError
from nxm_deploy.runtime import Predictor

WARMUP = "Warm-up sentence for the model."


def _param(config: dict[str, Any], key: str, default: str = "") -> str:
    return str(((config.get("parameters") or {}).get(key) or {}).get("string_value", default))


def _texts(request: Any, name: str, limit: int) -> list[str] | None:
    """The UTF-8 texts of input ``name`` of ``request`` (None when absent); ValueError when bad.
    (``runtime/triton_models/tokenize_model.py`` has the same check on purpose: that file runs in a
    stock Triton where nxm_deploy is not installed, so it cannot import this one.)"""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    array = tensor.as_numpy()  # object (b, 1) of bytes
    if array.size == 0 or array.shape[0] == 0:
        raise ValueError(f"input {name!r} is an empty batch; send at least one text")
    out = []
    for i, raw in enumerate(array.reshape(array.shape[0], -1)[:, 0]):
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        if len(data) > limit:
            raise ValueError(f"{name}[{i}] is {len(data)} bytes; the limit is {limit} (max_text_bytes)")
        try:
            out.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{name}[{i}] is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return out


class TritonPythonModel:
    """Triton's Python-backend interface: ``initialize``, ``execute``, ``finalize``."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        threads = _param(config, "threads")
        self.predictor = Predictor.from_export(
            _param(config, "export_dir"),
            _param(config, "backend", "ort"),
            max_batch=int(config.get("max_batch_size") or 32),
            threads=int(threads) if threads else None,
            ort_provider=_param(config, "ort_provider", "cpu"),
        )
        self.limit = int(_param(config, "max_text_bytes", "65536"))
        warm = (WARMUP, WARMUP) if self.predictor.is_pair else WARMUP
        self.predictor.predict([warm] * min(4, self.predictor.max_batch))  # the first request is not slow

    def _outputs(self, items: list[Any]) -> dict[str, np.ndarray]:
        predictions = self.predictor.predict(items)
        truncated = np.array([[p.truncated] for p in predictions], dtype=np.bool_)
        if self.predictor.is_regression:
            labels = np.array([[b""] for _ in predictions], dtype=np.object_)
            scores = np.array([[p.value] for p in predictions], dtype=np.float32)
            name = "value"
        else:
            labels = np.array([[str(p.label).encode()] for p in predictions], dtype=np.object_)
            scores = np.array([[p.scores[k] for k in self.predictor.labels] for p in predictions], np.float32)
            name = "scores"
        return {"label": labels, name: scores, "truncated": truncated}

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request; the good requests of one kind are predicted together."""
        responses: list[Any] = [None] * len(requests)
        groups: dict[bool, list[tuple[int, list[Any]]]] = {False: [], True: []}
        for r, request in enumerate(requests):
            try:
                texts = _texts(request, "text", self.limit)
                pairs = _texts(request, "text_pair", self.limit)
                if texts is None:
                    raise ValueError("input 'text' is missing")
                if pairs is not None and len(pairs) != len(texts):
                    raise ValueError(f"{len(texts)} texts but {len(pairs)} text_pair rows")
                items = texts if pairs is None else list(zip(texts, pairs, strict=True))
                groups[pairs is not None].append((r, items))
            except ValueError as exc:
                responses[r] = pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(str(exc))
                )
        for group in groups.values():
            self._answer(group, responses)
        return responses

    def _answer(self, group: list[tuple[int, list[Any]]], responses: list[Any]) -> None:
        if not group:
            return
        try:
            outputs = self._outputs([item for _, items in group for item in items])
        except (UserError, ValueError) as exc:
            if len(group) > 1:  # a bad request among good ones: answer each alone, so it fails alone
                for one in group:
                    self._answer([one], responses)
            else:
                error = pb_utils.TritonError(str(exc))
                responses[group[0][0]] = pb_utils.InferenceResponse(output_tensors=[], error=error)
            return
        start = 0
        for r, items in group:
            part = [pb_utils.Tensor(k, v[start : start + len(items)]) for k, v in outputs.items()]
            responses[r] = pb_utils.InferenceResponse(output_tensors=part)
            start += len(items)

    def finalize(self) -> None:
        self.predictor = None
