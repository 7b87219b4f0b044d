"""``model.onnx`` on ONNX Runtime (the ``ort`` backend): its CPU provider, or with ``onnxruntime-gpu``
its CUDA or TensorRT provider (``provider="cuda"|"tensorrt"``, see :mod:`.ort_providers`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import BackendUnavailableError, ExportDirError, Given, InferenceError
from nxm_deploy.runtime.ort_providers import ort_providers, provider_name, tensorrt_options
from nxm_deploy.runtime.session import Feed, Session, check_io, first_line

__all__ = ["ORT_CPU_NOTE", "OrtSession", "ProviderFallbackError", "preload_tensorrt", "trt_engine_cache"]

ORT_CPU_NOTE = (
    "ONNX Runtime on CPU has no sparse kernels: the sparse model runs the same dense GEMMs; "
    "expect a ratio near 1.0."
)
_NOTES = {
    "cuda": "ONNX Runtime's CUDA provider runs dense GEMMs for 2:4 weights too; expect a ratio near 1.0.",
    "tensorrt": "ONNX Runtime's TensorRT provider builds engines with trt_sparsity_enable and "
    "trt_fp16_enable set: TensorRT may pick sparse-tensor-core kernels for the 2:4 layers (its verbose "
    "log says which); the precision reported is read from the built engines.",
}


def _ort_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's own exception types (pybind classes that derive from Exception only)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("EPFail", "Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile")
    names += ("NotImplemented", "RuntimeException")
    return (*(getattr(state, n) for n in names if hasattr(state, n)), RuntimeError, ValueError)


def _input_names(path: Path) -> tuple[str, ...]:
    """The graph inputs of ``model.onnx`` (its protobuf only; external weights are not read)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except (OSError, DecodeError):
        return ()  # ONNX Runtime says what is wrong with the file, in OrtSession's one line
    initializers = {t.name for t in graph.initializer}
    return tuple(i.name for i in graph.input if i.name not in initializers)


class ProviderFallbackError(BackendUnavailableError):
    """ONNX Runtime started another provider than the one asked for (it only warns when it does)."""


def trt_engine_cache(path: Path) -> Path:
    """The folder where ONNX Runtime's TensorRT provider caches the engines of ``path`` (keyed by its
    sha256 and the provider options: :func:`~nxm_deploy.runtime.ort_providers.trt_cache_dir`)."""
    return Path(tensorrt_options(_input_names(path), path)["trt_engine_cache_path"])


def preload_tensorrt() -> None:
    """Load TensorRT's (and CUDA's) libraries before a TensorRT-provider session is created, where the
    ``tensorrt`` wheel provides them: ONNX Runtime's provider ``dlopen``s ``libnvinfer`` by name and
    finds the copy already loaded, rather than failing over to CUDA for want of it on the search path."""
    import onnxruntime as ort

    try:
        import tensorrt  # noqa: F401  # its import loads libnvinfer from the wheel's own folder
    except (ImportError, OSError):
        pass  # ONNX Runtime may still find a system TensorRT; a fallback is reported, never hidden
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu >= 1.21: CUDA and cuDNN from wheels
    if preload is not None:
        try:
            preload()
        except (OSError, RuntimeError):
            pass  # the session's own load then says what is missing


class OrtSession(Session):
    """``model.onnx`` on one ONNX Runtime execution provider, shared by every calling thread.

    ``InferenceSession.run`` is thread-safe: callers share one session (one copy of the weights)
    and its intra-op thread pool (``threads``; ONNX Runtime's default, one per physical core, when
    None). Execution is sequential and spinning is off (``session.intra_op.allow_spinning=0``), so
    idle pool threads do not steal the cores that other callers, or a second session timed
    alternately with this one, run on. On ``cuda``/``tensorrt`` the staged call binds its inputs
    on the GPU once (I/O binding), so a timed call holds no host-to-device copy.
    """

    backend = "ort"

    def __init__(self, path: Path, threads: int | None = None, *,
                 input_names: tuple[str, ...] | None = None, output: str | None = None,
                 label: str | Given | None = None, provider: str = "cpu") -> None:  # fmt: skip
        import onnxruntime as ort

        inputs = _input_names(path) if provider == "tensorrt" else ()  # for TensorRT's shape profile
        providers = ort_providers(provider, inputs=inputs, model=path)  # one line when ORT lacks it
        # (the TensorRT provider's engine cache: a folder of this model's own, trt_engine_cache)
        self.label, self.threads, self.provider = label or str(path), threads, provider
        self.trt_cache: Path | None = None
        if provider == "tensorrt":
            self.trt_cache = Path(providers[0][1]["trt_engine_cache_path"])
            preload_tensorrt()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except _ort_errors() as exc:
            raise ExportDirError.naming(
                "{label}: ONNX Runtime cannot load {path}: {why}",
                label=self.label,
                path=path,
                why=first_line(exc),
            ) from exc
        started = self.session.get_providers()
        if started[0] != provider_name(provider):  # ONNX Runtime falls back to CPU with a warning only
            raise ProviderFallbackError.naming(
                "{label}: ONNX Runtime could not start {name} (it started {started}): is a GPU visible, "
                "with its CUDA/cuDNN/TensorRT libraries installed?",
                label=self.label,
                name=provider_name(provider),
                started=", ".join(started),
            )
        self.input_names, self.output = check_io(
            path,
            [i.name for i in self.session.get_inputs()],
            [o.name for o in self.session.get_outputs()],
            input_names,
            output,
        )

    def _run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        try:
            (logits,) = self.session.run([self.output], arrays)
        except _ort_errors() as exc:  # an input ONNX Runtime refuses
            shape = "x".join(map(str, next(iter(arrays.values())).shape))
            raise InferenceError.naming(
                "{label}: ONNX Runtime failed on a {shape} input: {why}",
                label=self.label,
                shape=shape,
                why=first_line(exc),
            ) from exc
        return np.asarray(logits, dtype=np.float32)

    def run(self, feed: Feed) -> np.ndarray:
        return self._run(self._select(feed))

    def stage(self, feed: Feed) -> Callable[[], None]:
        arrays = self._select(feed)
        if self.provider != "cpu":
            self._run(arrays)
            return self._stage_on_gpu(arrays)
        run, out = self.session.run, [self.output]

        def call() -> None:
            run(out, arrays)

        self._run(arrays)  # fail here, with a clear line, rather than inside a timing loop
        return call

    def _stage_on_gpu(self, arrays: dict[str, np.ndarray]) -> Callable[[], None]:
        import onnxruntime as ort

        binding = self.session.io_binding()
        inputs = {n: ort.OrtValue.ortvalue_from_numpy(a, "cuda", 0) for n, a in arrays.items()}  # kept alive
        for n, value in inputs.items():
            binding.bind_ortvalue_input(n, value)
        binding.bind_output(self.output, "cuda")
        run = self.session.run_with_iobinding

        def call(_inputs: Any = inputs) -> None:  # the bound device buffers live as long as the call
            run(binding)
            binding.synchronize_outputs()

        call()
        return call

    def engine_precision(self) -> str:
        """The precision of the TensorRT engines this session built, read from the engines in its cache
        folder (not from ``trt_fp16_enable``, which an ONNX Runtime linked to TensorRT 11 ignores)."""
        from nxm_deploy.runtime.trt_engines import cached_engine_precision

        return cached_engine_precision(self.trt_cache) if self.trt_cache else "fp32"

    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "backend": self.backend,
            "runtime": "onnxruntime",
            "version": ort.__version__,
            "provider": provider_name(self.provider),
            "device": "cpu" if self.provider == "cpu" else "cuda",
            "precision": self.engine_precision() if self.provider == "tensorrt" else "fp32",
            "trt_engine_cache": str(self.trt_cache) if self.trt_cache else None,
            "threads": self.threads,
            "sparse_kernels": self.provider == "tensorrt",
            "sparse_detail": _NOTES.get(self.provider, ORT_CPU_NOTE),
        }
