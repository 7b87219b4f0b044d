"""The other backends: PyTorch (on this machine's CPU, dense math, said so) and TensorRT (runs only
where TensorRT and an NVIDIA GPU are present; elsewhere it must fail with one line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nxm_deploy.bench import BenchConfig, bench
from nxm_deploy.cli import cli
from nxm_deploy.runtime.availability import trt_unavailable_reason
from nxm_deploy.runtime.torch_session import TORCH_CPU_NOTE

from .conftest import FAST, TASK, Pair, fast_plan

TRT_MISSING = trt_unavailable_reason()


def _bench(dense: Path, sparse: Path, out: Path, glue_dir: Path, backend: str) -> dict:
    cfg = BenchConfig(
        dense=dense,
        sparse=sparse,
        task=TASK,
        out=out,
        data_dir=glue_dir,
        backend=backend,
        plan=fast_plan(),
        **FAST,
    )
    return bench(cfg).report


@pytest.fixture(scope="module")
def ort_accuracy(bench_pair: Pair, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ort") / "r"
    return _bench(bench_pair.dense_export, bench_pair.sparse_export, out, glue_dir, "ort")["accuracy"]


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the CPU wording; the GPU path is in gpu tests"
)
def test_torch_backend_on_run_dirs(bench_pair: Pair, glue_dir: Path, tmp_path: Path, ort_accuracy: dict):
    report = _bench(bench_pair.dense_run, bench_pair.sparse_run, tmp_path / "r", glue_dir, "torch")
    assert report["backend"]["runtime"] == "torch" and report["backend"]["device"] == "cpu"
    assert report["backend"]["sparse_kernels"] is False
    assert TORCH_CPU_NOTE in report["notes"]
    assert report["models"]["sparse"]["kind"] == "run"
    assert report["models"]["sparse"]["run_metrics"] == {"accuracy": 0.5}
    # the same weights in fp32 on two runtimes: the same predictions on every dev row
    for role in ("dense", "sparse"):
        assert report["accuracy"][role]["metrics"] == ort_accuracy[role]["metrics"]
    assert report["sparsity"]["summary"]["holding_pattern"] == len(bench_pair.layers)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CPU wording")
def test_torch_backend_follows_exports_to_their_runs(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    report = _bench(bench_pair.dense_export, bench_pair.sparse_export, tmp_path / "r", glue_dir, "torch")
    assert report["models"]["dense"]["kind"] == "export"
    assert report["models"]["dense"]["run_dir"] == str(bench_pair.dense_run)
    assert report["backend"]["runtime"] == "torch"
    assert report["sparsity"]["source"] == str(bench_pair.sparse_run)  # the weights PyTorch runs


@pytest.mark.skipif(TRT_MISSING is None, reason="TensorRT and a GPU are present here")
def test_trt_backend_without_tensorrt_is_one_line(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    args = ["bench", "--dense", str(bench_pair.dense_export), "--sparse", str(bench_pair.sparse_export)]
    args += ["--task", TASK, "--data-dir", str(glue_dir), "--out", str(tmp_path / "r"), "--backend", "trt"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --backend trt cannot run here:")
    assert not (tmp_path / "r").exists()


@pytest.mark.trt
@pytest.mark.skipif(
    TRT_MISSING is not None, reason=f"TensorRT backend needs TensorRT and a GPU: {TRT_MISSING}"
)
def test_trt_backend_on_engines(bench_pair: Pair, glue_dir: Path, tmp_path: Path, ort_accuracy: dict):
    from nxm_deploy.export import ExportConfig, export
    from nxm_deploy.export.trt import ShapeProfile

    options = dict(engine="trt", data_dir=glue_dir, profile=ShapeProfile((1, 8), (2, 16), (32, 64)))
    dense = export(ExportConfig(run_dir=bench_pair.dense_run, out=tmp_path / "dense", **options)).out
    sparse = export(ExportConfig(run_dir=bench_pair.sparse_run, out=tmp_path / "sparse", **options)).out
    report = _bench(dense, sparse, tmp_path / "r", glue_dir, "trt")
    assert report["backend"]["runtime"] == "tensorrt"
    assert {(s["batch"], s["seq_len"]) for s in report["latency"]["shapes"]} == {
        (b, s) for b in FAST["batch_sizes"] for s in FAST["seq_lens"]
    }
    for role in ("dense", "sparse"):  # fp32 engines agree with ONNX Runtime on the dev predictions
        assert report["accuracy"][role]["main"] == pytest.approx(ort_accuracy[role]["main"], abs=0.01)


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs an NVIDIA GPU")
def test_torch_backend_on_cuda_uses_semi_structured_weights(
    bench_pair: Pair, glue_dir: Path, tmp_path: Path, ort_accuracy: dict
):
    report = _bench(bench_pair.dense_run, bench_pair.sparse_run, tmp_path / "r", glue_dir, "torch")
    backend = report["backend"]
    assert backend["device"] != "cpu" and backend["precision"] == "fp16"
    sparse = backend["per_model"]["sparse"]
    # every selected layer is either a semi-structured tensor or listed with the reason it is not
    assert set(sparse["semi_structured_layers"]) | set(sparse["kept_dense"]) == set(bench_pair.layers)
    assert backend["sparse_kernels"] == bool(sparse["semi_structured_layers"])
    if not backend["sparse_kernels"]:
        assert "expect a ratio near 1.0" in " ".join(report["notes"])
    for role in ("dense", "sparse"):  # fp16 on the GPU against fp32 ONNX Runtime: a row or two may flip
        assert report["accuracy"][role]["main"] == pytest.approx(ort_accuracy[role]["main"], abs=0.02)


def test_bench_gives_dense_and_sparse_their_own_engine_cache(bench_pair, tmp_path):
    """`bench --ort-provider tensorrt`: the dense and the 2:4 export (one architecture, other weights)
    get two TensorRT engine-cache folders; the same model passed twice is refused, never timed
    against itself."""
    import shutil

    from nxm_deploy.bench import sources
    from nxm_deploy.bench.run import engine_caches
    from nxm_deploy.errors import UserError

    models = {
        "dense": sources.resolve_source(bench_pair.dense_export, "dense", "ort"),
        "sparse": sources.resolve_source(bench_pair.sparse_export, "sparse", "ort"),
    }
    caches = engine_caches(models)
    assert caches["dense"] != caches["sparse"] and caches["dense"].parent == caches["sparse"].parent
    twin = tmp_path / "twin"
    shutil.copytree(bench_pair.sparse_export, twin)
    models["dense"] = sources.resolve_source(twin, "dense", "ort")
    with pytest.raises(UserError, match=r"^dense and sparse hold the same model.onnx \(byte for byte"):
        engine_caches(models)
