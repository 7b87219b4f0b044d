"""``nxm-deploy check PATH``: one row per tensor, exit 0 only when every selected tensor holds N:M."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from nxm_deploy.cli.group import CliError, cli, cli_flag
from nxm_deploy.cli.options import layer_glob_options, pattern_option


@cli.command()
@click.argument("path", type=click.Path(path_type=str))
@pattern_option(default_pattern=None)
@layer_glob_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(
    path: str, pattern: str | None, include: Sequence[str], exclude: Sequence[str], as_json: bool
) -> None:
    """Check that weights hold an N:M pattern, tensor by tensor.

    PATH is a run directory (the layers and pattern its manifest names; a dense run reports its
    density and passes, unless --pattern is given: then it must hold it), an export directory, a
    .safetensors file (2-D weights inside the encoder blocks) or an ONNX file (weights along each
    consumer's reduction axis). Exit 0 when every selected tensor holds the pattern, 1 otherwise
    (and when nothing is selected, for an empty .onnx, and inside an unfinished .partial export).
    --pattern defaults to the manifest's, else 2:4.
    """
    from nxm_deploy.check import check as run_check
    from nxm_deploy.check.report import format_table, verdict

    report = run_check(path, pattern, include, exclude)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif report.rows:
        click.echo(format_table(report.rows))
    if not report.ok:
        raise CliError(report.failure_line(cli_flag))
    if not as_json:
        click.echo(f"ok: {verdict(report)}")
