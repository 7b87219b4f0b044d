"""The model repository ``serve`` gives Triton: one Python-backend model (``text_model.py``) over the
export, with Triton's dynamic batching and ``instances`` copies."""

from __future__ import annotations

import shutil
from pathlib import Path

from nxm_deploy.io import write_text_atomic
from nxm_deploy.runtime.exportdir import ExportDir
from nxm_deploy.serve.config import ServeConfig

__all__ = ["text_model_config", "write_serve_repo"]

LABELS_FILE = "labels.txt"


def _tensor(name: str, dtype: str, dims: int, optional: bool = False) -> str:
    extra = "\n    optional: true" if optional else ""
    return f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {dims} ]{extra}\n  }}'


def text_model_config(name: str, export: ExportDir, config: ServeConfig) -> str:
    """``config.pbtxt`` of the text model (Triton's ``ModelConfig`` in protobuf text format)."""
    facts = export.facts
    inputs = [_tensor("text", "TYPE_STRING", 1)]
    if facts.is_pair is not False:  # a pair task needs text_pair; an unknown task may take it
        inputs.append(_tensor("text_pair", "TYPE_STRING", 1, optional=facts.is_pair is None))
    scores = (
        _tensor("value", "TYPE_FP32", 1)
        if facts.is_regression
        else _tensor("scores", "TYPE_FP32", facts.num_outputs).replace(
            "\n  }", f'\n    label_filename: "{LABELS_FILE}"\n  }}'
        )
    )
    outputs = [_tensor("label", "TYPE_STRING", 1), scores, _tensor("truncated", "TYPE_BOOL", 1)]
    params = {
        "export_dir": str(export.path.resolve()),
        "backend": config.backend,
        "ort_provider": config.ort_provider,
        "threads": "" if config.threads is None else str(config.threads),
        "max_text_bytes": str(config.max_text_bytes),
    }
    parameters = "\n".join(
        f'parameters {{\n  key: "{k}"\n  value: {{ string_value: "{v}" }}\n}}' for k, v in params.items()
    )
    return "\n".join([
        f"# Written by nxm-deploy serve for {export.path.resolve()}: task {facts.task}, labels "
        f"{', '.join(facts.labels) or '(regression score)'}, max_seq_len {facts.max_seq_len}",
        f'name: "{name}"',
        'backend: "python"',
        f"max_batch_size: {config.max_batch_size}",
        "input [\n" + ",\n".join(inputs) + "\n]",
        "output [\n" + ",\n".join(outputs) + "\n]",
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {config.max_queue_delay_us}\n}}",
        f"instance_group [\n  {{\n    kind: KIND_CPU\n    count: {config.instances}\n  }}\n]",
        parameters,
    ]) + "\n"  # fmt: skip


def write_serve_repo(repo: Path, name: str, export: ExportDir, config: ServeConfig) -> Path:
    """``repo/name/``: ``config.pbtxt``, ``labels.txt`` and ``1/model.py``; returns the model folder."""
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(__file__).with_name("text_model.py"), model / "1" / "model.py")
    write_text_atomic(model / "config.pbtxt", text_model_config(name, export, config))
    if not export.facts.is_regression:
        write_text_atomic(model / LABELS_FILE, "".join(f"{label}\n" for label in export.facts.labels))
    return model
