"""The nine GLUE tasks: columns, labels, metrics, splits, and the rows a loader returns.

Label order is the Hugging Face ``nyu-mll/glue`` ClassLabel order, so a model trained from the TSV
files and one trained from the hub agree on what class id 0 means. ``text_columns`` are the hub's
feature names; ``tsv`` says where the same fields sit in the original GLUE TSV files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from nxm_deploy.errors import DataError

_BINARY = MappingProxyType({"0": 0, "1": 1})
_STD_FILES = MappingProxyType({"train": "train.tsv", "dev": "dev.tsv"})


@dataclass(frozen=True)
class TsvFormat:
    """Where a task's fields sit in its original GLUE TSV files.

    ``columns``: the column names of a headerless file (CoLA); None means the first line is a header.
    ``text_columns``: the file's columns holding sentence A (and B), by header name.
    ``label_column``: the column holding the label. ``label_values`` maps its raw text to a class id;
    None means a float score (STS-B). ``label_last``: the label is read from the row's last field and
    rows may carry extra fields before it (STS-B, MNLI, as GLUE's own readers do).
    ``files``: split name -> file name inside ``<root>/<TASK>/``.
    """

    text_columns: tuple[str, ...]
    label_column: str
    label_values: Mapping[str, int] | None
    files: Mapping[str, str]
    columns: tuple[str, ...] | None = None
    label_last: bool = False


@dataclass(frozen=True, eq=False)
class GlueTask:
    """One GLUE task. ``labels`` is () for regression (STS-B, one output, scores 0-5). Tasks are
    singletons of ``TASKS`` and compare (and hash) by identity."""

    name: str
    hub_config: str
    text_columns: tuple[str, ...]
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    main_metric: str
    tsv: TsvFormat
    hub_splits: Mapping[str, str]
    train_split: str = "train"
    dev_splits: tuple[str, ...] = ("dev",)
    positive_id: int = 1  # the class whose F1 is the "f1" metric (own data: --positive-label)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return len(self.labels) or 1

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def splits(self) -> tuple[str, ...]:
        return (self.train_split, *self.dev_splits)

    @property
    def id2label(self) -> dict[int, str]:
        """Class id -> label name, for a model config; {} for regression."""
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    def resolve_split(self, split: str) -> str:
        """Canonical split name. Accepts ``train``, ``dev`` (MNLI: dev_matched), the hub's names
        (``validation``, ``validation_matched``, ...) and MNLI's ``dev_matched``/``dev_mismatched``."""
        key = split.strip().lower().replace("-", "_").replace("validation", "dev")
        if key == "dev":
            return self.dev_splits[0]
        if key in self.splits:
            return key
        hint = " (GLUE test sets have no public labels)" if key.startswith("test") else ""
        raise DataError(
            f"unknown split {split!r} for {self.name}{hint}; valid splits: {', '.join(self.splits)}"
        )


def _pair_tsv(
    a: str,
    b: str,
    label: str,
    values: Mapping[str, int] | None,
    label_last: bool = False,
    files: Mapping[str, str] | None = None,
) -> TsvFormat:
    """A headed pair-task file: texts in columns ``a`` and ``b``, the label in column ``label``."""
    return TsvFormat(
        text_columns=(a, b),
        label_column=label,
        label_values=values,
        files=files or _STD_FILES,
        label_last=label_last,
    )


def _named(labels: tuple[str, ...]) -> Mapping[str, int]:
    return MappingProxyType({name: i for i, name in enumerate(labels)})


_STD_SPLITS = MappingProxyType({"train": "train", "dev": "validation"})
_MNLI_LABELS = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")

_ALL = (
    GlueTask(
        name="CoLA",
        hub_config="cola",
        text_columns=("sentence",),
        labels=("unacceptable", "acceptable"),
        metrics=("matthews_correlation",),
        main_metric="matthews_correlation",
        # No header. Columns: source code, label (0/1), original author's mark (often empty), sentence.
        tsv=TsvFormat(
            text_columns=("sentence",),
            label_column="label",
            label_values=_BINARY,
            files=_STD_FILES,
            columns=("source", "label", "original_mark", "sentence"),
        ),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="SST-2",
        hub_config="sst2",
        text_columns=("sentence",),
        labels=("negative", "positive"),
        metrics=("accuracy",),
        main_metric="accuracy",
        # Header: sentence, label (0/1).
        tsv=TsvFormat(
            text_columns=("sentence",),
            label_column="label",
            label_values=_BINARY,
            files=_STD_FILES,
        ),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="MRPC",
        hub_config="mrpc",
        text_columns=("sentence1", "sentence2"),
        labels=("not_equivalent", "equivalent"),
        metrics=("f1", "accuracy"),
        main_metric="f1",
        # Header (starts with a UTF-8 BOM): Quality (0/1), #1 ID, #2 ID, #1 String, #2 String.
        tsv=_pair_tsv("#1 String", "#2 String", "Quality", _BINARY),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="STS-B",
        hub_config="stsb",
        text_columns=("sentence1", "sentence2"),
        labels=(),
        metrics=("pearson", "spearmanr"),
        main_metric="pearson",
        # Header: index, genre, filename, year, old_index, source1, source2, sentence1, sentence2,
        # score (float 0-5, the last field).
        tsv=_pair_tsv("sentence1", "sentence2", "score", None, label_last=True),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="QQP",
        hub_config="qqp",
        text_columns=("question1", "question2"),
        labels=("not_duplicate", "duplicate"),
        metrics=("f1", "accuracy"),
        main_metric="f1",
        # Header: id, qid1, qid2, question1, question2, is_duplicate (0/1).
        tsv=_pair_tsv("question1", "question2", "is_duplicate", _BINARY),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="MNLI",
        hub_config="mnli",
        text_columns=("premise", "hypothesis"),
        labels=_MNLI_LABELS,
        metrics=("accuracy",),
        main_metric="accuracy",
        # Header: index, promptID, pairID, genre, 4 parse columns, sentence1, sentence2, label1
        # (dev: label1..label5), gold_label (the last field).
        tsv=_pair_tsv(
            "sentence1",
            "sentence2",
            "gold_label",
            _named(_MNLI_LABELS),
            label_last=True,
            files={
                "train": "train.tsv",
                "dev_matched": "dev_matched.tsv",
                "dev_mismatched": "dev_mismatched.tsv",
            },
        ),
        hub_splits=MappingProxyType(
            {
                "train": "train",
                "dev_matched": "validation_matched",
                "dev_mismatched": "validation_mismatched",
            }
        ),
        dev_splits=("dev_matched", "dev_mismatched"),
    ),
    GlueTask(
        name="QNLI",
        hub_config="qnli",
        text_columns=("question", "sentence"),
        labels=_NLI2,
        metrics=("accuracy",),
        main_metric="accuracy",
        # Header: index, question, sentence, label (entailment/not_entailment).
        tsv=_pair_tsv("question", "sentence", "label", _named(_NLI2)),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="RTE",
        hub_config="rte",
        text_columns=("sentence1", "sentence2"),
        labels=_NLI2,
        metrics=("accuracy",),
        main_metric="accuracy",
        # Header: index, sentence1, sentence2, label (entailment/not_entailment).
        tsv=_pair_tsv("sentence1", "sentence2", "label", _named(_NLI2)),
        hub_splits=_STD_SPLITS,
    ),
    GlueTask(
        name="WNLI",
        hub_config="wnli",
        text_columns=("sentence1", "sentence2"),
        labels=("not_entailment", "entailment"),
        metrics=("accuracy",),
        main_metric="accuracy",
        # Header: index, sentence1, sentence2, label (0 = not_entailment, 1 = entailment).
        tsv=_pair_tsv("sentence1", "sentence2", "label", _BINARY),
        hub_splits=_STD_SPLITS,
    ),
)

TASKS: Mapping[str, GlueTask] = MappingProxyType({t.name: t for t in _ALL})
"""Canonical name -> task, in GLUE's order."""


def float32_score(value: float) -> float:
    """A regression label at float32 precision, as its shortest decimal (3.8, 2.3333333): the hub stores
    STS-B scores as float32 and a model trains on float32, so both loaders hold the same values."""
    return float(str(np.float32(value)))


def normalize_task_name(name: str) -> str:
    """Lower case, letters and digits only: ``STS-B`` -> ``stsb``."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY = {normalize_task_name(t.name): t for t in _ALL}


def get_task(name: str | GlueTask) -> GlueTask:
    """The task called ``name`` in any case, with or without the dash or underscore (``sts-b``,
    ``STSB``, ``sst_2``). MNLI's mismatched dev set is a split of MNLI (``dev_mismatched``), not a task."""
    if isinstance(name, GlueTask):
        return name
    task = _BY_KEY.get(normalize_task_name(name))
    if task is not None:
        return task
    hint = ""
    if normalize_task_name(name) in ("mnlim", "mnlimm", "mnlimatched", "mnlimismatched"):
        hint = " (use task MNLI with split dev_matched or dev_mismatched)"
    raise DataError(f"unknown GLUE task {name!r}{hint}; valid tasks: {', '.join(TASKS)}")


@dataclass(frozen=True)
class TaskSplit:
    """Rows of one split: ``texts_a`` (and ``texts_b`` for pair tasks) with one label each (a class id,
    or a float score for STS-B). ``source`` is the file read or ``hub:nyu-mll/glue/<config>/<split>``."""

    task: GlueTask
    name: str
    texts_a: list[str]
    texts_b: list[str] | None
    labels: list[int] | list[float]
    source: str

    def __post_init__(self) -> None:
        n = len(self.texts_a)
        if len(self.labels) != n or (self.texts_b is not None and len(self.texts_b) != n):
            raise ValueError(f"{self.source}: texts and labels differ in length")
        if (self.texts_b is None) == self.task.is_pair:
            raise ValueError(f"{self.source}: texts_b must be given exactly for pair tasks")

    def __len__(self) -> int:
        return len(self.texts_a)

    def rows(self) -> Iterator[tuple[str, str | None, int | float]]:
        """(text_a, text_b or None, label) per row."""
        texts_b = self.texts_b if self.texts_b is not None else [None] * len(self)
        return zip(self.texts_a, texts_b, self.labels, strict=True)

    def select(self, n: int) -> TaskSplit:
        """The first ``n`` rows (all of them when ``n`` is larger), e.g. for --max-train-samples."""
        if n < 0:
            raise DataError(f"cannot select {n} rows of {self.task.name} {self.name}: need n >= 0")
        if n >= len(self):
            return self
        return TaskSplit(
            task=self.task,
            name=self.name,
            texts_a=self.texts_a[:n],
            texts_b=None if self.texts_b is None else self.texts_b[:n],
            labels=self.labels[:n],
            source=self.source,
        )

    def as_columns(self) -> dict[str, list]:
        """Hub-style columns (``task.text_columns`` + ``label``), e.g. for ``Dataset.from_dict``."""
        cols: dict[str, list] = {self.task.text_columns[0]: list(self.texts_a)}
        if self.texts_b is not None:
            cols[self.task.text_columns[1]] = list(self.texts_b)
        cols["label"] = list(self.labels)
        return cols

    def fingerprint(self) -> str:
        """sha256 hex of the rows held, in order: one line per row, the JSON array ``[text_a, text_b or
        null, label]`` (``json.dumps``, ``ensure_ascii=False``, UTF-8) and ``\\n``. Neither the source nor
        the split name enters it: the same rows from a TSV file or the hub give the same fingerprint."""
        h = hashlib.sha256()
        for row in self.rows():  # one JSON array [text_a, text_b or null, label] per row
            h.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()
