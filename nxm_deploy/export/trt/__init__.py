"""TensorRT engines with 2:4 sparse weights: a thin builder, and everything testable around it.

    from nxm_deploy.export import trt
    profile = trt.ShapeProfile.parse("1x8", "8x128", "32x512")
    section = trt.build_engine("model.onnx", "model.engine", ["input_ids", "attention_mask"], profile, "fp32")

What is here, by module (every public name is re-exported here):

- ``profile``: ``parse_shape`` / ``ShapeProfile`` / ``DEFAULT_PROFILE``, the dynamic (batch, sequence)
  range of every token input (default min 1x8, opt 8x128, max 32x512); ``PRECISIONS``,
  ``check_precision``; ``trt_major``.
- ``build``: ``build_engine``: parse the ONNX with TensorRT's ``OnnxParser`` (an INT8 Q/DQ ONNX into a
  strongly typed network), set ``BuilderFlag.SPARSE_WEIGHTS``, one optimisation profile over all token inputs,
  ``ProfilingVerbosity.DETAILED``; capture the builder's verbose log through a custom ``trt.ILogger``;
  serialise the engine; read per-layer details back with the engine inspector. Returns the
  ``"tensorrt"`` section of ``export.json`` (keys in ``build_engine``'s docstring).
- ``fp16``: ``to_fp16_onnx``, the FP16 ONNX that TensorRT >= 11 needs for fp16 (see that module).
- ``parse_builder_log`` / ``parse_inspector_json``, pure parsers of the evidence of sparse kernels, and
  ``observed_precision``, what an engine's layers really compute in: they live in
  ``nxm_deploy.runtime.trt_evidence`` (the runtime reads the same evidence) and are re-exported here;
  ``nxm_deploy.runtime.trt_engines.cached_engine_precision`` reads the engines that ONNX Runtime's
  TensorRT provider caches.
- ``script``: ``EngineSpec`` (ONNX, engine, inputs, profile, precision) and ``write_build_script``, an
  equivalent ``trtexec`` command in ``build_engine.sh``, always written, so a user with TensorRT can
  rebuild the engine and see the same evidence.

Exit code. Where TensorRT or a GPU is missing the ONNX export itself has not failed: the CLI exits with
``nxm_deploy.errors.EXIT_NEEDS_GPU`` (3), distinct from 1 (a user's mistake) and 0, after writing
``build_engine.sh``. ``TensorRTUnavailableError`` (from ``nxm_deploy.errors``) carries that code; whether
TensorRT and a GPU are here is ``nxm_deploy.runtime.availability.trt_unavailable_reason()``.

This package imports only the standard library at import time (``tensorrt``, ``torch``, ``onnx`` and
``onnxruntime`` are imported inside the functions that need them), so ``--help`` and the parsers work on
a machine without TensorRT.
"""

from __future__ import annotations

from nxm_deploy.errors import TensorRTUnavailableError
from nxm_deploy.export.trt.build import BUILD_LOG, LAYER_INFO, build_engine
from nxm_deploy.export.trt.fp16 import FP32_OPS, fp16_onnx_name, onnx_has_fp16_weights, to_fp16_onnx
from nxm_deploy.export.trt.profile import (
    DEFAULT_PROFILE,
    ENGINE_PRECISIONS,
    PRECISIONS,
    ShapeProfile,
    check_precision,
    parse_shape,
    trt_major,
)
from nxm_deploy.export.trt.script import (
    BUILD_SCRIPT,
    TRTEXEC_LAYER_INFO,
    TRTEXEC_LOG,
    EngineSpec,
    trtexec_command,
    write_build_script,
)
from nxm_deploy.runtime.trt_evidence import (
    is_sparse_tactic,
    observed_precision,
    parse_builder_log,
    parse_inspector_json,
)

__all__ = [
    "BUILD_LOG",
    "BUILD_SCRIPT",
    "DEFAULT_PROFILE",
    "ENGINE_PRECISIONS",
    "FP32_OPS",
    "LAYER_INFO",
    "PRECISIONS",
    "TRTEXEC_LAYER_INFO",
    "TRTEXEC_LOG",
    "EngineSpec",
    "ShapeProfile",
    "TensorRTUnavailableError",
    "build_engine",
    "check_precision",
    "fp16_onnx_name",
    "is_sparse_tactic",
    "observed_precision",
    "onnx_has_fp16_weights",
    "parse_builder_log",
    "parse_inspector_json",
    "parse_shape",
    "to_fp16_onnx",
    "trt_major",
    "trtexec_command",
    "write_build_script",
]
