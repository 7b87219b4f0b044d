"""Own data end to end: a CSV, a JSON Lines file and a Parquet file, built here from GLUE rows, each
train (dense and sparse), export, bench and serve with their own label names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from nxm_deploy.cli import cli
from nxm_deploy.data import load_split
from nxm_deploy.runtime import Predictor

pytestmark = pytest.mark.slow


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def build_files(root: Path, glue: Path) -> dict[str, tuple[Path, list[str], tuple[str, ...]]]:
    """fmt -> (data path, the --data options, the label names the model must report)."""
    sst = load_split("sst2", "train", glue).select(48)
    with (root / "reviews.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "verdict"])
        w.writerows([a, ["thumbs-down", "thumbs-up"][y]] for a, _, y in sst.rows())
    rte = load_split("rte", "train", glue).select(48)
    folder = root / "nli"
    folder.mkdir()
    recs = [{"premise": a, "claim": b, "label": ["follows", "open"][y]} for a, b, y in rte.rows()]
    for name, part in (("train", recs[:36]), ("validation", recs[36:])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    cola = load_split("cola", "train", glue).select(48)
    rows = [{"sentence": a, "grammar": ["bad", "good"][y]} for a, _, y in cola.rows()]
    pq.write_table(pa.Table.from_pylist(rows), root / "cola.parquet")
    return {
        "csv": (root / "reviews.csv", ["--text-column", "review", "--label-column", "verdict",
                                       "--validation-fraction", "0.25"], ("thumbs-down", "thumbs-up")),
        "jsonl": (folder, ["--text-column", "premise", "--text-pair-column", "claim"], ("follows", "open")),
        "parquet": (root / "cola.parquet", ["--label-column", "grammar", "--metric", "matthews"],
                    ("bad", "good")),
    }  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, glue_dir: Path) -> dict:
    return build_files(tmp_path_factory.mktemp("own-data"), glue_dir)


def train(model: Path, data: Path, opts: list[str], method: str, out: Path) -> None:
    result = run_cli("train", "--model", model, "--data", data, *opts, "--method", method, "--out", out,
                     "--epochs", "1", "--batch-size", "8", "--max-seq-len", "32", "--lr", "1e-3",
                     *(("--admm-interval", "2") if method == "admm" else ()), "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_own_data_trains_exports_benches_and_serves(fmt: str, files: dict, tiny_bert_dir: Path,
                                                    tmp_path: Path) -> None:  # fmt: skip
    data, opts, labels = files[fmt]
    method = "admm" if fmt == "csv" else "oneshot"
    train(tiny_bert_dir, data, opts, "dense", tmp_path / "dense")
    train(tiny_bert_dir, data, opts, method, tmp_path / "sparse")
    manifest = json.loads((tmp_path / "sparse" / "nxm.json").read_text())
    ds = manifest["dataset"]
    assert manifest["labels"] == list(labels) and ds["label2id"] == {n: i for i, n in enumerate(labels)}
    assert len(ds["rows_sha256"]) == 64 and ds["format"] == fmt
    assert ds["columns"]["text"] == opts[opts.index("--text-column") + 1] if fmt != "parquet" else "sentence"
    main = "matthews_correlation" if fmt == "parquet" else "accuracy"
    assert manifest["main_metric"] == main and main in manifest["metrics"]

    # export: parity on the data's own validation rows; labels reach export.json and Triton
    result = run_cli("export", tmp_path / "sparse", "--out", tmp_path / "export",
                     "--triton-repo", tmp_path / "triton", "--triton-name", "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    export = json.loads((tmp_path / "export" / "export.json").read_text())
    assert export["source_run"]["labels"] == list(labels)
    assert export["parity"]["inputs"]["fallback_reason"] is None
    assert "validation rows" in export["parity"]["inputs"]["source"]
    assert export["parity"]["inputs"]["pairs"] == (fmt == "jsonl")
    assert (tmp_path / "triton" / "m" / "labels.txt").read_text().split() == list(labels)

    # serve: label names, pairs for the pair data
    predictor = Predictor.from_export(tmp_path / "export")
    assert predictor.labels == labels and predictor.is_pair == (fmt == "jsonl")
    item = ("A man sleeps.", "Someone sleeps.") if fmt == "jsonl" else "A fine film."
    [p] = predictor.predict([item])
    assert p.label in labels and set(p.scores) == set(labels)

    # bench (torch backend: the run directories): the validation rows the runs recorded
    result = run_cli("bench", "--dense", tmp_path / "dense", "--sparse", tmp_path / "sparse",
                     "--backend", "torch", "--out", tmp_path / "report", "--batch-sizes", "2",
                     "--seq-lens", "16", "--warmup", "1", "--repeats", "3", "--min-time", "0",
                     "--max-time", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["task"] == manifest["task"] and report["accuracy"]["main_metric"] == main
    assert report["accuracy"]["examples"] == ds["validation"]["rows"]


def test_bench_refuses_data_with_another_label_map(files: dict, tiny_bert_dir: Path, tmp_path: Path) -> None:
    data, opts, _ = files["csv"]
    train(tiny_bert_dir, data, opts, "dense", tmp_path / "dense")
    train(tiny_bert_dir, data, opts, "oneshot", tmp_path / "sparse")
    other, other_opts, _ = files["parquet"]
    result = CliRunner().invoke(cli, ["bench", "--dense", str(tmp_path / "dense"), "--sparse",
                                      str(tmp_path / "sparse"), "--backend", "torch", "--out",
                                      str(tmp_path / "r"), "--data", str(other), *other_opts])  # fmt: skip
    assert result.exit_code == 1
    assert "trained with labels ['thumbs-down', 'thumbs-up']" in result.output
    # the teacher must come from the same data
    teacher = str(tmp_path / "dense")
    result = CliRunner().invoke(cli, ["train", "--model", str(tiny_bert_dir), "--data", str(other),
                                      *other_opts, "--method", "oneshot", "--teacher", teacher,
                                      "--out", str(tmp_path / "kd")])  # fmt: skip
    assert result.exit_code == 1 and "does not match --data" in result.output and "labels" in result.output
    result = CliRunner().invoke(cli, ["train", "--init-from", teacher, "--data", str(other), *other_opts,
                                      "--method", "asp", "--out", str(tmp_path / "init")])  # fmt: skip
    assert result.exit_code == 1 and f"--init-from run {teacher} does not match --data" in result.output
    # bench with --data given explicitly (the same file and options as the runs)
    result = run_cli("bench", "--dense", tmp_path / "dense", "--sparse", tmp_path / "sparse",
                     "--backend", "torch", "--out", tmp_path / "r2", "--data", data, *opts,
                     "--batch-sizes", "1", "--seq-lens", "16", "--warmup", "1", "--repeats", "3",
                     "--min-time", "0", "--max-time", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.output


def test_cli_refuses_task_with_data_and_bad_data_in_one_line(tiny_bert_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\na,pos\nb,\n", encoding="utf-8")
    common = ["train", "--model", str(tiny_bert_dir), "--method", "dense", "--out", str(tmp_path / "o")]
    both = CliRunner().invoke(cli, [*common, "--task", "rte", "--data", str(bad)])
    assert both.exit_code == 2 and "--task or --data" in both.output
    neither = CliRunner().invoke(cli, common)
    assert neither.exit_code == 2
    stray = CliRunner().invoke(cli, [*common, "--task", "rte", "--label-column", "y"])
    assert stray.exit_code == 2 and "--label-column goes with --data" in stray.output
    result = CliRunner().invoke(cli, [*common, "--data", str(bad)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == f"error: {bad} row 2, column 'label': empty label"
