"""``nxm-deploy train``: the options of :class:`~nxm_deploy.admm.config.TrainConfig`, with its
defaults, and each registered method's options (``--rho`` from ``admm``'s, ``--srste-decay`` from
``srste``'s: :func:`method_options`)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import click

from nxm_deploy.admm.config import MIXED_PRECISIONS, PRUNE_SOLVERS, REPORT_TO, TrainConfig
from nxm_deploy.cli.group import cli, setup_logging
from nxm_deploy.cli.options import (
    FINITE_FLOAT,
    data_dir_option,
    data_options,
    default,
    layer_glob_options,
    own_data,
    pattern_option,
)


def _method_choice() -> click.Choice:
    from nxm_deploy.admm.registry import method_names

    return click.Choice(method_names())


def _opt(name: str, help_text: str | None = None, config: type = TrainConfig, **kwargs: Any) -> Any:
    """``--name`` with ``config``'s type and default for the field ``name``."""
    value = default(config, name)
    flag = "--" + name.replace("_", "-")
    kind = kwargs.pop("type", None) or type(value)
    kind = FINITE_FLOAT if kind is float else kind
    return click.option(
        flag, type=kind, default=value, show_default=value is not None, help=help_text, **kwargs
    )


def _method_option(options: type, f: dataclasses.Field[Any]) -> Any:
    """The flag of one field of a method's options class, from its default and ``metadata``."""
    meta = f.metadata
    if meta.get("flag"):
        return click.option("--" + f.name.replace("_", "-"), is_flag=True, help=meta.get("help"))
    kind = click.Choice(meta["choices"]) if "choices" in meta else meta.get("type")
    return _opt(f.name, meta.get("help"), options, **({"type": kind} if kind else {}))


def method_options(fn: Any) -> Any:
    """Every registered method's options as flags, in registration order (a method's own options
    are refused for another method by ``TrainConfig``)."""
    from nxm_deploy.admm.registry import option_fields

    for method, f in reversed(list(option_fields())):
        fn = _method_option(method.options, f)(fn)  # type: ignore[arg-type]
    return fn


@cli.command()
@click.option("--model", default=None, help="Pretrained model: hub id or local directory.")
@click.option("--task", default=None, help="GLUE task: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI.")
@data_dir_option()
@data_options
@click.option("--method", required=True, type=_method_choice(), help="Training recipe.")
@pattern_option(default(TrainConfig, "pattern"))
@click.option("--out", required=True, type=click.Path(), help="Run directory to write.")
@_opt("epochs", "Total epochs, counted from the pretrained weights, for every method.")
@_opt("lr", "Peak learning rate (each phase).")
@_opt("batch_size", "Global batch size.")
@_opt("max_seq_len")
@_opt("max_train_samples", "Fixed random subset (seed 0) of the train set.", type=int)
@_opt("max_eval_samples", "First N dev rows (default: all).", type=int)
@_opt("seed")
@_opt("warmup_ratio")
@_opt("weight_decay")
@click.option("--teacher", type=click.Path(), default=None, help="Dense run of the same task to distil from.")
@_opt("kd_alpha", "Weight of the distillation loss.")
@_opt("kd_temperature")
@click.option(
    "--init-from",
    type=click.Path(),
    default=None,
    help="Start from a dense run (its epochs count towards --epochs).",
)
@click.option("--resume", is_flag=True, help="Continue from the newest complete checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@layer_glob_options
@method_options
@_opt(
    "prune_solver",
    "Hard prune (every sparse method): keep the largest |w| of each M (magnitude), or solve each layer on "
    "training rows: ADMM reconstruction (Boza 2024), SparseGPT with its weight update, or Wanda's mask.",
    type=click.Choice(PRUNE_SOLVERS),
)
@_opt("calibration_rows", "--prune-solver admm|sparsegpt|wanda: training rows (at most 128 tokens each).")
@_opt("save_steps", "Checkpoint every N optimizer steps.")
@_opt("logging_steps")
@_opt(
    "mixed_precision",
    "Autocast precision (weights, Z, U and the ADMM penalty stay fp32); fp16 needs a GPU.",
    type=click.Choice(MIXED_PRECISIONS),
)
@_opt("grad_accum", "Micro-batches per optimizer step (--batch-size stays the global batch).")
@_opt("eval_steps", "Dev metric in train_log.jsonl every N optimizer steps (0: at phase ends).")
@_opt("report_to", "Metrics logger besides train_log.jsonl.", type=click.Choice(REPORT_TO))
@_opt("dataloader_workers", "Data-loader worker processes (0: load in the training process).")
@click.option("--keep-checkpoints", is_flag=True, help="Keep checkpoints/ after a successful run.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def train(**opts: Any) -> None:
    """Fine-tune MODEL on TASK (or your own --data) with an N:M pattern (or dense, the reference).

    Methods: dense (plain fine-tuning), oneshot (magnitude-prune, then fine-tune with the mask),
    asp (NVIDIA's recipe: dense, prune, masked), admm (NxMTransformer: ADMM, prune, masked),
    srste (SR-STE: learn the mask, prune, masked; --freeze-variance for STEP).
    """
    from nxm_deploy.admm.dist import rank, shutdown
    from nxm_deploy.admm.run import train as run_train

    setup_logging()
    if rank() != 0:  # under torchrun every rank runs this: progress lines once, warnings from all
        logging.getLogger("nxm_deploy").setLevel(logging.WARNING)
    opts["data"] = own_data(opts)
    if opts["data"] is None and not opts["task"]:
        raise click.UsageError("pass --task (a GLUE task) or --data (your own data)")
    opts["include"] = tuple(opts["include"])
    opts["exclude"] = tuple(opts["exclude"])
    opts["progress"] = not opts.pop("no_progress")
    try:
        result = run_train(TrainConfig(**opts))
    finally:
        shutdown()  # under torchrun: leave the process group before exit
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    if rank() == 0:  # under torchrun: one line, not one per process
        click.echo(f"run written to {result.run_dir}: {metrics}")
