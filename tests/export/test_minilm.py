"""The shipped MiniLM (6 blocks, hidden 384: 36 encoder linears) made 2:4 by ``nm.project``,
exported end to end: every encoder weight 2:4 in the ONNX graph, mapped back, and in parity."""

from __future__ import annotations

import time

from nxm_deploy.export import ExportConfig, export
from nxm_deploy.models import load_model

from .conftest import write_run_dir


def test_minilm_export(minilm_dir, tmp_path, glue_dir):
    import torch

    torch.manual_seed(0)  # the classifier head is new
    model, _ = load_model(minilm_dir, num_labels=2)
    run = write_run_dir(tmp_path / "run", model, minilm_dir, sparse=True)

    start = time.perf_counter()
    result = export(ExportConfig(run_dir=run, out=tmp_path / "export", data_dir=glue_dir))
    seconds = time.perf_counter() - start

    m = result.manifest.to_json()
    layers = m["source_run"]["layers"]
    assert len(layers) == 36
    rows = m["sparsity"]["tensors"]
    assert [r["layer"] for r in rows] == layers
    assert all(r["ok"] and r["axis"] == 0 and r["density"] == 0.5 for r in rows)
    assert {tuple(r["shape"]) for r in rows} == {(384, 384), (384, 1536), (1536, 384)}
    par = m["parity"]
    assert par["ok"] and len(par["cases"]) == 9 and par["max_abs_diff"] < 1e-4
    print(f"MiniLM export: {seconds:.1f} s, parity max abs diff {par['max_abs_diff']:.2e}")
