"""``BenchConfig``: what ``bench()`` compares and how (the CLI reads its defaults here).

Importing it loads neither torch nor onnxruntime, so ``nxm-deploy bench --help`` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nxm_deploy.bench import latency
from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import UserError
from nxm_deploy.runtime.backends import BACKENDS, ORT_PROVIDERS

__all__ = ["BACKENDS", "MIN_SEQ_LEN", "ORT_PROVIDERS", "BenchConfig", "parse_also", "parse_sizes"]

"""ort: ONNX Runtime (--ort-provider); trt: the exports' TensorRT engines; torch: the runs in PyTorch."""
MIN_SEQ_LEN = 8  # room for the special tokens of a sentence pair and some text


def parse_sizes(text: str | Sequence[int], param: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> ``(1, 8, 32)``: positive integers, sorted, duplicates dropped; an error names
    ``param`` (``batch_sizes``)."""
    bad = "{0} takes comma-separated positive integers such as 1,8,32; got {text!r}"
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        if not all(p.isdigit() for p in parts):
            raise UserError.naming(bad, param, text=text)
        values = [int(p) for p in parts]
    else:
        values = [int(v) for v in text]
    if not values or min(values) < 1:
        raise UserError.naming(bad, param, text=text)
    return tuple(sorted(set(values)))


_ALSO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$")


def parse_also(values: Iterable[str | tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``["int8=exports/x", ...]`` (or pairs) -> ``(("int8", "exports/x"), ...)``; one-line errors for a
    missing ``=``, a bad or repeated name."""
    out: list[tuple[str, str]] = []
    for value in values:
        name, sep, path = value.partition("=") if isinstance(value, str) else (value[0], "=", value[1])
        name, path = name.strip(), str(path).strip()
        if not sep or not name or not path:
            raise UserError.naming(
                "{0} takes NAME=EXPORT_DIR, for example int8=exports/sst2; got {value!r}", "also", value=value
            )
        if not _ALSO_NAME.match(name) or name in ("dense", "sparse"):
            raise UserError.naming(
                "{0} name {name!r}: use letters, digits and _.:+- (not 'dense' or 'sparse')",
                "also",
                name=name,
            )
        if name in (n for n, _ in out):
            raise UserError.naming("{0} name {name!r} is given twice", "also", name=name)
        out.append((name, path))
    return tuple(out)


@dataclass(frozen=True)
class BenchConfig:
    """What to compare and how. ``threads=None`` leaves the runtime's default thread count. ``also``:
    more models, ``("NAME", "EXPORT_DIR")`` or ``"NAME=EXPORT_DIR"``, each measured against ``dense``."""

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
    also: tuple[tuple[str, str], ...] = ()  # (NAME, EXPORT_DIR) of --also, each measured against dense

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        object.__setattr__(self, "batch_sizes", parse_sizes(self.batch_sizes, "batch_sizes"))
        object.__setattr__(self, "seq_lens", parse_sizes(self.seq_lens, "seq_lens"))
        object.__setattr__(self, "also", parse_also(self.also))
        if self.seq_lens[0] < MIN_SEQ_LEN:
            raise UserError.naming(
                "{0} must be at least {low} (room for special tokens and text)", "seq_lens", low=MIN_SEQ_LEN
            )
        if self.ort_provider not in ORT_PROVIDERS:
            raise UserError.naming(
                "{0} must be one of {choices}, got {value!r}",
                "ort_provider",
                choices=", ".join(ORT_PROVIDERS),
                value=self.ort_provider,
            )
        if self.ort_provider != "cpu" and self.backend != "ort":
            raise UserError.naming(
                "{0} {provider} applies to {1} ort, not {backend}",
                "ort_provider",
                "backend",
                provider=self.ort_provider,
                backend=self.backend,
            )
        if self.threads is not None and self.threads < 1:
            raise UserError.naming(
                "{0} must be a positive integer, got {value}", "threads", value=self.threads
            )
        if self.eval_batch_size < 1:
            raise UserError.naming(
                "{0} must be a positive integer, got {value}", "eval_batch_size", value=self.eval_batch_size
            )
