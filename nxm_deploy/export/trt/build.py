"""``build_engine``: the TensorRT Python build of an engine that may use 2:4 sparse kernels (needs TensorRT
and an NVIDIA GPU).

It parses the ONNX with TensorRT's ``OnnxParser``, sets ``BuilderFlag.SPARSE_WEIGHTS``, one optimisation
profile over all token inputs and ``ProfilingVerbosity.DETAILED``; captures the builder's verbose log
through a custom ``trt.ILogger``; serialises the engine; reads per-layer details back with
``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``; and returns the ``"tensorrt"``
section of ``export.json``. ``tensorrt`` and ``torch`` are imported inside ``build_engine``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nxm_deploy.errors import ExportError, TensorRTUnavailableError
from nxm_deploy.export.trt.fp16 import onnx_has_fp16_weights
from nxm_deploy.export.trt.profile import DEFAULT_PROFILE, ShapeProfile, check_precision, trt_major
from nxm_deploy.io import write_bytes_atomic
from nxm_deploy.runtime.trt_evidence import observed_precision, parse_builder_log, parse_inspector_json

__all__ = ["BUILD_LOG", "LAYER_INFO", "build_engine"]

BUILD_LOG = "trt_build.log"  # the Python builder's verbose log
LAYER_INFO = "trt_layers.json"  # the Python builder's inspector output


def _capture_logger(trt: Any, log_file: Any, errors: list[str]) -> Any:
    """A ``trt.ILogger`` that writes every message, verbose included, to ``log_file``."""
    severity = trt.ILogger.Severity
    tags = {
        severity.INTERNAL_ERROR: "F",
        severity.ERROR: "E",
        severity.WARNING: "W",
        severity.INFO: "I",
        severity.VERBOSE: "V",
    }

    class CaptureLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            tag = tags.get(severity, "?")
            log_file.write(f"[{tag}] [TRT] {msg}\n")
            if tag in ("E", "F"):
                errors.append(msg)

    return CaptureLogger()


def network_flags(trt: Any, precision: str, major: int) -> int:
    """``create_network``'s flags: strongly typed for an INT8 Q/DQ ONNX, so that every op runs in the
    ONNX's own types (INT8 where Q/DQ say so, FP32 elsewhere). TensorRT 11 is always strongly typed
    and ignores the flag (deprecated there); TensorRT 10 needs it."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if precision != "int8" or major >= 11 or flag is None:
        return 0
    return 1 << int(flag)


def _network_from_onnx(
    trt: Any, builder: Any, onnx_path: Path, logger: Any, errors: list[str], flags: int = 0
) -> tuple[Any, Any]:
    """Network and parser; the parser owns the weights, so keep it alive until the build is done."""
    network = builder.create_network(flags)  # 0: strongly typed on TensorRT 11, weakly typed on 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        problems = [str(parser.get_error(i)) for i in range(parser.num_errors)] or errors[-1:]
        raise ExportError(f"TensorRT could not parse {onnx_path}: {'; '.join(problems)[:500]}")
    return network, parser


def _profile_for(builder: Any, network: Any, input_names: Sequence[str], profile: ShapeProfile) -> Any:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    missing = [n for n in input_names if n not in inputs]
    unlisted = [n for n in inputs if n not in input_names]
    if missing or unlisted:
        raise ExportError(
            f"input names do not match the ONNX graph (inputs {sorted(inputs)}): "
            f"not in the graph {missing}, not listed {unlisted}"
        )
    opt_profile = builder.create_optimization_profile()
    for name in input_names:
        if len(inputs[name].shape) != 2:
            raise ExportError(
                f"input {name} has shape {tuple(inputs[name].shape)}; expected (batch, sequence)"
            )
        opt_profile.set_shape(name, profile.min, profile.opt, profile.max)
    return opt_profile


def _config_for(trt: Any, builder: Any, precision: str, major: int, workspace_gib: float | None,
                sparse_weights: bool = True) -> Any:  # fmt: skip
    config = builder.create_builder_config()
    sparse_flag = getattr(trt.BuilderFlag, "SPARSE_WEIGHTS", None)
    if sparse_flag is not None and sparse_weights:
        config.set_flag(sparse_flag)
    if precision == "fp16" and major < 11:
        config.set_flag(trt.BuilderFlag.FP16)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    return config


def _inspect(trt: Any, logger: Any, plan: Any) -> str:
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise ExportError("TensorRT built an engine it cannot load back; see the build log")
    return str(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def build_engine(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    input_names: Sequence[str],
    profile: ShapeProfile = DEFAULT_PROFILE,
    precision: str = "fp32",
    *,
    log_path: str | os.PathLike[str] | None = None,
    layer_info_path: str | os.PathLike[str] | None = None,
    workspace_gib: float | None = None,
    sparse_weights: bool = True,
) -> dict[str, Any]:
    """Build a TensorRT engine that may use 2:4 sparse kernels; return the ``"tensorrt"`` manifest section.

    ``onnx_path`` is the FP16 ONNX for fp16 on TensorRT >= 11 (``to_fp16_onnx``), the INT8 Q/DQ ONNX for
    ``int8`` (built strongly typed: ``network_flags``), else the FP32 one.
    The verbose log goes to ``log_path`` (default ``trt_build.log`` beside the engine) and the
    inspector's JSON to ``layer_info_path`` (default ``trt_layers.json``). ``sparse_weights=False``
    builds the same engine without the sparse-weights flag (a dense baseline to time against). Raises
    ``TensorRTUnavailableError`` (exit code 3) without TensorRT or a GPU, ``ExportError`` otherwise.

    Keys of the returned dict: ``tensorrt_version``, ``gpu``, ``precision`` (asked for),
    ``engine_precision`` and ``engine_layer_types`` (what the built engine's layers compute in, from the
    inspector: ``observed_precision``), ``strongly_typed``,
    ``sparse_weights_flag``, ``profile`` (``inputs``, ``min``, ``opt``, ``max``), ``eligible_layers`` and
    ``sparse_layers`` (from the builder log), ``sparsity_reported``, ``inspector_sparse_layers`` (layers
    whose kernel name is a sparse one), ``layer_count``, ``build_seconds``, ``engine``, ``engine_bytes``,
    ``build_log``, ``layer_info``, ``onnx`` (paths relative to the engine's directory when inside it).
    """
    from nxm_deploy.runtime.availability import gpu_name, trt_unavailable_reason  # its package loads numpy

    check_precision(precision)
    reason = trt_unavailable_reason()
    if reason:
        raise TensorRTUnavailableError(f"cannot build a TensorRT engine: {reason}")
    import tensorrt as trt

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise ExportError(f"ONNX file {onnx_path} not found")
    major = trt_major(trt.__version__) or 0
    if major < 10:
        raise ExportError(f"TensorRT {trt.__version__} is too old: nxm-deploy needs TensorRT 10 or newer")
    if precision == "fp16" and major >= 11 and not onnx_has_fp16_weights(onnx_path):
        raise ExportError(
            f"TensorRT {trt.__version__} builds strongly typed networks, so fp16 needs an FP16 ONNX; "
            f"{onnx_path} holds FP32 weights: convert it with to_fp16_onnx() and build that file"
        )
    base = engine_path.parent
    log_path = Path(log_path) if log_path else base / BUILD_LOG
    layer_info_path = Path(layer_info_path) if layer_info_path else base / LAYER_INFO

    errors: list[str] = []
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log_file:
        logger = _capture_logger(trt, log_file, errors)
        builder = trt.Builder(logger)
        flags = network_flags(trt, precision, major)
        network, _parser = _network_from_onnx(trt, builder, onnx_path, logger, errors, flags)
        config = _config_for(trt, builder, precision, major, workspace_gib, sparse_weights)
        config.add_optimization_profile(_profile_for(builder, network, input_names, profile))
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            last = errors[-1] if errors else "no error message"
            raise ExportError(f"TensorRT could not build the engine ({last[:300]}); full log in {log_path}")
        build_seconds = time.perf_counter() - start
        write_bytes_atomic(engine_path, bytes(plan), mode=0o644)
        layer_json = _inspect(trt, logger, plan)
        sparse_flag = getattr(trt.BuilderFlag, "SPARSE_WEIGHTS", None)
        flag_set = bool(sparse_flag is not None and config.get_flag(sparse_flag))
    layer_info_path.write_text(layer_json, encoding="utf-8")

    sparsity = parse_builder_log(log_path.read_text(encoding="utf-8", errors="replace"))
    layers = parse_inspector_json(layer_json)
    observed = observed_precision(layers)
    return {
        "tensorrt_version": trt.__version__,
        "gpu": gpu_name(),
        "precision": precision,
        "engine_precision": observed["precision"],
        "engine_layer_types": observed["layer_types"],
        "strongly_typed": major >= 11 or flags != 0,
        "sparse_weights_flag": flag_set,
        "profile": {"inputs": list(input_names), **profile.as_dict()},
        "eligible_layers": sparsity["eligible_layers"],
        "sparse_layers": sparsity["sparse_layers"],
        "sparsity_reported": sparsity["sparsity_reported"],
        "inspector_sparse_layers": [layer["name"] for layer in layers if layer["sparse"]],
        "layer_count": len(layers),
        "build_seconds": round(build_seconds, 3),
        "engine": _relative(engine_path, base),
        "engine_bytes": engine_path.stat().st_size,
        "build_log": _relative(log_path, base),
        "layer_info": _relative(layer_info_path, base),
        "onnx": _relative(onnx_path, base),
    }
