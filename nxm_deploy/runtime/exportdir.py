"""The export-directory reader of the runtime: the manifest, and what serving needs to know.

    export = ExportDir.read("exports/rte-admm")
    export.facts.labels        # ("entailment", "not_entailment"); () for a regression task
    export.facts.is_pair       # True: the task takes sentence pairs; None when the task is unknown
    export.model_file("ort")   # exports/rte-admm/model.onnx

``export.json`` is read once, by :class:`~nxm_deploy.manifest.ExportManifest`. Label names come from
the run's GLUE task (``source_run.task``), in the order the model was trained with
(``nxm_deploy.data.tasks``); for a run on its own data (``source_run.dataset``), the run's label
map (``source_run.labels``); for a task this tool does not know, from the run's ``config.json``
``id2label`` (when the run directory is still there), else ``LABEL_0``, ``LABEL_1``, ... A model
with one output is a regression model (STS-B).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.errors import ExportDirError, UserError
from nxm_deploy.manifest import EXPORT_MANIFEST, ExportManifest, SourceRun, TensorrtSection
from nxm_deploy.runtime.backends import EXPORT_BACKENDS, no_engine

__all__ = ["BACKENDS", "DEFAULT_MAX_SEQ_LEN", "ExportDir", "ServingFacts", "task_labels"]

BACKENDS = EXPORT_BACKENDS  # the backends that run an export directory (runtime/backends.py)
"""What an export directory can be run on: ONNX Runtime (model.onnx) or TensorRT (model.engine)."""
DEFAULT_MAX_SEQ_LEN = 512


@dataclass(frozen=True)
class ServingFacts:
    """The model's contract with its callers."""

    task: str | None
    labels: tuple[str, ...]  # () for regression: one output, a score
    is_pair: bool | None  # None: unknown task, sentences and pairs both accepted
    max_seq_len: int  # longer input is truncated to this many tokens
    input_names: tuple[str, ...]  # the model's token inputs, int64 [batch, sequence]
    output_name: str  # logits [batch, len(labels) or 1]

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_outputs(self) -> int:
        return len(self.labels) or 1

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        return {**body, "labels": list(self.labels), "input_names": list(self.input_names)}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ServingFacts:
        return cls(
            task=body.get("task"),
            labels=tuple(body.get("labels") or ()),
            is_pair=body.get("is_pair"),
            max_seq_len=_count(body["max_seq_len"], "max_seq_len"),
            input_names=tuple(body["input_names"]),
            output_name=str(body["output_name"]),
        )


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"facts.{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class ExportDir:
    """A checked export directory: its manifest and the facts serving needs."""

    path: Path
    manifest: ExportManifest
    facts: ServingFacts

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ExportDir:
        """Read ``path``; one-line :class:`ExportDirError` when it is not an export directory."""
        manifest = ExportManifest.read(path)
        return cls(manifest.path, manifest, _facts(manifest))

    @property
    def source_run(self) -> SourceRun:
        return self.manifest.source_run

    @property
    def tensorrt(self) -> TensorrtSection:
        return self.manifest.tensorrt

    @property
    def onnx_path(self) -> Path:
        return self.manifest.onnx_path

    @property
    def engine_path(self) -> Path:
        return self.manifest.engine_path

    def model_file(self, backend: str) -> Path:
        """The model file ``backend`` runs; :class:`ExportDirError` when the export lacks it."""
        if backend not in BACKENDS:
            raise ExportDirError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if backend == "ort":
            if not self.onnx_path.is_file():
                raise ExportDirError(
                    f"{self.path} has no {self.onnx_path.name} (incomplete export); export the run again"
                )
            return self.onnx_path
        if not self.engine_path.is_file():  # build_engine.sh may have made it after the export
            instead = "on a machine with TensorRT and an NVIDIA GPU, or use backend 'ort'"
            raise ExportDirError(no_engine(self.path, self.tensorrt.to_json(), instead))
        return self.engine_path


def _facts(export: ExportManifest) -> ServingFacts:
    path, onnx = export.path, export.onnx
    inputs = tuple(e.name for e in onnx.inputs)
    if "input_ids" not in inputs or not onnx.outputs:
        raise ExportDirError(
            f"{path / EXPORT_MANIFEST} names no input_ids input or no output; export the run again"
        )
    width = _static_width(onnx.outputs[0].shape)
    task_name, labels, is_pair = task_labels(path, export.source_run, width)
    max_seq_len = export.max_seq_len or DEFAULT_MAX_SEQ_LEN
    return ServingFacts(task_name, labels, is_pair, max_seq_len, inputs, onnx.outputs[0].name)


def _static_width(shape: Any) -> int | None:
    """The number of logits per row, when the ONNX output shape states it (``["batch", 2]``)."""
    if shape is not None and len(shape) == 2 and isinstance(shape[1], int):
        return shape[1]
    return None


def task_labels(
    path: Path, run: SourceRun, width: int | None
) -> tuple[str | None, tuple[str, ...], bool | None]:
    """(task name, label names, is_pair) from the run's task, else its config, else generic names;
    ``run`` is an ``export.json``'s ``source_run``, ``width`` the model's number of outputs."""
    from nxm_deploy.data import get_task

    facts = run.facts
    num = width or facts.num_labels
    try:
        task = get_task(facts.task) if facts.task else None
    except UserError:  # a task this tool does not know: fall back on the model's own names
        task = None
    dataset = facts.dataset
    if task is None and dataset is not None and facts.labels is not None:
        labels = facts.labels  # own data: the run's label map, in id order
        if num is not None and num != (len(labels) or 1):
            raise ExportDirError(f"{path}: the model has {num} outputs but the run has labels {list(labels)}")
        columns = dataset.get("columns")
        return facts.task, labels, bool(columns.get("text_pair") if isinstance(columns, dict) else None)
    if task is not None:
        if num is not None and num != task.num_labels:
            raise ExportDirError(
                f"{path}: the model has {num} outputs but task {task.name} has {task.num_labels}; "
                "export.json does not describe this model"
            )
        return task.name, tuple(task.labels), task.is_pair
    if num is None:
        raise ExportDirError(f"{path}: export.json says neither the task nor the number of labels")
    if num == 1:
        return facts.task, (), None
    names = _config_labels(Path(run.path) if run.path else None, num)
    return facts.task, names or tuple(f"LABEL_{i}" for i in range(num)), None


def _config_labels(run_dir: Path | None, num: int) -> tuple[str, ...] | None:
    config = run_dir / "config.json" if run_dir else None
    if config is None or not config.is_file():
        return None
    try:
        id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label") or {}
        names = tuple(str(id2label[str(i)]) for i in range(num))
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return names
