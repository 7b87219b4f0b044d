"""The N:M check on an ONNX graph, along each consumer's reduction axis.

    nxm-deploy check exports/rte-admm/model.onnx --pattern 2:4

A weight is a stored tensor (an initializer or the ``value`` of a ``Constant`` node) that reaches
the B input of a ``MatMul`` or ``Gemm``, directly or through ``Transpose``, ``Cast``, ``Identity``
and ``QuantizeLinear``/``DequantizeLinear`` nodes. The groups of M run along the consumer's
reduction (K) axis, carried back to the stored tensor (the axis is always named, never assumed):

- ``MatMul`` B ``[..., K, N]``: axis ``-2`` (axis 0 of a 2-D ``[K, N]`` weight);
- ``Gemm`` B: axis 1 when ``transB=1`` (B is ``[N, K]``), else axis 0;
- ``Transpose(perm)``: the consumer's axis ``a`` is axis ``perm[a]`` of the Transpose input (no
  ``perm``: the axes reversed). Polygraphy's ``perm.index(a)`` agrees only for 2-D;
- ``Cast``, ``Identity``, Q/DQ: the same axis.

Quantized weights, both forms (``check.qdq``): an INT8/UINT8 initializer behind a ``DequantizeLinear``
counts values equal to the zero point as zeros; a float initializer behind ``QuantizeLinear ->
DequantizeLinear`` is quantized as the runtime would (round half to even, saturate) and counted the
same way. ``MatMulInteger`` (ONNX Runtime's dynamic quantization) reduces along B's axis -2, with B's
zero point (input 3) as the zero.

Each weight is mapped back to the PyTorch ``nn.Linear`` it came from, in this order: the consumer's
``pkg.torch.onnx.name_scopes`` metadata (the dynamo exporter's module path), a stored name ending in
``.weight``, a TorchScript-exporter node name (``/bert/encoder/layer.0/.../MatMul``); when reference
weights are given, an exact value match (against each layer's ``[out, in]`` weight and its
transpose; for a quantized weight, correlation: ``check.values``) comes first, since exporters
rename and pre-transpose initializers.

Selection is :class:`~nxm_deploy.models.LayerRule`, the same rule as for modules and safetensors:
by default weights inside the encoder blocks, that is, whose mapped layer name (or, unmapped, whose
tensor name) has a numeric block-index segment such as ``bert.encoder.layer.3.attention.self.query``;
pooler and classifier stay out. ``include``/``exclude`` globs match the tensor name or a mapped
layer name.
Weights whose reduction axis does not divide by M are skipped (they cannot hold the pattern).
Subgraphs (``If``/``Loop`` bodies) are not searched.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nxm_deploy import nm
from nxm_deploy.check.onnx_trace import Traced, consumed_weights, numpy_of, stored_tensors, traced_values
from nxm_deploy.check.report import CheckReport, TensorCheck, check_tensor
from nxm_deploy.check.values import ValueIndex
from nxm_deploy.errors import ExportError, UserError
from nxm_deploy.models import DEFAULT_RULE, LayerRule

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "OnnxWeight",
    "check_onnx",
    "load_onnx",
    "require_sparse_layers",
    "weights_from_model",
]

_CALL_SUFFIX = re.compile(r"@\d+$")  # torch.export marks a module's second call as "name@1"


@dataclass(frozen=True)
class OnnxWeight:
    """A stored tensor that feeds a MatMul/Gemm B input.

    ``axis`` is the axis of the *stored* tensor along which the consumer reduces, i.e. along which
    the groups of M run. ``layers`` are the PyTorch layers it maps to, best guess first. ``array`` is
    the stored tensor, or for a quantized weight its integer offsets from the zero point
    (``check.qdq.offsets``: zero exactly where the quantized weight is); ``form`` says which:
    ``float``, ``int8 -> DequantizeLinear`` (the stored type first), ``float -> QuantizeLinear ->
    DequantizeLinear`` or ``int8 -> MatMulInteger``.
    """

    name: str
    array: np.ndarray
    axis: int
    layers: tuple[str, ...]
    form: str = "float"

    @property
    def layer(self) -> str | None:
        return self.layers[0] if self.layers else None


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load an ONNX model (with its external data), or raise a one-line :class:`UserError`."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"ONNX file {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is an empty file (0 bytes), not an ONNX model; export it again")
    try:
        model = onnx.load(str(path))
    except (OSError, ValueError, DecodeError) as exc:
        raise UserError(f"{path} is not a readable ONNX model ({exc}); export it again") from exc
    if not model.graph.node:
        raise UserError(f"{path} holds no ONNX graph (no nodes); export it again")
    return model


def _layer_from_metadata(node: onnx.NodeProto) -> str | None:
    """The module path the dynamo exporter recorded for a node, from ``pkg.torch.onnx.name_scopes``:
    ``['', 'bert', ..., 'bert.encoder.layer.0.attention.self.query', 'linear']`` (enclosing modules,
    then the fx node's own name), so the module is the one before last."""
    text = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
    if not text:
        return None
    try:
        scopes = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(scopes, list) and len(scopes) >= 2 and scopes[-2]:
        return _CALL_SUFFIX.sub("", str(scopes[-2]))
    return None


def _layer_from_node_name(node: onnx.NodeProto) -> str | None:
    """TorchScript exporter names: ``/bert/encoder/layer.0/attention/self/query/MatMul``."""
    if node.name.startswith("/") and node.name.count("/") >= 2:
        return ".".join(node.name.strip("/").split("/")[:-1])
    return None


def _layer_guess(node: onnx.NodeProto, stored_name: str) -> str | None:
    """The PyTorch layer behind a weight, by name: metadata, then ``*.weight``, then node name."""
    if (layer := _layer_from_metadata(node)) is not None:
        return layer
    if stored_name.endswith(".weight"):
        return stored_name.removesuffix(".weight")
    return _layer_from_node_name(node)


def weights_from_model(
    model: onnx.ModelProto,
    reference: Mapping[str, torch.Tensor | np.ndarray] | None = None,
) -> list[OnnxWeight]:
    """Every stored weight feeding a MatMul/Gemm B input, with its stored axis and PyTorch layers.

    One entry per (stored tensor, axis), in graph order of its first consumer.
    """
    graph = model.graph
    stored = stored_tensors(graph)
    guesses: dict[tuple[str, int], list[str]] = {}
    traced: dict[tuple[str, int], Traced] = {}
    for t, node in consumed_weights(graph, stored):
        names = guesses.setdefault((t.name, t.axis), [])
        traced.setdefault((t.name, t.axis), t)
        if (guess := _layer_guess(node, t.name)) is not None and guess not in names:
            names.append(guess)
    index = ValueIndex(reference) if reference else None
    out = []
    for key, layers in guesses.items():
        t = traced[key]
        raw = numpy_of(stored[t.name])
        array, approx = traced_values(t, raw)
        by_value: list[str] = []
        if index is not None:
            by_value = index.layers_for(raw) if approx is None else index.layers_like(approx)
        if by_value:  # values decide; the name guess only orders equal-valued layers
            layers = [g for g in layers if g in by_value] + [v for v in by_value if v not in layers]
        out.append(OnnxWeight(t.name, array, t.axis, tuple(layers), t.form))
    return out


def _selected(weights: Sequence[OnnxWeight], rule: LayerRule) -> list[OnnxWeight]:
    return [w for w in weights if rule.selects(w.layer or w.name, w.name, *w.layers)]


def _as_torch(a: np.ndarray) -> torch.Tensor:
    import torch

    if a.dtype.kind not in "fiub":  # bfloat16 / float8 / int4 (ml_dtypes) have no torch twin here
        a = a.astype(np.float32)  # exact for every such format, so zeros stay zeros
    return torch.from_numpy(np.array(a, copy=True))  # a writable copy: ONNX arrays are read-only


def _row(w: OnnxWeight, p: nm.Pattern) -> TensorCheck:
    return check_tensor(w.name, _as_torch(w.array), p, axis=w.axis, layer=w.layer)


def _fits(w: OnnxWeight, p: nm.Pattern) -> bool:
    return w.array.shape[w.axis] % p.m == 0


def check_onnx(
    path: str | Path,
    pattern: str | nm.Pattern = nm.DEFAULT_PATTERN,
    rule: LayerRule = DEFAULT_RULE,
    *,
    reference: Mapping[str, torch.Tensor | np.ndarray] | None = None,
) -> CheckReport:
    """Check the selected MatMul/Gemm weights of an ONNX file for ``pattern``.

    Rows are :class:`~nxm_deploy.check.report.TensorCheck`: ``name`` is the ONNX tensor name, ``layer``
    the mapped PyTorch layer, ``axis`` the axis of the stored tensor along which groups run.
    ``reference`` (layer name to ``nn.Linear`` weight) lets weights be mapped by value.
    """
    p = nm.parse_pattern(pattern)
    path = Path(path)
    weights = weights_from_model(load_onnx(path), reference)
    rows = [_row(w, p) for w in _selected(weights, rule) if _fits(w, p)]
    return CheckReport(str(path), p, rows)


def require_sparse_layers(
    path: str | Path,
    layers: Sequence[str],
    pattern: str | nm.Pattern | None,
    reference: Mapping[str, torch.Tensor | np.ndarray],
) -> CheckReport:
    """Prove that every layer in ``layers`` (sparse in PyTorch) holds ``pattern`` in the ONNX graph.

    Raises one :class:`ExportError` naming every layer that was not found or breaks the pattern.
    Returns the rows of the default selection (encoder weights) and of ``layers``, for the manifest;
    ``pattern`` None (a dense run) checks the default pattern, for the density figures.
    """
    p = nm.parse_pattern(pattern) if pattern is not None else nm.DEFAULT_PATTERN
    path = Path(path)
    weights = weights_from_model(load_onnx(path), reference)
    wanted = set(layers)
    chosen = {id(w) for w in _selected(weights, DEFAULT_RULE)} | {
        id(w) for w in weights if wanted & set(w.layers)
    }
    rows = {id(w): _row(w, p) for w in weights if id(w) in chosen and _fits(w, p)}
    problems = []
    for layer in layers:
        mine = [w for w in weights if layer in w.layers]
        if not mine:
            problems.append(f"{layer}: no MatMul/Gemm weight in the ONNX graph maps to it")
        for w in mine:
            what = f"{layer}: ONNX tensor {w.name} {list(w.array.shape)}"
            row = rows.get(id(w))
            if row is None:
                problems.append(f"{what}: axis {w.axis} does not divide by {p.m}")
            elif not row.ok:
                problems.append(
                    f"{what} breaks {p} along axis {w.axis} ({row.bad_groups} of {row.groups} groups, "
                    f"first at index {list(row.first_bad or ())})"
                )
    if problems:
        raise ExportError(
            f"{path}: {len(problems)} layer(s) sparse in PyTorch are not {p} in the ONNX graph: "
            + "; ".join(problems)
        )
    return CheckReport(str(path), p, list(rows.values()), expect_sparse=bool(layers))
