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

cli.command(name="train", help="Fine-tune with N:M sparsity (ADMM and baselines).")(_not_built("train", 3))
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
