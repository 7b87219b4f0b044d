"""ONNX Runtime's execution providers: `--ort-provider`, `Predictor.from_export(ort_provider=...)` and
the Triton writer's instance group; one line when the provider asked for is missing here."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

from nxm_deploy.cli import cli
from nxm_deploy.errors import BackendUnavailableError, ExportDirError
from nxm_deploy.runtime import Predictor
from nxm_deploy.runtime.ort_providers import ort_packages, ort_providers
from nxm_deploy.runtime.triton import TritonOptions, write_triton_repo

from .test_triton import parse_config, pb

HAS_CUDA_EP = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
cpu_only = pytest.mark.skipif(HAS_CUDA_EP, reason="checks the refusal where onnxruntime has no CUDA provider")


def test_cpu_provider_and_the_tensorrt_options() -> None:
    assert ort_providers("cpu") == ["CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = ort_providers("tensorrt", available=gpu, packages=["onnxruntime-gpu"], inputs=["ids", "mask"])
    name, options = trt[0]
    assert name == "TensorrtExecutionProvider" and trt[1:] == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert options["trt_sparsity_enable"] is True and options["trt_fp16_enable"] is True
    assert options["trt_profile_min_shapes"] == "ids:1x1,mask:1x1"
    assert options["trt_profile_max_shapes"] == "ids:64x512,mask:64x512"
    assert options["trt_engine_cache_enable"] is False  # no model given: nothing to key a cache by
    assert ort_providers("cuda", available=gpu, packages=["onnxruntime-gpu"]) == gpu[1:]


def test_both_packages_installed_is_refused_in_one_line() -> None:
    assert ort_packages()  # this environment has one of them
    with pytest.raises(BackendUnavailableError) as info:
        ort_providers(
            "cuda", available=["CUDAExecutionProvider"], packages=["onnxruntime", "onnxruntime-gpu"]
        )
    message = str(info.value)
    assert "\n" not in message and message.startswith("both onnxruntime and onnxruntime-gpu are installed")
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in message


@cpu_only
def test_missing_gpu_provider_is_one_line() -> None:
    with pytest.raises(BackendUnavailableError) as info:
        ort_providers("tensorrt")
    message = str(info.value)
    assert "\n" not in message and message.startswith("ort_provider tensorrt: this ONNX Runtime offers")
    assert "not TensorrtExecutionProvider" in message and "onnxruntime-gpu" in message


@cpu_only
def test_predictor_on_a_missing_provider(rte_export: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"^ort_provider cuda: this ONNX Runtime offers"):
        Predictor.from_export(rte_export, ort_provider="cuda")
    assert Predictor.from_export(rte_export, ort_provider="cpu").session.info()["provider"] == (
        "CPUExecutionProvider"
    )


@cpu_only
def test_bench_refuses_a_missing_provider_before_any_work(tmp_path: Path) -> None:
    args = ["bench", "--dense", str(tmp_path / "d"), "--sparse", str(tmp_path / "s"), "--task", "rte",
            "--out", str(tmp_path / "r"), "--ort-provider", "cuda"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: --ort-provider cuda: this ONNX Runtime offers")
    wrong = CliRunner().invoke(cli, [*args[:-1], "tensorrt", "--backend", "torch"])
    assert wrong.exit_code == 1
    assert wrong.output.strip() == "error: --ort-provider tensorrt applies to --backend ort, not torch"


@pytest.mark.parametrize(
    ("provider", "kind"), [("cpu", "KIND_CPU"), ("cuda", "KIND_GPU"), ("tensorrt", "KIND_GPU")]
)
def test_triton_instance_group_follows_the_provider(rte_export: Path, tmp_path: Path, provider: str,
                                                    kind: str) -> None:  # fmt: skip
    elsewhere = provider != "cpu" and not torch.cuda.is_available()  # a repository for a GPU machine
    with pytest.warns(UserWarning, match="KIND_GPU") if elsewhere else contextlib.nullcontext():
        model = write_triton_repo(
            rte_export, tmp_path / "repo", TritonOptions(name="rte", ort_provider=provider)
        )
    config = parse_config(model.path)
    assert config.platform == "onnxruntime_onnx"
    assert [(g.kind, g.count) for g in config.instance_group] == [(getattr(pb.ModelInstanceGroup, kind), 1)]
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == (["tensorrt"] if provider == "tensorrt" else [])


def test_triton_refuses_a_provider_for_a_tensorrt_plan() -> None:
    with pytest.raises(ExportDirError, match=r"serves model\.onnx, not a TensorRT plan"):
        TritonOptions(platform="tensorrt_plan", ort_provider="cuda")


# ---- the TensorRT provider's engine cache: one folder per model and options ---------------------


def test_engine_cache_is_keyed_by_the_weights_not_the_names(tmp_path: Path) -> None:
    """ONNX Runtime names a cached engine after the graph's names only: two exports of one
    architecture with different weights must never share a cache folder."""
    import onnx
    from onnx import helper, numpy_helper

    from nxm_deploy.runtime.ort_providers import tensorrt_options, trt_cache_dir

    def model(path: Path, value: float) -> Path:
        w = numpy_helper.from_array(np.full((4, 4), value, dtype=np.float32), "w")
        io = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in ("x", "y")]
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", io[:1], io[1:], [w])
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(helper.make_model(graph), str(path))
        return path

    dense, sparse = model(tmp_path / "d" / "model.onnx", 1.0), model(tmp_path / "s" / "model.onnx", 2.0)
    options = tensorrt_options(["x"])
    assert trt_cache_dir(dense, options) != trt_cache_dir(sparse, options)
    copy = model(tmp_path / "c" / "model.onnx", 1.0)  # the same bytes elsewhere: the same engine
    assert trt_cache_dir(copy, options) == trt_cache_dir(dense, options)
    other = {**options, "trt_fp16_enable": False}  # another precision builds another engine
    assert trt_cache_dir(dense, other) != trt_cache_dir(dense, options)
    model(dense, 3.0)  # retrained in place: its old engine is not reused
    assert trt_cache_dir(dense, options) != trt_cache_dir(copy, options)
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    [(_, opts), *_] = ort_providers("tensorrt", available=gpu, packages=["onnxruntime-gpu"], inputs=["x"],
                                    model=sparse)  # fmt: skip
    assert opts["trt_engine_cache_path"] == str(trt_cache_dir(sparse, options))
    [(_, no_model), *_] = ort_providers("tensorrt", available=gpu, packages=["onnxruntime-gpu"])
    assert no_model["trt_engine_cache_enable"] is False  # no model to key by: no cache at all
