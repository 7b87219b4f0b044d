"""The ``nxm-deploy`` command line: a thin click layer over the library.

Each subcommand (one module here: ``check``, ``train``, ``export``, ``bench``, ``sensitivity``,
``demo``, ``serve``) parses its options, builds the library's config (whose defaults and choices it shows),
calls the library and prints. ``group`` holds the error handling; ``options`` the option groups
the commands share.
"""

from __future__ import annotations

from collections.abc import Sequence

from nxm_deploy.cli import bench, check, demo, export, sensitivity, serve, train  # noqa: F401  (each registers its command)
from nxm_deploy.cli.group import cli

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; ``argv`` lets tests call it in-process."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="nxm-deploy")
