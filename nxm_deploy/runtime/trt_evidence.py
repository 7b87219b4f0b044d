"""Pure parsers of the evidence that TensorRT picked sparse kernels: its builder log and its engine
inspector's JSON.

Evidence of sparse kernels. With the sparse-weights flag TensorRT logs, at the end of a build, two
INFO lines (TensorRT developer guide, "Structured Sparsity"):
``(Sparsity) Layers eligible for sparse math: conv1, conv2, conv3`` and
``(Sparsity) TRT inference plan picked sparse implementation for layers: conv2, conv3``. The engine
inspector (``ProfilingVerbosity.DETAILED``) names each layer's kernel in ``TacticName``; sparse kernels
carry ``sparse``/``sptensor`` in that name (e.g. ``sm80_xmma_sparse_gemm_..._sptensor16x8x32``). Layers
that TensorRT hands to its Myelin compiler (``{ForeignNode[...]}``, common for attention blocks) show no
per-kernel tactic, so the builder log is the primary evidence and the inspector a second one.

Standard library only: it sits in the runtime, below export, because the runtime reports an engine's
real precision too (``export.trt`` re-exports these)."""

from __future__ import annotations

import json
import re
from typing import Any

from nxm_deploy.errors import ExportError

__all__ = ["is_sparse_tactic", "observed_precision", "parse_builder_log", "parse_inspector_json"]

_ELIGIBLE_MARK = "(Sparsity) Layers eligible for sparse math:"
_PICKED_MARK = "(Sparsity) TRT inference plan picked sparse implementation for layers:"


def _split_layer_list(text: str) -> list[str]:
    """Split ``"a, b + c, {ForeignNode[x, y]}"`` on top-level commas (not inside brackets)."""
    names: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        if ch == "," and depth == 0:
            names.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    names.append("".join(current).strip())
    return [n for n in names if n]


def parse_builder_log(text: str) -> dict[str, Any]:
    """Which layers TensorRT found eligible for sparse math, and which got a sparse implementation.

    Reads the two ``(Sparsity)`` INFO lines TensorRT prints at the end of a build with the
    sparse-weights flag, with or without trtexec's ``[date] [I] [TRT]`` prefix. When a log holds
    several builds, the last report wins. Returns ``eligible_layers``, ``sparse_layers`` (lists of
    layer names, as TensorRT names fused layers: ``"a + b"``) and ``sparsity_reported`` (whether the
    lines were found at all: they are missing when the flag was not set or the log was cut).
    """
    eligible: list[str] | None = None
    picked: list[str] | None = None
    for line in text.splitlines():
        if _ELIGIBLE_MARK in line:
            eligible = _split_layer_list(line.split(_ELIGIBLE_MARK, 1)[1])
        elif _PICKED_MARK in line:
            picked = _split_layer_list(line.split(_PICKED_MARK, 1)[1])
    return {
        "eligible_layers": eligible or [],
        "sparse_layers": picked or [],
        "sparsity_reported": eligible is not None or picked is not None,
    }


_SPARSE_TACTIC_RE = re.compile(r"sparse|sptensor|spgemm|sphmma|spimma|(?:^|_)sp_", re.IGNORECASE)


def is_sparse_tactic(tactic: str) -> bool:
    """Whether a kernel name is a structured-sparse one.

    Seen in public kernel names: ``sm80_xmma_sparse_gemm_..._sptensor16x8x32``, ``xmma_sparse_conv``
    (TensorRT/cuSPARSELt xmma kernels) and CUTLASS 3 ``..._sptensorop_..._spgemm_...``.
    """
    return bool(_SPARSE_TACTIC_RE.search(tactic or ""))


def _tensor_dtype(tensor: Any) -> str | None:
    """Data type of one inspector tensor entry: ``DataType`` (TensorRT 11) or ``Format/Datatype`` (10)."""
    if not isinstance(tensor, dict):
        return None
    if tensor.get("DataType"):
        return str(tensor["DataType"])
    fmt = str(tensor.get("Format/Datatype", "")).lower()  # e.g. "Row major linear FP16 format"
    for token, dtype in _FORMAT_DTYPES:
        if token in fmt:
            return dtype
    return fmt or None


# Tokens of TensorRT 10's "Format/Datatype" text, mapped to TensorRT 11's "DataType" names.
_FORMAT_DTYPES = (
    ("bf16", "BFloat16"),
    ("fp16", "Half"),
    ("half", "Half"),
    ("fp32", "Float"),
    ("float", "Float"),
    ("fp8", "FP8"),
    ("int8", "Int8"),
    ("int32", "Int32"),
    ("int64", "Int64"),
    ("bool", "Bool"),
)


def _layer_record(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):  # ProfilingVerbosity.LAYER_NAMES_ONLY: names only
        return {"name": raw, "type": None, "tactic": "", "sparse": False, "precision": None}
    if not isinstance(raw, dict):
        raise ExportError(f"engine layer information holds an unexpected entry {raw!r:.80}")
    tactic = str(raw.get("TacticName") or raw.get("TacticValue") or "")
    outputs = raw.get("Outputs") or []
    return {
        "name": str(raw.get("Name", "")),
        "type": raw.get("LayerType") or raw.get("ParameterType"),
        "tactic": tactic,
        "sparse": is_sparse_tactic(tactic),
        "precision": _tensor_dtype(outputs[0]) if outputs else None,
    }


def parse_inspector_json(text: str) -> list[dict[str, Any]]:
    """Per-layer records from ``IEngineInspector`` JSON (or trtexec's ``--exportLayerInfo`` file).

    Accepts the engine document ``{"Layers": [...], "Bindings"|"I/O Tensors": ...}`` (``Bindings``
    in TensorRT 10, ``I/O Tensors`` in 11), a single layer object, or a bare list. Each record has
    ``name``, ``type`` (``LayerType``), ``tactic`` (``TacticName``, else ``TacticValue``), ``sparse``
    (see ``is_sparse_tactic``) and ``precision`` (data type of the first output).
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"engine layer information is not valid JSON ({exc})") from exc
    if isinstance(doc, dict) and "Layers" in doc:
        layers = doc["Layers"]
    elif isinstance(doc, dict):
        layers = [doc]
    elif isinstance(doc, list):
        layers = doc
    else:
        raise ExportError("engine layer information must be a JSON object or list")
    return [_layer_record(raw) for raw in layers]


# The inspector's data types, by how low a precision they show the engine computing in.
_PRECISION_OF = {"Int8": "int8", "FP8": "fp8", "Half": "fp16", "BFloat16": "bf16", "Float": "fp32"}


def observed_precision(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """What precision an engine really computes in, from its layers' output types (the records of
    :func:`parse_inspector_json`): ``{"precision": "fp16" | "int8" | "fp32" | ... | "unknown",
    "layer_types": {"Half": 40, "Float": 3, ...}}``. ``precision`` is the lowest one any layer
    computes in (a mixed FP16 engine keeps a few FP32 layers); ``unknown`` when the engine carries no
    per-layer types (built without ``ProfilingVerbosity.DETAILED``). It never comes from the builder
    flag or provider option that asked for a precision: TensorRT 11 has no FP16 flag, and an ONNX
    Runtime linked to it may ignore ``trt_fp16_enable``."""
    counts: dict[str, int] = {}
    for layer in layers:
        dtype = layer.get("precision")
        if dtype:
            counts[str(dtype)] = counts.get(str(dtype), 0) + 1
    found = [p for dtype, p in _PRECISION_OF.items() if dtype in counts]
    return {"precision": found[0] if found else "unknown", "layer_types": counts}
