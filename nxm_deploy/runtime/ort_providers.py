"""ONNX Runtime's execution providers by their short names (``ort_provider``: cpu, cuda, tensorrt).

    providers = ort_providers("tensorrt")   # checked: one line when the provider is missing
    InferenceSession(path, options, providers=providers)

``cuda`` and ``tensorrt`` need the ``onnxruntime-gpu`` package *instead of* ``onnxruntime``: both
install the same ``onnxruntime`` module, and with both installed whichever was installed last wins,
so the tool refuses that state in one line. TensorRT's provider gets ``trt_sparsity_enable`` (it may
pick sparse-tensor-core kernels for 2:4 weights) and ``trt_fp16_enable`` (the precision those kernels
run in); every provider keeps ONNX Runtime's CPU provider last, for the few nodes a GPU provider
leaves to it.

The TensorRT provider's engine cache. ONNX Runtime names a cached engine after the model's file name
and its input, initializer and node-output *names* (``TRTGenerateId``), never its weights: the dense
and the 2:4 ``model.onnx`` of one architecture get the same name, and a second session would load the
first one's engine (equal accuracy, a latency ratio of 1.0, silently), as would a retrained model.
So every model gets a cache folder of its own, named by the sha256 of its bytes (external weight
files included) and of the provider options that change an engine (:func:`trt_cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nxm_deploy.errors import BackendUnavailableError, ExportDirError, UserError
from nxm_deploy.runtime.backends import ORT_PROVIDERS

__all__ = [
    "ORT_PROVIDERS",
    "model_sha256",
    "ort_packages",
    "ort_providers",
    "provider_name",
    "triton_instance_group",
    "triton_provider_check",
    "trt_cache_dir",
]  # fmt: skip

_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
TRT_OPTIONS = {"trt_sparsity_enable": True, "trt_fp16_enable": True, "trt_engine_cache_enable": True}
# One TensorRT profile for every token input ``[batch, sequence]`` (a shape outside it makes ONNX
# Runtime build a wider engine, slowly but correctly), so that bench's and Predictor's shapes do not
# each trigger an engine build; built engines are cached across sessions, in a folder per model
# and options (trt_cache_dir).
TRT_PROFILE = {"min": (1, 1), "opt": (8, 128), "max": (64, 512)}
TRT_CACHE = Path(tempfile.gettempdir()) / "nxm-deploy-trt-cache"
SWAP = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


def provider_name(short: str) -> str:
    """``"cuda"`` -> ``"CUDAExecutionProvider"``; one line for a name not in :data:`ORT_PROVIDERS`."""
    if short not in _NAMES:
        raise UserError(f"unknown ONNX Runtime provider {short!r}: choose one of {', '.join(ORT_PROVIDERS)}")
    return _NAMES[short]


def ort_packages() -> list[str]:
    """The installed distributions that provide the ``onnxruntime`` module (by their metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            version(dist)
        except PackageNotFoundError:
            continue
        found.append(dist)
    return found


def check_packages(packages: Iterable[str]) -> None:
    """Refuse onnxruntime and onnxruntime-gpu installed side by side (they overwrite one module)."""
    if {"onnxruntime", "onnxruntime-gpu"} <= set(packages):
        raise BackendUnavailableError(
            "both onnxruntime and onnxruntime-gpu are installed, and they overwrite each other's "
            f"onnxruntime module; keep one: {SWAP}"
        )


def model_sha256(path: str | Path) -> str:
    """sha256 of an ONNX model's bytes and of each external-data file it names, in name order."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    data = path.read_bytes()  # one read serves the hash and the parse
    digest = hashlib.sha256(data)
    try:
        graph = onnx.load_model_from_string(data).graph
    except DecodeError:
        return digest.hexdigest()  # not ONNX: ONNX Runtime says so when it loads the file
    locations = {e.value for t in graph.initializer for e in t.external_data if e.key == "location"}
    for name in sorted(locations):
        extra = path.parent / name
        if extra.is_file():
            digest.update(name.encode())
            digest.update(extra.read_bytes())
    return digest.hexdigest()


def trt_cache_dir(model: str | Path, options: dict[str, Any]) -> Path:
    """The engine-cache folder of ``model`` under ``options`` (those that change an engine):
    ``TRT_CACHE/<model sha256[:16]>-<options sha256[:8]>``, so no two models (nor one model under two
    precisions or profiles) ever share an engine."""
    keyed = {k: v for k, v in sorted(options.items()) if not k.startswith("trt_engine_cache")}
    opts = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()
    return TRT_CACHE / f"{model_sha256(model)[:16]}-{opts[:8]}"


def tensorrt_options(inputs: Sequence[str] = (), model: str | Path | None = None) -> dict[str, Any]:
    """TensorRT provider options: sparse weights and fp16 on, one shape profile over ``inputs`` (the
    model's token inputs), and the engine cache in ``model``'s own folder (:func:`trt_cache_dir`;
    without ``model`` the cache is off, so no engine can be taken for another model's)."""
    options: dict[str, Any] = dict(TRT_OPTIONS)
    if inputs:
        for key, (batch, seq) in TRT_PROFILE.items():
            options[f"trt_profile_{key}_shapes"] = ",".join(f"{n}:{batch}x{seq}" for n in inputs)
    if model is None:
        options["trt_engine_cache_enable"] = False
    else:
        options["trt_engine_cache_path"] = str(trt_cache_dir(model, options))
    return options


def ort_providers(short: str, available: Iterable[str] | None = None, packages: Iterable[str] | None = None,
                  inputs: Sequence[str] = (), model: str | Path | None = None) -> list[Any]:  # fmt: skip
    """The ``providers`` argument of ``InferenceSession`` for ``short``, after checking that this
    ONNX Runtime has it (``available``: ``onnxruntime.get_available_providers()`` by default);
    ``inputs``: the model's input names, for TensorRT's shape profile; ``model``: its path, which
    names TensorRT's engine-cache folder."""
    name = provider_name(short)
    if short == "cpu":
        return [name]
    check_packages(ort_packages() if packages is None else packages)
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    available = list(available)
    if name not in available:
        raise BackendUnavailableError.naming(
            "{0} {short}: this ONNX Runtime offers {available}, not {name}; it needs the onnxruntime-gpu "
            "package in place of onnxruntime ({swap}) and an NVIDIA GPU",
            "ort_provider",
            short=short,
            available=", ".join(available),
            name=name,
            swap=SWAP,
        )
    if short == "tensorrt":
        return [(name, tensorrt_options(inputs, model)), _NAMES["cuda"], _NAMES["cpu"]]
    return [name, _NAMES["cpu"]]


def triton_provider_check(short: str | None, plan: bool) -> None:
    """Refuse an unknown provider, or one for a TensorRT plan (``plan``), which ONNX Runtime never runs."""
    if short is not None:
        provider_name(short)
        if plan:
            raise ExportDirError(f"ONNX Runtime's {short} provider serves model.onnx, not a TensorRT plan")


def triton_instance_group(short: str) -> list[str]:
    """``config.pbtxt`` lines for an ONNX model served by Triton's ONNX Runtime backend: on the GPU
    for ``cuda`` and ``tensorrt`` (the latter through TensorRT, as an execution accelerator)."""
    provider_name(short)
    kind = "KIND_CPU" if short == "cpu" else "KIND_GPU"
    lines = [f"instance_group [\n  {{\n    kind: {kind}\n    count: 1\n  }}\n]"]
    if short == "tensorrt":
        lines.append(
            "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator : [\n"
            '      {\n        name : "tensorrt"\n'
            '        parameters { key: "precision_mode" value: "FP16" }\n'
            "      }\n    ]\n  }\n}"
        )
    return lines
