"""`nxm-deploy check` on safetensors files and run directories, in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from conftest import make_tiny_model
from safetensors.torch import save_file

from nxm_deploy import nm
from nxm_deploy.cli import cli
from nxm_deploy.io import write_json_atomic
from nxm_deploy.models import select_layers
from nxm_deploy.outputs import staged_dir


def run_cli(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def errors(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny BERT saved as safetensors twice: with every encoder linear 2:4, and dense."""
    root = tmp_path_factory.mktemp("weights")
    model = make_tiny_model("bert")
    dense = {k: v.contiguous() for k, v in model.state_dict().items()}
    sparse = dict(dense)
    for layer in select_layers(model, "2:4"):
        sparse[f"{layer}.weight"] = nm.project(dense[f"{layer}.weight"], "2:4", axis=1)
    save_file(dense, str(root / "dense.safetensors"))
    save_file(sparse, str(root / "sparse.safetensors"))
    return {"dense": root / "dense.safetensors", "sparse": root / "sparse.safetensors"}


def test_sparse_safetensors_pass(weights: dict[str, Path]) -> None:
    result = run_cli("check", weights["sparse"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["tensor", "shape", "axis", "groups", "bad", "density"]
    assert len(lines) == 1 + 12 + 1 and lines[-1] == "ok: all 12 tensors hold 2:4"
    assert lines[1].startswith("bert.encoder.layer.0.attention.output.dense.weight")  # natural name order
    assert lines[-2].startswith("bert.encoder.layer.1.output.dense.weight")
    assert not any("pooler" in x or "classifier" in x or "embeddings" in x for x in lines)


def test_dense_safetensors_fail_with_first_group(weights: dict[str, Path]) -> None:
    result = run_cli("check", weights["dense"])
    assert result.exit_code == 1
    (line,) = errors(result)
    assert "bert.encoder.layer.0.attention.output.dense.weight breaks 2:4 along axis 1" in line
    assert "first at index [0, 0]" in line and "(12 of 12 tensors fail)" in line


def test_other_patterns_and_json(weights: dict[str, Path]) -> None:
    assert run_cli("check", weights["sparse"], "--pattern", "1:4").exit_code == 1
    assert run_cli("check", weights["sparse"], "--pattern", "4:8").exit_code == 0  # 2:4 implies 4:8
    out = json.loads(run_cli("check", weights["sparse"], "--json").output)
    assert out["ok"] and len(out["tensors"]) == 12 and out["tensors"][0]["axis"] == 1


def test_include_exclude(weights: dict[str, Path]) -> None:
    result = run_cli("check", weights["dense"], "--include", "*intermediate*")
    assert result.exit_code == 1 and "(2 of 2 tensors fail)" in errors(result)[0]
    result = run_cli("check", weights["sparse"], "--exclude", "*attention*")
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "ok: all 4 tensors hold 2:4"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--pattern", "5:4"), "invalid N:M pattern 5:4"),
        (("--pattern", "abc"), "invalid N:M pattern 'abc'"),
        (("--include", "nothing*"), "no tensors selected to check"),
    ],
)
def test_bad_input_one_line(weights: dict[str, Path], args: tuple[str, ...], needle: str) -> None:
    result = run_cli("check", weights["sparse"], *args)
    assert result.exit_code == 1
    assert len(errors(result)) == 1 and needle in errors(result)[0]
    assert "Traceback" not in result.output


def test_missing_path_and_corrupt_file(tmp_path: Path) -> None:
    result = run_cli("check", tmp_path / "nope.safetensors")
    assert result.exit_code == 1 and "does not exist" in errors(result)[0]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    result = run_cli("check", bad)
    assert result.exit_code == 1 and "is not a readable safetensors file" in errors(result)[0]
    result = run_cli("check", tmp_path)
    assert result.exit_code == 1 and "neither a run directory" in errors(result)[0]


def test_run_dir_claiming_sparsity_it_lacks(weights: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(weights["dense"].read_bytes())
    layers = [f"bert.encoder.layer.{i}.output.dense" for i in range(2)]
    write_json_atomic(run / "nxm.json", {"pattern": "2:4", "layers": layers, "method": "admm"})
    result = run_cli("check", run)
    assert (
        result.exit_code == 1 and "bert.encoder.layer.0.output.dense.weight breaks 2:4" in errors(result)[0]
    )
    write_json_atomic(run / "nxm.json", {"pattern": None, "layers": [], "method": "dense"})
    result = run_cli("check", run)
    assert result.exit_code == 0 and "dense run: 12 encoder weights, density 1.000" in result.output


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli("--verbose", "check", tmp_path / "nope")
    assert result.exit_code == 1 and "Traceback" in result.output and "does not exist" in result.output


def test_usage_error_exits_2() -> None:
    result = run_cli("check")
    assert result.exit_code == 2 and "Missing argument 'PATH'" in result.output


def test_help_lists_the_five_subcommands() -> None:
    result = run_cli("--help")
    listed = result.output.split("Commands:")[1].split()
    for name in ("train", "export", "check", "bench", "demo"):
        assert name in listed


def test_real_subprocess(weights: dict[str, Path]) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    ok = subprocess.run([sys.executable, "-m", "nxm_deploy", "check", str(weights["sparse"])],
                        capture_output=True, text=True, env=env)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1] == "ok: all 12 tensors hold 2:4"
    bad = subprocess.run([sys.executable, "-m", "nxm_deploy", "check", str(weights["dense"])],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    cmd = [sys.executable, "-m", "nxm_deploy", "check", str(weights["sparse"]), "--pattern", "5:4"]
    pat = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert (
        pat.returncode == 1
        and pat.stderr.strip() == "error: invalid N:M pattern 5:4: need 0 < N < M (for example 2:4)"
    )


def test_staged_dir_is_atomic_and_readable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_dir(out) as tmp:
        write_json_atomic(tmp / "a.json", {"x": 1})
        assert not out.exists()
    assert json.loads((out / "a.json").read_text()) == {"x": 1}
    assert stat.S_IMODE(out.stat().st_mode) & 0o055 == 0o055 & ~_umask()  # not mkdtemp's 0700
    with pytest.raises(RuntimeError), staged_dir(out, overwrite=True) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in out.iterdir()) == [".nxm-files.json", "a.json"]  # the old one is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial directory left behind
    torch.manual_seed(0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
