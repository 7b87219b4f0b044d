"""``ExportConfig``: what ``export()`` exports where, and how (the CLI reads its defaults here).

Importing it loads neither torch nor onnx, so ``nxm-deploy export --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import ExportError
from nxm_deploy.export import parity, trt
from nxm_deploy.export.onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from nxm_deploy.export.quantize import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION_ROWS,
    DEFAULT_SMOOTH_ALPHA,
    QuantizeError,
    QuantizeSpec,
)

__all__ = ["ENGINES", "ExportConfig"]

ENGINES = ("onnx", "trt")
AUTO = "auto"


@dataclass(frozen=True)
class ExportConfig:
    """What to export where, and how. ``profile=None`` derives the TensorRT shape range from the
    model's position limit; ``data_dir=None`` reads parity sentences from ``$GLUE_DIR`` (else the
    hub, else built-ins). ``quantize`` (``int8`` or ``int8-dynamic``, see ``export.quantize``) makes
    ``model.onnx`` an INT8 graph, static ``int8`` calibrated on ``calibration_rows`` training rows of
    the run drawn with ``calibration_seed``."""

    run_dir: str | os.PathLike[str]
    out: str | os.PathLike[str]
    engine: str = "onnx"
    opset: int = DEFAULT_OPSET
    precision: str = "auto"  # the engine's: auto = fp16 with engine="trt" (2:4 kernels need it), else fp32
    profile: trt.ShapeProfile | None = None
    data_dir: str | Path | None = None
    overwrite: bool = False
    batches: Sequence[int] = parity.DEFAULT_BATCHES
    seq_lens: Sequence[int] = parity.DEFAULT_SEQ_LENS
    data: DataOptions | None = None  # own data for the parity rows (default: what the run recorded)
    quantize: str | None = None
    calibration_rows: int = DEFAULT_CALIBRATION_ROWS
    calibration_method: str = "minmax"
    calibration_seed: int = 0
    smooth_alpha: float = DEFAULT_SMOOTH_ALPHA  # int8: SmoothQuant's alpha before calibration (0: off)
    min_agreement: float = 0.99  # INT8: share of dev rows predicted as PyTorch FP32 does, at least

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ExportError(f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.precision not in (AUTO, *trt.PRECISIONS):
            raise ExportError(
                f"unknown precision {self.precision!r}: choose one of {', '.join((AUTO, *trt.PRECISIONS))}"
            )
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise ExportError.naming(
                "{0} {value} is not supported: choose {low} to {high}",
                "opset",
                value=self.opset,
                low=MIN_OPSET,
                high=MAX_OPSET,
            )
        given = ["profile"] * (self.profile is not None) + ["precision"] * (
            self.precision not in (AUTO, "fp32")
        )
        if self.engine != "trt" and given:
            said = " and ".join(
                f"{{{i}}}" + (" {precision}" if p == "precision" else "") for i, p in enumerate(given)
            )
            raise ExportError.naming(
                said + f" set the TensorRT engine; add {{{len(given)}}} trt or drop them",
                *given,
                "engine",
                precision=self.precision,
            )
        if self.calibration_method not in CALIBRATION_METHODS:
            raise QuantizeError(
                f"unknown calibration method {self.calibration_method!r}: choose one of "
                f"{', '.join(CALIBRATION_METHODS)}"
            )
        if not 0.0 <= self.min_agreement <= 1.0:
            raise QuantizeError.naming(
                "{0} must be between 0 and 1, got {value}", "min_agreement", value=self.min_agreement
            )
        self._refuse_ignored()
        spec = self.quantization
        if spec is not None and not spec.static and self.engine == "trt":
            raise QuantizeError.naming(
                "{0} int8-dynamic is for ONNX Runtime only (TensorRT takes no dynamic quantization); "
                "use {0} int8 with {1} trt",
                "quantize",
                "engine",
            )
        if spec is not None and self.precision not in (AUTO, "fp32"):
            raise QuantizeError.naming(
                "{0} {mode} sets the precision itself: drop {1} {precision}",
                "quantize",
                "precision",
                mode=spec.mode,
                precision=self.precision,
            )
        if self.precision == AUTO:  # TensorRT runs 2:4 kernels in FP16/BF16/INT8 only, never in FP32
            fp16 = self.engine == "trt" and spec is None
            object.__setattr__(self, "precision", "fp16" if fp16 else "fp32")

    def _refuse_ignored(self) -> None:
        """Quantization options that would be silently ignored: any of them without ``quantize``, and
        the calibration ones (static int8's) with int8-dynamic, as train refuses its method's options."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        calibration = ("calibration_rows", "calibration_method", "calibration_seed", "smooth_alpha")
        changed = [n for n in (*calibration, "min_agreement") if getattr(self, n) != defaults[n]]
        if self.quantize is None and changed:
            n = len(changed)
            text = f" with {{{n}}}; add {{{n}}} int8 or drop them"
            raise QuantizeError.naming(_only_apply(changed) + text, *changed, "quantize")
        changed = [n for n in changed if n in calibration]
        if self.quantize == "int8-dynamic" and changed:
            text = f" to {{{len(changed)}}} int8 (int8-dynamic calibrates nothing); drop them"
            raise QuantizeError.naming(_only_apply(changed) + text, *changed, "quantize")

    @property
    def quantization(self) -> QuantizeSpec | None:
        """The quantization asked for, validated (None: FP32 ONNX)."""
        if self.quantize is None:
            return None
        return QuantizeSpec(
            self.quantize,
            self.calibration_rows,
            self.calibration_method,
            self.calibration_seed,
            self.smooth_alpha,
        )


def _only_apply(names: list[str]) -> str:
    """``{0}, {1} only apply`` (``{0} only applies``): a template naming the parameters ``names``."""
    fields = ", ".join(f"{{{i}}}" for i in range(len(names)))
    return f"{fields} only {'applies' if len(names) == 1 else 'apply'}"
