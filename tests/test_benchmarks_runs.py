"""benchmarks/common/runs.py's runner of ``nxm-deploy train`` on a tiny model: a new run starts with
``--overwrite``, a killed one resumes (the library's ``resumable``), a complete one is not trained
again, and a failure exits with the log's tail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from common import runs

from nxm_deploy.admm import resumable
from nxm_deploy.admm.staging import checkpoints_root, staging_dir

pytestmark = pytest.mark.slow


def _args(model: Path, glue: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--task", "rte", "--data-dir", str(glue), "--method", "asp",
            "--epochs", "4", "--max-train-samples", "64", "--max-eval-samples", "32", "--batch-size", "8",
            "--max-seq-len", "32", "--save-steps", "2", *extra]  # fmt: skip


def _commands(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("$ ")]


def test_a_killed_run_resumes_and_a_complete_one_is_kept(tiny_bert_dir: Path, glue_dir: Path,
                                                           tmp_path: Path) -> None:  # fmt: skip
    out, log = tmp_path / "run", tmp_path / "logs" / "run.log"
    args = _args(tiny_bert_dir, glue_dir)
    cmd = [sys.executable, "-m", "nxm_deploy", "train", *args, "--out", str(out), "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = checkpoints_root(staging_dir(out))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not any(ckpts.glob("*/checkpoint-*/COMPLETE")):
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert resumable(out) and not (out / "nxm.json").exists()

    assert runs.train(out, args, log, "the tiny run") == out
    assert (out / "nxm.json").is_file() and not resumable(out)
    assert _commands(log)[-1].endswith("--no-progress --resume")

    runs.train(out, args, log, "the tiny run")  # complete: kept, nothing runs
    assert len(_commands(log)) == 1


def test_a_new_run_overwrites_and_a_failure_exits_with_the_log_tail(tiny_bert_dir: Path, glue_dir: Path,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    log = tmp_path / "logs" / "bad.log"
    with pytest.raises(SystemExit) as exc:
        runs.train(tmp_path / "bad", _args(tiny_bert_dir, glue_dir, "--lr", "0"), log, "the bad run")
    assert _commands(log)[-1].endswith("--no-progress --overwrite")
    message = str(exc.value)
    assert message.startswith(f"the bad run failed; log {log}:") and "lr" in message
