"""The GLUE task registry: names, labels in the hub's ClassLabel order, metrics, splits, TaskSplit."""

from __future__ import annotations

import pytest

from nxm_deploy.data import TASKS, GlueTask, TaskSplit, get_task
from nxm_deploy.errors import DataError, UserError

# The nyu-mll/glue ClassLabel names, in order (class id = position).
HUB_LABELS = {
    "CoLA": ("unacceptable", "acceptable"),
    "SST-2": ("negative", "positive"),
    "MRPC": ("not_equivalent", "equivalent"),
    "STS-B": (),
    "QQP": ("not_duplicate", "duplicate"),
    "MNLI": ("entailment", "neutral", "contradiction"),
    "QNLI": ("entailment", "not_entailment"),
    "RTE": ("entailment", "not_entailment"),
    "WNLI": ("not_entailment", "entailment"),
}
METRICS = {
    "CoLA": ("matthews_correlation",),
    "SST-2": ("accuracy",),
    "MRPC": ("f1", "accuracy"),
    "STS-B": ("pearson", "spearmanr"),
    "QQP": ("f1", "accuracy"),
    "MNLI": ("accuracy",),
    "QNLI": ("accuracy",),
    "RTE": ("accuracy",),
    "WNLI": ("accuracy",),
}
MAIN = {"CoLA": "matthews_correlation", "MRPC": "f1", "QQP": "f1", "STS-B": "pearson"}


def test_registry_has_the_nine_glue_tasks_in_order():
    assert list(TASKS) == list(HUB_LABELS)
    assert all(isinstance(t, GlueTask) and t.name == name for name, t in TASKS.items())


@pytest.mark.parametrize("name", list(HUB_LABELS))
def test_labels_metrics_and_columns(name: str):
    task = TASKS[name]
    assert task.labels == HUB_LABELS[name]
    assert task.metrics == METRICS[name]
    assert task.main_metric == MAIN.get(name, "accuracy")
    assert task.main_metric in task.metrics
    assert task.is_regression == (name == "STS-B")
    assert task.num_labels == (len(HUB_LABELS[name]) or 1)
    assert task.is_pair == (name not in ("CoLA", "SST-2"))
    assert len(task.text_columns) == (2 if task.is_pair else 1)
    assert task.hub_config == name.lower().replace("-", "")
    assert set(task.hub_splits) == set(task.splits)
    assert set(task.tsv.files) == set(task.splits)
    # TSV label values map one to one onto the class ids.
    if task.is_regression:
        assert task.tsv.label_values is None
    else:
        assert sorted(task.tsv.label_values.values()) == list(range(task.num_labels))
        assert task.id2label == dict(enumerate(HUB_LABELS[name]))
        assert {v: k for k, v in task.label2id.items()} == task.id2label


def test_string_labels_follow_the_label_names():
    for name in ("MNLI", "QNLI", "RTE"):
        task = TASKS[name]
        assert dict(task.tsv.label_values) == task.label2id


def test_splits():
    assert TASKS["RTE"].train_split == "train"
    assert TASKS["RTE"].dev_splits == ("dev",)
    mnli = TASKS["MNLI"]
    assert mnli.dev_splits == ("dev_matched", "dev_mismatched")
    assert mnli.resolve_split("dev") == "dev_matched"
    assert mnli.resolve_split("validation_mismatched") == "dev_mismatched"
    assert mnli.resolve_split("DEV-MISMATCHED") == "dev_mismatched"
    assert TASKS["SST-2"].resolve_split("validation") == "dev"
    with pytest.raises(DataError, match=r"no public labels\); valid splits: train, dev$"):
        TASKS["SST-2"].resolve_split("test")
    with pytest.raises(DataError, match="valid splits: train, dev_matched, dev_mismatched"):
        mnli.resolve_split("dev_mismatch")


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("rte", "RTE"),
        ("RTE", "RTE"),
        ("sts-b", "STS-B"),
        ("stsb", "STS-B"),
        ("STS_B", "STS-B"),
        ("sst2", "SST-2"),
        ("SST-2", "SST-2"),
        ("mnli", "MNLI"),
        ("CoLA", "CoLA"),
        ("cola", "CoLA"),
        ("qqp", "QQP"),
        ("Qnli", "QNLI"),
        ("wnli", "WNLI"),
        ("mrpc", "MRPC"),
    ],
)
def test_names_in_any_case_with_or_without_dash(given: str, canonical: str):
    assert get_task(given) is TASKS[canonical]
    assert get_task(TASKS[canonical]) is TASKS[canonical]


def test_unknown_task_is_one_line_listing_valid_names():
    with pytest.raises(DataError) as err:
        get_task("sst5")
    msg = str(err.value)
    assert "\n" not in msg and "'sst5'" in msg
    assert msg.endswith("valid tasks: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI")
    assert isinstance(err.value, UserError)


def test_mnli_mismatched_is_a_split_not_a_task():
    with pytest.raises(DataError, match="use task MNLI with split dev_matched or dev_mismatched"):
        get_task("MNLI-mm")


def _split(labels: list, texts_b: list[str] | None = None, task: str = "SST-2") -> TaskSplit:
    n = len(labels)
    return TaskSplit(
        task=get_task(task),
        name="train",
        texts_a=[f"a{i}" for i in range(n)],
        texts_b=texts_b,
        labels=labels,
        source="memory",
    )


def test_select_takes_the_first_rows():
    split = _split([0, 1, 1, 0, 1])
    head = split.select(3)
    assert len(head) == 3 and head.texts_a == ["a0", "a1", "a2"] and head.labels == [0, 1, 1]
    assert head.name == split.name and head.source == split.source and head.texts_b is None
    assert split.select(99) is split
    assert len(split.select(0)) == 0
    with pytest.raises(DataError):
        split.select(-1)
    pair = _split([1, 0], texts_b=["b0", "b1"], task="RTE").select(1)
    assert pair.texts_b == ["b0"]


def test_fingerprint_depends_on_rows_only():
    a, b = _split([0, 1, 1]), _split([0, 1, 1])
    fp = a.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fp == a.fingerprint() == b.fingerprint()
    assert _split([0, 1, 0]).fingerprint() != fp
    assert a.select(2).fingerprint() != fp
    assert _split([0, 1, 1, 0]).select(3).fingerprint() == fp
    # Pinned: sha256 of '["a0", null, 0]\n["a1", null, 1]\n["a2", null, 1]\n' (one JSON row per line).
    assert fp == "ec7cebe2f41fd32ba44b2af3d100e1f10300b31867ea947be411f4ec951fe819"


def test_split_checks_its_shape():
    with pytest.raises(ValueError, match="differ in length"):
        TaskSplit(get_task("SST-2"), "dev", ["x"], None, [0, 1], "memory")
    with pytest.raises(ValueError, match="pair tasks"):
        TaskSplit(get_task("RTE"), "dev", ["x"], None, [0], "memory")
    with pytest.raises(ValueError, match="pair tasks"):
        TaskSplit(get_task("SST-2"), "dev", ["x"], ["y"], [0], "memory")


def test_as_columns_uses_hub_names():
    cols = _split([1, 0], texts_b=["b0", "b1"], task="MNLI").as_columns()
    assert cols == {"premise": ["a0", "a1"], "hypothesis": ["b0", "b1"], "label": [1, 0]}
