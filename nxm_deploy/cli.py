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
            raise CliError(str(exc)) from exc


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


cli.command(name="export", help="Export a run to ONNX / TensorRT with the pattern proven.")(
    _not_built("export", 4)
)
cli.command(name="bench", help="Latency and accuracy of a sparse export against a dense one.")(
    _not_built("bench", 5)
)
cli.command(name="demo", help="The main job end to end on the shipped MiniLM and SST-2.")(
    _not_built("demo", 5)
)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; ``argv`` lets tests call it in-process."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="nxm-deploy")


if __name__ == "__main__":
    main()
