"""``BenchConfig``: what ``bench()`` compares and how (the CLI reads its defaults here).

Importing it loads neither torch nor onnxruntime, so ``nxm-deploy bench --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nxm_deploy.bench import latency
from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import UserError

__all__ = ["BACKENDS", "MIN_SEQ_LEN", "ORT_PROVIDERS", "BenchConfig", "parse_sizes"]

BACKENDS = ("ort", "trt", "torch")
"""ort: ONNX Runtime (--ort-provider); trt: the exports' TensorRT engines; torch: the runs in PyTorch."""
ORT_PROVIDERS = ("cpu", "cuda", "tensorrt")  # as nxm_deploy.runtime.ort_providers (not imported: --help)
MIN_SEQ_LEN = 8  # room for the special tokens of a sentence pair and some text


def parse_sizes(text: str | Sequence[int], option: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> ``(1, 8, 32)``: positive integers, sorted, duplicates dropped."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        if not all(p.isdigit() for p in parts):
            raise UserError(f"{option} takes comma-separated positive integers such as 1,8,32; got {text!r}")
        values = [int(p) for p in parts]
    else:
        values = [int(v) for v in text]
    if not values or min(values) < 1:
        raise UserError(f"{option} takes comma-separated positive integers such as 1,8,32; got {text!r}")
    return tuple(sorted(set(values)))


@dataclass(frozen=True)
class BenchConfig:
    """What to compare and how. ``threads=None`` leaves the runtime's default thread count."""

    dense: str | Path
    sparse: str | Path
    task: str | None  # a GLUE task; None: own data (``data``, else what the runs recorded)
    out: str | Path
    data_dir: str | Path | None = None
    backend: str = "ort"
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    seq_lens: tuple[int, ...] = (32, 128)
    threads: int | None = None
    plan: latency.TimingPlan = field(default_factory=latency.TimingPlan)
    eval_batch_size: int = 32
    overwrite: bool = False
    ort_provider: str = "cpu"  # --backend ort: ONNX Runtime's cpu, cuda or tensorrt provider
    data: DataOptions | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        object.__setattr__(self, "batch_sizes", parse_sizes(self.batch_sizes, "--batch-sizes"))
        object.__setattr__(self, "seq_lens", parse_sizes(self.seq_lens, "--seq-lens"))
        if self.seq_lens[0] < MIN_SEQ_LEN:
            raise UserError(f"--seq-lens must be at least {MIN_SEQ_LEN} (room for special tokens and text)")
        if self.ort_provider not in ORT_PROVIDERS:
            raise UserError(
                f"--ort-provider must be one of {', '.join(ORT_PROVIDERS)}, got {self.ort_provider!r}"
            )
        if self.ort_provider != "cpu" and self.backend != "ort":
            raise UserError(
                f"--ort-provider {self.ort_provider} applies to --backend ort, not {self.backend}"
            )
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be a positive integer, got {self.threads}")
        if self.eval_batch_size < 1:
            raise UserError(f"--eval-batch-size must be a positive integer, got {self.eval_batch_size}")
