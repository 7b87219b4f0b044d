"""What a quantized weight holds: the integer offsets from its zero point, which are zero exactly where
the quantized weight is zero.

    q = Quantization(scale, zero_point, axis=1)   # a DequantizeLinear's (or QuantizeLinear's) parameters
    offsets(int8_weight, q, quantizes=False)       # int8 initializer -> DQ:  w - zero_point
    offsets(fp32_weight, q, quantizes=True)        # fp32 -> Q -> DQ: saturate(rint(w / s) + zp) - zp

A weight stored as INT8 (or UINT8) behind a ``DequantizeLinear`` is zero where it equals the zero point
(``0`` for symmetric INT8, but any value in general), so the N:M check counts those values as zeros.
A float weight behind a ``QuantizeLinear -> DequantizeLinear`` pair is what the runtime quantizes when
it folds the pair (TensorRT does, so does ONNX Runtime's constant folding), so the check quantizes it
the same way (ONNX ``QuantizeLinear``: round half to even, then saturate to the zero point's type):
a pruned weight stays exactly zero, and a weight small enough to round to the zero point counts as a
zero too, as it does in the engine.

``axis`` is the axis of the tensor at the Q/DQ input along which per-channel parameters run; per-tensor
parameters (scalars) have none. Blocked quantization (``block_size``, scales of rank 2) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nxm_deploy.errors import UserError

__all__ = ["Quantization", "offsets"]

_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255),
           np.dtype(np.int16): (-32768, 32767), np.dtype(np.uint16): (0, 65535)}  # fmt: skip


@dataclass(frozen=True)
class Quantization:
    """A ``QuantizeLinear``/``DequantizeLinear``'s parameters. ``zero_point`` None means 0 of type
    uint8 (the ONNX default); ``axis`` is None for per-tensor parameters."""

    scale: np.ndarray
    zero_point: np.ndarray | None
    axis: int | None

    @property
    def int_type(self) -> np.dtype:
        return self.zero_point.dtype if self.zero_point is not None else np.dtype(np.uint8)

    def _along(self, values: np.ndarray, rank: int, what: str) -> np.ndarray:
        """``values`` (a scalar or 1-D per-channel array) shaped to broadcast against a rank-``rank``
        tensor."""
        values = np.asarray(values)
        if values.ndim == 0 or values.size == 1:
            return values.reshape(())
        if values.ndim != 1 or self.axis is None:
            raise UserError(
                f"blocked or multi-axis quantization ({what} of shape {list(values.shape)}) is not supported "
                "by the N:M check"
            )
        shape = [1] * rank
        shape[self.axis % rank] = values.size
        return values.reshape(shape)


def offsets(stored: np.ndarray, q: Quantization, quantizes: bool) -> np.ndarray:
    """Integer offsets from the zero point, of the shape of ``stored`` (int32): zero exactly where the
    quantized weight is. ``quantizes``: ``stored`` is float and passes a QuantizeLinear first."""
    rank = stored.ndim
    zp = q._along(q.zero_point if q.zero_point is not None else 0, rank, "zero point").astype(np.int64)
    if not quantizes:
        if stored.dtype.kind not in "iu":
            raise UserError(f"a DequantizeLinear weight of type {stored.dtype} is not an integer tensor")
        return (stored.astype(np.int64) - zp).astype(np.int32)
    lo, hi = _RANGES.get(q.int_type, (None, None))
    if lo is None:  # float8 and other types: no integer offsets; keep the values themselves
        return stored
    scale = q._along(q.scale, rank, "scale").astype(np.float64)
    quantized = np.clip(np.rint(stored.astype(np.float64) / scale) + zp, lo, hi)
    return (quantized - zp).astype(np.int32)
