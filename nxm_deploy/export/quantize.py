"""INT8 exports: ONNX Runtime's quantizer on the FP32 ONNX, calibrated on the run's own training rows.

    rows = calibration_rows(RunManifest.read("runs/sst2-admm"), data_dir=None, n=512, seed=0)
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
  re-quantized, and the residual stream and every other reader keep FP32 (:func:`_own_pairs`). Each
  quantized input has a Q -> DQ pair of its own, so ONNX Runtime's CPU provider runs every weight
  product as ``MatMulIntegerToFloat`` (UINT8 x INT8 with VNNI) instead of dequantizing the weights and
  multiplying in FP32, which made a shared-Q graph slower than FP32.
- ``int8-dynamic``: ``quantize_dynamic`` with its defaults (INT8 weights, one scale per tensor,
  activations quantized per call): the baseline users reach for first. ONNX Runtime only, not
  TensorRT.

Calibration rows: the run's training rows exactly as ``train`` used them (the same file, the same
fixed subset), proven by the sha256 ``nxm.json`` recorded (``data.train_sha256``), then ``n`` of them
drawn with ``seed``; never dev rows, which score the result. A run whose training rows cannot be read,
or whose file now holds other rows, is refused in one line.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nxm_deploy.errors import DataError, ExportError

if TYPE_CHECKING:
    from nxm_deploy.manifest import RunManifest

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_CALIBRATION_ROWS",
    "DEFAULT_SMOOTH_ALPHA",
    "QUANTIZE_MODES",
    "CalibrationRows",
    "QuantizeError",
    "QuantizeSpec",
    "calibration_rows",
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
            raise QuantizeError(
                f"unknown --quantize {self.mode!r}: choose one of {', '.join(QUANTIZE_MODES)}"
            )
        if self.calibration_method not in CALIBRATION_METHODS:
            raise QuantizeError(
                f"unknown calibration method {self.calibration_method!r}: choose one of "
                f"{', '.join(CALIBRATION_METHODS)}"
            )
        if not 0.0 <= self.smooth_alpha < 1.0:
            raise QuantizeError(
                f"--smooth-alpha must be at least 0 (0: no SmoothQuant) and below 1, got {self.smooth_alpha}"
            )
        if self.calibration_rows < 1:
            raise QuantizeError(f"--calibration-rows must be a positive integer, got {self.calibration_rows}")

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


def calibration_rows(run: RunManifest, data_dir: str | Path | None, n: int, seed: int) -> CalibrationRows:
    """``n`` rows (all when fewer) of the run's training rows, drawn with ``seed`` (module docstring)."""
    from nxm_deploy.data import get_task, load_split
    from nxm_deploy.data.encode import rows_fingerprint, subset_indices

    data = run.body.get("data") if isinstance(run.body.get("data"), dict) else {}
    recorded = data.get("train_sha256")
    where = f"cannot calibrate INT8 on the training rows of {run.path}"
    if not recorded or not run.facts.task:
        raise QuantizeError(f"{where}: its nxm.json records no training rows (data.train_sha256)")
    task = get_task(run.facts.task)
    try:
        split = load_split(task, task.train_split, data_dir)
    except DataError as exc:
        raise QuantizeError(f"{where}: they are gone ({exc}); pass --data-dir with the run's data") from exc
    limit = (run.body.get("hyperparameters") or {}).get("max_train_samples")
    idx = subset_indices(len(split), int(limit) if limit else None)
    a = [split.texts_a[i] for i in idx]
    b = [split.texts_b[i] for i in idx] if split.texts_b is not None else None
    y = [split.labels[i] for i in idx]
    if rows_fingerprint(a, b, y) != recorded:
        raise QuantizeError(
            f"{where}: they are gone: {split.source} no longer holds the rows the run trained on (sha256 "
            f"differs from nxm.json's {recorded[:12]}); pass --data-dir with the run's data"
        )
    pick = sorted(random.Random(seed).sample(range(len(a)), min(n, len(a))))
    pa = [a[i] for i in pick]
    pb = [b[i] for i in pick] if b is not None else None
    digest = rows_fingerprint(pa, pb, [y[i] for i in pick])
    return CalibrationRows(pa, pb, split.source, digest, recorded, len(a), seed)


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
        "DedicatedQDQPair": True,  # one Q -> DQ per reader: see _own_pairs
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


def _own_pairs(model: Any) -> dict[str, int]:
    """Rewrite ``quantize_static``'s QDQ graph (made with ``DedicatedQDQPair``) so that only the inputs of
    quantized MatMul/Gemm are quantized, each through a Q -> DQ pair of its own.

    The quantizer puts one Q -> DQ on a tensor and lets every reader see the dequantized value, so the
    residual Add after a LayerNorm also reads the INT8-rounded stream (an error the FP32 model never
    sees, and BERT's residual stream has the outliers that make it large). Here a reader that is not a
    quantized MatMul/Gemm is given the float tensor back and its pair removed. A pair feeding a
    MatMul/Gemm keeps one Q per DQ: ONNX Runtime turns an INT8 Q -> DQ pair into UINT8 (its fast x86
    kernels, ``QDQS8ToU8Transformer``) only when the Q has exactly one DQ reader, and a Q shared by the
    Q, K and V projections would otherwise leave them as float MatMuls over dequantized weights.
    TensorRT reads the same graph: the values (scales, zero points 0, INT8) are unchanged.
    Returns counts of what changed."""
    import onnx

    nodes = list(model.graph.node)
    by_output = {o: n for n in nodes for o in n.output}
    readers: dict[str, list[Any]] = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    inits = {i.name for i in model.graph.initializer}

    def quantized_reader(dq: Any, reader: Any) -> bool:
        # a MatMul/Gemm whose weight (input 1) is quantized too: the node ONNX Runtime fuses
        if reader.op_type not in ("MatMul", "Gemm") or len(reader.input) < 2:
            return False
        weight = by_output.get(reader.input[1])
        return weight is not None and weight.op_type == "DequantizeLinear" and weight.input[0] in inits

    counts = {"float_reads_restored": 0, "pairs_removed": 0, "q_split": 0}
    drop: set[int] = set()
    for dq in nodes:
        if dq.op_type != "DequantizeLinear" or dq.input[0] in inits:
            continue
        q = by_output.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        source = q.input[0]
        keep = False
        for reader in readers.get(dq.output[0], []):
            if quantized_reader(dq, reader):
                keep = True
                continue
            for i, name in enumerate(reader.input):
                if name == dq.output[0]:
                    reader.input[i] = source
                    counts["float_reads_restored"] += 1
        if not keep and dq.output[0] not in {o.name for o in model.graph.output}:
            drop.add(id(dq))
            counts["pairs_removed"] += 1
    kept = [n for n in nodes if id(n) not in drop]
    # a Q whose every DQ is gone goes too; a Q read by several DQs is split, one copy per DQ
    dq_readers: dict[str, list[Any]] = {}
    for n in kept:
        if n.op_type == "DequantizeLinear":
            dq_readers.setdefault(n.input[0], []).append(n)
    other_readers = {name for n in kept if n.op_type != "DequantizeLinear" for name in n.input}
    out_nodes: list[Any] = []
    for n in kept:
        if n.op_type != "QuantizeLinear":
            out_nodes.append(n)
            continue
        dqs = dq_readers.get(n.output[0], [])
        if not dqs and n.output[0] not in other_readers:
            continue
        out_nodes.append(n)
        for k, dq in enumerate(dqs[1:], start=2):
            clone = onnx.NodeProto()
            clone.CopyFrom(n)
            clone.name = f"{n.name}_{k}"
            clone.output[0] = f"{n.output[0]}_{k}"
            dq.input[0] = clone.output[0]
            out_nodes.append(clone)
            counts["q_split"] += 1
    _distinct_scales(model, out_nodes, counts)
    del model.graph.node[:]
    model.graph.node.extend(out_nodes)
    used = {name for n in out_nodes for name in n.input}
    unused = [i for i in model.graph.initializer if i.name not in used]
    for init in unused:
        model.graph.initializer.remove(init)
    return counts


def _activation_products(model: Any) -> list[str]:
    """Names of the MatMul nodes whose B is not a constant (attention scores and their weighted sum)."""
    inits = {i.name for i in model.graph.initializer}
    constant = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] not in inits and n.input[1] not in constant]  # fmt: skip


def _distinct_scales(model: Any, nodes: list[Any], counts: dict[str, int]) -> None:
    """Give the k-th Q -> DQ pair of one float tensor (k >= 1) its own scale, ``k`` float32 steps (ulps)
    above the calibrated one. ONNX Runtime's common-subexpression pass merges Q nodes with equal inputs,
    which would undo :func:`_own_pairs`' split (and with it the UINT8 conversion); a relative change
    of about 1e-7 keeps them apart and changes no rounding that matters."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    dq_of: dict[str, list[Any]] = {}
    for n in nodes:
        if n.op_type == "DequantizeLinear":
            dq_of.setdefault(n.input[0], []).append(n)
    seen: dict[tuple[str, str], int] = {}
    for q in nodes:
        if q.op_type != "QuantizeLinear" or q.input[1] not in inits:
            continue
        key = (q.input[0], q.input[1])
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k == 0:
            continue
        scale = numpy_helper.to_array(inits[q.input[1]]).astype(np.float32)
        for _ in range(k):
            scale = np.nextafter(scale, np.float32(np.inf), dtype=np.float32)
        name = f"{q.input[1]}_{k + 1}"
        model.graph.initializer.append(numpy_helper.from_array(scale, name))
        for dq in dq_of.get(q.output[0], []):
            if dq.input[1] == q.input[1]:
                dq.input[1] = name
        q.input[1] = name
        counts["scales_split"] = counts.get("scales_split", 0) + 1


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

    from nxm_deploy.export.smooth import smooth_onnx

    try:
        with _quiet():
            if spec.static:
                assert rows is not None
                kwargs, described = _static_settings(spec)
                source = onnx.load(str(fp32))
                kwargs["nodes_to_exclude"] = _activation_products(source)
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
                                      **_own_pairs(model)}  # fmt: skip
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
