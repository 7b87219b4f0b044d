"""``model.engine`` through TensorRT's Python API (TensorRT 10/11 tensor API: ``set_input_shape``
and ``set_tensor_address`` per tensor name, then ``execute_async_v3`` on a CUDA stream), with device
buffers from PyTorch (a dependency already). Needs TensorRT and an NVIDIA GPU.

Threads. An ``IExecutionContext`` holds per-inference state (input shapes, tensor addresses) and
must not be used by two threads at once. Each ``run`` checks a (context, CUDA stream) pair out of a
:class:`~nxm_deploy.runtime.pool.Pool`, so concurrent callers run on separate contexts and streams,
and the pool grows to the peak concurrency; the engine (weights) is shared. A staged call (bench's
timed call) owns a context of its own, bound once to its input and output buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import ExportDirError, Given, InferenceError
from nxm_deploy.runtime.pool import Pool
from nxm_deploy.runtime.session import Feed, Session, check_io, require_tensorrt

__all__ = ["TrtSession"]


class TrtSession(Session):
    """A TensorRT engine; ``evidence`` is the export's ``tensorrt`` section (which layers TensorRT
    found eligible for sparse math and which picked a sparse kernel), for ``info``."""

    backend = "trt"

    def __init__(self, path: Path, *, input_names: tuple[str, ...] | None = None,
                 output: str | None = None, evidence: dict[str, Any] | None = None,
                 label: str | Given | None = None) -> None:  # fmt: skip
        require_tensorrt()
        import tensorrt as trt
        import torch

        self.trt, self.torch, self.label = trt, torch, label or str(path)
        self.evidence = dict(evidence or {})
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise ExportDirError(
                f"TensorRT {trt.__version__} cannot load {path} (an engine only loads on the TensorRT "
                "version and GPU it was built with); rebuild it with the export's build_engine.sh"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        self.input_names, self.output = check_io(Path(path), inputs, outputs, input_names, output)
        # One optimisation profile (index 0) covers every token input alike.
        lo, _opt, hi = self.engine.get_tensor_profile_shape(self.input_names[0], 0)
        self.limits = ((int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1])))
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

    def _bind(self, context: Any, arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], Any]:
        """Copy ``arrays`` to the GPU, set shapes and addresses on ``context``; returns the device
        tensors (keep them referenced while the context may read them) and the output buffer."""
        torch = self.torch
        tensors = {n: torch.from_numpy(a).to(self.device, non_blocking=True) for n, a in arrays.items()}
        for name, tensor in tensors.items():
            context.set_input_shape(name, tuple(tensor.shape))
            context.set_tensor_address(name, tensor.data_ptr())
        out_shape = tuple(context.get_tensor_shape(self.output))
        out = torch.empty(out_shape, dtype=self._torch_dtype(self.output), device=self.device)
        context.set_tensor_address(self.output, out.data_ptr())
        return tensors, out

    def _arrays(self, feed: Feed) -> tuple[dict[str, np.ndarray], int, int]:
        arrays = self._select(feed, self.dtypes)
        batch, seq = arrays[self.input_names[0]].shape
        self.check_shape(batch, seq)
        return arrays, batch, seq

    def run(self, feed: Feed) -> np.ndarray:
        torch = self.torch
        arrays, batch, seq = self._arrays(feed)
        with self._contexts.checkout() as (context, stream), torch.cuda.stream(stream):
            # The copies, the inference and the copy back are ordered on this context's own stream;
            # the tensors stay referenced until the stream has finished with them.
            _tensors, out = self._bind(context, arrays)
            ok = context.execute_async_v3(stream.cuda_stream)
            host = out.float().to("cpu", non_blocking=False)
            stream.synchronize()
        if not ok:
            raise InferenceError.naming(
                "{label}: TensorRT failed to run a {batch}x{seq} input",
                label=self.label,
                batch=batch,
                seq=seq,
            )
        return host.numpy()

    def stage(self, feed: Feed, sync: bool = True) -> Callable[[], None]:
        """A call that runs ``feed`` on a context and CUDA stream of its own (never the legacy default
        stream, on which TensorRT adds synchronisations to ``enqueueV3``). ``sync=False``: the call only
        enqueues, for timing with CUDA events recorded on ``call.stream``."""
        arrays, batch, seq = self._arrays(feed)
        context, stream = self._new_context()
        with self.torch.cuda.stream(stream):
            tensors, out = self._bind(context, arrays)
        stream.synchronize()

        def call() -> None:
            if not context.execute_async_v3(stream.cuda_stream):
                raise InferenceError.naming(
                    "{label}: TensorRT failed to run a {batch}x{seq} input",
                    label=self.label,
                    batch=batch,
                    seq=seq,
                )
            if sync:
                stream.synchronize()

        call.buffers = (tensors, out)  # type: ignore[attr-defined]  # alive as long as the call
        call.stream = stream  # type: ignore[attr-defined]
        call()
        stream.synchronize()
        return call

    def info(self) -> dict[str, Any]:
        picked = list(self.evidence.get("sparse_layers") or [])
        eligible = list(self.evidence.get("eligible_layers") or [])
        if picked:
            sparse = True
            detail = (
                f"TensorRT picked sparse kernels for {len(picked)} of {len(eligible)} eligible layers "
                "(the export's build log)"
            )
        elif eligible:
            sparse = False
            detail = (
                "TensorRT picked no sparse kernel for this engine (its build log lists none); "
                "expect a ratio near 1.0"
            )
        else:
            sparse, detail = False, "dense engine (no layer eligible for sparse math)"
        return {
            "backend": self.backend,
            "runtime": "tensorrt",
            "version": str(self.trt.__version__),
            "provider": "engine",
            "device": self.torch.cuda.get_device_name(self.device),
            "precision": self.evidence.get("engine_precision") or self.evidence.get("precision"),
            "threads": None,
            "sparse_kernels": sparse,
            "sparse_detail": detail,
            "profile": {"min": list(self.limits[0]), "max": list(self.limits[1])} if self.limits else None,
            "contexts": self._contexts.created,
        }
