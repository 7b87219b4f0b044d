"""Mapping ONNX weights back to PyTorch layers by value, for exporters that rename and pre-transpose.

    index = ValueIndex({"bert.encoder.layer.0.attention.self.query": linear.weight, ...})
    index.layers_for(onnx_array)            # exact match against each [out, in] weight or its transpose
    index.layers_like(int8_offsets)         # a quantized weight: correlation with each of the same shape

A float weight matches exactly (a digest of its bytes). A quantized weight holds only its integer
offsets (``check.qdq.offsets``, times the scale where the graph states one), so it is matched by
Pearson correlation with the reference weights of the same shape: quantization noise keeps it above
:data:`MIN_CORRELATION`, while two different layers' weights are uncorrelated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["MIN_CORRELATION", "ValueIndex"]

MIN_CORRELATION = 0.99


def _digest(a: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    a = np.ascontiguousarray(a)
    return a.dtype.str, a.shape, hashlib.blake2b(a.tobytes(), digest_size=16).digest()


class ValueIndex:
    """Reference ``[out, in]`` weights by the digest of themselves and of their transpose."""

    def __init__(self, reference: Mapping[str, torch.Tensor | np.ndarray]) -> None:
        self._ref = {
            k: v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v)
            for k, v in reference.items()
        }
        self._by_dtype: dict[np.dtype, dict[tuple[str, tuple[int, ...], bytes], list[str]]] = {}

    def layers_for(self, a: np.ndarray) -> list[str]:
        """Layers whose weight (or its transpose) equals ``a`` exactly."""
        if a.dtype.kind != "f":
            return []
        index = self._by_dtype.get(a.dtype)
        if index is None:
            index = {}
            for layer, w in self._ref.items():
                w = w.astype(a.dtype)
                for view in (w, w.T):
                    index.setdefault(_digest(view), []).append(layer)
            self._by_dtype[a.dtype] = index
        return list(dict.fromkeys(index.get(_digest(a), [])))

    def layers_like(self, a: np.ndarray) -> list[str]:
        """Layers whose weight (or its transpose) has ``a``'s shape and a correlation with it of at
        least :data:`MIN_CORRELATION`, best first."""
        x = np.asarray(a, dtype=np.float64).ravel()
        x = x - x.mean()
        scored = []
        for layer, w in self._ref.items():
            for view in (w, w.T):
                if view.shape != a.shape:
                    continue
                y = np.asarray(view, dtype=np.float64).ravel()
                y = y - y.mean()
                denom = float(np.linalg.norm(x) * np.linalg.norm(y))
                r = float(x @ y) / denom if denom > 0 else 0.0
                if r >= MIN_CORRELATION:
                    scored.append((r, layer))
        return list(dict.fromkeys(layer for _, layer in sorted(scored, reverse=True)))
