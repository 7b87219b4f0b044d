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


def _save_run(out: Path, model, tokenizer, method: str, layers: list[str]) -> Path:
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    manifest = {
        "kind": "nxm-deploy/run",
        "base_model": "tiny-random-bert",
        "task": TASK,
        "method": method,
        "pattern": "2:4" if layers else None,
        "layers": layers,
        "num_labels": 2,
        "max_seq_len": 64,
        "metrics": {"accuracy": 0.5},
    }
    (out / "nxm.json").write_text(json.dumps(manifest, indent=2))
    return out


@pytest.fixture(scope="session")
def bench_pair(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, glue_dir: Path) -> Pair:
    import torch
    from conftest import make_tiny_model
    from transformers import AutoTokenizer

    from nxm_deploy import nm
    from nxm_deploy.export.pipeline import ExportOptions, export_run
    from nxm_deploy.models import linear_layers, select_layers

    root = tmp_path_factory.mktemp("bench")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    dense = make_tiny_model("bert", seed=0)
    sparse = make_tiny_model("bert", seed=1)
    layers = select_layers(sparse, "2:4")
    linears = linear_layers(sparse)
    with torch.no_grad():
        for name in layers:
            linears[name].weight.copy_(nm.project(linears[name].weight, "2:4", axis=1))
    dense_run = _save_run(root / "run-dense", dense, tokenizer, "dense", [])
    sparse_run = _save_run(root / "run-sparse", sparse, tokenizer, "oneshot", layers)
    options = ExportOptions(data_dir=glue_dir, batches=(2,), seq_lens=(16,))
    dense_export = export_run(dense_run, root / "export-dense", options).out
    sparse_export = export_run(sparse_run, root / "export-sparse", options).out
    return Pair(dense_run, sparse_run, dense_export, sparse_export, tuple(layers))
