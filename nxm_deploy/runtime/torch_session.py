"""A run directory's model in PyTorch eager mode (``bench --backend torch``): on CPU fp32 and dense
math; on CUDA fp16, the sparse model's selected weights as 2:4 semi-structured sparse tensors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import BackendUnavailableError, Given, InferenceError
from nxm_deploy.runtime.session import ANY_BATCH, Feed, Session, first_line

__all__ = ["TORCH_CPU_NOTE", "TorchSession", "semi_structured_kernels", "torch_threads"]

TORCH_CPU_NOTE = (
    "PyTorch on CPU has no 2:4 sparse kernels: the sparse model runs the same dense GEMMs (its zeros "
    "are multiplied like any other weight); expect a ratio near 1.0."
)


def semi_structured_kernels(capability: tuple[int, int], cusparselt: bool) -> str | None:
    """Which of PyTorch's 2:4 kernels run on a GPU of compute ``capability``: ``"cuSPARSELt"`` where
    this PyTorch has it, else ``"CUTLASS"`` on sm_8x; ``None`` below sm_80 (no sparse tensor cores:
    the model stays dense). PyTorch compiles its CUTLASS semi-structured kernels for sm_8x only, so
    on sm_90 and newer without cuSPARSELt this refuses in one line (exit 3) before any forward."""
    major, minor = capability
    if (major, minor) < (8, 0):
        return None
    if cusparselt:
        return "cuSPARSELt"
    if major == 8:
        return "CUTLASS"
    raise BackendUnavailableError.naming(
        "GPU sm_{major}{minor}: PyTorch's CUTLASS 2:4 kernels run on sm_8x GPUs only, and this PyTorch has "
        "no cuSPARSELt (torch.backends.cusparselt.is_available() is False); install a CUDA build of "
        "PyTorch that ships cuSPARSELt, or bench through TensorRT ({0} trt)",
        "backend",
        major=major,
        minor=minor,
    )


class TorchSession(Session):
    """The model of ``run_dir`` under ``torch.inference_mode``.

    CPU: float32, dense math for every model. CUDA: float16; each of ``sparse_layers`` whose weight
    holds the pattern is swapped to a semi-structured sparse tensor (layers the kernels cannot take,
    e.g. too small, stay dense and are listed in ``info``).
    """

    backend = "torch"

    def __init__(self, run_dir: Path, tokenizer: Any, sparse_layers: Sequence[str] = (),
                 label: str | Given | None = None) -> None:  # fmt: skip
        import torch

        from nxm_deploy.models import input_names_for, load_model

        self.torch, self.label = torch, label or str(run_dir)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model, _ = load_model(run_dir)
        model = model.eval()
        if self.device.type == "cuda":
            model = model.half().to(self.device)
        self.model = model
        self.input_names = tuple(input_names_for(model, tokenizer))
        self.output = "logits"
        positions = getattr(model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            self.limits = ((1, 1), (ANY_BATCH, positions))
        self.sparse = bool(sparse_layers)
        self.converted: list[str] = []
        self.kept_dense: dict[str, str] = {}
        self.kernel_backend: str | None = None
        if self.device.type == "cuda" and sparse_layers:
            self._to_semi_structured(sparse_layers)

    def _to_semi_structured(self, layers: Sequence[str]) -> None:
        """Swap each selected weight for a 2:4 semi-structured sparse tensor (the pattern runs along
        the weight's input axis, axis 1 of ``[out, in]``, as the kernels expect). cuSPARSELt where
        PyTorch has it (``to_sparse_semi_structured``'s default), else CUTLASS."""
        torch = self.torch
        from torch.sparse import SparseSemiStructuredTensorCUTLASS, to_sparse_semi_structured

        major, minor = torch.cuda.get_device_capability(self.device)
        cusparselt = torch.backends.cusparselt.is_available()
        self.kernel_backend = semi_structured_kernels((major, minor), cusparselt)
        if self.kernel_backend is None:
            reason = f"GPU sm_{major}{minor} has no sparse tensor cores (they need sm_80 or newer)"
            self.kept_dense = dict.fromkeys(layers, reason)
            return
        if self.kernel_backend == "cuSPARSELt":
            convert = to_sparse_semi_structured
        else:
            convert = SparseSemiStructuredTensorCUTLASS.from_dense
        modules = dict(self.model.named_modules())
        for name in layers:
            module = modules.get(name)
            if not isinstance(module, torch.nn.Linear):
                self.kept_dense[name] = "not an nn.Linear of this model"
                continue
            try:
                sparse = convert(module.weight.detach().contiguous())
            except (RuntimeError, ValueError) as exc:  # shapes the kernels cannot take
                self.kept_dense[name] = first_line(exc)
                continue
            module.weight = torch.nn.Parameter(sparse, requires_grad=False)
            module.register_forward_pre_hook(_contiguous_input)  # the sparse linear views input as 2-D
            self.converted.append(name)

    def _tensors(self, feed: Feed) -> dict[str, Any]:
        self.check_shape(*next(iter(feed.values())).shape)
        return {n: self.torch.from_numpy(a).to(self.device) for n, a in self._select(feed).items()}

    def _forward(self, tensors: Mapping[str, Any]) -> Any:
        with self.torch.inference_mode():
            try:
                return self.model(**tensors).logits
            except (RuntimeError, IndexError, ValueError) as exc:
                shape = "x".join(map(str, next(iter(tensors.values())).shape))
                raise InferenceError.naming(
                    "{label}: PyTorch failed on a {shape} input: {why}",
                    label=self.label,
                    shape=shape,
                    why=first_line(exc),
                ) from exc

    def stage(self, feed: Feed) -> Callable[[], None]:
        tensors = self._tensors(feed)
        model, mode = self.model, self.torch.inference_mode
        sync = self.torch.cuda.synchronize if self.device.type == "cuda" else None

        def call() -> None:
            with mode():
                model(**tensors)
            if sync is not None:
                sync()

        self._forward(tensors)
        return call

    def run(self, feed: Feed) -> np.ndarray:
        return self._forward(self._tensors(feed)).float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        torch = self.torch
        cuda = self.device.type == "cuda"
        if not cuda:
            sparse, detail = False, TORCH_CPU_NOTE
        elif not self.sparse:
            sparse, detail = False, "dense fp16 GEMMs"
        elif self.converted:
            sparse = True
            total = len(self.converted) + len(self.kept_dense)
            detail = (
                f"{len(self.converted)} of {total} sparse layers run as 2:4 semi-structured tensors "
                f"({self.kernel_backend}, fp16); the dense model runs the same layers as dense fp16 GEMMs"
            )
        else:
            sparse = False
            detail = "no layer could be made a semi-structured sparse tensor; expect a ratio near 1.0"
        return {
            "backend": self.backend,
            "runtime": "torch",
            "version": torch.__version__,
            "provider": "eager",
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "precision": "fp16" if cuda else "fp32",
            "threads": None if cuda else torch.get_num_threads(),
            "sparse_kernels": sparse,
            "sparse_detail": detail,
            "semi_structured_layers": list(self.converted),
            "kept_dense": dict(self.kept_dense),
        }


def _contiguous_input(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(), *args[1:])


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
