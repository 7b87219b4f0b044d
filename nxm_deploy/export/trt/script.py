"""``build_engine.sh``: the trtexec command equivalent to ``build_engine``, written into every export so
that a user with TensorRT can rebuild the engine and see the same evidence of sparse kernels.

``EngineSpec`` says what the engine is built from and for; ``trtexec_command`` turns it into trtexec's
arguments for a TensorRT version, and ``write_build_script`` writes them as a bash script.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nxm_deploy.errors import ExportError
from nxm_deploy.export.trt.fp16 import fp16_onnx_name
from nxm_deploy.export.trt.profile import ShapeProfile, check_precision, format_shape, trt_major
from nxm_deploy.io import write_bytes_atomic

__all__ = [
    "BUILD_SCRIPT",
    "TRTEXEC_LAYER_INFO",
    "TRTEXEC_LOG",
    "EngineSpec",
    "trtexec_command",
    "write_build_script",
]

BUILD_SCRIPT = "build_engine.sh"
TRTEXEC_LOG = "trtexec_build.log"  # build_engine.sh's log
TRTEXEC_LAYER_INFO = "layers.json"  # build_engine.sh's --exportLayerInfo


@dataclass(frozen=True)
class EngineSpec:
    """One engine to build: from ``onnx_name`` to ``engine_name`` (paths relative to the export directory),
    with ``profile`` shared by every token input in ``input_names``, at ``precision`` (one of
    ``PRECISIONS``). ``fp16_onnx`` names the FP16 ONNX that fp16 on strongly typed TensorRT builds
    (default ``fp16_onnx_name(onnx_name)``). An unknown precision or no inputs is a one-line
    ``ExportError``; ``input_names`` may be given as any sequence and is kept as a tuple.
    """

    onnx_name: str
    engine_name: str
    input_names: tuple[str, ...]
    profile: ShapeProfile
    precision: str
    fp16_onnx: str | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision)
        object.__setattr__(self, "input_names", tuple(self.input_names))
        if not self.input_names:
            raise ExportError("no model inputs given for the TensorRT shape profile")


def _shapes_arg(input_names: Sequence[str], shape: tuple[int, int]) -> str:
    return ",".join(f"{name}:{format_shape(shape)}" for name in input_names)


def trtexec_command(spec: EngineSpec, trt_version: str | None) -> list[str]:
    """The trtexec argument list equivalent to ``build_engine`` (see ``write_build_script``)."""
    major = trt_major(trt_version)
    onnx_file, precision_flags = spec.onnx_name, []
    if spec.precision == "int8":  # an INT8 Q/DQ ONNX: strongly typed (always so on TensorRT 11)
        precision_flags = [] if major is not None and major >= 11 else ["--stronglyTyped"]
    elif spec.precision == "fp16" and major is not None and major < 11:
        precision_flags = ["--fp16"]  # weak typing, TensorRT 10
    elif spec.precision == "fp16":
        onnx_file = spec.fp16_onnx or fp16_onnx_name(spec.onnx_name)
        # TensorRT 11 is always strongly typed; on an unknown version also opt in explicitly, which
        # TensorRT 10 needs for an FP16 ONNX and TensorRT 11 accepts as a no-op.
        precision_flags = [] if major is not None else ["--stronglyTyped"]
    return [
        "trtexec",
        f"--onnx={onnx_file}",
        f"--saveEngine={spec.engine_name}",
        "--sparsity=enable",
        f"--minShapes={_shapes_arg(spec.input_names, spec.profile.min)}",
        f"--optShapes={_shapes_arg(spec.input_names, spec.profile.opt)}",
        f"--maxShapes={_shapes_arg(spec.input_names, spec.profile.max)}",
        *precision_flags,
        "--profilingVerbosity=detailed",
        f"--exportLayerInfo={TRTEXEC_LAYER_INFO}",
        "--verbose",
    ]


def write_build_script(export_dir: str | os.PathLike[str], spec: EngineSpec, trt_version: str | None) -> Path:
    """Write ``build_engine.sh``: the trtexec equivalent of ``build_engine``, run from its own directory.

    ``trt_version`` is the TensorRT seen at export time (``None``: none). Precision: fp32 builds
    ``spec.onnx_name``. fp16 on TensorRT < 11 builds ``spec.onnx_name`` with ``--fp16``; fp16 on
    TensorRT >= 11 builds the FP16 ONNX (``spec.fp16_onnx``, default ``fp16_onnx_name(spec.onnx_name)``),
    since TensorRT 11 removed ``--fp16``; fp16 with an unknown version builds the FP16 ONNX with
    ``--stronglyTyped``, which works on both. int8 builds the INT8 Q/DQ ``spec.onnx_name`` with
    ``--stronglyTyped`` (not on TensorRT >= 11, where every network is strongly typed). The script
    tees trtexec's output to ``trtexec_build.log`` and writes per-layer details to ``layers.json``;
    extra arguments are passed on to trtexec, and ``$TRTEXEC`` overrides the trtexec binary.
    """
    args = trtexec_command(spec, trt_version)
    args[0] = '"${TRTEXEC:-trtexec}"'
    body = " \\\n  ".join([args[0], *(shlex.quote(a) for a in args[1:]), '"$@"'])
    seen = trt_version or "unknown (no TensorRT where the export ran)"
    lines = [
        "#!/usr/bin/env bash",
        "# Rebuild the TensorRT engine of this export with 2:4 sparse kernels allowed (--sparsity=enable).",
        f"# Written by nxm-deploy for precision {spec.precision}; TensorRT seen at export time: {seen}.",
        "# Evidence: grep '(Sparsity)' trtexec_build.log; per-layer kernels in layers.json.",
        "# Usage: ./build_engine.sh [extra trtexec flags]   (TRTEXEC=/path/to/trtexec to choose the binary)",
        "set -euo pipefail",
        'cd "$(dirname "${BASH_SOURCE[0]}")"',
        f"{body} 2>&1 | tee {shlex.quote(TRTEXEC_LOG)}",
        "",
    ]
    path = Path(export_dir) / BUILD_SCRIPT
    write_bytes_atomic(path, "\n".join(lines).encode("utf-8"), mode=0o755)
    return path
