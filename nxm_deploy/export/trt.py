"""TensorRT engines with 2:4 sparse weights: a thin builder, and everything testable around it.

    from nxm_deploy.export import trt
    profile = trt.ShapeProfile.parse("1x8", "8x128", "32x512")
    section = trt.build_engine("model.onnx", "model.engine", ["input_ids", "attention_mask"], profile, "fp32")

What is here:

- ``parse_shape`` / ``ShapeProfile``: the dynamic (batch, sequence) range of every token input. Defaults
  (``DEFAULT_PROFILE``): min 1x8, opt 8x128, max 32x512. 512 is the position limit of BERT-family
  encoders; 8x128 is a typical serving batch; 1x8 covers single short queries.
- ``trt_unavailable_reason``: ``None`` when ``tensorrt`` imports and an NVIDIA GPU is visible, else one
  sentence saying what is missing.
- ``build_engine``: parse the ONNX with TensorRT's ``OnnxParser``, set ``BuilderFlag.SPARSE_WEIGHTS``, one
  optimisation profile over all token inputs, ``ProfilingVerbosity.DETAILED``; capture the builder's
  verbose log through a custom ``trt.ILogger``; serialise the engine; read per-layer details back with
  ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``. Returns the ``"tensorrt"``
  section of ``export.json`` (keys in ``build_engine``'s docstring).
- ``to_fp16_onnx``: the FP16 ONNX that TensorRT >= 11 needs for fp16 (see Precision).
- ``parse_builder_log`` / ``parse_inspector_json``: pure parsers of the evidence of sparse kernels.
- ``write_build_script``: an equivalent ``trtexec`` command in ``build_engine.sh``, always written, so a
  user with TensorRT can rebuild the engine and see the same evidence.

Precision. TensorRT 11 removed the weak-typing builder flags (``BuilderFlag.FP16``/``INT8``/...) and the
trtexec precision flags (``--fp16``, ``--int8``, ``--best``): every network is strongly typed, so its
tensor types come from the ONNX file. For fp16 on TensorRT >= 11 the caller passes an FP16 ONNX made by
``to_fp16_onnx`` (NVIDIA's own suggestion is ModelOpt AutoCast, ``python -m modelopt.onnx.autocast``,
which does the same job with data-driven choices). On TensorRT 10 the FP32 ONNX is built with
``BuilderFlag.FP16`` (weak typing), as TensorRT 10 documents it.

Evidence of sparse kernels. With the sparse-weights flag TensorRT logs, at the end of a build, two
INFO lines (TensorRT developer guide, "Structured Sparsity"):
``(Sparsity) Layers eligible for sparse math: conv1, conv2, conv3`` and
``(Sparsity) TRT inference plan picked sparse implementation for layers: conv2, conv3``. The engine
inspector (``ProfilingVerbosity.DETAILED``) names each layer's kernel in ``TacticName``; sparse kernels
carry ``sparse``/``sptensor`` in that name (e.g. ``sm80_xmma_sparse_gemm_..._sptensor16x8x32``). Layers
that TensorRT hands to its Myelin compiler (``{ForeignNode[...]}``, common for attention blocks) show no
per-kernel tactic, so the builder log is the primary evidence and the inspector a second one.

Exit code. Where TensorRT or a GPU is missing the ONNX export itself has not failed: the CLI exits with
``EXIT_TRT_UNAVAILABLE`` (3), distinct from 1 (a user's mistake) and 0, after writing ``build_engine.sh``.
``TensorRTUnavailableError`` carries that code.

This module imports only the standard library at import time (``tensorrt``, ``torch``, ``onnx`` and
``onnxruntime`` are imported inside the functions that need them), so ``scripts/gpu_check.py`` can use
its parsers on a machine that has only torch and transformers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.errors import ExportError

__all__ = [
    "BUILD_LOG",
    "BUILD_SCRIPT",
    "DEFAULT_PROFILE",
    "EXIT_TRT_UNAVAILABLE",
    "FP32_OPS",
    "LAYER_INFO",
    "PRECISIONS",
    "TRTEXEC_LAYER_INFO",
    "TRTEXEC_LOG",
    "ShapeProfile",
    "TensorRTUnavailableError",
    "build_engine",
    "fp16_onnx_name",
    "is_sparse_tactic",
    "onnx_has_fp16_weights",
    "parse_builder_log",
    "parse_inspector_json",
    "parse_shape",
    "to_fp16_onnx",
    "trt_major",
    "trt_unavailable_reason",
    "trtexec_command",
    "write_build_script",
]

EXIT_TRT_UNAVAILABLE = 3
"""Exit code of an export whose ONNX part succeeded but whose engine needs a missing TensorRT or GPU."""

PRECISIONS = ("fp32", "fp16")
BUILD_SCRIPT = "build_engine.sh"
BUILD_LOG = "trt_build.log"  # the Python builder's verbose log
LAYER_INFO = "trt_layers.json"  # the Python builder's inspector output
TRTEXEC_LOG = "trtexec_build.log"  # build_engine.sh's log
TRTEXEC_LAYER_INFO = "layers.json"  # build_engine.sh's --exportLayerInfo

FP32_OPS = ("LayerNormalization", "ReduceMean", "Pow", "Sqrt")
"""ONNX ops that ``to_fp16_onnx`` keeps in FP32: LayerNorm, fused or decomposed (its variance ``x**2``
overflows FP16 on large activations; TensorRT warns about FP16 layernorm for the same reason). Softmax
stays FP16: TensorRT fuses attention and accumulates in FP32 inside its fused kernels."""


class TensorRTUnavailableError(ExportError):
    """TensorRT or an NVIDIA GPU is missing: the engine cannot be built here (exit code 3)."""

    exit_code = EXIT_TRT_UNAVAILABLE


# ------------------------------------------------------------------------------------------------
# Shapes


_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_shape(text: str) -> tuple[int, int]:
    """``"8x128"`` -> ``(8, 128)``: batch x sequence, both positive integers."""
    match = _SHAPE_RE.match(str(text))
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ExportError(
            f"invalid shape {text!r}: write BATCHxSEQUENCE with positive integers, for example 8x128"
        )
    return int(match.group(1)), int(match.group(2))


def _format_shape(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


@dataclass(frozen=True)
class ShapeProfile:
    """Dynamic (batch, sequence) range shared by every token input; ``min <= opt <= max`` elementwise."""

    min: tuple[int, int] = (1, 8)
    opt: tuple[int, int] = (8, 128)
    max: tuple[int, int] = (32, 512)

    def __post_init__(self) -> None:
        for label, shape in (("min", self.min), ("opt", self.opt), ("max", self.max)):
            if len(shape) != 2 or any(not isinstance(v, int) or v < 1 for v in shape):
                raise ExportError(
                    f"invalid {label} shape {shape!r}: need (batch, sequence), positive integers"
                )
        ordered = all(lo <= mid <= hi for lo, mid, hi in zip(self.min, self.opt, self.max, strict=True))
        if not ordered:
            raise ExportError(
                f"invalid shape profile min {_format_shape(self.min)}, opt {_format_shape(self.opt)}, "
                f"max {_format_shape(self.max)}: need min <= opt <= max in batch and in sequence"
            )

    @classmethod
    def parse(cls, min_text: str, opt_text: str, max_text: str) -> ShapeProfile:
        """Profile from three ``BATCHxSEQUENCE`` strings."""
        return cls(parse_shape(min_text), parse_shape(opt_text), parse_shape(max_text))

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


DEFAULT_PROFILE = ShapeProfile()


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def trt_major(version: str | None) -> int | None:
    """Major version of a TensorRT version string (``"10.13.0.35"`` -> 10); ``None`` if unknown."""
    if not version:
        return None
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else None


# ------------------------------------------------------------------------------------------------
# Availability


def trt_unavailable_reason() -> str | None:
    """``None`` when ``tensorrt`` imports and a CUDA GPU is visible; else one sentence on what is missing."""
    trt_problem = _tensorrt_problem()
    gpu_problem = _gpu_problem()
    if trt_problem and gpu_problem:
        return f"{trt_problem}, and {gpu_problem}."
    if trt_problem or gpu_problem:
        return f"{trt_problem or gpu_problem}."
    return None


def _tensorrt_problem() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return (
            "TensorRT is not installed (the `tensorrt` Python package comes from NVIDIA's own package "
            "index; install it on a machine with an NVIDIA GPU)"
        )
    except OSError as exc:  # the wheel is there but its CUDA libraries are not
        return f"TensorRT is installed but its libraries fail to load ({exc})"
    return None


def _gpu_problem() -> str | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the project
        return "no NVIDIA GPU could be detected (torch is not installed)"
    if not torch.cuda.is_available():
        return "no NVIDIA GPU is visible (torch.cuda.is_available() is False)"
    return None


# ------------------------------------------------------------------------------------------------
# Parsers (pure)

_ELIGIBLE_MARK = "(Sparsity) Layers eligible for sparse math:"
_PICKED_MARK = "(Sparsity) TRT inference plan picked sparse implementation for layers:"


def _split_layer_list(text: str) -> list[str]:
    """Split ``"a, b + c, {ForeignNode[x, y]}"`` on top-level commas (not inside brackets)."""
    names: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        if ch == "," and depth == 0:
            names.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    names.append("".join(current).strip())
    return [n for n in names if n]


def parse_builder_log(text: str) -> dict[str, Any]:
    """Which layers TensorRT found eligible for sparse math, and which got a sparse implementation.

    Reads the two ``(Sparsity)`` INFO lines TensorRT prints at the end of a build with the
    sparse-weights flag, with or without trtexec's ``[date] [I] [TRT]`` prefix. When a log holds
    several builds, the last report wins. Returns ``eligible_layers``, ``sparse_layers`` (lists of
    layer names, as TensorRT names fused layers: ``"a + b"``) and ``sparsity_reported`` (whether the
    lines were found at all: they are missing when the flag was not set or the log was cut).
    """
    eligible: list[str] | None = None
    picked: list[str] | None = None
    for line in text.splitlines():
        if _ELIGIBLE_MARK in line:
            eligible = _split_layer_list(line.split(_ELIGIBLE_MARK, 1)[1])
        elif _PICKED_MARK in line:
            picked = _split_layer_list(line.split(_PICKED_MARK, 1)[1])
    return {
        "eligible_layers": eligible or [],
        "sparse_layers": picked or [],
        "sparsity_reported": eligible is not None or picked is not None,
    }


_SPARSE_TACTIC_RE = re.compile(r"sparse|sptensor|spgemm|sphmma|spimma|(?:^|_)sp_", re.IGNORECASE)


def is_sparse_tactic(tactic: str) -> bool:
    """Whether a kernel name is a structured-sparse one.

    Seen in public kernel names: ``sm80_xmma_sparse_gemm_..._sptensor16x8x32``, ``xmma_sparse_conv``
    (TensorRT/cuSPARSELt xmma kernels) and CUTLASS 3 ``..._sptensorop_..._spgemm_...``.
    """
    return bool(_SPARSE_TACTIC_RE.search(tactic or ""))


def _tensor_dtype(tensor: Any) -> str | None:
    """Data type of one inspector tensor entry: ``DataType`` (TensorRT 11) or ``Format/Datatype`` (10)."""
    if not isinstance(tensor, dict):
        return None
    if tensor.get("DataType"):
        return str(tensor["DataType"])
    fmt = str(tensor.get("Format/Datatype", "")).lower()  # e.g. "Row major linear FP16 format"
    for token, dtype in _FORMAT_DTYPES:
        if token in fmt:
            return dtype
    return fmt or None


# Tokens of TensorRT 10's "Format/Datatype" text, mapped to TensorRT 11's "DataType" names.
_FORMAT_DTYPES = (
    ("bf16", "BFloat16"),
    ("fp16", "Half"),
    ("half", "Half"),
    ("fp32", "Float"),
    ("float", "Float"),
    ("fp8", "FP8"),
    ("int8", "Int8"),
    ("int32", "Int32"),
    ("int64", "Int64"),
    ("bool", "Bool"),
)


def _layer_record(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):  # ProfilingVerbosity.LAYER_NAMES_ONLY: names only
        return {"name": raw, "type": None, "tactic": "", "sparse": False, "precision": None}
    if not isinstance(raw, dict):
        raise ExportError(f"engine layer information holds an unexpected entry {raw!r:.80}")
    tactic = str(raw.get("TacticName") or raw.get("TacticValue") or "")
    outputs = raw.get("Outputs") or []
    return {
        "name": str(raw.get("Name", "")),
        "type": raw.get("LayerType") or raw.get("ParameterType"),
        "tactic": tactic,
        "sparse": is_sparse_tactic(tactic),
        "precision": _tensor_dtype(outputs[0]) if outputs else None,
    }


def parse_inspector_json(text: str) -> list[dict[str, Any]]:
    """Per-layer records from ``IEngineInspector`` JSON (or trtexec's ``--exportLayerInfo`` file).

    Accepts the engine document ``{"Layers": [...], "Bindings"|"I/O Tensors": ...}`` (``Bindings``
    in TensorRT 10, ``I/O Tensors`` in 11), a single layer object, or a bare list. Each record has
    ``name``, ``type`` (``LayerType``), ``tactic`` (``TacticName``, else ``TacticValue``), ``sparse``
    (see ``is_sparse_tactic``) and ``precision`` (data type of the first output).
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"engine layer information is not valid JSON ({exc})") from exc
    if isinstance(doc, dict) and "Layers" in doc:
        layers = doc["Layers"]
    elif isinstance(doc, dict):
        layers = [doc]
    elif isinstance(doc, list):
        layers = doc
    else:
        raise ExportError("engine layer information must be a JSON object or list")
    return [_layer_record(raw) for raw in layers]


# ------------------------------------------------------------------------------------------------
# trtexec script


def fp16_onnx_name(onnx_name: str) -> str:
    """Name of the FP16 twin of an ONNX file: ``model.onnx`` -> ``model_fp16.onnx``."""
    path = Path(onnx_name)
    return str(path.with_name(f"{path.stem}_fp16{path.suffix or '.onnx'}"))


def _shapes_arg(input_names: Sequence[str], shape: tuple[int, int]) -> str:
    return ",".join(f"{name}:{_format_shape(shape)}" for name in input_names)


def trtexec_command(
    onnx_name: str,
    engine_name: str,
    input_names: Sequence[str],
    profile: ShapeProfile,
    precision: str,
    trt_version: str | None,
    fp16_onnx: str | None = None,
) -> list[str]:
    """The trtexec argument list equivalent to ``build_engine`` (see ``write_build_script``)."""
    _check_precision(precision)
    if not input_names:
        raise ExportError("no model inputs given for the TensorRT shape profile")
    major = trt_major(trt_version)
    onnx_file, precision_flags = onnx_name, []
    if precision == "fp16" and major is not None and major < 11:
        precision_flags = ["--fp16"]  # weak typing, TensorRT 10
    elif precision == "fp16":
        onnx_file = fp16_onnx or fp16_onnx_name(onnx_name)
        # TensorRT 11 is always strongly typed; on an unknown version also opt in explicitly, which
        # TensorRT 10 needs for an FP16 ONNX and TensorRT 11 accepts as a no-op.
        precision_flags = [] if major is not None else ["--stronglyTyped"]
    return [
        "trtexec",
        f"--onnx={onnx_file}",
        f"--saveEngine={engine_name}",
        "--sparsity=enable",
        f"--minShapes={_shapes_arg(input_names, profile.min)}",
        f"--optShapes={_shapes_arg(input_names, profile.opt)}",
        f"--maxShapes={_shapes_arg(input_names, profile.max)}",
        *precision_flags,
        "--profilingVerbosity=detailed",
        f"--exportLayerInfo={TRTEXEC_LAYER_INFO}",
        "--verbose",
    ]


def write_build_script(
    export_dir: str | os.PathLike[str],
    onnx_name: str,
    engine_name: str,
    input_names: Sequence[str],
    profile: ShapeProfile,
    precision: str,
    trt_version: str | None,
    fp16_onnx: str | None = None,
) -> Path:
    """Write ``build_engine.sh``: the trtexec equivalent of ``build_engine``, run from its own directory.

    Precision: fp32 builds ``onnx_name``. fp16 on TensorRT < 11 builds ``onnx_name`` with ``--fp16``;
    fp16 on TensorRT >= 11 builds the FP16 ONNX (``fp16_onnx``, default ``fp16_onnx_name(onnx_name)``),
    since TensorRT 11 removed ``--fp16``; fp16 with an unknown version builds the FP16 ONNX with
    ``--stronglyTyped``, which works on both. The script tees trtexec's output to ``trtexec_build.log``
    and writes per-layer details to ``layers.json``; extra arguments are passed on to trtexec, and
    ``$TRTEXEC`` overrides the trtexec binary.
    """
    args = trtexec_command(onnx_name, engine_name, input_names, profile, precision, trt_version, fp16_onnx)
    args[0] = '"${TRTEXEC:-trtexec}"'
    body = " \\\n  ".join([args[0], *(shlex.quote(a) for a in args[1:]), '"$@"'])
    seen = trt_version or "unknown (no TensorRT where the export ran)"
    lines = [
        "#!/usr/bin/env bash",
        "# Rebuild the TensorRT engine of this export with 2:4 sparse kernels allowed (--sparsity=enable).",
        f"# Written by nxm-deploy for precision {precision}; TensorRT seen at export time: {seen}.",
        "# Evidence: grep '(Sparsity)' trtexec_build.log; per-layer kernels in layers.json.",
        "# Usage: ./build_engine.sh [extra trtexec flags]   (TRTEXEC=/path/to/trtexec to choose the binary)",
        "set -euo pipefail",
        'cd "$(dirname "${BASH_SOURCE[0]}")"',
        f"{body} 2>&1 | tee {shlex.quote(TRTEXEC_LOG)}",
        "",
    ]
    path = Path(export_dir) / BUILD_SCRIPT
    _write_bytes_atomic(path, "\n".join(lines).encode("utf-8"), mode=0o755)
    return path


def _write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write through a temporary file and a rename; ``mode`` replaces mkstemp's private 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------------
# FP16 ONNX


def to_fp16_onnx(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], fp32_ops: Sequence[str] = FP32_OPS
) -> Path:
    """Write an FP16 copy of an FP32 ONNX model for strongly typed TensorRT (>= 11) fp16 engines.

    Float weights and activations become FP16, except the ops in ``fp32_ops`` (LayerNorm by default,
    see ``FP32_OPS``), which run in FP32 between Cast nodes. Graph inputs and outputs keep their types:
    integer token inputs stay integers and float outputs (logits) stay FP32. Weights are clipped to the
    FP16 range rather than turned into infinities. Uses onnxruntime's float16 converter (onnxruntime is
    a dependency already), then sorts the graph topologically, as TensorRT's ONNX parser requires.
    """
    try:
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel
    except ImportError as exc:
        raise ExportError(f"writing an FP16 ONNX needs onnx and onnxruntime ({exc})") from exc
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ExportError(f"ONNX file {src} not found")
    model = onnx.load(str(src))
    _name_unnamed_nodes(model)
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(fp32_ops))
    fp16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    wrapped = OnnxModel(fp16)
    wrapped.topological_sort()
    big = wrapped.model.ByteSize() > 1_800_000_000  # protobuf's 2 GiB limit, with margin
    onnx.save(wrapped.model, str(dst), save_as_external_data=big, location=f"{dst.name}.data")
    return dst


def _name_unnamed_nodes(model: Any) -> None:
    """The converter names its Cast nodes after their neighbours; give every node a unique name."""
    taken = {node.name for node in model.graph.node if node.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def onnx_has_fp16_weights(path: str | os.PathLike[str]) -> bool:
    """Whether an ONNX model stores any FP16 initializer (reads the graph, not external weight data)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


# ------------------------------------------------------------------------------------------------
# Builder (needs TensorRT and a GPU)


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


def _network_from_onnx(
    trt: Any, builder: Any, onnx_path: Path, logger: Any, errors: list[str]
) -> tuple[Any, Any]:
    """Network and parser; the parser owns the weights, so keep it alive until the build is done."""
    network = builder.create_network(0)  # strongly typed on TensorRT 11, weakly typed on 10
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


def _config_for(trt: Any, builder: Any, precision: str, major: int, workspace_gib: float | None) -> Any:
    config = builder.create_builder_config()
    sparse_flag = getattr(trt.BuilderFlag, "SPARSE_WEIGHTS", None)
    if sparse_flag is not None:
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


def _gpu_name() -> str:
    import torch

    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    return f"{name} (sm_{major}{minor})"


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
) -> dict[str, Any]:
    """Build a TensorRT engine that may use 2:4 sparse kernels; return the ``"tensorrt"`` manifest section.

    ``onnx_path`` is the FP16 ONNX for fp16 on TensorRT >= 11 (``to_fp16_onnx``), else the FP32 one.
    The verbose log goes to ``log_path`` (default ``trt_build.log`` beside the engine) and the
    inspector's JSON to ``layer_info_path`` (default ``trt_layers.json``). Raises
    ``TensorRTUnavailableError`` (exit code 3) without TensorRT or a GPU, ``ExportError`` otherwise.

    Keys of the returned dict: ``tensorrt_version``, ``gpu``, ``precision``, ``strongly_typed``,
    ``sparse_weights_flag``, ``profile`` (``inputs``, ``min``, ``opt``, ``max``), ``eligible_layers`` and
    ``sparse_layers`` (from the builder log), ``sparsity_reported``, ``inspector_sparse_layers`` (layers
    whose kernel name is a sparse one), ``layer_count``, ``build_seconds``, ``engine``, ``engine_bytes``,
    ``build_log``, ``layer_info``, ``onnx`` (paths relative to the engine's directory when inside it).
    """
    _check_precision(precision)
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
        network, _parser = _network_from_onnx(trt, builder, onnx_path, logger, errors)
        config = _config_for(trt, builder, precision, major, workspace_gib)
        config.add_optimization_profile(_profile_for(builder, network, input_names, profile))
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            last = errors[-1] if errors else "no error message"
            raise ExportError(f"TensorRT could not build the engine ({last[:300]}); full log in {log_path}")
        build_seconds = time.perf_counter() - start
        _write_bytes_atomic(engine_path, bytes(plan))
        layer_json = _inspect(trt, logger, plan)
        sparse_flag = getattr(trt.BuilderFlag, "SPARSE_WEIGHTS", None)
        flag_set = bool(sparse_flag is not None and config.get_flag(sparse_flag))
    layer_info_path.write_text(layer_json, encoding="utf-8")

    sparsity = parse_builder_log(log_path.read_text(encoding="utf-8", errors="replace"))
    layers = parse_inspector_json(layer_json)
    return {
        "tensorrt_version": trt.__version__,
        "gpu": _gpu_name(),
        "precision": precision,
        "strongly_typed": major >= 11,
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
