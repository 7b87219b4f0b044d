"""GLUE tasks: the registry (columns, labels, metrics) and loaders from a local GLUE TSV directory or
the Hugging Face hub.

    task = get_task("sts-b")
    dev = load_split(task, "dev", data_dir=resolve_data_dir(None))   # None: $GLUE_DIR, else the hub
    scores = compute_metrics(task, logits, dev.labels)
"""

from __future__ import annotations

from pathlib import Path

from nxm_deploy.data.hub import read_hub_split
from nxm_deploy.data.metrics import (
    accuracy,
    compute_metrics,
    f1,
    glue_score,
    main_metric_value,
    matthews_correlation,
    pearson,
    spearmanr,
    task_score,
)
from nxm_deploy.data.tasks import TASKS, GlueTask, TaskSplit, TsvFormat, get_task
from nxm_deploy.data.tsv import read_tsv_split, resolve_data_dir

__all__ = [
    "TASKS",
    "GlueTask",
    "TaskSplit",
    "TsvFormat",
    "accuracy",
    "compute_metrics",
    "f1",
    "get_task",
    "glue_score",
    "load_split",
    "main_metric_value",
    "matthews_correlation",
    "pearson",
    "resolve_data_dir",
    "spearmanr",
    "task_score",
]


def load_split(task: GlueTask | str, split: str, data_dir: str | Path | None = None) -> TaskSplit:
    """Rows of ``split`` of ``task``: ``train``, ``dev`` (MNLI: dev_matched), or MNLI's
    ``dev_matched``/``dev_mismatched``. ``data_dir`` goes through ``resolve_data_dir``: a GLUE TSV
    directory, else ``$GLUE_DIR``, else (None) the Hugging Face hub. ``split.name`` is the canonical
    split name, so ``load_split("mnli", "dev").name == "dev_matched"``."""
    task = get_task(task)
    name = task.resolve_split(split)
    root = resolve_data_dir(data_dir)
    if root is None:
        return read_hub_split(task, name)
    return read_tsv_split(task, name, root)
