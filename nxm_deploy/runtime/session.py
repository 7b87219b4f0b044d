"""One model on one runtime, behind one interface that ``Predictor`` and ``bench`` share.

    session = OrtSession(Path("exports/rte-admm/model.onnx"), threads=None)
    logits = session.run({"input_ids": ids, "attention_mask": mask})   # float32 (batch, outputs)
    call = session.stage(feed)   # inputs placed where the runtime reads them (bench's timed call)
    call()                       # one inference; returns when the result is ready

Backends, one module each: ONNX Runtime on its CPU execution provider (``ort_session.OrtSession``),
TensorRT engines (``trt_session.TrtSession``) and PyTorch eager on a run directory
(``torch_session.TorchSession``, bench only), imported when chosen; ``predictor.open_session``
opens the one an export directory asks for. ``stage`` does the one-off work (dtype conversion, copies to the
GPU, output buffers) so that the timed call holds only the inference; on CUDA the call synchronises
before it returns. ``run`` is safe to call from several threads at once on every backend.

Sparse kernels. ONNX Runtime's CPU provider and PyTorch on CPU have none: a 2:4 model runs the same
dense GEMMs as the dense one. ``info()`` says which case holds, in words (``sparse_detail``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import BackendUnavailableError, ExportDirError, Given, InferenceError
from nxm_deploy.runtime.availability import trt_unavailable_reason

__all__ = ["ANY_BATCH", "Feed", "Session", "ShapeLimits", "check_io", "first_line", "require_tensorrt"]

Feed = Mapping[str, np.ndarray]
ShapeLimits = tuple[tuple[int, int], tuple[int, int]]
"""((min batch, min sequence), (max batch, max sequence)) a session accepts: a TensorRT engine's
optimisation profile, or PyTorch's position limit (checked before the model runs: on CUDA a position
index out of range is a device-side assert that ends the process)."""
ANY_BATCH = 2**31 - 1


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class Session(ABC):
    """One model on one runtime. ``label`` names the model in error lines (a path, or bench's
    ``sparse DIR``: a :class:`~nxm_deploy.errors.Given`, ``--sparse DIR`` on the command line)."""

    backend: str
    label: str | Given
    input_names: tuple[str, ...]
    output: str
    limits: ShapeLimits | None = None

    @abstractmethod
    def stage(self, feed: Feed) -> Callable[[], None]:
        """Prepare ``feed`` (token arrays ``[batch, sequence]``) and return a call that runs once."""

    @abstractmethod
    def run(self, feed: Feed) -> np.ndarray:
        """Logits, float32 ``(batch, outputs)``, for int64 ``(batch, sequence)`` token inputs."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """``backend``, ``runtime``, ``version``, ``provider``, ``device``, ``precision``,
        ``threads``, ``sparse_kernels`` and ``sparse_detail``."""

    def check_shape(self, batch: int, seq: int) -> None:
        """Refuse a shape outside ``limits`` with one line, before the runtime sees it."""
        if self.limits is None:
            return
        (b0, s0), (b1, s1) = self.limits
        if not (b0 <= batch <= b1 and s0 <= seq <= s1):
            accepted = f"sequence {s0} to {s1}" + ("" if b1 == ANY_BATCH else f", batch {b0} to {b1}")
            raise InferenceError.naming(
                "{label}: shape {batch}x{seq} is outside what the {backend} model accepts ({accepted}); "
                "use shapes inside it",
                label=self.label,
                batch=batch,
                seq=seq,
                backend=self.backend,
                accepted=accepted,
            )

    def _select(self, feed: Feed, dtypes: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """The model's inputs from ``feed``, contiguous, int64 (or the engine's own types)."""
        missing = [n for n in self.input_names if n not in feed]
        if missing:
            raise InferenceError.naming(
                "{label}: the model needs inputs {missing} that the feed lacks",
                label=self.label,
                missing=missing,
            )
        types = dtypes or {}
        return {n: np.ascontiguousarray(feed[n], dtype=types.get(n, np.int64)) for n in self.input_names}


def check_io(path: Path, inputs: list[str], outputs: list[str], want_inputs: tuple[str, ...] | None,
             want_output: str | None) -> tuple[tuple[str, ...], str]:  # fmt: skip
    """The input names and the output a model file offers, checked against what its manifest names."""
    if want_inputs is not None and sorted(inputs) != sorted(want_inputs):
        raise ExportDirError(
            f"{path} takes inputs {inputs}, but export.json names {list(want_inputs)}; export again"
        )
    output = want_output or ("logits" if "logits" in outputs else outputs[0])
    if output not in outputs:
        raise ExportDirError(f"{path} has outputs {outputs}, not {output!r}; export again")
    return tuple(want_inputs or inputs), output


def require_tensorrt(label: str | Given = "backend 'trt'") -> None:
    """Raise :class:`BackendUnavailableError` (exit 3) where TensorRT or an NVIDIA GPU is missing;
    ``label`` names what needs it (``Given("backend", "trt")``: ``--backend trt`` on the command line)."""
    reason = trt_unavailable_reason()
    if reason:
        raise BackendUnavailableError.naming("{label} cannot run here: {reason}", label=label, reason=reason)
