"""Faults a user meets: a full disk, a read-only place, an export killed half-way. Each gives one line
(or, when killed, nothing at ``--out``), and the next run cleans up what the killed one left.

The full disk and the read-only place are real file systems: small tmpfs mounts (this needs root
and ``mount``; elsewhere the tests skip and say so). Killed training is in tests/admm/test_resume.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_tiny_model, write_run_dir

from nxm_deploy.cli import main


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("faults") / "sparse"
    return write_run_dir(out, make_tiny_model("bert", seed=5), minilm_dir, sparse=True, max_seq_len=64)


def _mount(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system: a tiny model's 4 MB ONNX file does not fit."""
    yield from _mount(tmp_path / "small", "size=1m")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "ro", "ro,size=1m")


def _one_error(capsys: pytest.CaptureFixture[str], args: list[str], code: int = 1) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_full_disk_export_is_one_line_and_leaves_nothing(
    run: Path, small_disk: Path, glue_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_error(
        capsys, ["export", str(run), "--out", str(small_disk / "exp"), "--data-dir", str(glue_dir)]
    )
    assert line == (
        f"error: cannot write {small_disk / 'exp'}: No space left on device; nothing was written "
        "(free space or fix permissions)"
    )
    assert list(small_disk.iterdir()) == []  # no half-written export, no hidden .partial


def test_full_disk_train_says_where_the_run_is_staged(
    tiny_bert_dir: Path, small_disk: Path, glue_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_disk / "run"
    line = _one_error(
        capsys,
        [
            "train",
            "--model",
            str(tiny_bert_dir),
            "--task",
            "rte",
            "--data-dir",
            str(glue_dir),
            "--method",
            "dense",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--max-train-samples",
            "16",
            "--max-eval-samples",
            "8",
            "--batch-size",
            "8",
            "--max-seq-len",
            "32",
            "--no-progress",
        ],
    )
    assert f"cannot write {small_disk / '.run.staging'}: No space left on device" in line
    assert "continue with --resume" in line
    assert not out.exists()  # a run appears at --out only when complete


def test_read_only_place_is_refused_before_any_work(
    run: Path, read_only: Path, glue_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_error(capsys, ["export", str(run), "--out", str(read_only / "exp")])
    assert line == f"error: --out {read_only / 'exp'}: {read_only} is not writable; choose another place"
    line = _one_error(
        capsys,
        [
            "bench",
            "--dense",
            str(run),
            "--sparse",
            str(run),
            "--task",
            "rte",
            "--out",
            str(read_only / "report"),
        ],
    )
    assert "is not writable" in line


@pytest.mark.slow
@pytest.mark.parametrize("point", ["onnx-written"])  # staging made, the ONNX half-way through its checks
def test_killed_export_leaves_no_output_and_the_next_run_cleans_up(
    point: str, run: Path, tmp_path: Path, glue_dir: Path
) -> None:
    out = tmp_path / "exp"
    cmd = [
        sys.executable,
        "-m",
        "nxm_deploy",
        "export",
        str(run),
        "--out",
        str(out),
        "--data-dir",
        str(glue_dir),
    ]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300

    def reached() -> bool:
        partial = list(tmp_path.glob(".exp.*.partial"))
        return bool(partial) and (point == "staging-created" or (partial[0] / "model.onnx").is_file())

    while time.time() < deadline and proc.poll() is None and not reached():
        time.sleep(0.01)
    assert proc.poll() is None, (
        "the export ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert len(list(tmp_path.glob(".exp.*.partial"))) == 1  # what a killed export leaves

    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # the orphan is gone
    assert ".partial" not in again.stdout + again.stderr  # no message names a temporary path
