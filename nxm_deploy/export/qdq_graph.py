"""Rewrites of ``quantize_static``'s QDQ graph, so that only the weight products are quantized and ONNX
Runtime's CPU provider runs each of them as an INT8 kernel (``nxm_deploy.export.quantize``).

    skip = activation_products(model)          # quantize_static(..., nodes_to_exclude=skip)
    counts = own_pairs(quantized_model)         # in place; counts go to export.json
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["activation_products", "own_pairs"]


def own_pairs(model: Any) -> dict[str, int]:
    """Rewrite ``quantize_static``'s QDQ graph (made with ``DedicatedQDQPair``) so that only the inputs of
    quantized MatMul/Gemm are quantized, each through a Q -> DQ pair of its own.

    The quantizer puts one Q -> DQ on a tensor and lets every reader see the dequantized value, so the
    residual Add after a LayerNorm also reads the INT8-rounded stream (an error the FP32 model never
    sees, and BERT's residual stream has the outliers that make it large). Here a reader that is not a
    quantized MatMul/Gemm is given the float tensor back, and a pair left without readers is removed.
    ``DedicatedQDQPair`` already gives each product its own Q -> DQ in the file: ONNX Runtime turns an
    INT8 pair into UINT8 (its fast x86 kernels, ``QDQS8ToU8Transformer``) only when the Q has exactly
    one DQ reader, and a Q shared by the Q, K and V projections would otherwise leave them as float
    MatMuls over dequantized weights. Its load-time common-subexpression pass would merge those equal Q
    nodes again, which :func:`_distinct_scales` prevents.
    TensorRT reads the same graph: the values (scales, zero points 0, INT8) are unchanged.
    Returns counts of what changed."""
    nodes = list(model.graph.node)
    by_output = {o: n for n in nodes for o in n.output}
    readers: dict[str, list[Any]] = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    inits = {i.name for i in model.graph.initializer}

    def quantized_reader(reader: Any) -> bool:
        # a MatMul/Gemm whose weight (input 1) is quantized too: the node ONNX Runtime fuses
        if reader.op_type not in ("MatMul", "Gemm") or len(reader.input) < 2:
            return False
        weight = by_output.get(reader.input[1])
        return weight is not None and weight.op_type == "DequantizeLinear" and weight.input[0] in inits

    counts = {"float_reads_restored": 0, "pairs_removed": 0, "scales_split": 0}
    graph_outputs = {o.name for o in model.graph.output}
    drop: set[int] = set()
    for dq in nodes:
        if dq.op_type != "DequantizeLinear" or dq.input[0] in inits:
            continue
        q = by_output.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        source = q.input[0]
        keep = False
        for reader in readers.get(dq.output[0], []):
            if quantized_reader(reader):
                keep = True
                continue
            for i, name in enumerate(reader.input):
                if name == dq.output[0]:
                    reader.input[i] = source
                    counts["float_reads_restored"] += 1
        if not keep and dq.output[0] not in graph_outputs:
            drop.add(id(dq))
            counts["pairs_removed"] += 1
    kept = [n for n in nodes if id(n) not in drop]
    read = {name for n in kept for name in n.input} | graph_outputs
    # a Q whose every DQ is gone goes too
    out_nodes = [n for n in kept if n.op_type != "QuantizeLinear" or n.output[0] in read]
    _distinct_scales(model, out_nodes, counts)
    del model.graph.node[:]
    model.graph.node.extend(out_nodes)
    used = {name for n in out_nodes for name in n.input}
    unused = [i for i in model.graph.initializer if i.name not in used]
    for init in unused:
        model.graph.initializer.remove(init)
    return counts


def activation_products(model: Any) -> list[str]:
    """Names of the MatMul nodes whose B is not a constant (attention scores and their weighted sum)."""
    inits = {i.name for i in model.graph.initializer}
    constant = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] not in inits and n.input[1] not in constant]  # fmt: skip


def _distinct_scales(model: Any, nodes: list[Any], counts: dict[str, int]) -> None:
    """Give the k-th Q -> DQ pair of one float tensor (k >= 1) its own scale, ``k`` float32 steps (ulps)
    above the calibrated one. ONNX Runtime's common-subexpression pass merges Q nodes with equal inputs,
    which would undo :func:`own_pairs`' split (and with it the UINT8 conversion); a relative change
    of about 1e-7 keeps them apart and changes no rounding that matters."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    dq_of: dict[str, list[Any]] = {}
    for n in nodes:
        if n.op_type == "DequantizeLinear":
            dq_of.setdefault(n.input[0], []).append(n)
    seen: dict[tuple[str, str], int] = {}
    for q in nodes:
        if q.op_type != "QuantizeLinear" or q.input[1] not in inits:
            continue
        key = (q.input[0], q.input[1])
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k == 0:
            continue
        scale = numpy_helper.to_array(inits[q.input[1]]).astype(np.float32)
        for _ in range(k):
            scale = np.nextafter(scale, np.float32(np.inf), dtype=np.float32)
        name = f"{q.input[1]}_{k + 1}"
        model.graph.initializer.append(numpy_helper.from_array(scale, name))
        for dq in dq_of.get(q.output[0], []):
            if dq.input[1] == q.input[1]:
                dq.input[1] = name
        q.input[1] = name
        counts["scales_split"] += 1
