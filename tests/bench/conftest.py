"""Fixtures for the bench tests: two tiny random BERTs of the same shape (one dense, one with every
encoder linear projected to 2:4 along its input axis), saved as run directories with hand-written
``nxm.json`` files, and exported with the real export pipeline. Built once per session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

TASK = "RTE"
# Tiny shapes and few repeats: the tests check the report, never the timings.
FAST = {
    "batch_sizes": (1, 2),
    "seq_lens": (8, 16),
}


@dataclass(frozen=True)
class Pair:
    dense_run: Path
    sparse_run: Path
    dense_export: Path
    sparse_export: Path
    layers: tuple[str, ...]


def fast_plan():
    from nxm_deploy.bench import TimingPlan

    return TimingPlan(warmup=1, repeats=3, min_time_s=0.0, max_time_s=0.5)


@pytest.fixture(scope="session")
def bench_pair(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, glue_dir: Path) -> Pair:
    from conftest import make_tiny_model, write_run_dir

    from nxm_deploy.export import ExportConfig, export

    root = tmp_path_factory.mktemp("bench")
    dense_run = write_run_dir(root / "run-dense", make_tiny_model("bert", seed=0), minilm_dir, sparse=False,
                              max_seq_len=64, task=TASK)  # fmt: skip
    sparse_run = write_run_dir(root / "run-sparse", make_tiny_model("bert", seed=1), minilm_dir, sparse=True,
                               max_seq_len=64, method="oneshot", task=TASK)  # fmt: skip
    layers = json.loads((sparse_run / "nxm.json").read_text())["layers"]
    options = dict(data_dir=glue_dir, batches=(2,), seq_lens=(16,))
    dense_export = export(ExportConfig(run_dir=dense_run, out=root / "export-dense", **options)).out
    sparse_export = export(ExportConfig(run_dir=sparse_run, out=root / "export-sparse", **options)).out
    return Pair(dense_run, sparse_run, dense_export, sparse_export, tuple(layers))
