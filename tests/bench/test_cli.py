"""``nxm-deploy bench`` through click's CliRunner: a real run, and one-line errors with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nxm_deploy.cli import cli

from .conftest import TASK, Pair

FAST_ARGS = [
    "--batch-sizes", "1,2", "--seq-lens", "8,16", "--warmup", "1", "--repeats", "3",
    "--min-time", "0", "--max-time", "0.5",
]  # fmt: skip


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["bench", *args], catch_exceptions=False)


def test_bench_command_writes_the_report(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    import torch

    threads_before = torch.get_num_threads()
    out = tmp_path / "report"
    args = ["--dense", str(bench_pair.dense_export), "--sparse", str(bench_pair.sparse_export)]
    args += ["--task", "rte", "--data-dir", str(glue_dir), "--out", str(out), "--threads", "1", *FAST_ARGS]
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    assert f"report written to {out}" in result.output
    assert "sparse/dense median ratio" in result.output
    assert "note: ONNX Runtime on CPU has no sparse kernels" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == TASK
    assert report["backend"]["threads"] == 1 and report["machine"]["threads_requested"] == 1
    assert report["latency"]["method"]["plan"]["repeats"] == 3
    assert isinstance(report["command"], list) and report["tool"] == "nxm-deploy"  # provenance
    assert torch.get_num_threads() == threads_before  # --threads is undone afterwards

    again = _invoke(*args)  # the report exists now
    assert again.exit_code == 1
    assert again.output.strip().splitlines() == [
        f"error: {out} already exists; pass --overwrite to replace it"
    ]
    assert _invoke(*args, "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-sizes", "1,eight"], "error: --batch-sizes takes comma-separated positive integers"),
        (["--seq-lens", "0"], "error: --seq-lens takes comma-separated positive integers"),
        (["--repeats", "1"], "error: --repeats must be at least 3"),
        (["--task", "SST-2"], "was trained on RTE, not SST-2"),
    ],
)
def test_bad_input_is_one_line_exit_1(bench_pair: Pair, glue_dir: Path, tmp_path: Path, extra, message):
    args = ["--dense", str(bench_pair.dense_export), "--sparse", str(bench_pair.sparse_export)]
    args += ["--task", TASK, "--data-dir", str(glue_dir), "--out", str(tmp_path / "r"), *extra]
    result = _invoke(*args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_swapped_roles_exit_1(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    args = ["--dense", str(bench_pair.sparse_export), "--sparse", str(bench_pair.dense_export)]
    result = _invoke(*args, "--task", TASK, "--data-dir", str(glue_dir), "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert "is a dense model" in result.output and len(result.output.strip().splitlines()) == 1


def test_usage_error_exit_2(tmp_path: Path):
    result = _invoke("--dense", str(tmp_path), "--task", TASK, "--out", str(tmp_path / "r"))
    assert result.exit_code == 2  # --sparse missing: click's usage error
    result = _invoke("--dense", "a", "--sparse", "b", "--task", TASK, "--out", "r", "--backend", "tpu")
    assert result.exit_code == 2


def test_help_names_the_options():
    result = _invoke("--help")
    assert result.exit_code == 0
    options = "--dense --sparse --task --data-dir --out --backend --batch-sizes --seq-lens --threads"
    for option in (*options.split(), "--warmup", "--repeats", "--min-time", "--max-time", "--overwrite"):
        assert option in result.output
