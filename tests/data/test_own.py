"""Own data (``--data``): files of every format read into the task objects the GLUE path uses, label
maps in sorted order, the seeded validation split, and one line naming file, row and column for each
kind of bad data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nxm_deploy.data import compute_metrics
from nxm_deploy.data.own import DataOptions, load_own
from nxm_deploy.errors import DataError

ROWS = [("a fine film", "pos"), ("dull", "neg"), ("great acting", "pos"), ("boring plot", "neg"),
        ("so so", "meh"), ("loved it", "pos"), ("hated it", "neg"), ("a classic", "pos"),
        ("not again", "neg"), ("fine", "meh")]  # fmt: skip


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def records() -> list[dict]:
    return [{"text": t, "label": y} for t, y in ROWS]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_every_format_gives_the_same_rows_and_label_map(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"reviews.{fmt}"
    if fmt == "csv":
        write_csv(path, ["text", "label"], [list(r) for r in ROWS])
    elif fmt == "tsv":
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in ROWS), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(records()), encoding="utf-8")
    elif fmt == "jsonl":
        write_jsonl(path, records())
    else:
        pq.write_table(pa.Table.from_pylist(records()), path)
    own = load_own(DataOptions(str(path), validation_fraction=0.2))
    assert own.task.labels == ("meh", "neg", "pos")  # sorted
    assert own.record["label2id"] == {"meh": 0, "neg": 1, "pos": 2}
    assert len(own.train) == 8 and len(own.dev) == 2
    assert own.record["validation"]["fraction"] == 0.2 and own.record["validation"]["seed"] == 0
    assert own.record["rows_sha256"] == load_own(DataOptions(str(path))).record["rows_sha256"]
    assert own.task.name == f"data:reviews.{fmt}" and own.record["format"] == fmt


def test_the_split_is_fixed_and_seeded(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": f"row {i}", "label": i % 2} for i in range(50)])
    first = load_own(DataOptions(str(path), validation_fraction=0.2))
    again = load_own(DataOptions(str(path), validation_fraction=0.2))
    other = load_own(DataOptions(str(path), validation_fraction=0.2, split_seed=1))
    assert first.dev.texts_a == again.dev.texts_a and len(first.dev) == 10
    assert first.dev.texts_a != other.dev.texts_a
    assert not set(first.dev.texts_a) & set(first.train.texts_a)


def test_integer_labels_sort_as_numbers_and_a_folder_finds_its_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"sentence": f"s{i}", "y": i % 11} for i in range(33)])
    write_jsonl(tmp_path / "validation.jsonl", [{"sentence": "v", "y": 10}])
    own = load_own(DataOptions(str(tmp_path), label_column="y"))
    assert own.task.labels == tuple(str(i) for i in range(11))  # 2 before 10
    assert own.dev.labels == [10] and own.record["validation"]["file"].endswith("validation.jsonl")
    assert own.record["columns"] == {"text": "sentence", "text_pair": None, "label": "y"}


def test_float_labels_are_regression_and_it_says_so(tmp_path: Path, caplog) -> None:
    path = write_csv(tmp_path / "s.csv", ["text", "score"], [[f"t{i}", (i % 4) / 4] for i in range(40)])
    with caplog.at_level("INFO", logger="nxm_deploy.data"):
        own = load_own(DataOptions(str(path), label_column="score"))
    assert own.task.is_regression and own.task.main_metric == "pearson"
    assert sum("regression" in r.message for r in caplog.records) == 1
    assert (
        load_own(DataOptions(str(path), label_column="score", problem="classification")).task.num_labels == 4
    )


def test_pairs_and_f1_of_the_positive_label(tmp_path: Path) -> None:
    rows = [{"q": f"q{i}", "a": f"a{i}", "label": ["no", "yes"][i % 2]} for i in range(20)]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    opts = DataOptions(str(path), text_column="q", text_pair_column="a", metric="f1", positive_label="no")
    own = load_own(opts)
    assert own.task.is_pair and own.train.texts_b is not None
    assert own.task.positive_id == 0 and own.task.metrics == ("f1", "accuracy")
    scores = compute_metrics(own.task, [0, 0, 1, 1], [0, 1, 1, 1])  # F1 of "no" (id 0): 2/3
    assert scores["f1"] == pytest.approx(2 / 3) and scores["accuracy"] == 0.75


# ---- bad data: one line naming the file, row and column ------------------------------------------


def error_of(opts: DataOptions) -> str:
    with pytest.raises(DataError) as info:
        load_own(opts)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", ["review", "label"], [["x", "a"], ["y", "b"]])
    msg = error_of(DataOptions(str(path)))
    assert str(path) in msg and "no column 'text' or 'sentence'" in msg and msg.endswith("; pass text_column")
    msg = error_of(DataOptions(str(path), text_column="review", label_column="stars"))
    assert "no column 'stars'" in msg and "review, label" in msg


def test_missing_column_in_one_json_row(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"text": "b"}])
    assert error_of(DataOptions(str(path))) == f"{path} row 2: no column 'label'"


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(content, encoding="utf-8")
    msg = error_of(DataOptions(str(path)))
    assert msg.startswith(str(path)) and ("empty" in msg or "no rows" in msg)


def test_labels_of_mixed_types(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0},
                                              {"text": "c", "label": "pos"}])  # fmt: skip
    msg = error_of(DataOptions(str(path)))
    assert msg.startswith(f"{path} row 3, column 'label': labels of mixed types")
    assert "row 1" in msg


@pytest.mark.parametrize(("value", "what"), [("", "empty label"), (None, "empty label"), ("NaN", "NaN")])
def test_nan_or_empty_label(tmp_path: Path, value: object, what: str) -> None:
    recs = [{"text": "a", "label": "x"}, {"text": "b", "label": value}]
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    msg = error_of(DataOptions(str(path)))
    assert msg.startswith(f"{path} row 2, column 'label':") and what in msg


def test_nan_label_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"text": "a", "label": 0.5}, {"text": "b", "label": float("nan")}]), path
    )
    assert error_of(DataOptions(str(path))) == f"{path} row 2, column 'label': label is NaN"


def test_class_in_validation_that_training_never_saw(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["text", "label"], [["a", "pos"], ["b", "neg"]])
    val = write_csv(tmp_path / "dev.csv", ["text", "label"], [["c", "neg"], ["d", "meh"]])
    msg = error_of(DataOptions(str(train), validation_file=str(val)))
    assert msg.startswith(f"{val} row 2, column 'label': class 'meh' never occurs in the training rows")


def test_regression_label_that_is_not_a_number(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "0.5"], ["b", "high"]])
    msg = error_of(DataOptions(str(path), problem="regression"))
    assert msg == f"{path} row 2, column 'label': regression label 'high' is not a number"


def test_option_mistakes_are_one_line() -> None:
    assert error_of_options(metric="f1") == "metric f1 needs positive_label (the class whose F1 is reported)"
    assert "not both" in error_of_options(validation_file="v.csv", validation_fraction=0.1)


def error_of_options(**kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        DataOptions("d.csv", **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_hub_data_set_class_label_names(tmp_path: Path) -> None:
    """``hub:NAME`` goes through ``datasets.load_dataset``; here NAME is a local folder of Parquet
    files written by ``datasets`` (its ClassLabel names travel in the file), so no network is needed."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})  # fmt: skip
    for split, n in (("train", 20), ("validation", 6)):
        rows = {"text": [f"{split} {i}" for i in range(n)], "label": [i % 2 for i in range(n)]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / f"{split}.parquet"))
    own = load_own(DataOptions(f"hub:{tmp_path}"))
    assert own.task.labels == ("neg", "pos") and len(own.train) == 20 and len(own.dev) == 6
    assert own.record["source"] == f"hub:{tmp_path}" and own.dev.source.endswith("/validation")


def test_hub_offline_is_one_line() -> None:
    msg = error_of(DataOptions("hub:surely-not-a-local-dataset-name"))
    assert msg.startswith("cannot load hub data set surely-not-a-local-dataset-name")
    assert "pass source with a local file" in msg  # the parameter: the CLI writes --data
