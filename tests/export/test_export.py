"""``export_run`` on tiny BERT run directories: the export directory, its manifest, the ONNX graph's
inputs/outputs and N:M, and the refusals (a run that breaks its pattern, unreadable weights, an
existing --out, a failure half-way)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file, save_file

from nxm_deploy.check.onnx import check_onnx
from nxm_deploy.errors import ExportError, SparsityError, UserError
from nxm_deploy.export import ExportConfig, export, pipeline
from nxm_deploy.outputs import record_owned

from .conftest import QUERY0, densified


def manifest_of(export_dir: Path) -> dict:
    return json.loads((export_dir / "export.json").read_text(encoding="utf-8"))


def test_export_dir_is_self_contained(sparse_export):
    names = {p.name for p in sparse_export.iterdir()}
    assert {"model.onnx", "export.json", "build_engine.sh", "tokenizer.json"} <= names
    assert not any(n.endswith(".data") for n in names)  # small model: weights inside model.onnx
    m = manifest_of(sparse_export)
    assert set(m["files"]) == names - {".nxm-files.json"}  # the list of what --overwrite may delete
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(sparse_export)
    enc = tok(["a short sentence"], return_tensors="np")
    assert set(enc) == {"input_ids", "attention_mask", "token_type_ids"}


def test_manifest_records_source_io_sparsity_parity_and_tensorrt(sparse_export, sparse_run):
    m = manifest_of(sparse_export)
    run = json.loads((sparse_run / "nxm.json").read_text(encoding="utf-8"))
    assert m["kind"] == "nxm-deploy/export" and m["tool_version"]
    src = m["source_run"]
    assert src["path"] == str(sparse_run.resolve())
    assert (src["task"], src["method"], src["pattern"]) == ("RTE", "admm", "2:4")
    assert src["layers"] == run["layers"]
    assert m["run_check"] == {"pattern": "2:4", "expect_sparse": True, "tensors": 12, "ok": True}
    assert m["onnx"]["opset"] == 18 and m["onnx"]["exporter"] == "torch.onnx.export(dynamo=True)"
    assert m["onnx"]["dynamic_axes"]["input_ids"] == {"0": "batch", "1": "sequence"}
    assert m["onnx"]["dynamic_axes"]["logits"] == {"0": "batch"}
    sp = m["sparsity"]
    assert sp["ok"] and sp["pattern"] == "2:4" and sp["sparse_layers"] == run["layers"]
    assert {t["layer"] for t in sp["tensors"]} == set(run["layers"])
    assert all(t["ok"] and t["expected_sparse"] and t["axis"] == 0 for t in sp["tensors"])
    par = m["parity"]
    assert par["ok"] and par["failures"] == []
    assert par["tolerance"]["logits"]["atol"] == 1e-4 and par["tolerance"]["logits"]["rtol"] == 1e-3
    assert (par["batch_sizes"], par["seq_lens"]) == ([1, 4, 16], [16, 64, 128])
    assert len(par["cases"]) == 9 and par["max_abs_diff"] < 1e-5
    assert par["inputs"]["source"].endswith("RTE/dev.tsv") and par["inputs"]["fallback_reason"] is None
    trt = m["tensorrt"]
    assert trt["built"] is False and trt["requested"] is False and "--engine onnx" in trt["reason"]
    assert trt["build_script"] == "build_engine.sh" and trt["profile"]["max"] == [32, 128]


def test_onnx_inputs_outputs_and_dynamic_axes(sparse_export):
    model = onnx.load(str(sparse_export / "model.onnx"))
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.input, *model.graph.output]
    }
    assert [v.name for v in model.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert model.graph.output[0].name == "logits"
    assert all(dims[n] == ["batch", "sequence"] for n in ("input_ids", "attention_mask", "token_type_ids"))
    assert dims["logits"] == ["batch", 2]
    # Shapes outside the parity grid run too: batch 3, sequence 7.
    sess = ort.InferenceSession(str(sparse_export / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {n: np.ones((3, 7), dtype=np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
    assert sess.run(None, feeds)[0].shape == (3, 2)


def test_onnx_check_maps_every_sparse_layer_back(sparse_export, sparse_run):
    layers = json.loads((sparse_run / "nxm.json").read_text(encoding="utf-8"))["layers"]
    report = check_onnx(sparse_export / "model.onnx")  # no reference weights: metadata only
    assert report.ok
    assert [r.layer for r in report.rows] == layers
    assert not any(r.name.endswith(".weight") for r in report.rows)  # the exporter renamed them


def test_dense_run_exports_dense(dense_run, tmp_path, glue_dir):
    m = export(ExportConfig(run_dir=dense_run, out=tmp_path / "dense", data_dir=glue_dir)).manifest.to_json()
    assert m["source_run"]["pattern"] is None and m["run_check"]["expect_sparse"] is False
    sp = m["sparsity"]
    assert sp["pattern"] is None and sp["sparse_layers"] == [] and sp["expect_sparse"] is False
    assert len(sp["tensors"]) == 12 and not any(t["expected_sparse"] for t in sp["tensors"])
    assert all(t["density"] > 0.9 for t in sp["tensors"])
    assert m["parity"]["ok"]


def test_run_that_breaks_its_claimed_pattern_is_refused(run_copy, tmp_path):
    weights = load_file(str(run_copy / "model.safetensors"))
    name = "bert.encoder.layer.1.output.dense.weight"
    weights[name] = torch.randn_like(weights[name])
    save_file(weights, str(run_copy / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "out"
    with pytest.raises(SparsityError) as err:
        export(ExportConfig(run_dir=run_copy, out=out))
    assert name in str(err.value) and "first at index [0, 0]" in str(err.value)
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_unreadable_weights_are_a_user_error(run_copy, tmp_path, damage):
    path = run_copy / "model.safetensors"
    data = path.read_bytes()
    damaged = data[: len(data) // 2] if damage == "truncate" else data[:8] + b"\xff{{garbage" + data[18:]
    path.write_bytes(damaged)
    with pytest.raises(UserError, match="not a readable safetensors file"):
        export(ExportConfig(run_dir=run_copy, out=tmp_path / "out"))


def test_not_a_run_dir_and_out_over_the_run_are_refused(sparse_run, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        export(ExportConfig(run_dir=tmp_path / "nope", out=tmp_path / "out"))
    with pytest.raises(UserError, match="not a run directory"):
        export(ExportConfig(run_dir=tmp_path, out=tmp_path / "out"))
    with pytest.raises(UserError, match="would replace the run directory"):
        export(ExportConfig(run_dir=sparse_run, out=sparse_run.parent, overwrite=True))


def test_existing_out_is_refused_and_left_intact(sparse_run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    with pytest.raises(UserError, match="already exists; pass overwrite to replace it"):
        export(ExportConfig(run_dir=sparse_run, out=out))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(UserError, match=r"holds files nxm-deploy did not write \(keep.txt\)"):
        export(ExportConfig(run_dir=sparse_run, out=out, overwrite=True))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_failure_half_way_leaves_nothing_behind(sparse_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    record_owned(out)  # an earlier output of the tool, which --overwrite may replace

    def broken_export(model, path, *args, **kwargs):
        path.write_bytes(b"half an onnx file")
        raise ExportError("exporter exploded")

    monkeypatch.setattr(pipeline, "export_onnx", broken_export)
    with pytest.raises(ExportError, match="exporter exploded"):
        export(ExportConfig(run_dir=sparse_run, out=out, overwrite=True))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no .partial sibling
    assert sorted(p.name for p in out.iterdir()) == [".nxm-files.json", "keep.txt"]


def test_exported_weights_made_dense_fail_the_layer_check(sparse_export, sparse_run, tmp_path):
    from nxm_deploy.check.onnx import require_sparse_layers

    bad = tmp_path / "dense.onnx"
    name = densified(sparse_export, bad, [QUERY0])[QUERY0]
    layers = json.loads((sparse_run / "nxm.json").read_text(encoding="utf-8"))["layers"]
    with pytest.raises(ExportError) as err:
        require_sparse_layers(bad, layers, "2:4", {})
    msg = str(err.value)
    assert "1 layer(s) sparse in PyTorch are not 2:4" in msg
    assert f"{QUERY0}: ONNX tensor {name} [32, 32] breaks 2:4 along axis 0" in msg


def test_options_are_validated():
    with pytest.raises(ExportError, match="unknown engine"):
        ExportConfig(run_dir="r", out="o", engine="tflite")
    with pytest.raises(ExportError, match="unknown precision"):
        ExportConfig(run_dir="r", out="o", precision="int8")


def test_default_profile_is_capped_by_the_position_limit():
    p = pipeline.default_profile(128)
    assert (p.min, p.opt, p.max) == ((1, 8), (8, 128), (32, 128))
    assert pipeline.default_profile(512).max == (32, 512)
