"""``nxm-deploy export RUN_DIR --out DIR``: the options of :class:`~nxm_deploy.export.config.ExportConfig`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from nxm_deploy.cli.group import CliError, cli, cli_flag
from nxm_deploy.cli.options import FINITE_FLOAT, data_dir_option, data_options, default, own_data
from nxm_deploy.errors import EXIT_NEEDS_GPU, UserError
from nxm_deploy.export.config import ENGINES, ExportConfig
from nxm_deploy.export.quantize import CALIBRATION_METHODS, QUANTIZE_MODES
from nxm_deploy.export.trt import PRECISIONS
from nxm_deploy.runtime.backends import ORT_PROVIDERS


def _shape_profile(shapes: Sequence[str | None]) -> Any:
    """A TensorRT shape profile from --min/--opt/--max-shape (all three or none)."""
    if not any(shapes):
        return None
    if not all(shapes):
        raise click.UsageError("give --min-shape, --opt-shape and --max-shape together (or none of them)")
    from nxm_deploy.export.trt import ShapeProfile

    return ShapeProfile.parse(*shapes)


_TRITON_FLAGS = {"backend": "--triton-backend", "ort_provider": "--triton-ort-provider"}


def _triton_flag(name: str) -> str:
    """The flag of a parameter of the Triton text repository (``backend`` is ``--triton-backend``)."""
    return _TRITON_FLAGS.get(name) or cli_flag(name)


def _echo_export(result: Any) -> None:
    m = result.manifest
    onnx, sparsity, par, trt_section = m.onnx, m.sparsity, m.parity, m.tensorrt
    click.echo(f"exported {m.source_run.path} -> {result.out}")
    inputs = ", ".join(i.name for i in onnx.inputs)
    click.echo(f"  onnx: {onnx.file}, opset {onnx.opset}, inputs {inputs} [batch, sequence]")
    if sparsity["pattern"]:
        n = len(sparsity["sparse_layers"])
        click.echo(f"  N:M: all {n} sparse layers hold {sparsity['pattern']} in the ONNX graph")
    else:
        click.echo("  N:M: dense run, exported dense")
    tol = ", ".join(f"{k} atol {v['atol']:g} rtol {v['rtol']:g}" for k, v in par["tolerance"].items())
    click.echo(
        f"  parity vs PyTorch: max abs diff {par['max_abs_diff']:.2e} over {len(par['cases'])} cases ({tol}) "
        f"on {par['inputs']['source']}"
    )
    q = m.quantization
    if q:
        agree, acc = q["agreement"], q["agreement"]["main"]
        same = (
            f"same class as PyTorch on {100 * agree['agreement']:.2f}%"
            if agree["agreement"] is not None
            else (f"Pearson {100 * agree['pearson_drop']:+.2f} points from PyTorch's")
        )
        click.echo(
            f"  {q['mode']}: {same} of {agree['rows']} dev rows; {agree['main_metric']} {acc['onnx']:.4f} "
            f"through ONNX Runtime (PyTorch fp32 {acc['torch']:.4f}); max logit diff "
            f"{agree['logits']['max_abs_diff']:.3g}"
        )
    if q and q["agreement"].get("warning"):
        click.echo(f"warning: {q['agreement']['warning']}", err=True)
    if par["inputs"]["fallback_reason"]:
        why = (
            result.parity_fallback.worded(cli_flag)
            if result.parity_fallback
            else par["inputs"]["fallback_reason"]
        )
        click.echo(f"warning: parity ran on built-in sentences: {why}", err=True)
    evidence = trt_section.extra
    if trt_section.built:
        click.echo(
            f"  tensorrt: {trt_section.engine} built ({evidence['engine_precision']} by its layers), "
            f"sparse kernels picked for {len(evidence['sparse_layers'])} of "
            f"{len(evidence['eligible_layers'])} eligible layers"
        )
    if trt_section.note:
        click.echo(f"warning: {trt_section.note}", err=True)
    elif not trt_section.build_script:
        click.echo(f"  tensorrt: {trt_section.reason}")
    elif not trt_section.requested:
        click.echo(f"  tensorrt: not requested (--engine onnx); {trt_section.build_script} written")
    else:
        click.echo(
            f"  tensorrt: not built; {trt_section.build_script} written: run it on a machine with "
            "TensorRT and an NVIDIA GPU"
        )


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=str))
@click.option("--out", required=True, type=click.Path(path_type=str), help="Export directory to write.")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=default(ExportConfig, "engine"),
    show_default=True,
    help="onnx: model.onnx; trt: also a TensorRT engine built with sparse weights allowed.",
)
@click.option(
    "--opset",
    type=int,
    default=default(ExportConfig, "opset"),
    show_default=True,
    help="ONNX opset, 17 to 25.",
)
@click.option(
    "--precision",
    type=click.Choice(("auto", *PRECISIONS)),
    default=default(ExportConfig, "precision"),
    show_default=True,
    help="Precision of the TensorRT engine (the ONNX and its parity check are fp32). auto: fp16 with "
    "--engine trt (TensorRT runs 2:4 sparse kernels only in FP16/INT8, never in fp32), else fp32.",
)
@click.option("--min-shape", metavar="BxS", help="TensorRT profile: smallest batch x sequence.")
@click.option("--opt-shape", metavar="BxS", help="TensorRT profile: batch x sequence to tune for.")
@click.option("--max-shape", metavar="BxS", help="TensorRT profile: largest batch x sequence.")
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZE_MODES),
    default=default(ExportConfig, "quantize"),
    help="int8: static INT8 Q/DQ (symmetric, weights per output channel), calibrated on the run's "
    "training rows; int8-dynamic: ONNX Runtime's dynamic quantization (ONNX Runtime only).",
)
@click.option(
    "--calibration-rows",
    type=int,
    default=default(ExportConfig, "calibration_rows"),
    show_default=True,
    help="Training rows of the run to calibrate --quantize int8 on (seeded draw; never dev rows).",
)
@click.option(
    "--calibration-method",
    default=default(ExportConfig, "calibration_method"),
    show_default=True,
    help=f"Activation ranges for --quantize int8: {', '.join(CALIBRATION_METHODS)}.",
)
@click.option(
    "--calibration-seed",
    type=int,
    default=default(ExportConfig, "calibration_seed"),
    show_default=True,
    help="Seed of the calibration rows' draw.",
)
@click.option(
    "--smooth-alpha",
    type=FINITE_FLOAT,
    default=default(ExportConfig, "smooth_alpha"),
    show_default=True,
    help="--quantize int8: SmoothQuant's migration strength before calibration (moves activation "
    "outliers into the weights, keeping their zeros); 0 turns it off.",
)
@click.option(
    "--min-agreement",
    type=FINITE_FLOAT,
    default=default(ExportConfig, "min_agreement"),
    show_default=True,
    help="--quantize int8: the share of dev rows on which it must predict the FP32 PyTorch model's class.",
)
@data_dir_option(" for the parity sentences (built-in ones when neither has the task)")
@data_options
@click.option("--overwrite", is_flag=True, help="Replace an existing --out, once the new one is complete.")
@click.option(
    "--triton-repo",
    type=click.Path(path_type=str),
    default=None,
    help="Also write a Triton model repository entry DIR/NAME (ONNX Runtime, or the TensorRT plan when "
    "built); see docs/serving.md.",
)
@click.option("--triton-name", default=None, help="Triton model name [the --out folder's name].")
@click.option("--triton-max-batch", type=int, default=32, show_default=True, help="Triton max_batch_size.")
@click.option(
    "--triton-ort-provider",
    type=click.Choice(ORT_PROVIDERS),
    default=None,
    help="Serve model.onnx on ONNX Runtime's provider: cpu (KIND_CPU), cuda or tensorrt (KIND_GPU) "
    "[Triton decides].",
)
@click.option(
    "--triton-backend",
    type=click.Choice(("auto", "python")),
    default="auto",
    show_default=True,
    help="auto: Triton's ONNX Runtime backend (or the TensorRT plan); python: model.onnx on ONNX Runtime "
    "inside Triton's Python backend, for a Triton without the ONNX Runtime backend.",
)
@click.pass_context
def export(
    ctx: click.Context,
    run_dir: str,
    out: str,
    engine: str,
    opset: int,
    precision: str,
    min_shape: str | None,
    opt_shape: str | None,
    max_shape: str | None,
    quantize: str | None,
    calibration_rows: int,
    calibration_method: str,
    calibration_seed: int,
    smooth_alpha: float,
    min_agreement: float,
    data_dir: str | None,
    overwrite: bool,
    triton_repo: str | None,
    triton_name: str | None,
    triton_max_batch: int,
    triton_ort_provider: str | None,
    triton_backend: str,
    **data_opts: Any,
) -> None:
    """Export RUN_DIR (written by train) to --out, with the N:M pattern proven at each step.

    Checks the run's weights against the pattern its manifest claims, exports model.onnx (dynamic
    batch and sequence), checks the pattern again on the ONNX graph along each MatMul/Gemm's
    reduction axis, compares ONNX Runtime with PyTorch on dev sentences of the run's task (a run
    on its own data: the validation rows it recorded, or those of --data), and writes the
    tokenizer, build_engine.sh (a trtexec command) and export.json. The directory is built beside
    --out and renamed into place only when complete. With --triton-repo DIR it also writes
    DIR/NAME, a Triton Inference Server model, and beside it DIR/NAME_tokenize, DIR/NAME_labels and
    the ensemble DIR/NAME_text that takes raw text (docs/serving.md).
    With --quantize int8 model.onnx is a static INT8 Q/DQ graph calibrated on the run's training
    rows, checked for the pattern again and scored against PyTorch on the full dev set.

    The TensorRT shape profile defaults to 1x8, 8x128, 32x512 (sequence capped by the model's
    position limit).

    Exit codes: 0 done; 1 a mistake in the input (not a run directory, unreadable weights, weights
    that break the claimed pattern, --out exists, ONNX/PyTorch parity failure); 2 usage error;
    3 --engine trt where TensorRT or an NVIDIA GPU is missing: the export directory is complete
    but has no engine (run its build_engine.sh on a machine with both).
    """
    from nxm_deploy.export.pipeline import export as run_export

    given = [f"--{n.replace('_', '-')}" for n in ("triton_name", "triton_max_batch", "triton_ort_provider",
                                                   "triton_backend")
             if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]  # fmt: skip
    if given and not triton_repo:
        raise CliError(f"{', '.join(given)} describe the Triton model: add --triton-repo DIR or drop them")
    config = ExportConfig(
        run_dir=run_dir,
        out=out,
        engine=engine,
        opset=opset,
        precision=precision,
        profile=_shape_profile((min_shape, opt_shape, max_shape)),
        data_dir=data_dir,
        overwrite=overwrite,
        data=own_data(data_opts),
        quantize=quantize,
        calibration_rows=calibration_rows,
        calibration_method=calibration_method,
        calibration_seed=calibration_seed,
        smooth_alpha=smooth_alpha,
        min_agreement=min_agreement,
    )
    if triton_repo:  # refuse a bad name or an existing model before the export, not after it
        from nxm_deploy.runtime.triton import TritonOptions, model_name_for
        from nxm_deploy.runtime.triton_text import check_text_targets, write_text_repo

        name = triton_name or model_name_for(out)
        triton = TritonOptions(name, triton_max_batch, overwrite=overwrite, ort_provider=triton_ort_provider)
        try:
            check_text_targets(triton_repo, triton, triton_backend)
        except UserError as exc:  # its backend and ort_provider are the --triton-* flags here
            err = CliError(exc.worded(_triton_flag))
            err.exit_code = exc.exit_code
            raise err from exc
    result = run_export(config, progress=lambda msg: click.echo(f"[export] {msg}", err=True))
    _echo_export(result)
    if triton_repo:
        text = write_text_repo(result.out, triton_repo, triton, triton_backend)
        model = text.model
        buckets = ", ".join(map(str, model.buckets))
        click.echo(
            f"  triton: {model.path} ({model.platform}, max batch {model.max_batch_size}, "
            f"sequence buckets {buckets})"
        )
        click.echo(
            f"  triton: text in: ensemble {text.ensemble} ({text.tokenize} -> {model.name} -> {text.labels})"
        )
    if result.trt_unavailable:
        click.echo(f"error: TensorRT engine not built: {result.trt_unavailable}", err=True)
        ctx.exit(EXIT_NEEDS_GPU)
