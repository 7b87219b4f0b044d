"""The FP16 ONNX that strongly typed TensorRT (>= 11) needs for fp16 engines.

Precision. TensorRT 11 removed the weak-typing builder flags (``BuilderFlag.FP16``/``INT8``/...) and the
trtexec precision flags (``--fp16``, ``--int8``, ``--best``): every network is strongly typed, so its
tensor types come from the ONNX file. For fp16 on TensorRT >= 11 the caller passes an FP16 ONNX made by
``to_fp16_onnx`` (NVIDIA's own suggestion is ModelOpt AutoCast, ``python -m modelopt.onnx.autocast``,
which does the same job with data-driven choices). On TensorRT 10 the FP32 ONNX is built with
``BuilderFlag.FP16`` (weak typing), as TensorRT 10 documents it.

``onnx`` and ``onnxruntime`` are imported inside the functions that use them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nxm_deploy.errors import ExportError

__all__ = ["FP32_OPS", "fp16_onnx_name", "onnx_has_fp16_weights", "to_fp16_onnx"]

FP32_OPS = ("LayerNormalization", "ReduceMean", "Pow", "Sqrt")
"""ONNX ops that ``to_fp16_onnx`` keeps in FP32: LayerNorm, fused or decomposed (its variance ``x**2``
overflows FP16 on large activations; TensorRT warns about FP16 layernorm for the same reason). Softmax
stays FP16: TensorRT fuses attention and accumulates in FP32 inside its fused kernels."""


def fp16_onnx_name(onnx_name: str) -> str:
    """Name of the FP16 twin of an ONNX file: ``model.onnx`` -> ``model_fp16.onnx``."""
    path = Path(onnx_name)
    return str(path.with_name(f"{path.stem}_fp16{path.suffix or '.onnx'}"))


def to_fp16_onnx(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], fp32_ops: Sequence[str] = FP32_OPS
) -> Path:
    """Write an FP16 copy of an FP32 ONNX model for strongly typed TensorRT (>= 11) fp16 engines.

    Float weights and activations become FP16, except the ops in ``fp32_ops`` (LayerNorm by default,
    see ``FP32_OPS``), which run in FP32 between Cast nodes. Graph inputs and outputs keep their types:
    integer token inputs stay integers and float outputs (logits) stay FP32. Weights are clipped to the
    FP16 range rather than turned into infinities. Uses onnxruntime's float16 converter (onnxruntime is
    a dependency already), then sorts the graph topologically, as TensorRT's ONNX parser requires.
    """
    try:
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel
    except ImportError as exc:
        raise ExportError(f"writing an FP16 ONNX needs onnx and onnxruntime ({exc})") from exc
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ExportError(f"ONNX file {src} not found")
    model = onnx.load(str(src))
    _name_unnamed_nodes(model)
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(fp32_ops))
    fp16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    wrapped = OnnxModel(fp16)
    wrapped.topological_sort()
    big = wrapped.model.ByteSize() > 1_800_000_000  # protobuf's 2 GiB limit, with margin
    onnx.save(wrapped.model, str(dst), save_as_external_data=big, location=f"{dst.name}.data")
    return dst


def _name_unnamed_nodes(model: Any) -> None:
    """The converter names its Cast nodes after their neighbours; give every node a unique name."""
    taken = {node.name for node in model.graph.node if node.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def onnx_has_fp16_weights(path: str | os.PathLike[str]) -> bool:
    """Whether an ONNX model stores any FP16 initializer (reads the graph, not external weight data)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
