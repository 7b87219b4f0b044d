"""A user's own text-classification (or regression) data: a file, a folder or a hub data set, turned
into the same :class:`~nxm_deploy.data.tasks.GlueTask` and :class:`~nxm_deploy.data.tasks.TaskSplit`
objects the GLUE readers give, so training, export and bench treat both alike.

    own = load_own(DataOptions("reviews.csv", label_column="stars"))
    own.task.labels          # ('bad', 'good', 'ok'): string labels, ids in sorted order
    own.train, own.dev       # TaskSplits; dev from --validation-file or a seeded fraction
    own.record               # what nxm.json keeps: source, columns, label map, sha256 of the rows

Every mistake in the data is one :class:`DataError` line naming the file, row and column.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nxm_deploy.data.tables import Table, find_data_files, read_hub, read_table
from nxm_deploy.data.tasks import GlueTask, TaskSplit, TsvFormat, float32_score
from nxm_deploy.errors import DataError

__all__ = ["METRIC_NAMES", "PROBLEMS", "DataOptions", "OwnData", "load_own", "recorded_options",
           "same_data_problem"]  # fmt: skip

log = logging.getLogger("nxm_deploy.data")

PROBLEMS = ("classification", "regression")
METRIC_NAMES = MappingProxyType({"accuracy": "accuracy", "f1": "f1", "macro_f1": "macro_f1",
                                 "matthews": "matthews_correlation", "pearson": "pearson",
                                 "spearman": "spearmanr"})  # fmt: skip
"""--metric's choices -> the metric's name in nxm_deploy.data.metrics."""
DEFAULT_VALIDATION_FRACTION = 0.1
_NO_TSV = TsvFormat(text_columns=(), label_column="", label_values=None, files={})


@dataclass(frozen=True)
class DataOptions:
    """Where the rows are and how to read them (the ``--data`` options of train, export and bench).

    ``source``: a file, a folder (``train.*`` and ``validation.*``) or ``hub:NAME[:CONFIG]``.
    ``text_column`` None: ``text``, else ``sentence``. ``validation_fraction`` None: the folder's or
    ``validation_file``'s rows, else 0.1 of the training rows (a fixed split, seed ``split_seed``).
    ``problem`` None: regression when every label is a number and not all are integers.
    ``metric`` None: accuracy (pearson for regression); ``f1`` needs ``positive_label``.
    """

    source: str
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str = "label"
    validation_file: str | None = None
    validation_fraction: float | None = None
    problem: str | None = None
    metric: str | None = None
    positive_label: str | None = None
    split_seed: int = 0

    def __post_init__(self) -> None:
        for param, choices in (("problem", PROBLEMS), ("metric", METRIC_NAMES)):
            if getattr(self, param) not in (None, *choices):
                raise DataError.naming("{0} must be one of {choices}, got {value!r}", param,
                                       choices=", ".join(choices), value=getattr(self, param))  # fmt: skip
        if self.metric == "f1" and self.positive_label is None:
            raise DataError.naming(
                "{0} f1 needs {1} (the class whose F1 is reported)", "metric", "positive_label"
            )
        if self.validation_file is not None and self.validation_fraction is not None:
            raise DataError.naming("pass {0} or {1}, not both", "validation_file", "validation_fraction")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise DataError.naming("{0} must be within (0, 1), got {value}", "validation_fraction",
                                   value=self.validation_fraction)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DataOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})


@dataclass(frozen=True)
class OwnData:
    task: GlueTask
    train: TaskSplit
    dev: TaskSplit
    record: dict[str, Any]  # nxm.json's "dataset" section


# ---- reading -------------------------------------------------------------------------------------


def _tables(opts: DataOptions) -> tuple[Table, Table | None, str]:
    """(train table, validation table or None, the source as recorded)."""
    if opts.source.startswith("hub:"):
        name, _, config = opts.source[4:].partition(":")
        if not name:
            raise DataError.naming("{0} hub: needs a data set name, e.g. hub:imdb or hub:glue:sst2", "source")
        train, val = read_hub(name, config or None)
        return train, (None if opts.validation_fraction is not None else val), opts.source
    path = Path(opts.source).expanduser()
    if not path.exists():
        raise DataError.naming("{0} {source} does not exist (a file, a folder, or hub:NAME[:CONFIG])",
                               "source", source=opts.source)  # fmt: skip
    val_path = None
    if path.is_dir():
        path, val_path = find_data_files(path)
    if opts.validation_file is not None:
        val_path = Path(opts.validation_file).expanduser()
    elif opts.validation_fraction is not None:
        val_path = None
    return read_table(path), (read_table(val_path) if val_path else None), str(path.resolve())


def _columns(opts: DataOptions, table: Table) -> tuple[str, str | None, str]:
    where = {"source": table.source, "columns": ", ".join(table.columns)}

    def need(name: str, param: str) -> str:
        if name not in table.columns:
            raise DataError.naming("{source}: no column {name!r} (columns: {columns}); pass {0}", param,
                                   name=name, **where)  # fmt: skip
        return name

    if opts.text_column is not None:
        text = need(opts.text_column, "text_column")
    else:
        text = next((c for c in ("text", "sentence") if c in table.columns), "")
        if not text:
            raise DataError.naming("{source}: no column 'text' or 'sentence' (columns: {columns}); pass {0}",
                                   "text_column", **where)  # fmt: skip
    pair = need(opts.text_pair_column, "text_pair_column") if opts.text_pair_column else None
    return text, pair, need(opts.label_column, "label_column")


def _texts(table: Table, column: str) -> list[str]:
    out = []
    for i, row in enumerate(table.rows):
        if column not in row:
            raise DataError(f"{table.where(i)}: no column {column!r}")
        v = row[column]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise DataError(f"{table.where(i, column)}: no text")
        out.append(str(v))
    return out


def _raw_labels(table: Table, column: str) -> list[tuple[str, Any]]:
    """(kind, value) per row: ("number", float) or ("text", str); refuses empty and NaN labels."""
    out: list[tuple[str, Any]] = []
    for i, row in enumerate(table.rows):
        if column not in row:
            raise DataError(f"{table.where(i)}: no column {column!r}")
        v = row[column]
        if isinstance(v, str):
            v = v.strip()
            try:
                v = float(v) if v.lower() not in ("inf", "-inf", "infinity") else v
            except ValueError:
                pass
        if v is None or v == "":
            raise DataError(f"{table.where(i, column)}: empty label")
        if isinstance(v, bool):
            out.append(("text", str(v).lower()))
        elif isinstance(v, (int, float)):
            if math.isnan(v):
                raise DataError(f"{table.where(i, column)}: label is NaN")
            out.append(("number", float(v)))
        else:
            out.append(("text", str(v)))
    return out


def _check_one_kind(table: Table, column: str, raw: list[tuple[str, Any]], want: str | None) -> str:
    """The labels' one kind ("number" or "text"); ``want`` (from an earlier table) must match."""
    first = want or raw[0][0]
    for i, (kind, value) in enumerate(raw):
        if kind != first:
            if want is not None:
                raise DataError(
                    f"{table.where(i, column)}: label {value!r} is {kind}, but the training labels are "
                    f"{'numbers' if want == 'number' else 'text'}"
                )
            j = next(k for k, (kd, _) in enumerate(raw) if kd == first)
            raise DataError(
                f"{table.where(i, column)}: labels of mixed types: {value!r} is {kind}, row {j + 1} "
                f"holds {raw[j][1]!r} ({first}); make them all numbers or all text"
            )
    return first


def _name(kind: str, value: Any) -> str:
    if kind == "number" and float(value).is_integer():
        return str(int(value))
    return str(value)


def _require_numbers(table: Table, column: str, raw: list[tuple[str, Any]]) -> None:
    i = next((k for k, (kind, _) in enumerate(raw) if kind != "number"), None)
    if i is not None:
        raise DataError(f"{table.where(i, column)}: regression label {raw[i][1]!r} is not a number")


def _problem(opts: DataOptions, raw: list[tuple[str, Any]], kind: str) -> str:
    if opts.problem == "regression":
        return "regression"
    if opts.problem == "classification":
        return "classification"
    if kind == "number" and not all(float(v).is_integer() for _, v in raw):
        log.info("labels are numbers and not all integers: a regression problem (--problem to change it)")
        return "regression"
    return "classification"


def _split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices), each in file order: a fixed shuffle of ``seed``."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = max(1, round(n * fraction))
    if k >= n:
        raise DataError(f"{n} rows are too few to hold out a validation fraction of {fraction}")
    return sorted(order[k:]), sorted(order[:k])


@dataclass(frozen=True)
class _Part:
    """Rows of one table (or a subset of them): texts, (kind, value) labels, and each row's index
    in ``table`` so that an error names the row of the file."""

    table: Table
    index: list[int]
    texts_a: list[str]
    texts_b: list[str] | None
    raw: list[tuple[str, Any]]

    @classmethod
    def read(cls, table: Table, text: str, pair: str | None, label: str, want: str | None,
             regression: bool) -> tuple[_Part, str]:  # fmt: skip
        """The rows of ``table`` and their labels' one kind (which must be ``want`` when given)."""
        raw = _raw_labels(table, label)
        if regression:
            _require_numbers(table, label, raw)
        kind = _check_one_kind(table, label, raw, want)
        texts_b = _texts(table, pair) if pair else None
        return cls(table, list(range(len(raw))), _texts(table, text), texts_b, raw), kind

    def take(self, idx: list[int]) -> _Part:
        b = None if self.texts_b is None else [self.texts_b[i] for i in idx]
        return _Part(self.table, [self.index[i] for i in idx], [self.texts_a[i] for i in idx], b,
                     [self.raw[i] for i in idx])  # fmt: skip

    def split(self, task: GlueTask, name: str, label: str) -> TaskSplit:
        """A TaskSplit: class ids of ``task.labels`` (refusing a class it lacks), or scores."""
        if task.is_regression:
            return TaskSplit(task, name, self.texts_a, self.texts_b,
                             [float32_score(v) for _, v in self.raw], self.table.source)  # fmt: skip
        ids = task.label2id
        y = []
        for i, kv in enumerate(self.raw):
            if _name(*kv) not in ids:
                raise DataError(
                    f"{self.table.where(self.index[i], label)}: class {_name(*kv)!r} never occurs in the "
                    f"training rows ({', '.join(task.labels)})"
                )
            y.append(ids[_name(*kv)])
        return TaskSplit(task, name, self.texts_a, self.texts_b, y, self.table.source)


def _task(opts: DataOptions, name: str, columns: tuple[str, ...], labels: tuple[str, ...]) -> GlueTask:
    """The task object of own data: its columns, label names and metric."""
    regression = not labels
    metric = METRIC_NAMES[opts.metric or ("pearson" if regression else "accuracy")]
    wrong = "{0} {metric} is for classification; regression takes pearson or spearman"
    if not regression:
        wrong = "{0} {metric} is for regression; classification takes accuracy, f1, ..."
    if regression != (metric in ("pearson", "spearmanr")):
        raise DataError.naming(wrong, "metric", metric=opts.metric)
    metrics = (metric,) if metric == "accuracy" or regression else (metric, "accuracy")
    return GlueTask(name=name, hub_config="", text_columns=columns, labels=labels, metrics=metrics,
                    main_metric=metric, tsv=_NO_TSV, hub_splits=MappingProxyType({}),
                    positive_id=_positive_id(opts, labels, metric, name))  # fmt: skip


def load_own(opts: DataOptions) -> OwnData:
    """Read, check and split the rows ``opts`` names; see the module docstring."""
    train_t, val_t, source = _tables(opts)
    text, pair, label = _columns(opts, train_t)
    whole, kind = _Part.read(train_t, text, pair, label, None, opts.problem == "regression")
    problem = _problem(opts, whole.raw, kind)
    if val_t is not None:
        _columns(opts, val_t)
        train, val = whole, _Part.read(val_t, text, pair, label, kind, problem == "regression")[0]
        split_record: dict[str, Any] = {"file": val_t.source, "rows": len(val.raw)}
    else:
        fraction = opts.validation_fraction or DEFAULT_VALIDATION_FRACTION
        train_idx, val_idx = _split(len(whole.raw), fraction, opts.split_seed)
        train, val = whole.take(train_idx), whole.take(val_idx)
        split_record = {"fraction": fraction, "seed": opts.split_seed, "rows": len(val_idx)}
    labels: tuple[str, ...] = ()
    if problem == "classification":
        key = (lambda s: float(s)) if kind == "number" else (lambda s: s)
        labels = tuple(sorted({_name(*kv) for kv in train.raw}, key=key))
        if len(labels) < 2:
            raise DataError.naming("{source}, column {column!r}: every training row has the label {label!r}; "
                                   "a classifier needs at least 2 classes (add rows of another class, or "
                                   "pass {0} regression for scores)", "problem", source=train_t.source,
                                   column=label, label=labels[0])  # fmt: skip
    name = opts.source if opts.source.startswith("hub:") else f"data:{Path(source).name}"
    task = _task(opts, name, (text, pair) if pair else (text,), labels)
    dev = val.split(task, "dev", label)
    full = whole.split(task, "train", label)  # every row, for the fingerprint
    record = {
        "name": name,
        "source": source,
        "format": train_t.format,
        "options": opts.to_json(),
        "columns": {"text": text, "text_pair": pair, "label": label},
        "problem": problem,
        "metric": task.main_metric,
        "labels": list(labels),
        "label2id": task.label2id,
        "positive_label": opts.positive_label,
        "rows_sha256": full.fingerprint(),
        "validation": {**split_record, "sha256": dev.fingerprint()},
    }
    return OwnData(task, train.split(task, "train", label), dev, record)


def _positive_id(opts: DataOptions, labels: tuple[str, ...], metric: str, source: str) -> int:
    if opts.positive_label is None:
        return 1
    if opts.positive_label not in labels:
        raise DataError.naming("{source}: {0} {label!r} is not a class ({all})", "positive_label",
                               source=source, label=opts.positive_label, all=", ".join(labels))  # fmt: skip
    if metric != "f1":
        log.info("--positive-label is used only by --metric f1")
    return labels.index(opts.positive_label)


def recorded_options(dataset: dict[str, Any]) -> DataOptions:
    """The :class:`DataOptions` a run's ``dataset`` section (nxm.json) recorded, to read its rows again.
    A source given as a relative path that does not resolve from here is replaced by the absolute path
    the run recorded (its training file; the folder holding it when the rows came from a folder)."""
    if not isinstance(dataset.get("source"), str):
        raise DataError("the run's nxm.json records no data source (dataset.source)")
    options = DataOptions.from_json(dataset.get("options") or {"source": dataset["source"]})
    given = options.source
    if given.startswith("hub:") or Path(given).expanduser().exists():
        return options
    recorded = Path(dataset["source"])
    from_folder = Path(given).suffix == "" and recorded.suffix != ""
    return dataclasses.replace(options, source=str(recorded.parent if from_folder else recorded))


def same_data_problem(recorded: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """Why a run's recorded ``dataset`` section does not match ``current`` (None when it does): the
    same label map and the same training rows (sha256 of every row before the validation split)."""
    if not recorded:
        return f"it was trained on a GLUE task, not on {current['name']}"
    if recorded.get("labels") != current["labels"]:
        return f"its labels are {recorded.get('labels')}, the data's are {current['labels']}"
    if recorded.get("rows_sha256") != current["rows_sha256"]:
        sha = str(recorded.get("rows_sha256"))[:12]
        return f"it was trained on other rows ({recorded.get('source')}, sha256 {sha})"
    return None
