"""Triton model repositories, parsed with Triton's own schema (``tritonclient``'s ``model_config_pb2``),
and the client-side request contract, run through ONNX Runtime on the repository's own model file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nxm_deploy.runtime import ExportDirError
from nxm_deploy.runtime.triton import (
    TritonOptions,
    TritonRequests,
    model_name_for,
    sequence_buckets,
    write_triton_repo,
)

from .conftest import MAX_SEQ_LEN
from .test_predictor import LONG, PAIRS

pb = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2",
    reason="Triton's ModelConfig schema comes with tritonclient: pip install 'tritonclient[grpc]'",
)


def parse_config(model_dir: Path):
    from google.protobuf import text_format

    return text_format.Parse((model_dir / "config.pbtxt").read_text(), pb.ModelConfig())


def test_onnx_repository(tmp_path, rte_export):
    model = write_triton_repo(rte_export, tmp_path / "repo", TritonOptions(name="rte", max_batch_size=16))
    assert model.path == tmp_path / "repo" / "rte" and model.platform == "onnxruntime_onnx"
    config = parse_config(model.path)
    assert config.name == "rte"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16
    assert config.default_model_filename == "model.onnx"
    assert [i.name for i in config.input] == ["input_ids", "attention_mask", "token_type_ids"]
    for tensor in config.input:
        assert tensor.data_type == pb.TYPE_INT64
        assert list(tensor.dims) == [-1]  # the sequence; the batch dimension is implicit
    [logits] = config.output
    assert (logits.name, logits.data_type, list(logits.dims)) == ("logits", pb.TYPE_FP32, [2])
    assert logits.label_filename == "labels.txt"
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert list(config.instance_group) == []  # Triton's default placement for ONNX Runtime

    assert (model.path / "1" / "model.onnx").read_bytes() == (rte_export / "model.onnx").read_bytes()
    assert (model.path / "labels.txt").read_text().splitlines() == ["entailment", "not_entailment"]
    assert (model.path / "tokenizer.json").is_file()
    serving = json.loads((model.path / "nxm_serving.json").read_text())
    assert serving["sequence_buckets"] == [16, 32, 64] == list(model.buckets)
    assert serving["padding"] == {
        "side": "right",
        "values": {"input_ids": 0, "attention_mask": 0, "token_type_ids": 0},
    }
    assert serving["facts"]["task"] == "RTE" and serving["max_batch_size"] == 16
    assert "16, 32, 64" in (model.path / "config.pbtxt").read_text()  # the contract, in its comments


def test_regression_repository(tmp_path, stsb_export):
    model = write_triton_repo(stsb_export, tmp_path / "repo")
    assert model.name == model_name_for(stsb_export) == "stsb"
    [logits] = parse_config(model.path).output
    assert list(logits.dims) == [1] and logits.label_filename == ""
    assert not (model.path / "labels.txt").exists()


def test_tensorrt_plan_repository(tmp_path, rte_export):
    """An export whose manifest records a built engine (the bytes stand in for one: only copied)."""
    export = Path(shutil.copytree(rte_export, tmp_path / "with-engine"))
    (export / "model.engine").write_bytes(b"plan bytes")
    manifest = json.loads((export / "export.json").read_text())
    manifest["tensorrt"].update(
        built=True,
        engine="model.engine",
        tensorrt_version="10.13.0.35",
        gpu="NVIDIA A100-SXM4-40GB (sm_80)",
        profile={"inputs": ["input_ids"], "min": [1, 8], "opt": [8, 32], "max": [8, 48]},
        sparse_layers=["a", "b"],
        eligible_layers=["a", "b", "c"],
    )
    (export / "export.json").write_text(json.dumps(manifest))
    model = write_triton_repo(export, tmp_path / "repo", TritonOptions(name="rte_trt", max_batch_size=32))
    config = parse_config(model.path)
    assert config.platform == "tensorrt_plan" and config.default_model_filename == "model.plan"
    assert config.max_batch_size == 8  # the engine's profile allows no more
    assert [(g.kind, g.count) for g in config.instance_group] == [(pb.ModelInstanceGroup.KIND_GPU, 1)]
    assert (model.path / "1" / "model.plan").read_bytes() == b"plan bytes"
    info = json.loads((model.path / "1" / "PLAN_INFO.json").read_text())
    assert info["tensorrt_version"] == "10.13.0.35" and info["gpu"].startswith("NVIDIA A100")
    assert info["sparse_layers"] == 2 and "TensorRT version" in info["note"]
    assert model.buckets == (16, 32, 48)  # capped by the profile's largest sequence


def test_existing_model_is_refused(tmp_path, rte_export):
    write_triton_repo(rte_export, tmp_path / "repo", TritonOptions(name="m"))
    with pytest.raises(ExportDirError, match="already exists; pass overwrite to replace it"):
        write_triton_repo(rte_export, tmp_path / "repo", TritonOptions(name="m"))
    write_triton_repo(rte_export, tmp_path / "repo", TritonOptions(name="m", overwrite=True))
    with pytest.raises(ExportDirError, match="has no TensorRT engine"):
        write_triton_repo(rte_export, tmp_path / "repo", TritonOptions(name="t", platform="tensorrt_plan"))
    with pytest.raises(ExportDirError, match="invalid Triton model name"):
        TritonOptions(name="a/b")


def test_sequence_buckets():
    assert sequence_buckets(128) == (16, 32, 64, 128)
    assert sequence_buckets(100) == (16, 32, 64, 100)
    assert sequence_buckets(8) == (8,)
    assert sequence_buckets(512, min_seq=20) == (20, 40, 80, 160, 320, 512)


def test_client_requests_follow_the_contract(tmp_path, rte_export, rte_predictor):
    """Bucketed requests, run through ONNX Runtime on 1/model.onnx (what Triton's onnxruntime backend
    loads), give the Predictor's answers."""
    import onnxruntime as ort

    model = write_triton_repo(rte_export, tmp_path / "repo", TritonOptions(name="rte", max_batch_size=2))
    requests = TritonRequests.from_model_dir(model.path)
    inputs = [*PAIRS, LONG, ("one two three " * 6, "four")]
    plan = requests.encode(inputs)
    assert sorted(int(i) for b in plan.batches for i in b.rows) == list(range(len(inputs)))
    for batch in plan.batches:
        rows, seq = batch.shape
        assert rows <= 2 and seq in model.buckets
        assert all(a.dtype == np.int64 and a.shape == (rows, seq) for a in batch.feed.values())
    assert {b.shape[1] for b in plan.batches} == {16, 32, MAX_SEQ_LEN}
    session = ort.InferenceSession(str(model.model_file), providers=["CPUExecutionProvider"])
    outputs = [session.run(["logits"], batch.feed)[0] for batch in plan.batches]
    got = requests.decode(plan, outputs)
    want = rte_predictor.predict(inputs)
    for g, w in zip(got, want, strict=True):
        assert (g.label, g.truncated) == (w.label, w.truncated)
        assert g.scores == pytest.approx(w.scores, abs=1e-5)
