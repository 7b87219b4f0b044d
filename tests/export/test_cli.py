"""``nxm-deploy export`` and ``nxm-deploy check model.onnx`` through click's CliRunner, plus one real
subprocess run of the installed console script with ``--engine trt``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nxm_deploy.cli import cli

from .conftest import QUERY0, densified

NXM_DEPLOY = Path(sys.executable).with_name("nxm-deploy")


def run_cli(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if not line.startswith("[export]")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def test_export_dense_run_refuse_existing_out_then_overwrite(dense_run, tmp_path, glue_dir):
    out = tmp_path / "dense"
    first = run_cli("export", dense_run, "--out", out, "--data-dir", glue_dir)
    assert first.exit_code == 0, first.output
    assert f"-> {out}" in first.stdout
    assert "N:M: dense run, exported dense" in first.stdout
    assert "parity vs PyTorch: max abs diff" in first.stdout and "RTE/dev.tsv" in first.stdout
    assert "tensorrt: not requested (--engine onnx); build_engine.sh written" in first.stdout
    before = (out / "export.json").read_bytes()

    again = run_cli("export", dense_run, "--out", out, "--data-dir", glue_dir)
    assert again.exit_code == 1
    assert one_error_line(again) == f"error: {out} already exists; pass --overwrite to replace it"
    assert (out / "export.json").read_bytes() == before

    (out / "notes.txt").write_text("the user's own file", encoding="utf-8")
    refused = run_cli("export", dense_run, "--out", out, "--data-dir", glue_dir, "--overwrite")
    assert refused.exit_code == 1  # --overwrite deletes only what nxm-deploy wrote
    assert "holds files nxm-deploy did not write (notes.txt)" in one_error_line(refused)
    assert (out / "notes.txt").is_file() and (out / "export.json").read_bytes() == before
    (out / "notes.txt").unlink()
    (out / "tokenizer.json").unlink()  # a file the tool wrote may be missing: still the tool's directory
    forced = run_cli("export", dense_run, "--out", out, "--data-dir", glue_dir, "--overwrite", "--opset", 19)
    assert forced.exit_code == 0, forced.output
    assert (out / "tokenizer.json").is_file()
    assert json.loads((out / "export.json").read_text(encoding="utf-8"))["onnx"]["opset"] == 19


def test_export_bad_inputs_get_one_line(tmp_path, run_copy):
    not_run = run_cli("export", tmp_path, "--out", tmp_path / "o")
    assert not_run.exit_code == 1
    assert "is not a run directory (no nxm.json)" in one_error_line(not_run)

    weights = run_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    corrupt = run_cli("export", run_copy, "--out", tmp_path / "o")
    assert corrupt.exit_code == 1
    assert "model.safetensors is not a readable safetensors file" in one_error_line(corrupt)
    assert not (tmp_path / "o").exists()


def test_export_shape_options(tmp_path, sparse_run):
    partial = run_cli("export", sparse_run, "--out", tmp_path / "o", "--min-shape", "1x8")
    assert partial.exit_code == 2 and "--min-shape, --opt-shape and --max-shape together" in partial.output
    bad = run_cli(
        "export", sparse_run, "--out", tmp_path / "o", "--min-shape", "1by8", "--opt-shape", "8x64",
        "--max-shape", "8x128",
    )  # fmt: skip
    assert bad.exit_code == 1 and "invalid shape '1by8'" in one_error_line(bad)
    shapes = ("--min-shape", "1x8", "--opt-shape", "8x64", "--max-shape", "8x512")
    too_long = run_cli("export", sparse_run, "--out", tmp_path / "o", "--engine", "trt", *shapes)
    assert too_long.exit_code == 1 and "exceeds the model's position limit 128" in one_error_line(too_long)
    ignored = run_cli("export", sparse_run, "--out", tmp_path / "o", *shapes)  # they set the engine only
    assert ignored.exit_code == 1
    assert "--min/--opt/--max-shape set the TensorRT engine; add --engine trt" in one_error_line(ignored)
    assert not (tmp_path / "o").exists()


def test_export_help_documents_exit_codes():
    result = run_cli("export", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "3 --engine trt where TensorRT or an NVIDIA GPU is missing" in text
    assert "[default: 18]" in text


def test_check_onnx_prints_the_table(sparse_export):
    for target in (sparse_export / "model.onnx", sparse_export):
        result = run_cli("check", target)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["tensor", "shape", "axis", "groups", "bad", "density", "layer"]
        assert lines[1].split()[1:] == [
            "32x32",
            "0",
            "256",
            "0",
            "0.500",
            "bert.encoder.layer.0.attention.self.query",
        ]
        assert lines[-1] == "ok: all 12 tensors hold 2:4"
    as_json = json.loads(run_cli("check", sparse_export / "model.onnx", "--json").stdout)
    assert as_json["tensors"][0]["layer"] == "bert.encoder.layer.0.attention.self.query"


def test_check_onnx_with_dense_weights_fails(sparse_export, tmp_path):
    bad = tmp_path / "dense.onnx"
    names = densified(sparse_export, bad)
    assert len(names) == 12
    result = run_cli("check", bad)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"error: {bad}: {names[QUERY0]} breaks 2:4 along axis 0:" in line
    assert "(12 of 12 tensors fail)" in line


def test_installed_command_engine_trt_without_tensorrt_exits_3(sparse_run, tmp_path, glue_dir):
    from nxm_deploy.errors import EXIT_NEEDS_GPU
    from nxm_deploy.runtime.availability import trt_unavailable_reason

    reason = trt_unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are here: the engine would be built")
    if not NXM_DEPLOY.exists():
        pytest.skip(f"the console script is not installed beside {sys.executable}")
    out = tmp_path / "trt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [str(NXM_DEPLOY), "export", str(sparse_run), "--out", str(out), "--engine", "trt"]
    cmd += ["--data-dir", str(glue_dir)]  # no --precision: fp16 is the default with --engine trt
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == EXIT_NEEDS_GPU == 3, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: TensorRT engine not built: {reason}"]
    assert "Traceback" not in proc.stderr
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "model_fp16.onnx", "export.json", "build_engine.sh", "tokenizer.json"} <= names
    trt = json.loads((out / "export.json").read_text(encoding="utf-8"))["tensorrt"]
    assert trt["requested"] and not trt["built"] and trt["reason"] == reason
    assert trt["precision"] == "fp16" and trt["fp16_onnx"] == "model_fp16.onnx"
    script = (out / "build_engine.sh").read_text(encoding="utf-8")
    assert "--onnx=model_fp16.onnx" in script and "--sparsity=enable" in script
    assert os.access(out / "build_engine.sh", os.X_OK)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
