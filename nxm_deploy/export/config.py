"""``ExportConfig``: what ``export()`` exports where, and how (the CLI reads its defaults here).

Importing it loads neither torch nor onnx, so ``nxm-deploy export --help`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import ExportError
from nxm_deploy.export import parity, trt
from nxm_deploy.export.onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

__all__ = ["ENGINES", "ExportConfig"]

ENGINES = ("onnx", "trt")


@dataclass(frozen=True)
class ExportConfig:
    """What to export where, and how. ``profile=None`` derives the TensorRT shape range from the
    model's position limit; ``data_dir=None`` reads parity sentences from ``$GLUE_DIR`` (else the
    hub, else built-ins)."""

    run_dir: str | os.PathLike[str]
    out: str | os.PathLike[str]
    engine: str = "onnx"
    opset: int = DEFAULT_OPSET
    precision: str = "fp32"
    profile: trt.ShapeProfile | None = None
    data_dir: str | Path | None = None
    overwrite: bool = False
    batches: Sequence[int] = parity.DEFAULT_BATCHES
    seq_lens: Sequence[int] = parity.DEFAULT_SEQ_LENS
    data: DataOptions | None = None  # own data for the parity rows (default: what the run recorded)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ExportError(f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.precision not in trt.PRECISIONS:
            raise ExportError(
                f"unknown precision {self.precision!r}: choose one of {', '.join(trt.PRECISIONS)}"
            )
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise ExportError(f"--opset {self.opset} is not supported: choose {MIN_OPSET} to {MAX_OPSET}")
        given = ["--min/--opt/--max-shape"] * (self.profile is not None)
        given += [f"--precision {self.precision}"] * (self.precision != "fp32")
        if self.engine != "trt" and given:
            raise ExportError(f"{' and '.join(given)} set the TensorRT engine; add --engine trt or drop them")
