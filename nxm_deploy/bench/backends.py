"""Runtimes behind one interface: ONNX Runtime (CPU), PyTorch (CPU or CUDA), TensorRT engines.
The interface and the ONNX Runtime runner live here; ``torch_backend`` and ``trt_backend`` hold the
other two (imported only when chosen).

    runner = open_runner("ort", source, threads=2)
    call = runner.stage(feed)        # inputs placed where the runtime reads them
    call()                           # one inference; returns when the result is ready
    logits = runner.predict(feed)    # (batch, num_labels) float32, for accuracy

``stage`` does the one-off work (dtype conversion, copies to the GPU, output buffers) so that the
timed ``call`` holds only the inference. On CUDA, ``call`` synchronises before it returns.

Sparse kernels. ONNX Runtime's CPU provider and PyTorch on CPU have none: a 2:4 model runs the same
dense GEMMs as the dense one. PyTorch on CUDA swaps the sparse model's selected weights for
``torch.sparse.to_sparse_semi_structured`` tensors (fp16; cuSPARSELt where PyTorch has it, else
CUTLASS); the dense model runs in fp16 as well, so the two differ only in the kernels. TensorRT
engines use sparse tensor cores where the engine was built with sparse weights allowed (the
export's build log says for which layers). ``Runner.info`` says which case holds, in words.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from nxm_deploy.bench.sources import ModelSource
from nxm_deploy.errors import UserError

__all__ = [
    "ORT_CPU_NOTE",
    "TORCH_CPU_NOTE",
    "Runner",
    "RunnerFailed",
    "ShapeLimits",
    "open_runner",
    "torch_threads",
]

ORT_CPU_NOTE = (
    "ONNX Runtime on CPU has no sparse kernels: the sparse model runs the same dense GEMMs; "
    "expect a ratio near 1.0."
)
TORCH_CPU_NOTE = (
    "PyTorch on CPU has no 2:4 sparse kernels: the sparse model runs the same dense GEMMs (its zeros "
    "are multiplied like any other weight); expect a ratio near 1.0."
)

Feed = Mapping[str, np.ndarray]
ShapeLimits = tuple[tuple[int, int], tuple[int, int]]
"""((min batch, min sequence), (max batch, max sequence)) a runner accepts: a TensorRT engine's
optimisation profile, or PyTorch's position limit (checked before the model runs: on CUDA a position
index out of range is a device-side assert that ends the process)."""
ANY_BATCH = 2**31 - 1


class RunnerFailed(UserError):
    """The runtime refused an input (a shape outside the engine's profile, a sequence longer than
    the model's position limit, a broken model file)."""


class Runner(ABC):
    """One model on one runtime."""

    backend: str
    role: str
    input_names: tuple[str, ...]
    limits: ShapeLimits | None = None

    @abstractmethod
    def stage(self, feed: Feed) -> Callable[[], None]:
        """Prepare ``feed`` (token arrays ``[batch, sequence]``) and return a call that runs once."""

    @abstractmethod
    def predict(self, feed: Feed) -> np.ndarray:
        """Logits ``[batch, num_labels]`` as float32 numpy."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Runtime, version, device, precision, threads, ``sparse_kernels`` and ``sparse_detail``."""

    def check_shape(self, batch: int, seq: int) -> None:
        if self.limits is None:
            return
        (b0, s0), (b1, s1) = self.limits
        if not (b0 <= batch <= b1 and s0 <= seq <= s1):
            accepted = f"sequence {s0} to {s1}" + ("" if b1 == ANY_BATCH else f", batch {b0} to {b1}")
            raise RunnerFailed(
                f"--{self.role}: shape {batch}x{seq} is outside what the {self.backend} model accepts "
                f"({accepted}); choose --batch-sizes/--seq-lens inside it"
            )

    def _select(self, feed: Feed) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feed]
        if missing:
            raise RunnerFailed(
                f"--{self.role}: the model needs inputs {missing} that the tokenizer does not give"
            )
        return {n: np.ascontiguousarray(feed[n], dtype=np.int64) for n in self.input_names}


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# ---- ONNX Runtime ------------------------------------------------------------------------------


class OrtRunner(Runner):
    """``model.onnx`` on ONNX Runtime's CPU execution provider.

    One session per model, sequential execution, ``intra_op_num_threads=threads`` (ONNX Runtime's
    default, one thread per physical core, when None), and thread spinning off
    (``session.intra_op.allow_spinning=0``): the two sessions have separate thread pools, and a pool
    that spins after its run would steal the cores of the other model's next run.
    """

    backend = "ort"

    def __init__(self, source: ModelSource, threads: int | None) -> None:
        import onnxruntime as ort

        self.role = source.role
        self.threads = threads
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(source.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except _ort_errors() as exc:
            raise RunnerFailed(
                f"{source.label}: ONNX Runtime cannot load {source.onnx_path}: {first_line(exc)}"
            ) from exc
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = "logits" if "logits" in outputs else outputs[0]

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return self.session.run([self.output], feed)[0]
        except _ort_errors() as exc:
            shape = "x".join(map(str, next(iter(feed.values())).shape))
            raise RunnerFailed(
                f"--{self.role}: ONNX Runtime failed on a {shape} input: {first_line(exc)}"
            ) from exc

    def stage(self, feed: Feed) -> Callable[[], None]:
        arrays = self._select(feed)
        run, out = self.session.run, [self.output]

        def call() -> None:
            run(out, arrays)

        self._run(arrays)  # fail here, with a clear line, rather than inside the timing loop
        return call

    def predict(self, feed: Feed) -> np.ndarray:
        return np.asarray(self._run(self._select(feed)), dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {
            "runtime": "onnxruntime",
            "version": _version("onnxruntime"),
            "provider": "CPUExecutionProvider",
            "device": "cpu",
            "precision": "fp32",
            "threads": self.threads,
            "sparse_kernels": False,
            "sparse_detail": ORT_CPU_NOTE,
        }


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NotImplemented")
    found = tuple(getattr(state, n) for n in names if hasattr(state, n))
    return (*found, RuntimeError, ValueError)


def open_runner(backend: str, source: ModelSource, tokenizer: Any, threads: int | None) -> Runner:
    """The runner of ``backend`` (``ort``, ``torch``, ``trt``) for one model."""
    if backend == "ort":
        return OrtRunner(source, threads)
    if backend == "torch":
        from nxm_deploy.bench.torch_backend import TorchRunner

        return TorchRunner(source, tokenizer)
    if backend == "trt":
        from nxm_deploy.bench.trt_backend import TrtRunner

        return TrtRunner(source)
    raise UserError(f"unknown backend {backend!r}")


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Set PyTorch's intra-op threads for the duration (nothing when None)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
