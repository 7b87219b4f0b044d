"""Which stored tensor feeds each MatMul/Gemm/MatMulInteger B input, along which of its axes, and
through which Q/DQ nodes: the graph walk of ``check.onnx`` (see that module for the rules).

    for traced, consumer in consumed_weights(model.graph, stored_tensors(model.graph)):
        traced.name, traced.axis, traced.form        # "val_83_quantized", 0, "int8 -> DequantizeLinear"
        values, approx = traced_values(traced, numpy_of(stored[traced.name]))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nxm_deploy.check.qdq import Quantization, offsets

if TYPE_CHECKING:
    import onnx

__all__ = ["Traced", "attr", "consumed_weights", "numpy_of", "stored_tensors", "traced_values"]

# Ops a weight may pass through on its way to a MatMul/Gemm without changing which axis is which.
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_SAME_AXIS_OPS = frozenset({"Cast", "Identity", "TRT_FP8QuantizeLinear", "TRT_FP8DequantizeLinear"})


def stored_tensors(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Initializers and ``Constant`` node values, by the tensor name that consumers use."""
    stored: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    stored[node.output[0]] = a.t
    return stored


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


@dataclass(frozen=True)
class Traced:
    name: str  # the stored tensor
    axis: int  # its axis along which the consumer reduces
    quant: Quantization | None = None  # parameters of the Q/DQ nearest the stored tensor
    quantizes: bool = False  # a QuantizeLinear reads the stored (float) tensor
    form: str = "float"


def _through(perms: list[list[int] | None], a: int, rank: int) -> int:
    """Axis ``a`` of a tensor read through ``perms`` (consumer side first): axis ``perm[a]`` of each input."""
    for perm in perms:
        a = perm[a] if perm is not None else rank - 1 - a
    return a


def _array(stored: Mapping[str, onnx.TensorProto], name: str) -> np.ndarray | None:
    return numpy_of(stored[name]) if name in stored else None


def _quantization(
    node: onnx.NodeProto, stored: Mapping[str, onnx.TensorProto], perms: list[list[int] | None], rank: int
) -> Quantization | None:
    """A Q/DQ node's constant scale and zero point, their axis carried to the stored tensor (None when
    either is computed at run time)."""
    scale = _array(stored, node.input[1]) if len(node.input) > 1 else None
    has_zp = len(node.input) > 2 and bool(node.input[2])
    zero_point = _array(stored, node.input[2]) if has_zp else None
    if scale is None or (has_zp and zero_point is None):
        return None
    axis = _through(perms, int(attr(node, "axis", 1)) % rank, rank)
    return Quantization(scale, zero_point, axis if scale.size > 1 else None)


def _trace(
    name: str,
    axis: int,
    stored: Mapping[str, onnx.TensorProto],
    producers: Mapping[str, onnx.NodeProto],
) -> Traced | None:
    """Follow tensor ``name`` back to a stored tensor, carrying the consumer's ``axis`` along.

    ``axis`` may be negative (``-2`` for MatMul B); it is resolved once the stored rank is known.
    Returns ``None`` when the input is computed from activations or graph inputs.
    """
    pending_perms: list[list[int] | None] = []
    passed: list[tuple[onnx.NodeProto, int]] = []  # Q/DQ nodes, with the Transposes before them
    seen: set[str] = set()
    while name not in stored:
        node = producers.get(name)
        if node is None or name in seen:
            return None
        seen.add(name)
        if node.op_type == "Transpose":
            perm = attr(node, "perm")
            pending_perms.append(list(perm) if perm is not None else None)
        elif node.op_type in _QDQ_OPS:
            passed.append((node, len(pending_perms)))
        elif node.op_type not in _SAME_AXIS_OPS:
            return None
        name = node.input[0]
    rank = len(stored[name].dims)
    if rank < 2:
        return None
    a = _through(pending_perms, axis % rank, rank)
    if not passed:
        return Traced(name, a)
    node, at = passed[-1]  # the one nearest the stored tensor decides what the runtime stores
    quant = _quantization(node, stored, pending_perms[at:], rank)
    quantizes = node.op_type == "QuantizeLinear"
    kind = onnx_type_name(stored[name].data_type)
    form = f"{kind} -> QuantizeLinear -> DequantizeLinear" if quantizes else f"{kind} -> DequantizeLinear"
    return Traced(name, a, quant, quantizes, form)


def onnx_type_name(data_type: int) -> str:
    import onnx

    return onnx.TensorProto.DataType.Name(data_type).lower()


def _matmul_integer(node: onnx.NodeProto, stored: Mapping[str, onnx.TensorProto]) -> Traced | None:
    """``MatMulInteger``'s B when stored as is: groups along axis 0 of ``[K, N]``, zero point input 3
    (a scalar, or one per column N)."""
    b = node.input[1]
    if b not in stored or len(stored[b].dims) != 2:
        return None
    has_zp = len(node.input) > 3 and bool(node.input[3])
    zero_point = _array(stored, node.input[3]) if has_zp else None
    if has_zp and zero_point is None:
        return None
    per_column = zero_point is not None and zero_point.size > 1
    quant = Quantization(np.ones(()), zero_point, 1 if per_column else None)
    return Traced(b, 0, quant, False, f"{onnx_type_name(stored[b].data_type)} -> MatMulInteger")


def consumed_weights(
    graph: onnx.GraphProto, stored: Mapping[str, onnx.TensorProto]
) -> list[tuple[Traced, onnx.NodeProto]]:
    """The traced weight and its consumer node, for every MatMul/Gemm/MatMulInteger B input fed by one."""
    producers = {out: node for node in graph.node for out in node.output}
    found = []
    for node in graph.node:
        if node.op_type == "MatMul" and len(node.input) > 1:
            traced = _trace(node.input[1], -2, stored, producers)
        elif node.op_type == "Gemm" and len(node.input) > 1:
            traced = _trace(node.input[1], 1 if attr(node, "transB", 0) else 0, stored, producers)
        elif node.op_type == "MatMulInteger" and len(node.input) > 1:
            traced = _matmul_integer(node, stored)
        else:
            continue
        if traced is not None:
            found.append((traced, node))
    return found


def numpy_of(t: onnx.TensorProto) -> np.ndarray:
    from onnx import numpy_helper

    return np.asarray(numpy_helper.to_array(t))


def traced_values(t: Traced, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What the N:M check reads (the offsets from the zero point for a quantized weight), and an
    approximation of the float weight to match by correlation (None: match ``stored`` exactly)."""
    if t.quant is None:
        return stored, None
    values = offsets(stored, t.quant, t.quantizes)
    if t.quantizes:
        return values, None  # the float weight is stored: exact match
    scale = t.quant.scale if t.quant.scale.size > 1 else np.ones(())
    if scale.size > 1:
        shape = [1] * values.ndim
        shape[t.quant.axis or 0] = scale.size
        scale = scale.reshape(shape)
    return values, values * scale.astype(np.float64)
