"""``export()``: run directory -> export directory, with the N:M pattern proven before and after.

    result = export(ExportConfig(run_dir="runs/rte-admm", out="exports/rte-admm", engine="trt"))
    result.trt_unavailable   # None, or why TensorRT could not build the engine here

Steps, each a small function of its own, all inside a temporary sibling of ``--out``
(``outputs.staged_dir``: an existing ``--out`` is refused unless ``overwrite``, and the new
directory is renamed into place only when complete):

1. ``SourceRun.from_dir``: read ``nxm.json`` (once), check the run's weights
   (``check.weights.check_run_dir``; a run whose manifest claims a pattern its weights do not hold
   is refused with :class:`SparsityError`), load the model and tokenizer.
2. ``onnx.export_onnx`` and ``onnx.io_problems``: the graph, its inputs, outputs and dynamic axes.
3. ``check.onnx.require_sparse_layers``: every layer sparse in PyTorch is sparse in the ONNX graph.
4. ``parity.compare``: ONNX Runtime against PyTorch on dev sentences of the run's task.
   With ``quantize`` (``export.quantize``): the FP32 ONNX becomes an INT8 one, calibrated on the
   run's training rows (read and proven first, before any work); the N:M check again on the INT8
   graph; ``agreement.dev_agreement``: same class as PyTorch on the full dev set.
5. ``_tensorrt_section``: ``build_engine.sh`` always; the engine with ``engine="trt"`` where
   TensorRT and a GPU exist. Last, ``export.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nxm_deploy import nm
from nxm_deploy.check.onnx import require_sparse_layers
from nxm_deploy.check.report import CheckReport
from nxm_deploy.check.weights import check_run_dir
from nxm_deploy.errors import ExportError, SparsityError, UserError
from nxm_deploy.export import agreement, parity, quantize, rows, trt
from nxm_deploy.export.config import ExportConfig
from nxm_deploy.export.hf_config import write_hf_config
from nxm_deploy.export.onnx import ONNX_NAME, describe_io, export_onnx, io_problems
from nxm_deploy.manifest import EXPORT_MANIFEST, RunManifest
from nxm_deploy.manifest.export import ExportManifest, OnnxSection, TensorrtSection, TokenizerSection
from nxm_deploy.manifest.export import SourceRun as RunSection
from nxm_deploy.manifest.fields import Provenance
from nxm_deploy.origin import dist_version
from nxm_deploy.outputs import check_out_path, prepare_out, staged_dir
from nxm_deploy.runtime.availability import trt_unavailable_reason, trt_version

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ENGINE_NAME",
    "ExportConfig",
    "ExportResult",
    "SourceRun",
    "default_profile",
    "export",
]

ENGINE_NAME = "model.engine"
FP32_NOTE = (
    "--precision fp32: TensorRT runs 2:4 sparse kernels only in FP16/BF16/INT8, so this engine runs every "
    "layer dense; drop --precision (fp16 with --engine trt) or export --quantize int8"
)


@dataclass(frozen=True)
class ExportResult:
    """The export directory and its manifest (the content of ``export.json``); ``parity_fallback``:
    why parity ran on built-in sentences, when an error said it (its ``fallback_reason``)."""

    out: Path
    manifest: ExportManifest
    parity_fallback: UserError | None = None

    @property
    def trt_unavailable(self) -> str | None:
        """Why the engine asked for (``engine="trt"``) was not built, or ``None``."""
        section = self.manifest.tensorrt
        return None if section.built or not section.requested else section.reason


@dataclass(frozen=True)
class SourceRun:
    """A run directory whose weights hold the pattern its manifest claims, loaded for export."""

    run: RunManifest
    run_check: CheckReport
    model: nn.Module
    tokenizer: Any
    input_names: list[str]
    position_limit: int  # longest sequence the model takes

    @classmethod
    def from_dir(cls, run_dir: Path) -> SourceRun:
        """Read and check ``run_dir``; raises :class:`SparsityError` when its weights break the
        pattern its manifest claims (naming the first tensor and group that does)."""
        from nxm_deploy.models import input_names_for, load_model, position_limit

        run = RunManifest.read(run_dir)
        report = check_run_dir(run)
        if not report.ok:
            raise SparsityError(f"refusing to export: {report.failure_line()}")
        model, tokenizer = load_model(run_dir)
        model = model.float().eval()
        parity.require_finite_weights(model, run_dir)
        limit = position_limit(model, tokenizer)
        return cls(run, report, model, tokenizer, input_names_for(model, tokenizer), limit)

    @property
    def pattern(self) -> nm.Pattern | None:
        return self.run.facts.pattern

    @property
    def layers(self) -> list[str]:
        """The layers the run made sparse (none for a dense run)."""
        return list(self.run.facts.layers)

    @property
    def max_seq_len(self) -> int:
        return min(self.run.facts.max_seq_len or self.position_limit, self.position_limit)

    def linear_weights(self) -> dict[str, Any]:
        """``nn.Linear`` weights by layer name, to map ONNX weights back by value."""
        from nxm_deploy.models import linear_layers

        return {name: layer.weight for name, layer in linear_layers(self.model).items()}


def _refuse_out_over_run(out: Path, run_dir: Path, overwrite: bool) -> None:
    out_r, run_r = out.resolve(), run_dir.resolve()
    if out_r == run_r or out_r in run_r.parents:
        raise UserError.naming(
            "{0} {out} would replace the run directory {run}; choose another path",
            "out",
            out=out,
            run=run_dir,
        )
    prepare_out(out, overwrite)  # a safe path, and only the tool's files replaced


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


def _tensorrt_section(
    out: Path,
    run: SourceRun,
    config: ExportConfig,
    profile: trt.ShapeProfile,
    reference: dict[str, Any],
    say: Callable[[str], None],
    precision: str,
) -> dict[str, Any]:
    """Write ``build_engine.sh`` (always), the FP16 ONNX when fp16 needs one (checked for N:M like
    the FP32 one), and the engine when asked for and possible; return the ``"tensorrt"`` section.
    ``precision`` is ``config.precision``, or ``int8`` for an INT8 Q/DQ ONNX."""
    version = trt_version()
    major = trt.trt_major(version)
    fp16_onnx = None
    if config.precision == "fp16" and (major is None or major >= 11):  # strongly typed: an FP16 ONNX
        say("writing the FP16 ONNX for TensorRT")
        fp16_onnx = trt.fp16_onnx_name(ONNX_NAME)
        trt.to_fp16_onnx(out / ONNX_NAME, out / fp16_onnx)
        require_sparse_layers(out / fp16_onnx, run.layers, run.pattern, reference)
    inputs = tuple(run.input_names)
    spec = trt.EngineSpec(ONNX_NAME, ENGINE_NAME, inputs, profile, precision, fp16_onnx)
    script = trt.write_build_script(out, spec, version)
    common = {
        "requested": config.engine == "trt",
        "precision": precision,
        "note": FP32_NOTE if precision == "fp32" and config.engine == "trt" else None,
        "profile": {"inputs": list(run.input_names), **profile.as_dict()},
        "build_script": script.name,
        "fp16_onnx": fp16_onnx,
    }
    reason = "not requested (--engine onnx)" if config.engine == "onnx" else trt_unavailable_reason()
    if reason is not None:
        return {"built": False, "reason": reason, "tensorrt_version": version, **common}
    say("building the TensorRT engine")
    built = trt.build_engine(
        out / (fp16_onnx or ONNX_NAME), out / ENGINE_NAME, run.input_names, profile, precision
    )
    return {"built": True, "reason": None, **common, **built}


def _quantize(
    tmp: Path,
    run: SourceRun,
    config: ExportConfig,
    calibration: quantize.CalibrationRows | None,
    data: rows.RunData,
    reference: dict[str, Any],
    say: Callable[[str], None],
) -> tuple[dict[str, Any], CheckReport]:
    """Replace ``tmp/model.onnx`` by its INT8 graph; prove it N:M and in agreement with PyTorch on the
    full dev set. Returns the ``"quantization"`` section and the N:M check of the INT8 graph."""
    spec = config.quantization
    assert spec is not None
    fp32 = tmp / f".fp32-{ONNX_NAME}"
    (tmp / ONNX_NAME).rename(fp32)
    how = "dynamic"
    if calibration:
        smooth = f", SmoothQuant alpha {spec.smooth_alpha:g}" if spec.smooth_alpha > 0 else ""
        how = f"calibrated on {len(calibration.texts_a)} training rows, {spec.calibration_method}{smooth}"
    say(f"quantizing to {spec.mode} ({how})")
    args = (run.tokenizer, run.input_names, run.max_seq_len)
    section = quantize.quantize_onnx(fp32, tmp / ONNX_NAME, spec, calibration, *args)
    fp32.unlink()
    problems = io_problems(describe_io(tmp / ONNX_NAME), run.input_names)
    if problems:
        raise ExportError(f"the {spec.mode} {ONNX_NAME}: " + "; ".join(problems))
    say(f"checking the N:M pattern of the {spec.mode} graph")
    report = require_sparse_layers(tmp / ONNX_NAME, run.layers, run.pattern, reference)
    say(f"comparing the {spec.mode} ONNX with PyTorch on the full dev set")
    section["agreement"] = agreement.dev_agreement(
        run.model,
        tmp / ONNX_NAME,
        run.tokenizer,
        data.task,
        data.dev,
        run.input_names,
        run.max_seq_len,
        enforce=spec.static,  # int8-dynamic: ONNX Runtime's defaults, measured and warned about
        min_agreement=config.min_agreement,
    )
    return section, report


def _sparsity_section(
    report: CheckReport, pattern: nm.Pattern | None, layers: Sequence[str]
) -> dict[str, Any]:
    """The ONNX N:M check for ``export.json``: every layer sparse in PyTorch was proven sparse in the
    ONNX graph (the export fails otherwise); the other encoder weights are listed for their density."""
    body = report.to_json()
    wanted = set(layers)
    for row in body["tensors"]:
        row["expected_sparse"] = row["layer"] in wanted
    return {
        **body,
        "source": ONNX_NAME,
        "pattern": str(pattern) if pattern else None,  # the run's pattern; None for a dense run
        "checked_pattern": str(report.pattern),
        "sparse_layers": list(layers),
        "ok": True,
    }


def _files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def export(config: ExportConfig, progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export ``config.run_dir`` to ``config.out``: ONNX (+ TensorRT), proven N:M and in parity with
    PyTorch; ``progress`` receives one line per step.

    Raises :class:`SparsityError` (run weights break their pattern), :class:`ExportError` (the ONNX
    breaks it, or inputs/outputs are wrong), :class:`~nxm_deploy.export.parity.ParityError`, or
    another :class:`UserError`; ``out`` is then left as it was. Where TensorRT or a GPU is missing the
    export still completes; ``result.trt_unavailable`` says why the engine was not built.
    """
    say = progress or (lambda _msg: None)
    from nxm_deploy.data import resolve_data_dir

    run_dir, out = Path(config.run_dir), check_out_path(config.out)  # "" is not "."
    _refuse_out_over_run(out, run_dir, config.overwrite)
    resolve_data_dir(config.data_dir)  # a data_dir that does not exist is a typo, not "use built-ins"
    with staged_dir(out, overwrite=config.overwrite) as tmp:  # refuses an existing out first
        say(f"checking the N:M pattern of {run_dir}")
        run = SourceRun.from_dir(run_dir)
        limit = run.position_limit
        profile = config.profile or default_profile(limit)
        if profile.max[1] > limit:
            raise ExportError.naming(
                "{0} sequence {seq} exceeds the model's position limit {limit}",
                "profile.max",
                seq=profile.max[1],
                limit=limit,
            )
        spec = config.quantization
        calibration = data = None  # the run's rows first: a run whose rows are gone fails before any work
        if spec is not None:
            data = rows.run_data(run.run, config.data_dir, config.data)
        if spec is not None and spec.static:
            calibration = rows.calibration_rows(
                run.run, config.data_dir, spec.calibration_rows, spec.calibration_seed, data
            )
        sentences = parity.own_sentences(run.run.dataset, config.data) or (
            parity.parity_sentences(run.run.facts.task, config.data_dir)
        )
        reference = run.linear_weights()

        say(f"exporting ONNX (opset {config.opset})")
        onnx_path = tmp / ONNX_NAME
        io = _onnx_from_run(run, onnx_path, config.opset)
        tokenizer_files = sorted(Path(f).name for f in run.tokenizer.save_pretrained(str(tmp)))
        source_run = RunSection.of(run.run)
        hf_config = write_hf_config(tmp, run.model.config, source_run, io["outputs"][0]["shape"])
        say("checking the N:M pattern of the ONNX graph")
        nm_report = require_sparse_layers(onnx_path, run.layers, run.pattern, reference)
        say(f"comparing ONNX Runtime with PyTorch on {sentences.source}")
        seq_lens = parity.seq_grid(run.max_seq_len, config.seq_lens)
        parity_report = parity.compare(
            run.model, onnx_path, run.tokenizer, sentences, run.input_names, config.batches, seq_lens
        )
        parity_report.raise_for_failures()
        quantization = None
        if spec is not None:
            assert data is not None
            quantization, nm_report = _quantize(tmp, run, config, calibration, data, reference, say)
        if spec is not None and not spec.static:  # MatMulInteger graphs are ONNX Runtime's own
            tensorrt = {"built": False, "requested": False, "build_script": None, "precision": None,
                        "reason": "int8-dynamic exports are for ONNX Runtime only"}  # fmt: skip
        else:
            precision = "int8" if spec is not None else config.precision
            tensorrt = _tensorrt_section(tmp, run, config, profile, reference, say, precision)

        manifest = ExportManifest(
            source_run=source_run,
            run_check={
                "pattern": str(run.run_check.pattern),
                "expect_sparse": run.run_check.expect_sparse,
                "tensors": len(run.run_check.rows),
                "ok": run.run_check.ok,
            },
            onnx=OnnxSection.from_json(
                {
                    "file": ONNX_NAME,
                    "exporter": "torch.onnx.export(dynamo=True)",
                    "torch_version": dist_version("torch"),
                    "onnx_version": dist_version("onnx"),
                    "precision": spec.mode if spec is not None else "fp32",
                    "bytes": onnx_path.stat().st_size,
                    "external_data": sorted(p.name for p in tmp.glob(f"{ONNX_NAME}.data*")),
                    **io,
                }
            ),
            tokenizer=TokenizerSection(
                class_name=type(run.tokenizer).__name__,
                model_input_names=tuple(run.input_names),
                files=tuple(tokenizer_files),
                max_seq_len=run.max_seq_len,
                position_limit=run.position_limit,
            ),
            tensorrt=TensorrtSection.from_json(tensorrt),
            provenance=Provenance.here(),
            hf_config=hf_config,
            sparsity=_sparsity_section(nm_report, run.pattern, run.layers),
            parity={
                **parity_report.to_json(),
                "of": "the FP32 ONNX" + (" (before quantization)" if spec else ""),
            },
            quantization=quantization,
        )
        manifest = replace(manifest, files=tuple(sorted({*_files(tmp), EXPORT_MANIFEST})))
        manifest.write(tmp)
    say(f"wrote {out}")
    return ExportResult(out, replace(manifest, path=out, run_dir=run.run.path), sentences.fallback)
