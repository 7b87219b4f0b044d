"""The export's ``config.json``: the run's model configuration with the label names serving uses,
so that the Hugging Face stack opens an export directory as it opens a model folder (optimum's
``ORTModelForSequenceClassification.from_pretrained(EXPORT_DIR)`` reads ``config.json`` for the
model type and ``id2label``; ``transformers.pipeline`` names labels from it).

The labels are the ones ``Predictor`` uses (``runtime.exportdir.task_labels``: the run's GLUE task
in training order, its own label map, else the run's config), so both name a class the same way.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from nxm_deploy.manifest import SourceRun

__all__ = ["HF_CONFIG", "write_hf_config"]

HF_CONFIG = "config.json"


def write_hf_config(
    out: Path, model_config: Any, source_run: SourceRun, output_shape: list[Any]
) -> dict[str, Any]:
    """Write ``out/config.json`` from ``model_config`` (the run's ``PretrainedConfig``) with
    ``id2label``/``label2id`` set to the serving labels (``output_shape``: the ONNX logits' shape,
    ``["batch", outputs]``); return the ``hf_config`` section of ``export.json``."""
    from nxm_deploy.runtime.exportdir import task_labels

    width = output_shape[1] if len(output_shape) == 2 and isinstance(output_shape[1], int) else None
    _, labels, _ = task_labels(out, source_run, width)
    config = copy.deepcopy(model_config)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        config.problem_type = "single_label_classification"
    else:
        config.problem_type = "regression"
    config.to_json_file(str(out / HF_CONFIG))
    return {
        "file": HF_CONFIG,
        "model_type": config.model_type,
        "problem_type": config.problem_type,
        "id2label": {str(i): name for i, name in enumerate(labels)},
    }
