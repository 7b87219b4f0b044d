"""The PyTorch runner: a run directory's model in eager mode, on CPU (fp32, dense math) or CUDA (fp16;
the sparse model's selected weights as 2:4 semi-structured sparse tensors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nxm_deploy.bench.backends import ANY_BATCH, TORCH_CPU_NOTE, Feed, Runner, RunnerFailed, first_line
from nxm_deploy.bench.sources import ModelSource

__all__ = ["TorchRunner"]


class TorchRunner(Runner):
    """The run directory's model in PyTorch eager mode, under ``torch.inference_mode``.

    CPU: float32, dense math for both models. CUDA: float16 for both; for the sparse model every
    selected layer whose weight holds the pattern is swapped to a semi-structured sparse tensor
    (layers the kernels cannot take, e.g. too small, stay dense and are listed).
    """

    backend = "torch"

    def __init__(self, source: ModelSource, tokenizer: Any) -> None:
        import torch

        from nxm_deploy.export.onnx import input_names_for
        from nxm_deploy.models import load_model

        assert source.run_dir is not None  # resolve_source guarantees it for --backend torch
        self.role = source.role
        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model, _ = load_model(source.run_dir)
        model = model.eval()
        if self.device.type == "cuda":
            model = model.half().to(self.device)
        self.model = model
        self.input_names = tuple(input_names_for(model, tokenizer))
        positions = getattr(model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            self.limits = ((1, 1), (ANY_BATCH, positions))
        self.converted: list[str] = []
        self.kept_dense: dict[str, str] = {}
        self.kernel_backend: str | None = None
        if self.device.type == "cuda" and source.pattern:
            self._to_semi_structured(source.layers)

    def _to_semi_structured(self, layers: Sequence[str]) -> None:
        """Swap each selected weight for a 2:4 semi-structured sparse tensor (the pattern runs along
        the weight's input axis, axis 1 of ``[out, in]``, as the kernels expect). cuSPARSELt where
        PyTorch has it (``to_sparse_semi_structured``'s default), else CUTLASS."""
        torch = self.torch
        from torch.sparse import SparseSemiStructuredTensorCUTLASS, to_sparse_semi_structured

        major, minor = torch.cuda.get_device_capability(self.device)
        if (major, minor) < (8, 0):
            reason = f"GPU sm_{major}{minor} has no sparse tensor cores (they need sm_80 or newer)"
            self.kept_dense = dict.fromkeys(layers, reason)
            return
        if torch.backends.cusparselt.is_available():
            self.kernel_backend, convert = "cuSPARSELt", to_sparse_semi_structured
        else:
            self.kernel_backend, convert = "CUTLASS", SparseSemiStructuredTensorCUTLASS.from_dense
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
        return {n: self.torch.from_numpy(a).to(self.device) for n, a in self._select(feed).items()}

    def _forward(self, tensors: Mapping[str, Any]) -> Any:
        with self.torch.inference_mode():
            try:
                return self.model(**tensors).logits
            except (RuntimeError, IndexError, ValueError) as exc:
                shape = "x".join(map(str, next(iter(tensors.values())).shape))
                raise RunnerFailed(
                    f"--{self.role}: PyTorch failed on a {shape} input: {first_line(exc)}"
                ) from exc

    def stage(self, feed: Feed) -> Callable[[], None]:
        self.check_shape(*next(iter(feed.values())).shape)
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

    def predict(self, feed: Feed) -> np.ndarray:
        self.check_shape(*next(iter(feed.values())).shape)
        return self._forward(self._tensors(feed)).float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        torch = self.torch
        cuda = self.device.type == "cuda"
        if not cuda:
            sparse, detail = False, TORCH_CPU_NOTE
        elif self.role == "dense":
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
