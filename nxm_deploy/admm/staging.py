"""Where ``train`` builds a run before it appears at ``--out``, and whether ``--resume`` can continue it.

A run is built in the hidden sibling ``PARENT/.NAME.staging/`` and renamed to ``--out`` once it is
complete. ``checkpoints/config.json`` there is the run's exact configuration, saved before its first
step: while it is there, ``--resume`` continues the staged run (from its newest complete
checkpoint, or from the start when there is none yet). Torch-free, so that a script driving
``train`` in a subprocess can ask :func:`resumable` whether to pass ``--resume`` or ``--overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["checkpoints_root", "resumable", "saved_config", "staging_dir"]


def staging_dir(run_dir: Path) -> Path:
    """Where a run is built: ``PARENT/.NAME.staging``, renamed to ``--out`` once it is complete."""
    return run_dir.with_name(f".{run_dir.name}.staging")


def checkpoints_root(stage: Path) -> Path:
    """The checkpoints of the run built in ``stage``."""
    return stage / "checkpoints"


def saved_config(stage: Path) -> Path:
    """The configuration a resume of the run built in ``stage`` must match."""
    return checkpoints_root(stage) / "config.json"


def resumable(out: str | os.PathLike[str]) -> bool:
    """Whether ``train --out OUT --resume`` has an interrupted run of ``out`` to continue (else
    ``--resume`` is refused and ``--overwrite`` starts again)."""
    return saved_config(staging_dir(Path(out))).is_file()
