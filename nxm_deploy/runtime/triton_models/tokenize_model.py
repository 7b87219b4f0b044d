"""Triton Python-backend model: raw text in, token ids out (written by nxm-deploy export --triton-repo).

Inputs: ``text`` (BYTES, one text per row) and, for a pair task, ``text_pair``. Outputs: the model's
token inputs (int64, each row padded to the smallest sequence bucket that holds the longest row of
the request) and ``truncated`` (BOOL: the row had more than ``max_seq_len`` tokens and was cut).
The tokenizer files sit in this model's folder; parameters: ``max_seq_len``, ``buckets``,
``input_names``, ``pad_values``, ``left_padding``, ``max_text_bytes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub's module


def _decode(request: Any, name: str, limit: int) -> list[str] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    array = tensor.as_numpy()
    if array.size == 0:
        raise ValueError(f"input {name!r} is an empty batch; send at least one text")
    texts = []
    for i, raw in enumerate(array.reshape(array.shape[0], -1)[:, 0]):
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        if len(data) > limit:
            raise ValueError(f"{name}[{i}] is {len(data)} bytes; the limit is {limit}")
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{name}[{i}] is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return texts


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        from transformers import AutoTokenizer

        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in (config.get("parameters") or {}).items()}
        self.tokenizer = AutoTokenizer.from_pretrained(Path(args["model_repository"]))
        self.max_seq_len = int(params["max_seq_len"])
        self.buckets = [int(b) for b in params["buckets"].split(",")]
        self.names = params["input_names"].split(",")
        self.pad = {k: int(v) for k, v in json.loads(params["pad_values"]).items()}
        self.left = params.get("left_padding") == "true"
        self.limit = int(params.get("max_text_bytes", "65536"))

    def _encode(
        self, texts: list[str], pairs: list[str] | None, max_length: int
    ) -> dict[str, list[list[int]]]:
        enc = self.tokenizer(texts, pairs, truncation=True, max_length=max_length,
                             return_token_type_ids="token_type_ids" in self.names)  # fmt: skip
        return {name: list(enc[name]) for name in self.names}

    def _one(self, request: Any) -> Any:
        texts = _decode(request, "text", self.limit)
        pairs = _decode(request, "text_pair", self.limit)
        if texts is None:
            raise ValueError("input 'text' is missing")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} text_pair rows")
        features = self._encode(texts, pairs, self.max_seq_len + 1)  # a row this long was cut
        long = [i for i, ids in enumerate(features["input_ids"]) if len(ids) > self.max_seq_len]
        if long:
            again = self._encode([texts[i] for i in long], [pairs[i] for i in long] if pairs else None,
                                 self.max_seq_len)  # fmt: skip
            for j, i in enumerate(long):
                for name in self.names:
                    features[name][i] = again[name][j]
        longest = max(len(ids) for ids in features["input_ids"])
        size = next(b for b in self.buckets if b >= longest)
        outputs = []
        for name in self.names:
            array = np.full((len(texts), size), self.pad.get(name, 0), dtype=np.int64)
            for r, ids in enumerate(features[name]):
                if self.left:
                    array[r, size - len(ids) :] = ids
                else:
                    array[r, : len(ids)] = ids
            outputs.append(pb_utils.Tensor(name, array))
        flags = np.zeros((len(texts), 1), dtype=np.bool_)
        flags[long] = True
        return pb_utils.InferenceResponse(output_tensors=[*outputs, pb_utils.Tensor("truncated", flags)])

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                responses.append(self._one(request))
            except (ValueError, RuntimeError) as exc:  # this request only
                responses.append(
                    pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(exc)))
                )
        return responses
