"""The ``nxm-deploy`` group: one-line errors, warnings as ``warning:`` lines, logging set-up.

A user's mistake (:class:`~nxm_deploy.errors.UserError`) exits with its code (1; 3 when TensorRT or
a GPU is needed) and one line; ``--verbose`` adds the traceback. Usage errors exit 2 (click's own).
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import click

from nxm_deploy.errors import UserError, flag
from nxm_deploy.version import __version__

__all__ = ["CliError", "cli", "setup_logging"]


# The library's parameters whose flag is not ``--`` and the name with dashes (``errors.flag``).
FLAG_OF = {
    "min_time_s": "--min-time",
    "max_time_s": "--max-time",
    "source": "--data",
    "profile": "--min/--opt/--max-shape",
    "profile.max": "--max-shape",
    "repo": "--triton-repo",
}


def cli_flag(name: str) -> str:
    """The flag that sets the library's parameter ``name``."""
    return FLAG_OF.get(name) or flag(name)


class CliError(click.ClickException):
    """A user's mistake, shown as one line: ``error: ...``."""

    exit_code = 1

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
    click.echo(f"warning: {message}", err=True)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show warnings as ``warning: ...`` lines while a command runs; restore the old hook after."""
    before = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        yield
    finally:
        warnings.showwarning = before


class Group(click.Group):
    """Turns :class:`UserError` into a one-line exit with its code, unless ``--verbose``."""

    def invoke(self, ctx: click.Context) -> Any:
        with _warnings_as_lines():
            try:
                return super().invoke(ctx)
            except UserError as exc:
                if ctx.meta.get("nxm_verbose"):
                    traceback.print_exc()
                err = CliError(exc.worded(cli_flag))  # the flags, not parameter names
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


def setup_logging() -> None:
    """``[nxm-deploy] ...`` progress lines on stderr; transformers' own logs and bars quiet."""
    import logging

    class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to whatever ``sys.stderr`` is now (a test's capture, a redirected stream)."""

        @property  # type: ignore[override]
        def stream(self) -> Any:
            import sys

            return sys.stderr

        @stream.setter
        def stream(self, _value: Any) -> None:
            pass

    logger = logging.getLogger("nxm_deploy")
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("[nxm-deploy] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Writing model shards" bars; Trainer keeps its own
