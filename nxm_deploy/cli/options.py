"""Option groups shared by the subcommands (one definition per flag), and defaults read from the library.

``default(Config, "field")`` is the library's default for an option, so a default is written once,
in the config class, and ``--help`` shows it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "FINITE_FLOAT",
    "FiniteFloat",
    "data_dir_option",
    "data_options",
    "default",
    "layer_glob_options",
    "own_data",
    "pattern_option",
]


class FiniteFloat(click.ParamType):
    """A float option that refuses ``inf``, ``-inf`` and ``nan`` up front, in one line (exit 1, like any
    value out of its range; text that is no number at all stays click's usage error, exit 2)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if number is not None and not math.isfinite(number):
            from nxm_deploy.errors import UserError

            flag = param.opts[0] if param is not None and param.opts else "the value"
            raise UserError(f"{flag} must be a finite number, got {value}")
        return number


FINITE_FLOAT = FiniteFloat()
"""The type of every float option of every command."""


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


_DATA_FLAGS = ("text_column", "text_pair_column", "label_column", "validation_file", "validation_fraction",
               "problem", "metric", "positive_label")  # fmt: skip


def data_options(fn: F) -> F:
    """``--data`` (own data: a file, a folder or hub:NAME[:CONFIG]) and the options that read it;
    :func:`own_data` turns them into a ``DataOptions``."""
    from nxm_deploy.data.own import METRIC_NAMES, PROBLEMS, DataOptions

    specs = [
        ("--positive-label", dict(default=None, help="The class whose F1 --metric f1 reports.")),
        ("--metric", dict(type=click.Choice(list(METRIC_NAMES)), default=None,
                          help="Main metric [accuracy; pearson for regression].")),
        ("--problem", dict(type=click.Choice(PROBLEMS), default=None,
                           help="[regression when every label is a number and not all are integers]")),
        ("--validation-fraction", dict(type=FINITE_FLOAT, default=None,
                                       help="Hold out this fraction of --data (fixed split, seed 0) [0.1 "
                                       "when no validation file is given or found]")),
        ("--validation-file", dict(type=click.Path(path_type=str), default=None,
                                   help="Validation rows (same columns as --data).")),
        ("--label-column", dict(default=default(DataOptions, "label_column"), show_default=True,
                                help="Column of the label.")),
        ("--text-pair-column", dict(default=None, help="Column of the second text of a pair [none].")),
        ("--text-column", dict(default=None, help="Column of the text [text, else sentence].")),
        ("--data", dict(default=None, metavar="PATH|hub:NAME[:CONFIG]",
                        help="Your own data instead of --task: a CSV, TSV, JSON, JSON Lines or Parquet "
                        "file, a folder with train.* (and validation.*), or a hub data set.")),
    ]  # fmt: skip
    for flag, kwargs in specs:
        fn = click.option(flag, **kwargs)(fn)  # type: ignore[arg-type]
    return fn


def own_data(opts: dict[str, Any], task_flag: str = "--task") -> Any:
    """Pop the :func:`data_options` from ``opts``: a ``DataOptions`` when ``--data`` is given, else
    None; a usage error for --data with ``task_flag``, or a data option without --data."""
    from nxm_deploy.data.own import DataOptions

    source = opts.pop("data")
    given = {k: opts.pop(k) for k in _DATA_FLAGS}
    if source is None:
        extra = [k for k, v in given.items() if v is not None and v != default(DataOptions, k)]
        if extra:
            raise click.UsageError(f"--{extra[0].replace('_', '-')} goes with --data")
        return None
    if opts.get("task"):
        raise click.UsageError(f"pass {task_flag} or --data, not both")
    return DataOptions(source, **{k: v for k, v in given.items() if v is not None})
