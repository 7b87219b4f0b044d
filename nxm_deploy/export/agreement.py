"""A quantized ONNX against the FP32 PyTorch model on every dev row: same class, metric, logit differences.

    section = dev_agreement(model, Path("model.onnx"), tokenizer, task, dev, input_names, 128)
    section["agreement"], section["metrics"]["onnx"], section["logits"]["max_abs_diff"]

INT8 changes the logits by more than any elementwise tolerance a parity check could state, so a
quantized export is judged the way a user would judge it: over the full dev set of the run's task,
the ONNX Runtime model must predict the same class as the FP32 PyTorch model on at least
:data:`MIN_AGREEMENT` of the rows (regression: its Pearson correlation with the labels within
:data:`MAX_PEARSON_DROP` of PyTorch's). That gates static ``int8``; ``int8-dynamic`` (ONNX Runtime's
defaults, per-tensor weight scales, nothing to tune) is measured the same way and only warned about.
The dev metric through ONNX Runtime, PyTorch's, and the
logit differences (max, mean, 99th percentile) go to ``export.json`` either way. Rows are tokenized
and batched by ``runtime.encoding.TextEncoder`` (Predictor's own: truncated to the run's
``max_seq_len``, sorted by length, each batch padded to its longest row).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nxm_deploy.export.quantize import QuantizeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MAX_PEARSON_DROP", "MIN_AGREEMENT", "dev_agreement"]

MIN_AGREEMENT = 0.99
MAX_PEARSON_DROP = 0.005  # half a point
_BATCH = 32


def _logits(model: nn.Module, session: Any, batches: Sequence[Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    torch_out: np.ndarray | None = None
    onnx_out: np.ndarray | None = None
    for batch in batches:
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in batch.feed.items()}).logits.float().numpy()
        got = session.run(batch.feed)  # (b, num_labels)
        if torch_out is None or onnx_out is None:
            torch_out = np.empty((n, ref.shape[1]), dtype=np.float32)
            onnx_out = np.empty((n, got.shape[1]), dtype=np.float32)
        torch_out[batch.rows], onnx_out[batch.rows] = ref, got
    assert torch_out is not None and onnx_out is not None  # a dev split is never empty
    return torch_out, onnx_out


def dev_agreement(
    model: nn.Module,
    onnx_path: Path,
    tokenizer: Any,
    task: Any,
    dev: Any,
    input_names: Sequence[str],
    max_seq_len: int,
    enforce: bool = True,
    min_agreement: float = MIN_AGREEMENT,
) -> dict[str, Any]:
    """Score ``onnx_path`` (ONNX Runtime, CPU) and ``model`` (PyTorch, FP32) on ``dev``, the full dev
    split of ``task`` (a GLUE task's, or the validation rows of the run's own data); raise
    :class:`QuantizeError` when they agree less than required (see the module docstring), or with
    ``enforce=False`` record ``ok: false`` and the reason in ``warning``."""
    import onnxruntime as ort
    import torch

    from nxm_deploy.data import compute_metrics, main_metric_value
    from nxm_deploy.runtime.encoding import TextEncoder
    from nxm_deploy.runtime.ort_session import OrtSession

    encoder = TextEncoder(tokenizer, input_names, max_seq_len)
    encoded = encoder.encode(list(dev.texts_a), None if dev.texts_b is None else list(dev.texts_b))
    session = OrtSession(onnx_path, label=onnx_path.name)
    model.eval()
    ref, got = _logits(model, session, encoder.batches(encoded, _BATCH, 1), len(encoded))
    metrics = {
        "onnx": compute_metrics(task, got, dev.labels),
        "torch": compute_metrics(task, ref, dev.labels),
    }
    main = {k: main_metric_value(task, v) for k, v in metrics.items()}
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    section: dict[str, Any] = {
        "split": dev.name,
        "source": dev.source,
        "rows": len(encoded),
        "runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider",
        "reference": f"PyTorch {torch.__version__} eager, float32",
        "main_metric": task.main_metric,
        "metrics": metrics,
        "main": main,
        "main_difference": main["onnx"] - main["torch"],
        "logits": {
            "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()),
            "p99_abs_diff": float(np.percentile(diff, 99)),
        },
    }
    rows = f"{len(encoded)} {task.name} dev rows"
    if task.is_regression:
        from nxm_deploy.data import pearson

        drop = pearson(ref[:, 0], dev.labels) - pearson(got[:, 0], dev.labels)
        section.update(agreement=None, pearson_drop=float(drop), max_pearson_drop=MAX_PEARSON_DROP)
        ok = drop <= MAX_PEARSON_DROP
        why = f"'s Pearson on the {rows} is {100 * drop:.2f} points below PyTorch's"
    else:
        agree = float(np.mean(got.argmax(axis=1) == ref.argmax(axis=1)))
        section.update(agreement=agree, min_agreement=min_agreement)
        ok = agree >= min_agreement
        why = f" predicts the class PyTorch does on {100 * agree:.2f}% of the {rows}"
    section["ok"] = bool(ok)
    required = f"required: {100 * min_agreement:g}%, or a Pearson within {100 * MAX_PEARSON_DROP:g} points"
    section["warning"] = None if ok else f"the INT8 {onnx_path.name}{why} ({required})"
    if not ok and enforce:
        raise QuantizeError.naming(
            "{warning}; try another {0} or more {1}",
            "calibration_method",
            "calibration_rows",
            warning=section["warning"],
        )
    return section
