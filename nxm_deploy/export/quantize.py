"""INT8 exports: ONNX Runtime's quantizer on the FP32 ONNX, calibrated on the run's own training rows.

    rows = calibration_rows(RunManifest.read("runs/sst2-admm"), data_dir=None, n=512, seed=0)  # export.rows
    section = quantize_onnx(Path("fp32.onnx"), Path("model.onnx"), QuantizeSpec("int8"), rows, tokenizer,
                            input_names, max_seq_len=128)

Two modes (``QUANTIZE_MODES``):

- ``int8``: static quantization, ``onnxruntime.quantization.quantize_static`` in QDQ format. Weights
  of every MatMul with a constant B and of every Gemm: INT8, symmetric, one scale per output channel
  (for MatMul B ``[K, N]`` that is axis 1, set explicitly with ``QDQOpTypePerChannelSupportToAxis``:
  the quantizer's default axis for MatMul is not the output one; Gemm B ``[N, K]`` with ``transB=1``
  keeps axis 0). Their inputs (activations): INT8, symmetric (zero point 0), ranges calibrated on
  ``n`` rows of the run's training data (``minmax``, ``entropy`` or ``percentile``). Symmetric INT8 on
  both sides is what TensorRT's Q/DQ INT8 kernels take. Only those inputs are quantized: the
  matrix products of two activations (attention scores and their weighted sum) are left out by name
  (the quantizer's ``MatMulConstBOnly`` applies to its QOperator format only), products are not
  re-quantized, and the residual stream and every other reader keep FP32 (``qdq_graph.own_pairs``). Each
  quantized input has a Q -> DQ pair of its own, so ONNX Runtime's CPU provider runs every weight
  product as ``MatMulIntegerToFloat`` (UINT8 x INT8 with VNNI) instead of dequantizing the weights and
  multiplying in FP32, which made a shared-Q graph slower than FP32.
- ``int8-dynamic``: ``quantize_dynamic`` with its defaults (INT8 weights, one scale per tensor,
  activations quantized per call): the baseline users reach for first. ONNX Runtime only, not
  TensorRT.

Calibration rows: the run's own training rows, read and proven by ``export.rows``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import ExportError

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_CALIBRATION_ROWS",
    "DEFAULT_SMOOTH_ALPHA",
    "QUANTIZE_MODES",
    "CalibrationRows",
    "QuantizeError",
    "QuantizeSpec",
    "quantize_onnx",
]

QUANTIZE_MODES = ("int8", "int8-dynamic")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIBRATION_ROWS = 512
# SmoothQuant's migration strength, chosen on held-out training rows (benchmarks/int8_alpha.py)
DEFAULT_SMOOTH_ALPHA = 0.95
_PERCENTILE = 99.999


class QuantizeError(ExportError):
    """The INT8 export cannot be made or is not good enough (one line)."""


@dataclass(frozen=True)
class QuantizeSpec:
    """How to quantize: ``mode`` one of ``QUANTIZE_MODES``; the calibration settings apply to ``int8``."""

    mode: str
    calibration_rows: int = DEFAULT_CALIBRATION_ROWS
    calibration_method: str = "minmax"
    calibration_seed: int = 0
    smooth_alpha: float = DEFAULT_SMOOTH_ALPHA  # SmoothQuant before calibration; 0 turns it off

    def __post_init__(self) -> None:
        if self.mode not in QUANTIZE_MODES:
            raise QuantizeError.naming(
                "unknown {0} {mode!r}: choose one of {choices}",
                "quantize",
                mode=self.mode,
                choices=", ".join(QUANTIZE_MODES),
            )
        if self.calibration_method not in CALIBRATION_METHODS:
            raise QuantizeError(
                f"unknown calibration method {self.calibration_method!r}: choose one of "
                f"{', '.join(CALIBRATION_METHODS)}"
            )
        if not 0.0 <= self.smooth_alpha < 1.0:
            raise QuantizeError.naming(
                "{0} must be at least 0 (0: no SmoothQuant) and below 1, got {value}",
                "smooth_alpha",
                value=self.smooth_alpha,
            )
        if self.calibration_rows < 1:
            raise QuantizeError.naming(
                "{0} must be a positive integer, got {value}", "calibration_rows", value=self.calibration_rows
            )

    @property
    def static(self) -> bool:
        return self.mode == "int8"


@dataclass(frozen=True)
class CalibrationRows:
    """Training rows to calibrate on: texts, where they came from, and their sha256 (``rows_fingerprint``)."""

    texts_a: list[str]
    texts_b: list[str] | None
    source: str
    sha256: str
    train_sha256: str  # the run's training rows, as nxm.json recorded them
    train_rows: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "split": "train",
            "source": self.source,
            "rows": len(self.texts_a),
            "of_train_rows": self.train_rows,
            "seed": self.seed,
            "sha256": self.sha256,
            "run_train_sha256": self.train_sha256,
        }


class _Reader:
    """``CalibrationDataReader``'s protocol: one row per call, padded to the run's ``max_seq_len`` (the
    histogram calibrators, entropy and percentile, stack every row's activations, so all share a shape)."""

    def __init__(
        self, rows: CalibrationRows, tokenizer: Any, input_names: Sequence[str], max_len: int
    ) -> None:
        self._items = self._feeds(rows, tokenizer, tuple(input_names), max_len)

    @staticmethod
    def _feeds(rows: CalibrationRows, tok: Any, names: tuple[str, ...], max_len: int) -> Iterator[dict]:
        for i, a in enumerate(rows.texts_a):
            b = rows.texts_b[i] if rows.texts_b is not None else None
            enc = tok(a, b, truncation=True, max_length=max_len, padding="max_length", return_tensors="np")
            yield {n: np.asarray(enc[n], dtype=np.int64) for n in names}  # each (1, s)

    def get_next(self) -> dict | None:
        return next(self._items, None)

    def __iter__(self) -> Iterator[dict]:
        return self._items


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide the quantizer's pre-processing advice, which it logs on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _static_settings(spec: QuantizeSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """quantize_static's keyword arguments, and their description for export.json."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[spec.calibration_method]  # fmt: skip
    extra: dict[str, Any] = {
        "ActivationSymmetric": True,
        "WeightSymmetric": True,
        "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
        # the products stay FP32 (bias, residual and attention read them unrounded)
        "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
        "DedicatedQDQPair": True,  # one Q -> DQ per reader: see qdq_graph.own_pairs
    }
    if spec.calibration_method == "percentile":
        extra["CalibPercentile"] = _PERCENTILE
    kwargs = dict(quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                  reduce_range=False, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                  calibrate_method=method, extra_options=extra)  # fmt: skip
    described = {
        "function": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "op_types": ["MatMul", "Gemm"],
        "weights": {"type": "int8", "symmetric": True, "per_channel": True,
                    "per_channel_axis": {"MatMul": 1, "Gemm": "0 (B is [N, K], transB=1)"}},
        "activations": {"type": "int8", "symmetric": True, "calibrated": True,
                        "quantized": "the inputs of MatMul/Gemm with constant weights, each through "
                                     "its own Q -> DQ pair; every other reader keeps FP32"},
        "reduce_range": False,
        "calibration_method": spec.calibration_method,
        "extra_options": extra,
    }  # fmt: skip
    return kwargs, described


def _copy_metadata(fp32: Any, quantized: Any) -> None:
    """Give each ``MatMulInteger`` the metadata (PyTorch module path) of the MatMul/Gemm it replaced, found
    by its weight (``W`` became ``W_quantized``), so that ``nxm-deploy check`` maps it to its layer."""
    props = {}
    for node in fp32.graph.node:
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1:
            props.setdefault(node.input[1], list(node.metadata_props))
    for node in quantized.graph.node:
        if node.op_type == "MatMulInteger" and not node.metadata_props:
            source = props.get(node.input[1].removesuffix("_quantized"))
            if source:
                node.metadata_props.extend(source)


def quantize_onnx(
    fp32: Path,
    out: Path,
    spec: QuantizeSpec,
    rows: CalibrationRows | None,
    tokenizer: Any,
    input_names: Sequence[str],
    max_seq_len: int,
) -> dict[str, Any]:
    """Quantize ``fp32`` into ``out``; return the ``"quantization"`` section of export.json (without the
    agreement, which ``export.agreement`` adds)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static

    from nxm_deploy.export.qdq_graph import activation_products, own_pairs
    from nxm_deploy.export.smooth import smooth_onnx

    try:
        with _quiet():
            if spec.static:
                assert rows is not None
                kwargs, described = _static_settings(spec)
                source = onnx.load(str(fp32))
                kwargs["nodes_to_exclude"] = activation_products(source)
                described["smoothquant"] = None
                if spec.smooth_alpha > 0:
                    feeds = _Reader(rows, tokenizer, input_names, max_seq_len)
                    described["smoothquant"] = smooth_onnx(source, feeds, spec.smooth_alpha)
                    fp32 = fp32.with_name(f".smooth-{fp32.name}")
                    onnx.save(source, str(fp32))
                reader = _Reader(rows, tokenizer, input_names, max_seq_len)
                try:
                    quantize_static(str(fp32), str(out), reader, **kwargs)
                finally:
                    if spec.smooth_alpha > 0:
                        fp32.unlink(missing_ok=True)
                model = onnx.load(str(out))
                described["graph"] = {"activation_products_left_fp32": len(kwargs["nodes_to_exclude"]),
                                      **own_pairs(model)}  # fmt: skip
                onnx.save(model, str(out))
            else:
                quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
                model = onnx.load(str(out))
                _copy_metadata(onnx.load(str(fp32), load_external_data=False), model)
                onnx.save(model, str(out))
                described = {
                    "function": "onnxruntime.quantization.quantize_dynamic",
                    "format": "QOperator (MatMulInteger, DynamicQuantizeLinear)",
                    "weights": {"type": "int8", "symmetric": True, "per_channel": False},
                    "activations": {"type": "uint8", "symmetric": False, "calibrated": False,
                                    "note": "quantized per call from its own range (DynamicQuantizeLinear)"},
                    "reduce_range": False,
                }  # fmt: skip
    except (ValueError, RuntimeError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QuantizeError(f"ONNX Runtime's quantizer failed on {fp32.name}: {first[:300]}") from exc
    return {
        "mode": spec.mode,
        "quantizer": "onnxruntime.quantization",
        "onnxruntime_version": ort.__version__,
        **described,
        "calibration": rows.to_json() if spec.static and rows is not None else None,
    }
