"""`train` on CUDA end to end: ADMM with and without a teacher, in bf16 and fp16, and a resumed run.
Skipped where no CUDA GPU is visible (`pytest -m gpu` on a GPU machine runs them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from .test_train import tiny_args

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CUDA is not available)"),
]


def run_cli(*args: str) -> Result:
    from nxm_deploy.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def train_ok(*args: str) -> Result:
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return result


def checked(run: Path) -> dict:
    check = run_cli("check", str(run))
    assert check.exit_code == 0 and "all 12 tensors hold 2:4" in check.output, check.output
    return json.loads((run / "nxm.json").read_text())


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, glue_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("gpu") / "dense"
    train_ok(*tiny_args(tiny_bert_dir, glue_dir, out, "dense", "--mixed-precision", "bf16"))
    return out


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_admm_on_cuda(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path, precision: str) -> None:
    out = tmp_path / f"admm-{precision}"
    train_ok(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--mixed-precision", precision,
                        "--grad-accum", "2", "--eval-steps", "4"))  # fmt: skip
    manifest = checked(out)
    assert manifest["hyperparameters"]["mixed_precision"] == precision
    assert manifest["device"] == "cuda" and manifest["gpu"]
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("event") == "admm_update"]  # Z/U updated on the GPU
    assert any("eval_nm_accuracy" in r for r in log)


def test_admm_on_cuda_with_a_teacher(
    teacher: Path, tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "kd"
    train_ok(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--teacher", str(teacher),
                        "--mixed-precision", "bf16"))  # fmt: skip
    manifest = checked(out)
    assert manifest["teacher"] == str(teacher)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("kd_loss" in r for r in log)


def test_resume_on_cuda_continues_from_the_checkpoint(
    tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """A run cut after its 4th ADMM step (what a kill leaves: checkpoints up to there, no final state)
    resumes on the GPU, loading Z, U and rho there, with the same updates as the uninterrupted run."""
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    args = ["--keep-checkpoints", "--mixed-precision", "bf16"]
    train_ok(*tiny_args(tiny_bert_dir, glue_dir, straight, "admm", *args))
    shutil.copytree(straight, cut)
    ckpts = cut / "checkpoints"
    for path in [
        ckpts / "phase-0-admm" / "final",
        ckpts / "phase-1-masked",
        *ckpts.glob("phase-0-admm/checkpoint-8"),
    ]:
        shutil.rmtree(path, ignore_errors=True)
    for name in ("nxm.json", "model.safetensors"):
        (cut / name).unlink()
    assert (ckpts / "phase-0-admm" / "checkpoint-4" / "COMPLETE").is_file()
    train_ok(*tiny_args(tiny_bert_dir, glue_dir, cut, "admm", *args, "--resume"))
    checked(cut)

    def updates(run: Path) -> list[tuple[int, float]]:
        log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
        return [(r["step"], r["rho"]) for r in log if r.get("event") == "admm_update"]

    assert (
        updates(cut)
        == updates(straight)
        == [(s, pytest.approx(1e-3 * 1.3**k)) for k, s in enumerate((2, 4, 6, 8))]
    )
