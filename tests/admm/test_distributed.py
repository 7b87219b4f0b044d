"""Two processes under torchrun (gloo on CPU): one run directory, Z and U identical on every rank,
and the ADMM penalty weighed as in one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    torchrun_bin = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    # CPU and gloo, always: on a one-GPU machine the processes would otherwise pick NCCL and each
    # ask for a GPU of its own (rank 1 for a second GPU that is not there).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([torchrun_bin, "--nproc_per_node", str(nproc), "--standalone", *args],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_penalty_and_task_gradients_match_one_process(tiny_bert_dir: Path, tmp_path: Path) -> None:
    grads = {}
    for n in (1, 2):
        out = tmp_path / f"grads-{n}.safetensors"
        proc = torchrun(n, str(HERE / "dist_grad.py"), str(out), str(tiny_bert_dir))
        assert proc.returncode == 0, proc.stderr[-3000:]
        grads[n] = load_file(str(out))
    assert grads[1].keys() == grads[2].keys() and len(grads[1]) == 13
    for k in grads[1]:
        torch.testing.assert_close(grads[2][k], grads[1][k], rtol=1e-4, atol=1e-6, msg=k)


def test_two_process_train_writes_one_run_with_identical_zu(tiny_bert_dir: Path, glue_dir: Path,
                                                           tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "ddp"
    proc = torchrun(2, "-m", "nxm_deploy", "train", "--model", str(tiny_bert_dir), "--task", "rte",
                    "--data-dir", str(glue_dir), "--method", "admm", "--out", str(out), "--epochs", "2",
                    "--max-train-samples", "48", "--max-eval-samples", "24", "--batch-size", "8",
                    "--max-seq-len", "32", "--lr", "1e-3", "--admm-interval", "2",
                    "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the progress lines and the result line once (rank 0), not once per process
    assert proc.stderr.count("phase 1/2: admm") == 1 and proc.stdout.count("run written to") == 1
    manifest = json.loads((out / "nxm.json").read_text())
    assert manifest["world_size"] == 2 and manifest["pattern"] == "2:4"
    assert manifest["process_group_backend"] == "cpu:gloo"  # chosen by the test, never inherited NCCL
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".safetensors")) == ["model.safetensors"]
    updates = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    updates = [r for r in updates if r.get("event") == "admm_update"]
    assert [u["step"] for u in updates] == [2, 4, 6, 8]  # logged once, by rank 0
    for u in updates:
        first, second = u["zu_digest_per_rank"]
        assert first == second and any(v != 0 for v in first)
    check = subprocess.run([sys.executable, "-m", "nxm_deploy", "check", str(out)], capture_output=True,
                           text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_accelerate_launch_runs_the_same_train_command(tiny_bert_dir: Path, glue_dir: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    """README's `accelerate launch ... -m nxm_deploy train` (one CPU process here; on GPUs
    --multi_gpu --num_processes N starts the same processes torchrun does)."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    out = tmp_path / "accelerate"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([accelerate, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "nxm_deploy", "train",
                           "--model", str(tiny_bert_dir), "--task", "rte", "--data-dir", str(glue_dir),
                           "--method", "admm", "--out", str(out), "--epochs", "1",
                           "--max-train-samples", "32", "--max-eval-samples", "16",
                           "--batch-size", "8", "--grad-accum", "2", "--max-seq-len", "32",
                           "--admm-interval", "2", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "nxm.json").read_text())
    assert manifest["pattern"] == "2:4" and manifest["hyperparameters"]["grad_accum"] == 2
