"""Run directory -> export directory, with the N:M pattern proven before and after the export.

    result = export_run("runs/rte-admm", "exports/rte-admm", ExportOptions(engine="trt"))
    result.trt_unavailable   # None, or why TensorRT could not build the engine here

Steps, each a small function of its own, all inside a temporary sibling of ``--out``
(``manifest.staged_dir``: an existing ``--out`` is refused unless ``overwrite``, and the new
directory is renamed into place only when complete):

1. ``SourceRun.from_dir``: read ``nxm.json``, check the run's weights (``verify.check_run_dir``; a
   run whose manifest claims a pattern its weights do not hold is refused with
   :class:`SparsityError`), load the model and tokenizer.
2. ``onnx.export_onnx`` and ``onnx.io_problems``: the graph, its inputs, outputs and dynamic axes.
3. ``check.require_sparse_layers``: every layer sparse in PyTorch is sparse in the ONNX graph.
4. ``parity.compare``: ONNX Runtime against PyTorch on dev sentences of the run's task.
5. ``_tensorrt_section``: ``build_engine.sh`` always; the engine with ``engine="trt"`` where
   TensorRT and a GPU exist. Last, ``export.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nxm_deploy.errors import ExportError, SparsityError, UserError
from nxm_deploy.export import check, parity, trt
from nxm_deploy.export.onnx import (
    DEFAULT_OPSET,
    ONNX_NAME,
    describe_io,
    export_onnx,
    input_names_for,
    io_problems,
)
from nxm_deploy.manifest import EXPORT_MANIFEST, provenance, read_run_manifest, staged_dir, write_json_atomic
from nxm_deploy.verify import CheckReport, check_run_dir

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ENGINES",
    "ENGINE_NAME",
    "EXPORT_KIND",
    "ExportOptions",
    "ExportResult",
    "SourceRun",
    "default_profile",
    "export_run",
]

EXPORT_KIND = "nxm-deploy/export"
ENGINES = ("onnx", "trt")
ENGINE_NAME = "model.engine"
_RUN_FACTS = (
    "kind",
    "tool_version",
    "base_model",
    "task",
    "method",
    "pattern",
    "layers",
    "num_labels",
    "max_seq_len",
)


@dataclass(frozen=True)
class ExportOptions:
    """How to export. ``profile=None`` derives the TensorRT shape range from the model's position
    limit; ``data_dir=None`` reads parity sentences from ``$GLUE_DIR`` (else the hub, else built-ins)."""

    engine: str = "onnx"
    opset: int = DEFAULT_OPSET
    precision: str = "fp32"
    profile: trt.ShapeProfile | None = None
    data_dir: str | Path | None = None
    overwrite: bool = False
    batches: Sequence[int] = parity.DEFAULT_BATCHES
    seq_lens: Sequence[int] = parity.DEFAULT_SEQ_LENS

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ExportError(f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.precision not in trt.PRECISIONS:
            raise ExportError(
                f"unknown precision {self.precision!r}: choose one of {', '.join(trt.PRECISIONS)}"
            )


@dataclass(frozen=True)
class ExportResult:
    """The export directory and its manifest (the content of ``export.json``)."""

    out: Path
    manifest: dict[str, Any]

    @property
    def trt_unavailable(self) -> str | None:
        """Why the engine asked for (``engine="trt"``) was not built, or ``None``."""
        section = self.manifest["tensorrt"]
        return None if section.get("built") or not section.get("requested") else section.get("reason")


@dataclass(frozen=True)
class SourceRun:
    """A run directory whose weights hold the pattern its manifest claims, loaded for export."""

    path: Path
    manifest: dict[str, Any]
    run_check: CheckReport
    model: nn.Module
    tokenizer: Any
    input_names: list[str]
    position_limit: int  # longest sequence the model takes

    @classmethod
    def from_dir(cls, run_dir: Path) -> SourceRun:
        """Read and check ``run_dir``; raises :class:`SparsityError` when its weights break the
        pattern its manifest claims (naming the first tensor and group that does)."""
        from nxm_deploy.models import load_model

        manifest = read_run_manifest(run_dir)
        report = check_run_dir(run_dir)
        if not report.ok:
            raise SparsityError(f"refusing to export: {report.failure_line()}")
        model, tokenizer = load_model(run_dir)
        model = model.float().eval()
        limits = [
            getattr(model.config, "max_position_embeddings", None),
            getattr(tokenizer, "model_max_length", None),  # a huge sentinel when unset
        ]
        usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return cls(
            run_dir,
            manifest,
            report,
            model,
            tokenizer,
            input_names_for(model, tokenizer),
            min(usable or [512]),
        )

    @property
    def pattern(self) -> str | None:
        return self.manifest.get("pattern") or None

    @property
    def layers(self) -> list[str]:
        """The layers the run made sparse (none for a dense run)."""
        return list(self.manifest.get("layers") or []) if self.pattern else []

    @property
    def max_seq_len(self) -> int:
        return min(int(self.manifest.get("max_seq_len") or self.position_limit), self.position_limit)

    def linear_weights(self) -> dict[str, Any]:
        """``nn.Linear`` weights by layer name, to map ONNX weights back by value."""
        from nxm_deploy.models import linear_layers

        return {name: layer.weight for name, layer in linear_layers(self.model).items()}

    def facts(self) -> dict[str, Any]:
        return {"path": str(self.path.resolve()), **{k: self.manifest.get(k) for k in _RUN_FACTS}}


def _refuse_out_over_run(out: Path, run_dir: Path) -> None:
    out_r, run_r = out.resolve(), run_dir.resolve()
    if out_r == run_r or out_r in run_r.parents:
        raise UserError(f"--out {out} would replace the run directory {run_dir}; choose another path")


def default_profile(position_limit: int) -> trt.ShapeProfile:
    """``trt.DEFAULT_PROFILE`` with every sequence length capped by the model's position limit."""
    d = trt.DEFAULT_PROFILE
    return trt.ShapeProfile(*((b, min(s, position_limit)) for b, s in (d.min, d.opt, d.max)))


def _onnx_from_run(run: SourceRun, path: Path, opset: int) -> dict[str, Any]:
    """Export ``run`` to ``path``; return its input/output description, or raise one
    :class:`ExportError` listing every wrong name, type or axis."""
    export_onnx(run.model, path, run.input_names, opset, sample_seq=min(16, run.max_seq_len))
    io = describe_io(path)
    problems = io_problems(io, run.input_names)
    if problems:
        raise ExportError(f"{path.name}: " + "; ".join(problems))
    return io


def _trt_version() -> str | None:
    try:
        import tensorrt
    except (ImportError, OSError):
        return None
    return str(tensorrt.__version__)


def _tensorrt_section(
    out: Path,
    run: SourceRun,
    options: ExportOptions,
    profile: trt.ShapeProfile,
    reference: dict[str, Any],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Write ``build_engine.sh`` (always), the FP16 ONNX when fp16 needs one (checked for N:M like
    the FP32 one), and the engine when asked for and possible; return the ``"tensorrt"`` section."""
    version = _trt_version()
    major = trt.trt_major(version)
    fp16_onnx = None
    if options.precision == "fp16" and (major is None or major >= 11):  # strongly typed: an FP16 ONNX
        say("writing the FP16 ONNX for TensorRT")
        fp16_onnx = trt.fp16_onnx_name(ONNX_NAME)
        trt.to_fp16_onnx(out / ONNX_NAME, out / fp16_onnx)
        check.require_sparse_layers(out / fp16_onnx, run.layers, run.pattern or "2:4", reference)
    script = trt.write_build_script(
        out, ONNX_NAME, ENGINE_NAME, run.input_names, profile, options.precision, version, fp16_onnx
    )
    common = {
        "requested": options.engine == "trt",
        "precision": options.precision,
        "profile": {"inputs": list(run.input_names), **profile.as_dict()},
        "build_script": script.name,
        "fp16_onnx": fp16_onnx,
    }
    reason = "not requested (--engine onnx)" if options.engine == "onnx" else trt.trt_unavailable_reason()
    if reason is not None:
        return {"built": False, "reason": reason, "tensorrt_version": version, **common}
    say("building the TensorRT engine")
    built = trt.build_engine(
        out / (fp16_onnx or ONNX_NAME), out / ENGINE_NAME, run.input_names, profile, options.precision
    )
    return {"built": True, "reason": None, **common, **built}


def _sparsity_section(report: CheckReport, pattern: str | None, layers: Sequence[str]) -> dict[str, Any]:
    """The ONNX N:M check for ``export.json``: every layer sparse in PyTorch was proven sparse in the
    ONNX graph (the export fails otherwise); the other encoder weights are listed for their density."""
    body = report.to_json()
    wanted = set(layers)
    for row in body["tensors"]:
        row["expected_sparse"] = row["layer"] in wanted
    return {
        **body,
        "source": ONNX_NAME,
        "pattern": pattern,  # the run's pattern; None for a dense run
        "checked_pattern": str(report.pattern),
        "sparse_layers": list(layers),
        "ok": True,
    }


def _files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ExportOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a run directory to ``out``: ONNX (+ TensorRT), proven N:M and in parity with PyTorch.

    Raises :class:`SparsityError` (run weights break their pattern), :class:`ExportError` (the ONNX
    breaks it, or inputs/outputs are wrong), :class:`~nxm_deploy.export.parity.ParityError`, or
    another :class:`UserError`; ``out`` is then left as it was. Where TensorRT or a GPU is missing the
    export still completes; ``result.trt_unavailable`` says why the engine was not built.
    """
    options = options or ExportOptions()
    say = progress or (lambda _msg: None)
    run_dir, out = Path(run_dir), Path(out)
    _refuse_out_over_run(out, run_dir)
    with staged_dir(out, overwrite=options.overwrite) as tmp:  # refuses an existing --out first
        say(f"checking the N:M pattern of {run_dir}")
        run = SourceRun.from_dir(run_dir)
        limit = run.position_limit
        profile = options.profile or default_profile(limit)
        if profile.max[1] > limit:
            raise ExportError(
                f"--max-shape sequence {profile.max[1]} exceeds the model's position limit {limit}"
            )
        sentences = parity.parity_sentences(run.manifest.get("task"), options.data_dir)
        reference = run.linear_weights()

        say(f"exporting ONNX (opset {options.opset})")
        onnx_path = tmp / ONNX_NAME
        io = _onnx_from_run(run, onnx_path, options.opset)
        tokenizer_files = sorted(Path(f).name for f in run.tokenizer.save_pretrained(str(tmp)))
        say("checking the N:M pattern of the ONNX graph")
        nm_report = check.require_sparse_layers(onnx_path, run.layers, run.pattern or "2:4", reference)
        say(f"comparing ONNX Runtime with PyTorch on {sentences.source}")
        seq_lens = parity.seq_grid(run.max_seq_len, options.seq_lens)
        parity_report = parity.compare(
            run.model, onnx_path, run.tokenizer, sentences, run.input_names, options.batches, seq_lens
        )
        parity_report.raise_for_failures()
        tensorrt = _tensorrt_section(tmp, run, options, profile, reference, say)

        manifest = {
            "kind": EXPORT_KIND,
            **provenance(),
            "source_run": run.facts(),
            "run_check": {
                "pattern": str(run.run_check.pattern),
                "expect_sparse": run.run_check.expect_sparse,
                "tensors": len(run.run_check.rows),
                "ok": run.run_check.ok,
            },
            "onnx": {
                "file": ONNX_NAME,
                "exporter": "torch.onnx.export(dynamo=True)",
                "torch_version": _version("torch"),
                "onnx_version": _version("onnx"),
                "bytes": onnx_path.stat().st_size,
                "external_data": sorted(p.name for p in tmp.glob(f"{ONNX_NAME}.data*")),
                **io,
            },
            "tokenizer": {
                "class": type(run.tokenizer).__name__,
                "model_input_names": list(run.input_names),
                "files": tokenizer_files,
                "max_seq_len": run.max_seq_len,
            },
            "sparsity": _sparsity_section(nm_report, run.pattern, run.layers),
            "parity": parity_report.to_json(),
            "tensorrt": tensorrt,
        }
        manifest["files"] = sorted({*_files(tmp), EXPORT_MANIFEST})
        write_json_atomic(tmp / EXPORT_MANIFEST, manifest)
    say(f"wrote {out}")
    return ExportResult(out, manifest)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
