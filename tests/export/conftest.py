"""Fixtures for the export tests: run directories built on the spot (a tiny random BERT, or the
shipped MiniLM, whose encoder linears are made 2:4 with ``nm.project``) and one shared export."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import write_run_dir

TASK = "RTE"


@pytest.fixture(scope="session")
def make_run(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Callable[..., Path]:
    """``make_run(sparse=True, seed=0, **config)``: a tiny random BERT run directory."""
    from conftest import make_tiny_model

    def make(sparse: bool = True, seed: int = 0, **overrides: object) -> Path:
        out = tmp_path_factory.mktemp("run-sparse" if sparse else "run-dense")
        model = make_tiny_model("bert", seed=seed, **overrides)
        return write_run_dir(out, model, minilm_dir, sparse)

    return make


@pytest.fixture(scope="session")
def sparse_run(make_run: Callable[..., Path]) -> Path:
    return make_run(sparse=True)


@pytest.fixture(scope="session")
def dense_run(make_run: Callable[..., Path]) -> Path:
    return make_run(sparse=False, seed=1)


@pytest.fixture(scope="session")
def sparse_export(tmp_path_factory: pytest.TempPathFactory, sparse_run: Path, glue_dir: Path) -> Path:
    """One export of the tiny sparse run, shared by the read-only tests."""
    from nxm_deploy.export import ExportConfig, export

    out = tmp_path_factory.mktemp("exports") / "sparse"
    export(ExportConfig(run_dir=sparse_run, out=out, data_dir=glue_dir))
    return out


@pytest.fixture
def run_copy(tmp_path: Path, sparse_run: Path) -> Path:
    """A writable copy of the sparse run, for tests that damage it."""
    return Path(shutil.copytree(sparse_run, tmp_path / "run"))


QUERY0 = "bert.encoder.layer.0.attention.self.query"


def densified(export_dir: Path, out: Path, layers: Sequence[str] | None = None) -> dict[str, str]:
    """Copy the export's ``model.onnx`` to ``out`` with the weights of ``layers`` (default: every
    encoder weight) made dense; return layer -> ONNX tensor name (the exporter renames them)."""
    import onnx

    from nxm_deploy.check.onnx import check_onnx

    src = export_dir / "model.onnx"
    names = {r.layer: r.name for r in check_onnx(src).rows if layers is None or r.layer in layers}
    model = onnx.load(str(src))
    rng = np.random.default_rng(0)
    for t in model.graph.initializer:
        if t.name in names.values():
            dense = rng.standard_normal(tuple(t.dims)).astype(np.float32)
            t.CopyFrom(onnx.numpy_helper.from_array(dense, t.name))
    onnx.save(model, str(out))
    return names
