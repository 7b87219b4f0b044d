"""Per-layer density of the two models, read from the files the bench runs, and the proof that the
sparse one is sparse (the ``sparsity`` section of report.json).

    rows = weight_check(source, nm.Pattern(2, 4), "ort")   # CheckReport over the encoder weights
    require_sparse(sparse_source, rows)         # UserError when no weight holds the pattern
    section = sparsity_section(dense_rows, sparse_rows, sparse_source)

What is checked is what the backend runs: for ``ort`` and ``trt``, the export's ONNX file
(``check.onnx.check_onnx``: every weight that feeds a MatMul/Gemm inside the encoder blocks, groups
of M along the consumer's reduction axis; the TensorRT engine is built from that ONNX); for ``torch``,
the run directory's safetensors (2-D encoder weights, groups along the input axis).
"""

from __future__ import annotations

from typing import Any

from nxm_deploy import nm
from nxm_deploy.bench.sources import ModelSource
from nxm_deploy.check.onnx import check_onnx
from nxm_deploy.check.report import CheckReport, TensorCheck
from nxm_deploy.check.weights import check_safetensors
from nxm_deploy.errors import UserError

__all__ = ["require_sparse", "sparsity_section", "weight_check", "weights_summary"]


def weight_check(source: ModelSource, pattern: nm.Pattern, backend: str) -> CheckReport:
    """The N:M check of the encoder weights that ``backend`` runs (see the module docstring)."""
    if backend != "torch":
        return check_onnx(source.onnx_path, pattern)
    assert source.run_dir is not None
    return check_safetensors(source.run_dir, pattern)


def _layer(row: TensorCheck) -> str:
    return row.layer or row.name.removesuffix(".weight")


def require_sparse(source: ModelSource, report: CheckReport) -> None:
    """Some weight holds the pattern, and none of the layers the manifest names as sparse breaks it."""
    claimed = set(source.layers)
    broken = [r for r in report.rows if _layer(r) in claimed and not r.ok]
    if broken:
        first = broken[0]
        raise UserError.naming(
            "{label}: {n} layer(s) its manifest names as {pattern} break the pattern in {source}, first "
            "{layer} ({bad} of {groups} groups); export the run again",
            label=source.label,
            n=len(broken),
            pattern=report.pattern,
            source=report.source,
            layer=_layer(first),
            bad=first.bad_groups,
            groups=first.groups,
        )
    if not any(r.ok for r in report.rows):
        raise UserError.naming(
            "{label}: no encoder weight in {source} holds {pattern}; it is not a sparse model (pass it "
            "as {0}?)",
            "dense",
            label=source.label,
            source=report.source,
            pattern=report.pattern,
        )


def sparsity_section(dense: CheckReport, sparse: CheckReport, source: ModelSource) -> dict[str, Any]:
    """The ``sparsity`` entry of report.json: one row per layer of the sparse model, with the dense
    model's density of the same layer, and a summary."""
    p = sparse.pattern
    dense_density = {_layer(r): r.density for r in dense.rows}
    claimed = set(source.layers)
    layers = [
        {
            "layer": _layer(r),
            "tensor": r.name,
            "shape": list(r.shape),
            "axis": r.axis,
            "density": r.density,
            "dense_density": dense_density.get(_layer(r)),
            "holds_pattern": r.ok,
            "selected": _layer(r) in claimed,
        }
        for r in sparse.rows
    ]
    weights = [r.groups * p.m for r in sparse.rows]  # elements per tensor
    nonzero = sum(r.density * w for r, w in zip(sparse.rows, weights, strict=True))
    return {
        "pattern": str(p),
        "pattern_density": p.n / p.m,
        "source": sparse.source,
        "dense_source": dense.source,
        "layers": layers,
        "summary": {
            "layers": len(layers),
            "selected": sum(1 for row in layers if row["selected"]),
            "holding_pattern": sum(1 for row in layers if row["holds_pattern"]),
            "encoder_density": nonzero / sum(weights) if weights else None,
        },
    }


def weights_summary(report: CheckReport, source: ModelSource) -> dict[str, Any]:
    """An ``--also`` model's weights in brief: how many encoder weights hold the pattern, the density."""
    weights = [r.groups * report.pattern.m for r in report.rows]  # elements per tensor
    nonzero = sum(r.density * w for r, w in zip(report.rows, weights, strict=True))
    return {
        "source": report.source,
        "pattern": str(report.pattern),
        "run_pattern": str(source.pattern) if source.pattern else None,
        "layers": len(report.rows),
        "holding_pattern": sum(1 for r in report.rows if r.ok),
        "encoder_density": nonzero / sum(weights) if weights else None,
    }
