"""SmoothQuant on an FP32 ONNX graph: move activation outliers into the weights before INT8 calibration.

    stats = smooth_onnx(model, feeds, alpha=0.95)  # model: onnx.ModelProto, changed in place

BERT's LayerNorm and GELU outputs carry a few channels far larger than the rest (in MiniLM up to 16x
the median channel's maximum), so one scale per tensor leaves the ordinary channels a handful of INT8
levels. SmoothQuant (Xiao et al., ICML 2023, arXiv 2211.10438) divides input channel ``k`` of ``X`` by
``s_k`` and multiplies row ``k`` of the weight by it, which leaves ``X @ W`` unchanged in exact
arithmetic; with ``s_k = max|X_k|^alpha / max|W_k|^(1 - alpha)`` both sides become easier to quantize.

Here ``X`` is any tensor read by MatMul/Gemm nodes with a constant weight; the products that read the
same ``X`` (the Q, K and V projections) share one ``s``. The division is a ``Mul`` by ``1/s`` on the
products' branch only: the residual stream and every other reader keep the original ``X``. Scaling a
weight row keeps its zeros, so the N:M pattern (along the input axis) is untouched. ``max|X_k|`` comes
from running the graph on the calibration feeds (training rows, never dev).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["smooth_onnx"]

_CLIP = (1e-4, 1e4)


def _weight_readers(model: Any) -> dict[str, list[tuple[Any, Any, bool]]]:
    """``X`` -> [(node, weight initializer, rows_are_input_channels)] for MatMul/Gemm with constant B."""
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, list[tuple[Any, Any, bool]]] = {}
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        attrs = {a.name: a.i for a in node.attribute}
        if node.op_type == "Gemm" and attrs.get("transA", 0):
            continue
        weight = inits[node.input[1]]
        if len(weight.dims) != 2:
            continue
        k_first = not (node.op_type == "Gemm" and attrs.get("transB", 0))  # B is [K, N] unless transB
        out.setdefault(node.input[0], []).append((node, weight, k_first))
    return out


def _channel_max(
    model: Any, names: list[str], feeds: Iterable[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per-channel (last axis) max |value| of each tensor in ``names`` over all ``feeds``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed), strict=True):
            m = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            out[name] = m if name not in out else np.maximum(out[name], m)
    return out


def smooth_onnx(model: Any, feeds: Iterable[dict[str, np.ndarray]], alpha: float) -> dict[str, Any]:
    """Apply SmoothQuant to ``model`` in place (module docstring); return what it did, for export.json.
    The export's default alpha is ``quantize.DEFAULT_SMOOTH_ALPHA`` (chosen on held-out training rows)."""
    from onnx import helper, numpy_helper

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"SmoothQuant's alpha must be between 0 and 1 (exclusive), got {alpha}")
    readers = _weight_readers(model)
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    # a weight read by more than one node (tied) would be scaled twice: leave its group alone
    readers = {x: g for x, g in readers.items() if all(uses[w.name] == 1 for _, w, _ in g)}
    if not readers:
        return {"alpha": alpha, "tensors": 0}
    xmax = _channel_max(model, list(readers), feeds)
    inserted: list[tuple[int, Any]] = []
    order = {id(n): i for i, n in enumerate(model.graph.node)}
    ratios = []
    for x, group in readers.items():
        if x not in xmax:
            continue
        rows = [numpy_helper.to_array(w).astype(np.float32) for _, w, _ in group]
        rows = [w if k_first else w.T for w, (_, _, k_first) in zip(rows, group, strict=True)]  # each [K, N]
        if any(w.shape[0] != xmax[x].shape[0] for w in rows):
            continue
        wmax = np.max([np.abs(w).max(axis=1) for w in rows], axis=0)
        a = xmax[x].astype(np.float64)
        ok = (a > 0) & (wmax > 0)
        s = np.ones_like(a)
        s[ok] = a[ok] ** alpha / wmax[ok].astype(np.float64) ** (1.0 - alpha)
        s = np.clip(s, *_CLIP).astype(np.float32)
        ratios.append(float(a.max() / max(np.median(a), 1e-12)))
        inv_name = f"{x}_smooth_inv"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv_name))
        smoothed = f"{x}_smooth"
        first = min(group, key=lambda g: order[id(g[0])])[0]
        mul = helper.make_node("Mul", [x, inv_name], [smoothed], name=f"{smoothed}_mul")
        inserted.append((order[id(first)], mul))
        for (node, weight, k_first), w in zip(group, rows, strict=True):
            scaled = w * s[:, None]
            new = numpy_helper.from_array(scaled if k_first else scaled.T.copy(), weight.name)
            weight.CopyFrom(new)
            node.input[0] = smoothed
    nodes = list(model.graph.node)
    for index, mul in sorted(inserted, key=lambda t: t[0], reverse=True):
        nodes.insert(index, mul)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return {
        "method": "SmoothQuant (Xiao et al. 2023), per input channel, before calibration",
        "alpha": alpha,
        "tensors": len(inserted),
        "max_channel_outlier_ratio": round(max(ratios), 2) if ratios else None,
    }
