"""The TensorRT runner: an export's ``model.engine`` through TensorRT's Python API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.bench.backends import Feed, Runner, RunnerFailed
from nxm_deploy.bench.sources import ModelSource

__all__ = ["TrtRunner"]


class TrtRunner(Runner):
    """The export's ``model.engine`` through TensorRT's Python API (TensorRT 10+ tensor API:
    ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3`` on a CUDA stream), with device
    buffers from PyTorch. Needs TensorRT and an NVIDIA GPU."""

    backend = "trt"

    def __init__(self, source: ModelSource) -> None:
        from nxm_deploy.export.trt import TensorRTUnavailableError, trt_unavailable_reason

        reason = trt_unavailable_reason()
        if reason:
            raise TensorRTUnavailableError(f"--backend trt cannot run here: {reason}")
        import tensorrt as trt
        import torch

        self.trt, self.torch, self.role = trt, torch, source.role
        self.section = source.tensorrt
        engine_path = source.path / str(self.section.get("engine") or "model.engine")
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RunnerFailed(
                f"{source.label}: TensorRT cannot load {engine_path} (built by another TensorRT version "
                "or for another GPU?); rebuild it with the export's build_engine.sh"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        self.input_names = tuple(inputs)
        self.output = "logits" if "logits" in outputs else outputs[0]
        lo, _opt, hi = self.engine.get_tensor_profile_shape(inputs[0], 0)
        self.limits = ((int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1])))
        self.stream = torch.cuda.Stream()
        self._bound: object | None = None

    def _dtype(self, name: str) -> Any:
        trt, torch = self.trt, self.torch
        table = {
            trt.int64: torch.int64,
            trt.int32: torch.int32,
            trt.float32: torch.float32,
            trt.float16: torch.float16,
            trt.bool: torch.bool,
        }
        return table[self.engine.get_tensor_dtype(name)]

    def _prepare(self, feed: Feed) -> tuple[Callable[[], None], Any]:
        """A call that runs the engine on ``feed`` (copied to the GPU once), and its output buffer."""
        arrays = self._select(feed)
        batch, seq = next(iter(arrays.values())).shape
        self.check_shape(batch, seq)
        torch, ctx, stream = self.torch, self.context, self.stream
        tensors = {
            n: torch.from_numpy(a).to("cuda", dtype=self._dtype(n)).contiguous() for n, a in arrays.items()
        }
        for name, t in tensors.items():
            ctx.set_input_shape(name, tuple(t.shape))
        out_shape = tuple(ctx.get_tensor_shape(self.output))
        out = torch.empty(out_shape, dtype=self._dtype(self.output), device="cuda")
        token = object()

        def bind() -> None:
            for name, t in tensors.items():
                ctx.set_input_shape(name, tuple(t.shape))
                ctx.set_tensor_address(name, t.data_ptr())
            ctx.set_tensor_address(self.output, out.data_ptr())
            self._bound = token

        def call() -> None:
            if self._bound is not token:  # another staged input used the context since
                bind()
            if not ctx.execute_async_v3(stream.cuda_stream):
                raise RunnerFailed(f"--{self.role}: TensorRT failed to run a {batch}x{seq} input")
            stream.synchronize()

        torch.cuda.synchronize()  # the copies above ran on the default stream
        call()
        return call, out

    def stage(self, feed: Feed) -> Callable[[], None]:
        return self._prepare(feed)[0]

    def predict(self, feed: Feed) -> np.ndarray:
        return self._prepare(feed)[1].float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        picked = list(self.section.get("sparse_layers") or [])
        eligible = list(self.section.get("eligible_layers") or [])
        if self.role == "dense":
            sparse, detail = False, "dense engine"
        elif picked:
            sparse = True
            detail = (
                f"TensorRT picked sparse kernels for {len(picked)} of {len(eligible)} eligible layers "
                "(the export's build log)"
            )
        else:
            sparse = False
            detail = (
                "TensorRT picked no sparse kernel for this engine (its build log lists none); "
                "expect a ratio near 1.0"
            )
        return {
            "runtime": "tensorrt",
            "version": str(self.trt.__version__),
            "provider": "engine",
            "device": self.torch.cuda.get_device_name(0),
            "precision": self.section.get("precision"),
            "threads": None,
            "sparse_kernels": sparse,
            "sparse_detail": detail,
            "profile": {"min": list(self.limits[0]), "max": list(self.limits[1])} if self.limits else None,
        }
