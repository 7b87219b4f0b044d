"""Read a GLUE task from the Hugging Face hub: ``datasets.load_dataset("nyu-mll/glue", config)``.

Splits: ``train`` -> train, ``dev`` -> validation (MNLI: ``dev_matched`` -> validation_matched,
``dev_mismatched`` -> validation_mismatched). Columns are the hub's (``task.text_columns`` and
``label``); class ids follow the dataset's ClassLabel order, which ``task.labels`` copies.
``datasets`` is imported only here, and only when called.
"""

from __future__ import annotations

from typing import Any

from nxm_deploy.data.tasks import GlueTask, TaskSplit, float32_score
from nxm_deploy.errors import DataError

HUB_DATASET = "nyu-mll/glue"
_WHAT_TO_DO = "pass {0} DIR (a directory in the GLUE TSV layout) or set $GLUE_DIR"  # {0}: data_dir


def hub_source(task: GlueTask, split: str) -> str:
    """``hub:nyu-mll/glue/<config>/<hub split>`` for a canonical split name of ``task``."""
    return f"hub:{HUB_DATASET}/{task.hub_config}/{task.hub_splits[split]}"


def read_hub_split(task: GlueTask, split: str) -> TaskSplit:
    """Rows of ``split`` (a canonical split name) of ``task`` from the hub (or its local cache)."""
    hub_split = task.hub_splits[split]
    where = (
        f"GLUE {task.name} {split} from the Hugging Face hub ({HUB_DATASET}, {task.hub_config}/{hub_split})"
    )
    try:
        import datasets
    except ImportError as e:
        raise DataError.naming(
            "cannot load {where}: the 'datasets' package is not installed; " + _WHAT_TO_DO,
            "data_dir",
            where=where,
        ) from e
    try:
        ds = datasets.load_dataset(HUB_DATASET, task.hub_config, split=hub_split)
    except (OSError, datasets.exceptions.DatasetsError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError.naming(
            "cannot load {where}: {reason}; " + _WHAT_TO_DO, "data_dir", where=where, reason=reason
        ) from e
    return split_from_dataset(task, split, ds, hub_source(task, split))


def split_from_dataset(task: GlueTask, split: str, ds: Any, source: str) -> TaskSplit:
    """A TaskSplit from a ``datasets.Dataset`` with the hub's columns (``task.text_columns``, ``label``)."""
    missing = [c for c in (*task.text_columns, "label") if c not in ds.column_names]
    if missing:
        raise DataError(f"{source}: no column {', '.join(missing)} (has: {', '.join(ds.column_names)})")
    texts_a = [str(t) for t in ds[task.text_columns[0]]]
    texts_b = [str(t) for t in ds[task.text_columns[1]]] if task.is_pair else None
    raw = list(ds["label"])
    if task.is_regression:
        labels: list = [float32_score(v) for v in raw]  # 3.8, not 3.799999952316284
    else:
        labels = [int(v) for v in raw]
        bad = next((v for v in labels if not 0 <= v < task.num_labels), None)
        if bad is not None:
            raise DataError(
                f"{source}: label {bad} is not a class id of {task.name} (0..{task.num_labels - 1})"
            )
    return TaskSplit(task=task, name=split, texts_a=texts_a, texts_b=texts_b, labels=labels, source=source)
