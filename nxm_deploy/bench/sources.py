"""What ``--dense`` and ``--sparse`` name: an export directory (or, for ``--backend torch``, a run
directory), checked for the role it is given, the task and the tokenizer; and the session that runs it.

    dense = resolve_source("exports/sst2-dense", "dense", "ort")
    sparse = resolve_source("exports/sst2-admm", "sparse", "ort")
    check_roles(dense, sparse, "SST-2")
    session = open_source(sparse, "ort", tokenizer, threads=1)

The facts a bench needs (task, method, pattern, layers, max_seq_len) are the run's
:class:`~nxm_deploy.manifest.RunFacts`, read from ``export.json``'s ``source_run`` section, or from
``nxm.json`` for a run directory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy import nm
from nxm_deploy.bench.config import BACKENDS
from nxm_deploy.errors import ExportDirError, Given, UserError
from nxm_deploy.manifest import EXPORT_MANIFEST, RUN_MANIFEST, ExportManifest, RunFacts, RunManifest
from nxm_deploy.runtime.backends import no_engine
from nxm_deploy.runtime.ort_session import OrtSession
from nxm_deploy.runtime.session import Session, require_tensorrt

__all__ = [
    "ModelSource",
    "check_roles",
    "check_same_tokenizer",
    "open_source",
    "resolve_source",
    "tokenizer_fingerprint",
]

_ENCODING_PROBE_ROWS = 32  # dev rows both tokenizers must encode identically


@dataclass(frozen=True)
class ModelSource:
    """One model of the comparison: an export directory (``export`` set) or a run directory
    (``run`` set); ``facts`` are its run's; ``run_dir`` is the run directory (the export's source
    run, when it still exists)."""

    role: str
    path: Path
    facts: RunFacts
    export: ExportManifest | None
    run_dir: Path | None

    @property
    def kind(self) -> str:
        return "export" if self.export is not None else "run"

    @property
    def label(self) -> Given:
        """The model as a message names it: ``dense PATH`` (``--dense PATH`` on the command line)."""
        return given(self.role, self.path)

    @property
    def pattern(self) -> nm.Pattern | None:
        return self.facts.pattern

    @property
    def layers(self) -> list[str]:
        return list(self.facts.layers)

    @property
    def max_seq_len(self) -> int | None:
        return self.export.max_seq_len if self.export is not None else self.facts.max_seq_len

    def position_limit(self) -> int | None:
        """The longest sequence the model takes: as its export recorded it, else from its run's
        ``config.json`` (position embeddings); None when neither says."""
        if self.export is not None and self.export.position_limit is not None:
            return self.export.position_limit
        if self.run_dir is None or not (self.run_dir / "config.json").is_file():
            return None
        from transformers import AutoConfig

        from nxm_deploy.models import position_limit

        try:
            return position_limit(AutoConfig.from_pretrained(str(self.run_dir)))
        except (OSError, ValueError):
            return None

    @property
    def onnx_path(self) -> Path:
        assert self.export is not None
        return self.export.onnx_path

    def describe(self) -> dict[str, Any]:
        """The ``models.<role>`` entry of report.json."""
        return {
            "path": str(self.path.resolve()),
            "kind": self.kind,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "task": self.facts.task,
            "method": self.facts.method,
            "pattern": str(self.pattern) if self.pattern else None,
            "sparse_layers": len(self.layers),
            "base_model": self.facts.base_model,
            "max_seq_len": self.max_seq_len,
            "run_metrics": self.run_metrics(),
        }

    def run_metrics(self) -> dict[str, Any] | None:
        """Dev metrics as ``train`` recorded them in ``nxm.json`` (None when the run is not at hand)."""
        if self.run_dir is None:
            return None
        try:
            return RunManifest.read(self.run_dir).metrics or None
        except UserError:
            return None


def given(role: str, path: object) -> Given:
    """``role`` (``dense``, ``sparse``, ``also NAME``) and the path given to it, as messages name them."""
    param, _, name = role.partition(" ")
    return Given(param, f"{name} {path}" if name else path)


def resolve_source(path: str | Path, role: str, backend: str) -> ModelSource:
    """Read the directory given as ``dense``/``sparse``; one-line errors for what it is instead (each
    names the parameter: ``dense PATH``)."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    path = Path(path)
    label = given(role, path)
    if not path.exists():
        raise UserError.naming("{label} does not exist", label=label)
    if not path.is_dir():
        raise UserError.naming(
            "{label} is not a directory; pass an export directory written by 'nxm-deploy export'", label=label
        )
    if ExportManifest.is_export_dir(path):
        return _from_export(path, role, backend)
    if RunManifest.is_run_dir(path):
        if backend != "torch":
            raise UserError.naming(
                "{label} is a run directory; {0} {backend} needs an export directory "
                "(run 'nxm-deploy export {path} --out ...'), or use {0} torch",
                "backend",
                label=label,
                backend=backend,
                path=path,
            )
        run = RunManifest.read(path)
        return ModelSource(role, path, run.facts, None, path)
    raise UserError.naming(
        "{label} is neither an export directory ({export}) nor a run directory ({run})",
        label=label,
        export=EXPORT_MANIFEST,
        run=RUN_MANIFEST,
    )


def _from_export(path: Path, role: str, backend: str) -> ModelSource:
    label = given(role, path)
    try:
        export = ExportManifest.read(path)
    except ExportDirError as exc:
        raise UserError.naming("{who} {error}", who=given(role, ""), error=exc) from exc
    source = ModelSource(role, path, export.source, export, export.run_dir)
    if backend == "ort" and not export.onnx_path.is_file():
        raise UserError.naming(
            "{label} has no {name}; export the run again", label=label, name=export.onnx_path.name
        )
    if backend == "torch" and export.run_dir is None:
        raise UserError.naming(
            "{label}: {0} torch needs the run directory its {manifest} names ({run}), which is not "
            "there; pass the run directory itself",
            "backend",
            label=label,
            manifest=EXPORT_MANIFEST,
            run=export.source_run.path,
        )
    if backend == "trt" and not export.engine_path.is_file():
        hint = no_engine(path, export.tensorrt.to_json(), "or 'nxm-deploy export --engine trt'")
        raise UserError.naming("{who} {hint}", who=given(role, ""), hint=hint)
    return source


def open_source(source: ModelSource, backend: str, tokenizer: Any, threads: int | None,
                ort_provider: str = "cpu") -> Session:  # fmt: skip
    """The session of ``backend`` (``ort``, ``torch``, ``trt``) for one model."""
    if backend == "ort":
        return OrtSession(source.onnx_path, threads, label=source.label, provider=ort_provider)
    if backend == "torch":
        from nxm_deploy.runtime.torch_session import TorchSession

        assert source.run_dir is not None  # resolve_source guarantees it for --backend torch
        return TorchSession(source.run_dir, tokenizer, source.layers, label=source.label)
    if backend == "trt":
        require_tensorrt(Given("backend", "trt"))
        from nxm_deploy.runtime.trt_session import TrtSession

        assert source.export is not None
        return TrtSession(
            source.export.engine_path, evidence=source.export.tensorrt.to_json(), label=source.label
        )
    raise UserError(f"unknown backend {backend!r}")


def check_roles(dense: ModelSource, sparse: ModelSource, task_name: str | None) -> None:
    """Both models are of ``task_name`` (None: own data, whose label maps the caller checked);
    ``dense`` is dense and ``sparse`` claims a pattern."""
    if dense.path.resolve() == sparse.path.resolve():
        raise UserError.naming(
            "{0} and {1} are the same directory ({path})", "dense", "sparse", path=dense.path
        )
    for src in (dense, sparse) if task_name is not None else ():
        if src.facts.task is None:
            raise UserError.naming("{label}: its manifest names no task", label=src.label)
        if _normal(src.facts.task) != _normal(task_name):
            raise UserError.naming(
                "{label} was trained on {task}, not {want}; bench two models of the same task",
                label=src.label,
                task=src.facts.task,
                want=task_name,
            )
    manifest = EXPORT_MANIFEST if sparse.kind == "export" else RUN_MANIFEST
    if sparse.pattern is None:
        raise UserError.naming(
            "{label} is a dense model (its {manifest} says pattern null, method {method}); pass the "
            "sparse model as {1} and the dense one as {0}",
            "dense",
            "sparse",
            label=sparse.label,
            manifest=manifest,
            method=sparse.facts.method,
        )
    if dense.pattern is not None:
        raise UserError.naming(
            "{label} is a sparse model (pattern {pattern}, method {method}); {0} takes the dense reference",
            "dense",
            label=dense.label,
            pattern=dense.pattern,
            method=dense.facts.method,
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
    dense_tok: Any,
    sparse_tok: Any,
    texts_a: Sequence[str],
    texts_b: Sequence[str] | None,
    label: Given,
) -> dict[str, Any]:
    """Refuse two tokenizers with different vocabularies, or that encode the first dev rows differently
    (a different normaliser, e.g. cased against uncased). ``label`` names the second model in the error
    (:attr:`ModelSource.label`).
    Returns the shared fingerprint."""
    fd, fs = tokenizer_fingerprint(dense_tok), tokenizer_fingerprint(sparse_tok)
    if fd["vocab_sha256"] != fs["vocab_sha256"]:
        raise UserError.naming(
            "{0} and {label} use different tokenizers (vocabulary sha256 {a} vs {b}, {na} vs {nb} "
            "tokens); bench two models fine-tuned from the same base model",
            "dense",
            label=label,
            a=fd["vocab_sha256"][:12],
            b=fs["vocab_sha256"][:12],
            na=fd["vocab_size"],
            nb=fs["vocab_size"],
        )
    n = min(_ENCODING_PROBE_ROWS, len(texts_a))
    a = list(texts_a[:n])
    b = list(texts_b[:n]) if texts_b is not None else None
    if dense_tok(a, b)["input_ids"] != sparse_tok(a, b)["input_ids"]:
        raise UserError.naming(
            "{0} and {label} tokenizers share a vocabulary but encode the same dev rows differently "
            "(different normalisation or special tokens); bench two models from the same base model",
            "dense",
            label=label,
        )
    return fd
