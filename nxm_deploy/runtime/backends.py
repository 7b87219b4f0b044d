"""The backends and ONNX Runtime providers the tool's commands name, in one place, and the one
message for an export that has no TensorRT engine. Standard library only: ``--help`` reads these.

    EXPORT_BACKENDS   what runs an export directory (Predictor, serve, Triton): ort, trt
    BACKENDS          what bench runs: the export backends, and torch (on run directories)
    ORT_PROVIDERS     ONNX Runtime's providers by their short names (--ort-provider)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BACKENDS", "EXPORT_BACKENDS", "ORT_PROVIDERS", "no_engine"]

EXPORT_BACKENDS = ("ort", "trt")
BACKENDS = (*EXPORT_BACKENDS, "torch")
ORT_PROVIDERS = ("cpu", "cuda", "tensorrt")


def no_engine(path: str | Path, tensorrt: dict[str, Any], instead: str) -> str:
    """``PATH has no TensorRT engine (why); build it with its build_engine.sh ...`` from an export's
    ``tensorrt`` section; ``instead`` ends the line with what else the user can do."""
    why = tensorrt.get("reason") or "no engine was built"
    script = tensorrt.get("build_script") or "build_engine.sh"
    return f"{path} has no TensorRT engine ({why}); build it with its {script} {instead}"
