"""What ``--dense`` and ``--sparse`` name: an export directory (or, for ``--backend torch``, a run
directory), checked for the role it is given, the task and the tokenizer.

    dense = resolve_source("exports/sst2-dense", "dense", "ort")
    sparse = resolve_source("exports/sst2-admm", "sparse", "ort")
    check_roles(dense, sparse, "SST-2")

The facts a bench needs (task, method, pattern, layers, max_seq_len) come from ``export.json``'s
``source_run`` section, or from ``nxm.json`` for a run directory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.errors import UserError
from nxm_deploy.manifest import EXPORT_MANIFEST, RUN_MANIFEST, read_json

__all__ = [
    "BACKENDS",
    "ModelSource",
    "check_roles",
    "check_same_tokenizer",
    "resolve_source",
    "tokenizer_fingerprint",
]

BACKENDS = ("ort", "trt", "torch")
_ENCODING_PROBE_ROWS = 32  # dev rows both tokenizers must encode identically


@dataclass(frozen=True)
class ModelSource:
    """One model of the comparison. ``kind`` is ``"export"`` or ``"run"``; ``facts`` are the run's
    task, method, pattern, layers, base model and max_seq_len; ``run_dir`` is the run directory
    (the export's source run, when it still exists)."""

    role: str
    path: Path
    kind: str
    manifest: dict[str, Any]
    facts: dict[str, Any]
    run_dir: Path | None

    @property
    def label(self) -> str:
        return f"--{self.role} {self.path}"

    @property
    def task(self) -> str | None:
        return self.facts.get("task")

    @property
    def pattern(self) -> str | None:
        return self.facts.get("pattern") or None

    @property
    def layers(self) -> list[str]:
        return list(self.facts.get("layers") or []) if self.pattern else []

    @property
    def max_seq_len(self) -> int | None:
        tok = self.manifest.get("tokenizer") or {}
        value = tok.get("max_seq_len") or self.facts.get("max_seq_len")
        return int(value) if value else None

    @property
    def onnx_path(self) -> Path:
        return self.path / str((self.manifest.get("onnx") or {}).get("file") or "model.onnx")

    @property
    def tensorrt(self) -> dict[str, Any]:
        return dict(self.manifest.get("tensorrt") or {})

    def describe(self) -> dict[str, Any]:
        """The ``models.<role>`` entry of report.json."""
        return {
            "path": str(self.path.resolve()),
            "kind": self.kind,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "task": self.task,
            "method": self.facts.get("method"),
            "pattern": self.pattern,
            "sparse_layers": len(self.layers),
            "base_model": self.facts.get("base_model"),
            "max_seq_len": self.max_seq_len,
            "run_metrics": self.run_metrics(),
        }

    def run_metrics(self) -> dict[str, Any] | None:
        """Dev metrics as ``train`` recorded them in ``nxm.json`` (None when the run is not at hand)."""
        if self.run_dir is None or not (self.run_dir / RUN_MANIFEST).is_file():
            return None
        try:
            metrics = read_json(self.run_dir / RUN_MANIFEST, "run manifest").get("metrics")
        except UserError:
            return None
        return dict(metrics) if isinstance(metrics, dict) else None


def _flag(role: str) -> str:
    return f"--{role}"


def resolve_source(path: str | Path, role: str, backend: str) -> ModelSource:
    """Read the directory given as ``--dense``/``--sparse``; one-line errors for what it is instead."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    path = Path(path)
    flag = _flag(role)
    if not path.exists():
        raise UserError(f"{flag} {path} does not exist")
    if not path.is_dir():
        raise UserError(
            f"{flag} {path} is not a directory; pass an export directory written by 'nxm-deploy export'"
        )
    if (path / EXPORT_MANIFEST).is_file():
        return _from_export(path, role, backend)
    if (path / RUN_MANIFEST).is_file():
        if backend != "torch":
            raise UserError(
                f"{flag} {path} is a run directory; --backend {backend} needs an export directory "
                f"(run 'nxm-deploy export {path} --out ...'), or use --backend torch"
            )
        facts = read_json(path / RUN_MANIFEST, "run manifest")
        return ModelSource(role, path, "run", facts, facts, path)
    raise UserError(
        f"{flag} {path} is neither an export directory ({EXPORT_MANIFEST}) nor a run directory "
        f"({RUN_MANIFEST})"
    )


def _from_export(path: Path, role: str, backend: str) -> ModelSource:
    flag = _flag(role)
    manifest = read_json(path / EXPORT_MANIFEST, "export manifest")
    facts = manifest.get("source_run")
    if not isinstance(facts, dict) or "task" not in facts:
        raise UserError(f"{flag} {path / EXPORT_MANIFEST} has no source_run section; export the run again")
    run_dir = Path(facts["path"]) if facts.get("path") else None
    if run_dir is not None and not (run_dir / RUN_MANIFEST).is_file():
        run_dir = None
    source = ModelSource(role, path, "export", manifest, facts, run_dir)
    if backend == "ort" and not source.onnx_path.is_file():
        raise UserError(f"{flag} {path} has no {source.onnx_path.name}; export the run again")
    if backend == "torch" and run_dir is None:
        raise UserError(
            f"{flag} {path}: --backend torch needs the run directory its {EXPORT_MANIFEST} names "
            f"({facts.get('path')}), which is not there; pass the run directory itself"
        )
    if backend == "trt":
        trt_section = source.tensorrt
        engine = path / str(trt_section.get("engine") or "model.engine")
        if not trt_section.get("built") or not engine.is_file():
            why = trt_section.get("reason") or "no engine file"
            raise UserError(
                f"{flag} {path} has no TensorRT engine ({why}); build it with its "
                f"{trt_section.get('build_script') or 'build_engine.sh'} or 'nxm-deploy export --engine trt'"
            )
    return source


def check_roles(dense: ModelSource, sparse: ModelSource, task_name: str) -> None:
    """Both models are of ``task_name``; ``--dense`` is dense and ``--sparse`` claims a pattern."""
    if dense.path.resolve() == sparse.path.resolve():
        raise UserError(f"--dense and --sparse are the same directory ({dense.path})")
    for src in (dense, sparse):
        if src.task is None:
            raise UserError(f"{src.label}: its manifest names no task")
        if _normal(src.task) != _normal(task_name):
            raise UserError(
                f"{src.label} was trained on {src.task}, not {task_name}; bench two models of the same task"
            )
    manifest = EXPORT_MANIFEST if sparse.kind == "export" else RUN_MANIFEST
    if sparse.pattern is None:
        raise UserError(
            f"{sparse.label} is a dense model (its {manifest} says pattern null, method "
            f"{sparse.facts.get('method')}); pass the sparse model as --sparse and the dense one as --dense"
        )
    if dense.pattern is not None:
        raise UserError(
            f"{dense.label} is a sparse model (pattern {dense.pattern}, method {dense.facts.get('method')}); "
            "--dense takes the dense reference"
        )


def _normal(task: str) -> str:
    from nxm_deploy.data import get_task

    try:
        return get_task(task).name
    except UserError:
        return task


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """Class, vocabulary size and sha256 of the vocabulary (token -> id, sorted by token)."""
    vocab = tokenizer.get_vocab()
    blob = json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()
    return {
        "class": type(tokenizer).__name__,
        "vocab_size": len(vocab),
        "vocab_sha256": hashlib.sha256(blob).hexdigest(),
        "model_input_names": list(getattr(tokenizer, "model_input_names", []) or []),
    }


def check_same_tokenizer(
    dense_tok: Any, sparse_tok: Any, texts_a: Sequence[str], texts_b: Sequence[str] | None
) -> dict[str, Any]:
    """Refuse two tokenizers with different vocabularies, or that encode the first dev rows differently
    (a different normaliser, e.g. cased against uncased). Returns the shared fingerprint."""
    fd, fs = tokenizer_fingerprint(dense_tok), tokenizer_fingerprint(sparse_tok)
    if fd["vocab_sha256"] != fs["vocab_sha256"]:
        raise UserError(
            f"--dense and --sparse use different tokenizers (vocabulary sha256 {fd['vocab_sha256'][:12]} "
            f"vs {fs['vocab_sha256'][:12]}, {fd['vocab_size']} vs {fs['vocab_size']} tokens); "
            "bench two models fine-tuned from the same base model"
        )
    n = min(_ENCODING_PROBE_ROWS, len(texts_a))
    a = list(texts_a[:n])
    b = list(texts_b[:n]) if texts_b is not None else None
    if dense_tok(a, b)["input_ids"] != sparse_tok(a, b)["input_ids"]:
        raise UserError(
            "--dense and --sparse tokenizers share a vocabulary but encode the same dev rows differently "
            "(different normalisation or special tokens); bench two models from the same base model"
        )
    return fd
