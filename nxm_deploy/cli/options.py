"""Option groups shared by the subcommands (STYLE.md habit 7), and defaults read from the library.

``default(Config, "field")`` is the library's default for an option, so a default is written once,
in the config class, and ``--help`` shows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["data_dir_option", "default", "layer_glob_options", "pattern_option"]


def default(config: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``config``."""
    for f in dataclasses.fields(config):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f"{config.__name__} has no field {name!r} with a default")


def pattern_option(default_pattern: str | None = "2:4") -> Callable[[F], F]:
    return click.option(
        "--pattern",
        default=default_pattern,
        show_default=default_pattern is not None,
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


def data_dir_option(purpose: str = "") -> Callable[[F], F]:
    """``--data-dir``: a GLUE root (one folder per task); default ``$GLUE_DIR``, else the hub."""
    return click.option(
        "--data-dir",
        type=click.Path(path_type=str),
        default=None,
        help=f"GLUE root (one folder per task){purpose}; default $GLUE_DIR, else the hub.",
    )
