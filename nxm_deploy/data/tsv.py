"""Read a GLUE task from a local directory in the original GLUE TSV layout::

    <root>/<TASK>/train.tsv, <root>/<TASK>/dev.tsv      (MNLI: dev_matched.tsv, dev_mismatched.tsv)

``<TASK>`` is the canonical name (``SST-2``) or any spelling ``get_task`` accepts (``sst2``); a
directory that directly holds the task's files works too. Files are plain tab-separated UTF-8 text read
with quoting off (``csv.QUOTE_NONE``), as GLUE's and Hugging Face's readers do: texts keep their bare
``"`` characters and surrounding spaces. A leading byte-order mark (MRPC headers) is dropped. Which
column holds what is in each task's ``TsvFormat`` (nxm_deploy/data/tasks.py). STS-B scores are kept
at float32 precision (``float32_score``), as the hub holds them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

from nxm_deploy.data.tasks import GlueTask, TaskSplit, float32_score, normalize_task_name
from nxm_deploy.errors import DataError

GLUE_DIR_ENV = "GLUE_DIR"


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The GLUE directory to read: ``data_dir`` if given, else ``$GLUE_DIR`` if set, else None
    (meaning: load from the Hugging Face hub). A given directory that does not exist is a DataError."""
    origin = ""
    if data_dir is None or str(data_dir) == "":
        data_dir, origin = os.environ.get(GLUE_DIR_ENV) or None, f" (from ${GLUE_DIR_ENV})"
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise DataError(f"GLUE data directory {path}{origin} {what}")
    return path


def find_task_file(task: GlueTask, split: str, root: Path) -> Path:
    """The file of ``split`` (a canonical split name of ``task``) under ``root``."""
    name = task.tsv.files[split]
    dirs = [root / task.name]
    if root.is_dir():
        dirs += sorted(
            d
            for d in root.iterdir()
            if d.is_dir() and normalize_task_name(d.name) == normalize_task_name(task.name)
        )
    dirs.append(root)
    tried = list(dict.fromkeys(d / name for d in dirs))
    for path in tried:
        if path.is_file():
            return path
    raise DataError(
        f"no {task.name} {split} file: looked for {' and '.join(map(str, tried))}; "
        f"expected the GLUE layout <data-dir>/{task.name}/{name} (with no data dir and no ${GLUE_DIR_ENV}, "
        "data comes from the Hugging Face hub)"
    )


def read_tsv_split(task: GlueTask, split: str, root: Path) -> TaskSplit:
    """Rows of ``split`` (a canonical split name) of ``task`` from the GLUE directory ``root``."""
    path = find_task_file(task, split, root)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            return _parse(task, split, path, csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start} of a block)") from e
    except csv.Error as e:
        raise DataError(f"{path}: cannot parse as tab-separated text: {e}") from e


def _parse(task: GlueTask, split: str, path: Path, reader: Iterator[list[str]]) -> TaskSplit:
    # Quoting is off, so no field spans lines: record i is physical line i.
    lines = enumerate(reader, start=1)
    fmt = task.tsv
    names = fmt.columns
    if names is None:
        _, header = next(lines, (0, None))
        if header is None:
            raise DataError(f"{path}: empty file; expected a header line for {task.name}")
        names = tuple(h.strip() for h in header)
        for col in (*fmt.text_columns, fmt.label_column):
            if col not in names:
                raise DataError(
                    f"{path} line 1: header lacks column {col!r} that {task.name} needs "
                    f"(header: {', '.join(names)}); is this the {task.name} file?"
                )
    index = {n: i for i, n in enumerate(names)}
    col_a = index[fmt.text_columns[0]]
    col_b = index[fmt.text_columns[1]] if task.is_pair else None
    col_label = -1 if fmt.label_last else index[fmt.label_column]
    texts_a: list[str] = []
    texts_b: list[str] = []
    labels: list = []
    for line, row in lines:
        if not row:  # a blank line, as csv.DictReader skips it
            continue
        if len(row) != len(names) and not (fmt.label_last and len(row) > len(names)):
            at_least = "at least " if fmt.label_last else ""
            raise DataError(
                f"{path} line {line}: expected {at_least}{len(names)} tab-separated fields "
                f"({', '.join(names)}), got {len(row)}"
            )
        texts_a.append(row[col_a])
        if col_b is not None:
            texts_b.append(row[col_b])
        labels.append(_label(task, row[col_label], path, line))
    if not labels:
        raise DataError(f"{path}: no rows{' after the header' if fmt.columns is None else ''}; "
                        f"a {task.name} {split} file needs at least one")  # fmt: skip
    return TaskSplit(
        task=task,
        name=split,
        texts_a=texts_a,
        texts_b=texts_b if task.is_pair else None,
        labels=labels,
        source=str(path),
    )


def _label(task: GlueTask, raw: str, path: Path, line: int) -> int | float:
    fmt = task.tsv
    value = raw.strip()
    if fmt.label_values is not None:
        label = fmt.label_values.get(value)
        if label is None:
            raise DataError(
                f"{path} line {line}: unknown {task.name} label {raw!r} in column {fmt.label_column!r} "
                f"(expected one of: {', '.join(fmt.label_values)})"
            )
        return label
    try:
        score = float(value)
    except ValueError:
        score = float("nan")
    if not 0.0 <= score <= 5.0:
        raise DataError(
            f"{path} line {line}: {task.name} {fmt.label_column} {raw!r} in the last field "
            "is not a number from 0 to 5"
        )
    return float32_score(score)
