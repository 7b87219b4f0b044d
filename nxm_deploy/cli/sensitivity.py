"""``nxm-deploy sensitivity``: the options of :class:`~nxm_deploy.sensitivity.config.SensitivityConfig`,
with its defaults."""

from __future__ import annotations

from typing import Any

import click

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
from nxm_deploy.sensitivity.config import SensitivityConfig


def _opt(name: str, help_text: str, **kwargs: Any) -> Any:
    value = default(SensitivityConfig, name)
    return click.option(
        "--" + name.replace("_", "-"),
        type=FINITE_FLOAT if isinstance(value, float) else type(value),
        default=value,
        show_default=True,
        help=help_text,
        **kwargs,
    )


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=str))
@click.option(
    "--out", required=True, type=click.Path(path_type=str), help="JSON file to write (plot: .png beside)."
)
@click.option("--task", default=None, help="GLUE task [the run's own].")
@data_dir_option()
@data_options
@_opt("rows", "Training rows to score (a fixed random subset drawn with --seed; never dev rows).")
@_opt("seed", "Seed of the row subset.")
@click.option(
    "--rows-from",
    type=click.Choice(["auto", "unseen", "train"]),
    default=default(SensitivityConfig, "rows_from"),
    show_default=True,
    help="unseen: training rows the run did not train on (out of sample; it trained on a subset); "
    "train: any training row; auto: unseen where the run left rows out, else train (in sample).",
)
@pattern_option(default(SensitivityConfig, "pattern"))
@_opt("budget", "Largest drop (points of the task's metric) the --exclude list may leave.")
@_opt("batch_size", "Rows per forward pass.")
@layer_glob_options
@click.option("--overwrite", is_flag=True, help="Replace an existing --out (and its plot).")
def sensitivity(**opts: Any) -> None:
    """How much RUN_DIR (a dense run) loses when one layer, or one kind of layer in every block, is
    made N:M by magnitude, on training rows; a ranking; the --exclude list for train that keeps the
    drop with all other layers N:M under --budget, and the share of the encoder's linear FLOPs that
    stays N:M. Writes --out (JSON) and a plot beside it.
    """
    from nxm_deploy.sensitivity.run import sensitivity as run_sensitivity

    setup_logging()
    opts["data"] = own_data(opts)
    result = run_sensitivity(SensitivityConfig(**opts))
    r = result.report
    click.echo(f"sensitivity written to {result.out} (plot {result.plot})")
    click.echo(
        f"  baseline {r['metric']} {r['baseline']:.2f} points on {r['rows']['rows']} "
        f"{'unseen' if not r['rows'].get('in_sample', True) else 'in-sample'} training rows; "
        f"{r['measurements']} measurements in {r['wall_time_s']:.0f} s"
    )
    for k in r["kinds"]:
        click.echo(f"  {k['label']:<18} every block {r['pattern']}: drop {k['drop']:.2f}")
    top = ", ".join(f"{x['name']} ({x['drop']:.2f})" for x in r["ranking"][:3])
    click.echo(f"  most sensitive: {top}")
    click.echo(
        f"  exclude {len(r['exclude'])} of {len(r['layers'])} layers: drop {r['combined_drop']:.2f} "
        f"(budget {r['budget']:g}), {100 * r['flops_share']:.1f}% of encoder linear FLOPs stay {r['pattern']}"
    )
    if r["train_exclude"]:
        click.echo(f"  train {r['train_exclude']}")
