"""Execution backends behind one small interface: ONNX Runtime (``model.onnx``) and TensorRT
(``model.engine``).

    session = open_session("ort", export, threads=None)
    logits = session.run({"input_ids": ids, "attention_mask": mask})   # float32 (batch, labels)

Both are safe to call from several threads at once:

- ONNX Runtime: ``InferenceSession.run`` is thread-safe; every caller shares one session (one copy
  of the weights) and its intra-op thread pool. Spinning is off, so idle pool threads do not steal
  the cores that other callers tokenize on.
- TensorRT: an ``IExecutionContext`` holds per-inference state (input shapes, tensor addresses)
  and must not be used by two threads at once. Each call checks a (context, CUDA stream) pair out
  of a :class:`~nxm_deploy.runtime.pool.Pool`, so concurrent callers run on separate contexts and
  streams, and the pool grows to the peak concurrency. The engine (weights) is shared. Device
  buffers come from PyTorch (a dependency already); TensorRT 10/11's tensor API does the rest:
  ``set_input_shape`` and ``set_tensor_address`` per tensor name, then ``execute_async_v3`` on the
  context's stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nxm_deploy.runtime.errors import BackendUnavailableError, ExportDirError, InferenceError
from nxm_deploy.runtime.facts import ExportDir
from nxm_deploy.runtime.pool import Pool

__all__ = ["OrtSession", "Session", "ShapeLimits", "TrtSession", "open_session", "trt_unavailable"]

ShapeLimits = tuple[tuple[int, int], tuple[int, int]]
"""((min batch, min sequence), (max batch, max sequence)) an engine's optimisation profile allows."""


class Session(Protocol):
    backend: str
    input_names: tuple[str, ...]
    limits: ShapeLimits | None

    def run(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Logits, float32 ``(batch, outputs)``, for int64 ``(batch, sequence)`` token inputs."""
        ...

    def info(self) -> dict[str, Any]: ...


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _ort_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's own exception types (pybind classes that derive from Exception only)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("EPFail", "Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile")
    names += ("NotImplemented", "RuntimeException")
    return (*(getattr(state, n) for n in names if hasattr(state, n)), RuntimeError, ValueError)


def _check_inputs(path: Path, got: list[str], wanted: tuple[str, ...]) -> None:
    if sorted(got) != sorted(wanted):
        raise ExportDirError(f"{path} takes inputs {got}, but export.json names {list(wanted)}; export again")


class OrtSession:
    """``model.onnx`` on ONNX Runtime's CPU execution provider, shared by every calling thread."""

    backend = "ort"
    limits: ShapeLimits | None = None

    def __init__(self, path: Path, input_names: tuple[str, ...], output: str, threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except _ort_errors() as exc:
            raise ExportDirError(f"ONNX Runtime cannot load {path}: {_first_line(exc)}") from exc
        _check_inputs(path, [i.name for i in self.session.get_inputs()], input_names)
        outputs = [o.name for o in self.session.get_outputs()]
        if output not in outputs:
            raise ExportDirError(f"{path} has outputs {outputs}, not {output!r}; export again")
        self.input_names, self.output, self.threads = input_names, output, threads

    def run(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        arrays = {n: np.ascontiguousarray(feed[n], dtype=np.int64) for n in self.input_names}
        try:
            (logits,) = self.session.run([self.output], arrays)
        except _ort_errors() as exc:  # an input ONNX Runtime refuses
            shape = "x".join(map(str, arrays["input_ids"].shape))
            raise InferenceError(f"ONNX Runtime failed on a {shape} input: {_first_line(exc)}") from exc
        return np.asarray(logits, dtype=np.float32)

    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "backend": self.backend,
            "runtime": f"onnxruntime {ort.__version__}",
            "device": "cpu",
            "threads": self.threads,
        }


def trt_unavailable() -> str | None:
    """Why the TensorRT backend cannot run here (no ``tensorrt``, no NVIDIA GPU), or None."""
    from nxm_deploy.export.trt import trt_unavailable_reason

    return trt_unavailable_reason()


class TrtSession:
    """``model.engine`` through TensorRT's Python API; one execution context per concurrent caller."""

    backend = "trt"

    def __init__(self, path: Path, input_names: tuple[str, ...], output: str) -> None:
        reason = trt_unavailable()
        if reason:
            raise BackendUnavailableError(f"backend 'trt' cannot run here: {reason}")
        import tensorrt as trt
        import torch

        self.trt, self.torch = trt, torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ExportDirError(
                f"TensorRT {trt.__version__} cannot load {path} (an engine only loads on the TensorRT "
                "version and GPU it was built with); rebuild it with the export's build_engine.sh"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        _check_inputs(path, inputs, input_names)
        if output not in names:
            raise ExportDirError(f"{path} has no output {output!r} (tensors: {names}); rebuild the engine")
        self.input_names, self.output = input_names, output
        # One optimisation profile (index 0) covers every token input alike.
        lo, _opt, hi = self.engine.get_tensor_profile_shape(input_names[0], 0)
        self.limits: ShapeLimits | None = ((int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1])))
        # numpy dtype of each I/O tensor (int64 or int32 token ids; float32 or float16 logits)
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.device = torch.cuda.current_device()
        self._contexts: Pool[tuple[Any, Any]] = Pool(self._new_context)

    def _new_context(self) -> tuple[Any, Any]:
        context = self.engine.create_execution_context()
        if context is None:
            raise InferenceError("TensorRT could not create an execution context (out of GPU memory?)")
        return context, self.torch.cuda.Stream(device=self.device)

    def _torch_dtype(self, name: str) -> Any:
        return self.torch.from_numpy(np.empty(0, dtype=self.dtypes[name])).dtype

    def run(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        torch = self.torch
        arrays = {n: np.ascontiguousarray(feed[n], dtype=self.dtypes[n]) for n in self.input_names}
        batch, seq = arrays[self.input_names[0]].shape
        (b0, s0), (b1, s1) = self.limits or ((1, 1), (batch, seq))
        if not (b0 <= batch <= b1 and s0 <= seq <= s1):
            raise InferenceError(
                f"shape {batch}x{seq} is outside the engine's profile (batch {b0}-{b1}, sequence {s0}-{s1})"
            )
        with self._contexts.checkout() as (context, stream), torch.cuda.stream(stream):
            # The copies, the inference and the copy back are ordered on this context's own stream;
            # the tensors stay referenced until the stream has finished with them.
            tensors = {n: torch.from_numpy(a).to(self.device, non_blocking=True) for n, a in arrays.items()}
            for name, tensor in tensors.items():
                context.set_input_shape(name, tuple(tensor.shape))
                context.set_tensor_address(name, tensor.data_ptr())
            out_shape = tuple(context.get_tensor_shape(self.output))
            out = torch.empty(out_shape, dtype=self._torch_dtype(self.output), device=self.device)
            context.set_tensor_address(self.output, out.data_ptr())
            ok = context.execute_async_v3(stream.cuda_stream)
            host = out.float().to("cpu", non_blocking=False)
            stream.synchronize()
        if not ok:
            raise InferenceError(f"TensorRT failed to run a {batch}x{seq} input")
        return host.numpy()

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "runtime": f"tensorrt {self.trt.__version__}",
            "device": self.torch.cuda.get_device_name(self.device),
            "profile": {"min": list(self.limits[0]), "max": list(self.limits[1])} if self.limits else None,
            "contexts": self._contexts.created,
        }


def open_session(backend: str, export: ExportDir, threads: int | None = None) -> Session:
    """The session for ``backend`` (``"ort"`` or ``"trt"``) over ``export``'s model file."""
    facts = export.facts
    if backend == "trt":
        reason = trt_unavailable()  # before looking for the engine: the environment is the first problem
        if reason:
            raise BackendUnavailableError(f"backend 'trt' cannot run here: {reason}")
        return TrtSession(export.model_file("trt"), facts.input_names, facts.output_name)
    path = export.model_file(backend)  # refuses an unknown backend
    return OrtSession(path, facts.input_names, facts.output_name, threads)
