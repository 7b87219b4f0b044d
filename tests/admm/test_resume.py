"""Resume: a run killed with SIGKILL during the ADMM phase continues from its newest complete
checkpoint with the same Z, U, rho, optimizer, schedule and data order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nxm_deploy.admm.checkpoints import is_complete

pytestmark = pytest.mark.slow


def command(model: Path, glue: Path, out: Path, *extra: str) -> list[str]:
    # 64 rows / batch 8 = 8 steps per epoch; ADMM for 5 of 6 epochs = 40 steps, Z/U every step
    return [sys.executable, "-m", "nxm_deploy", "train", "--model", str(model), "--task", "rte",
            "--data-dir", str(glue), "--method", "admm", "--out", str(out), "--epochs", "6",
            "--admm-epochs", "5", "--max-train-samples", "64", "--max-eval-samples", "16",
            "--batch-size", "8", "--max-seq-len", "32", "--lr", "1e-3", "--admm-interval", "1",
            "--rho", "0.01", "--save-steps", "3", "--logging-steps", "1", "--no-progress",
            *extra]  # fmt: skip


def records(run: Path) -> list[dict]:
    lines = (run / "train_log.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_sigkill_during_admm_then_resume(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(tiny_bert_dir, glue_dir, killed), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    phase0 = killed / "checkpoints" / "phase-0-admm"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in phase0.glob("checkpoint-*") if is_complete(p)] if phase0.exists() else []
        if any(int(p.name.split("-")[1]) >= 10 for p in done):
            break
        time.sleep(0.02)
    assert proc.poll() is None, (
        "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log_before = records(killed)
    killed_at = max(r["step"] for r in log_before)
    assert all(r["phase"] == 0 for r in log_before), "killed after the ADMM phase"
    assert not (killed / "nxm.json").exists()

    resumed = subprocess.run(command(tiny_bert_dir, glue_dir, killed, "--resume", "--keep-checkpoints"),
                             env=_env(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr

    # the final model holds the pattern
    check = subprocess.run([sys.executable, "-m", "nxm_deploy", "check", str(killed)], capture_output=True,
                           text=True, env=_env())  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    # the log has no gap and no duplicate: one ADMM update per step 1..40, one loss record per step
    log = records(killed)
    updates = [r["step"] for r in log if r.get("event") == "admm_update"]
    assert updates == list(range(1, 41)), updates
    for phase, steps in ((0, 40), (1, 8)):
        losses = [r["step"] for r in log if r["phase"] == phase and "loss" in r]
        assert losses == list(range(1, steps + 1)), (phase, losses)
    assert killed_at >= 10

    # ... and it is the run that was never interrupted: same Z/U, rho, optimizer, schedule, data order
    straight = tmp_path / "straight"
    full = subprocess.run(command(tiny_bert_dir, glue_dir, straight, "--keep-checkpoints"), env=_env(),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert full.returncode == 0, full.stderr[-3000:]
    a, b = load_file(str(killed / "model.safetensors")), load_file(str(straight / "model.safetensors"))
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-5, k
    za = load_file(str(killed / "checkpoints" / "phase-0-admm" / "final" / "nxm_state.safetensors"))
    zb = load_file(str(straight / "checkpoints" / "phase-0-admm" / "final" / "nxm_state.safetensors"))
    assert za.keys() == zb.keys()
    for k in za:
        assert (za[k].float() - zb[k].float()).abs().max() <= 1e-5, k
    ua = [r for r in records(killed) if r.get("event") == "admm_update"]
    ub = [r for r in records(straight) if r.get("event") == "admm_update"]
    assert [r["rho"] for r in ua] == [r["rho"] for r in ub]
    assert [r["primal_residual"] for r in ua] == pytest.approx([r["primal_residual"] for r in ub], rel=1e-4)
