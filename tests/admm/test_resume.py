"""Resume: a run killed with SIGKILL at any point continues from its newest complete checkpoint with
the same Z, U, rho, optimizer, schedule and data order, and leaves the log and the weights that an
uninterrupted run leaves (no duplicate ``phase_start`` or summary record, no extra optimizer step).

A run is built in ``PARENT/.NAME.staging`` and appears at ``--out`` only when complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nxm_deploy.admm.checkpoints import is_complete, staging_dir

pytestmark = pytest.mark.slow


def command(model: Path, glue: Path, out: Path, *extra: str) -> list[str]:
    # 64 rows / batch 8 = 8 steps per epoch; ADMM for 5 of 6 epochs = 40 steps, Z/U every step
    return [sys.executable, "-m", "nxm_deploy", "train", "--model", str(model), "--task", "rte",
            "--data-dir", str(glue), "--method", "admm", "--out", str(out), "--epochs", "6",
            "--admm-epochs", "5", "--max-train-samples", "64", "--max-eval-samples", "200",
            "--batch-size", "8", "--max-seq-len", "32", "--lr", "1e-3", "--admm-interval", "1",
            "--rho", "0.01", "--save-steps", "3", "--logging-steps", "1", "--no-progress",
            *extra]  # fmt: skip


def records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    out = []
    for x in lines:
        try:
            out.append(json.loads(x))
        except json.JSONDecodeError:
            pass  # a line cut short while we read
    return out


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _mid_admm(stage: Path) -> bool:
    phase0 = stage / "checkpoints" / "phase-0-admm"
    done = [p for p in phase0.glob("checkpoint-*") if is_complete(p)] if phase0.exists() else []
    return any(int(p.name.split("-")[1]) >= 10 for p in done)


def _masked_started(stage: Path) -> bool:
    log = records(stage / "train_log.jsonl")
    return any(r.get("event") == "phase_start" and r["phase"] == 1 for r in log)


def _masked_evaluating(stage: Path) -> bool:
    return any(r["phase"] == 1 and "train_runtime" in r for r in records(stage / "train_log.jsonl"))


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    "mid-admm": _mid_admm,  # after a checkpoint >= 10 of 40 ADMM steps
    "masked-phase-start": _masked_started,  # just after the second phase wrote phase_start
    "masked-evaluation": _masked_evaluating,  # after the phase's Trainer summary, during evaluation
}


def _shape(log: list[dict]) -> list[tuple]:
    """The log without its timings: which record, at which step, with which fields."""
    timing = ("time", "runtime", "per_second")
    return [(r["phase"], r["step"], sorted(k for k in r if not any(t in k for t in timing))) for r in log]


@pytest.fixture(scope="module")
def straight(tiny_bert_dir: Path, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "straight"
    full = subprocess.run(command(tiny_bert_dir, glue_dir, out, "--keep-checkpoints"), env=_env(),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert full.returncode == 0, full.stderr[-3000:]
    return out


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_equals_uninterrupted(point: str, straight: Path, tiny_bert_dir: Path,
                                                  glue_dir: Path, tmp_path: Path) -> None:  # fmt: skip
    killed = tmp_path / "killed"
    stage = staging_dir(killed)
    proc = subprocess.Popen(command(tiny_bert_dir, glue_dir, killed), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 300
    reached = KILL_POINTS[point]
    while time.time() < deadline and proc.poll() is None and not reached(stage):
        time.sleep(0.005)
    if proc.poll() is not None:
        if proc.returncode == 0 and point != "mid-admm":
            pytest.skip(f"the run finished before the kill point {point} could be hit")
        err = proc.stderr.read().decode()[-2000:]
        raise AssertionError(f"the run ended before it could be killed: {err}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists(), "a killed run must not appear at --out"
    if point == "mid-admm":
        assert all(r["phase"] == 0 for r in records(stage / "train_log.jsonl")), "killed after the ADMM phase"

    resumed = subprocess.run(command(tiny_bert_dir, glue_dir, killed, "--resume", "--keep-checkpoints"),
                             env=_env(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not stage.exists(), "the staged run is moved to --out when complete"

    # the final model holds the pattern
    check = subprocess.run([sys.executable, "-m", "nxm_deploy", "check", str(killed)], capture_output=True,
                           text=True, env=_env())  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    # the log has no gap and no duplicate: one ADMM update per step 1..40, one loss record per step,
    # one phase_start, one phase_end and one Trainer summary per phase
    log = records(killed / "train_log.jsonl")
    updates = [r["step"] for r in log if r.get("event") == "admm_update"]
    assert updates == list(range(1, 41)), updates
    for phase, steps in ((0, 40), (1, 8)):
        losses = [r["step"] for r in log if r["phase"] == phase and "loss" in r]
        assert losses == list(range(1, steps + 1)), (phase, losses)
    events = Counter((r["phase"], r.get("event") or ("summary" if "train_runtime" in r else "")) for r in log)
    for phase in (0, 1):
        for event in ("phase_start", "phase_end", "summary"):
            assert events[(phase, event)] == 1, (point, phase, event, events)
    assert _shape(log) == _shape(records(straight / "train_log.jsonl"))

    # ... and it is the run that was never interrupted: same Z/U, rho, optimizer, schedule, data order
    a, b = load_file(str(killed / "model.safetensors")), load_file(str(straight / "model.safetensors"))
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-5, k
    za = load_file(str(killed / "checkpoints" / "phase-0-admm" / "final" / "nxm_state.safetensors"))
    zb = load_file(str(straight / "checkpoints" / "phase-0-admm" / "final" / "nxm_state.safetensors"))
    assert za.keys() == zb.keys()
    for k in za:
        assert (za[k].float() - zb[k].float()).abs().max() <= 1e-5, k
    ua = [r for r in log if r.get("event") == "admm_update"]
    ub = [r for r in records(straight / "train_log.jsonl") if r.get("event") == "admm_update"]
    assert [r["rho"] for r in ua] == [r["rho"] for r in ub]
    assert [r["primal_residual"] for r in ua] == pytest.approx([r["primal_residual"] for r in ub], rel=1e-4)
