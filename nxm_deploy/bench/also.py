"""More models in one report: ``--also NAME=EXPORT_DIR`` (repeatable, parsed by
``config.parse_also``), each measured against ``--dense``.

    nxm-deploy bench --dense exports/dense --sparse exports/admm --task SST-2 --out reports/int8 \\
        --also int8-dense=exports/dense-int8 --also int8-2:4=exports/admm-int8

Each extra model is read like ``--dense``/``--sparse`` (same task, same tokenizer), its encoder
weights checked (a model whose run claims a pattern must hold it in the file the backend runs),
scored over the full dev set through the same runtime, and timed at every shape in pairs with the
dense model (the order alternating, as for ``--sparse``). Its entry in ``report.json``'s ``also``
list: the model, its accuracy and the difference from the dense model's, the fraction of dev rows
on which it predicts the dense model's class, and per shape the latency statistics, the ratio
model/dense and the sign test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.bench import accuracy, latency
from nxm_deploy.bench.sources import ModelSource, resolve_source
from nxm_deploy.errors import UserError

__all__ = ["also_entry", "resolve_also", "time_against_dense"]


def resolve_also(
    also: Sequence[tuple[str, str]], backend: str, task_name: str, taken: Sequence[Path]
) -> dict[str, ModelSource]:
    """Read each ``--also`` directory; refuse one of another task or one already benched."""
    from nxm_deploy.data import get_task

    models: dict[str, ModelSource] = {}
    seen = {p.resolve() for p in taken}
    for name, path in also:
        source = resolve_source(path, f"also {name}", backend)
        if source.path.resolve() in seen:
            raise UserError.naming("{label} is already in the comparison", label=source.label)
        seen.add(source.path.resolve())
        if source.facts.task is None or get_task(source.facts.task).name != task_name:
            raise UserError.naming(
                "{label} was trained on {task}, not {want}; bench models of the same task",
                label=source.label,
                task=source.facts.task,
                want=task_name,
            )
        models[name] = source
    return models


def time_against_dense(
    dense: Any, model: Any, plan: latency.TimingPlan, batch: int, seq: int, real: float
) -> dict[str, Any]:
    """One shape: the model and the dense model timed in alternating pairs; ``ratio`` = model / dense."""
    s = latency.shape_summary(latency.measure_pair(dense, model, plan), batch)
    return {
        "batch": batch,
        "seq_len": seq,
        "real_token_fraction": real,
        "dense": s["dense"],
        "model": s["sparse"],
        "ratio": s["ratio"],
        "paired_ratio": s["paired_ratio"],
        "sign_test": {
            "model_faster_pairs": s["sign_test"]["sparse_faster_pairs"],
            "model_slower_pairs": s["sign_test"]["sparse_slower_pairs"],
            "p_value": s["sign_test"]["p_value"],
        },
        "timed_seconds": s["timed_seconds"],
    }


def _sign_summary(shapes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    r = np.asarray([s["ratio"] for s in shapes], dtype=np.float64)
    fast = sum(1 for s in shapes if s["sign_test"]["p_value"] < latency.ALPHA
               and s["sign_test"]["model_faster_pairs"] > s["sign_test"]["model_slower_pairs"])  # fmt: skip
    slow = sum(1 for s in shapes if s["sign_test"]["p_value"] < latency.ALPHA
               and s["sign_test"]["model_slower_pairs"] > s["sign_test"]["model_faster_pairs"])  # fmt: skip
    return {
        "shapes": len(shapes),
        "ratio": {"min": float(r.min()), "max": float(r.max()), "geomean": float(np.exp(np.log(r).mean()))},
        "speedup_geomean": float(np.exp(-np.log(r).mean())),
        "alpha": latency.ALPHA,
        "model_faster_significant": fast,
        "model_slower_significant": slow,
    }


def also_entry(
    name: str,
    source: ModelSource,
    task: Any,
    result: accuracy.AccuracyResult,
    dense: accuracy.AccuracyResult,
    shapes: Sequence[dict[str, Any]],
    weights: dict[str, Any],
) -> dict[str, Any]:
    """One element of ``report.json``'s ``also`` list (see the module docstring)."""
    quant = (source.export.quantization if source.export is not None else None) or {}
    return {
        "name": name,
        "model": {**source.describe(), "quantization": quant.get("mode") if quant else None},
        "accuracy": {
            **result.to_json(),
            "difference": {k: result.metrics[k] - dense.metrics[k] for k in dense.metrics},
            "main_difference": result.main - dense.main,
            "agreement_with_dense": accuracy.agreement(task, dense.logits, result.logits),
        },
        "latency": {"shapes": list(shapes), "summary": _sign_summary(shapes)},
        "weights": weights,
    }
