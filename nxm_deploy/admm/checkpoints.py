"""Where a run keeps its checkpoints and how a resumed run finds the newest complete one.

Layout under ``RUN_DIR/checkpoints/``::

    config.json                      the exact configuration of the run (resume refuses another)
    phase-0-admm/checkpoint-40/      Trainer checkpoint + nxm_state.* (Z, U, masks, rho) + COMPLETE
    phase-0-admm/final/              weights and state at the end of the phase + COMPLETE
    phase-1-masked/checkpoint-60/    ...

Trainer writes checkpoints in place, so a checkpoint counts only once it holds the ``COMPLETE``
marker, written after Trainer's files and after Z, U and the masks.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from nxm_deploy.admm.dist import barrier, rank
from nxm_deploy.errors import UserError
from nxm_deploy.io import read_json, write_json_atomic

if TYPE_CHECKING:
    from torch import nn

    from nxm_deploy.admm.config import TrainConfig

MARKER = "COMPLETE"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def mark_complete(directory: Path) -> None:
    tmp = directory / f".{MARKER}.tmp"
    tmp.write_text("ok\n")
    tmp.replace(directory / MARKER)


def is_complete(directory: Path) -> bool:
    return (directory / MARKER).is_file()


def checkpoints(phase_dir: Path) -> list[tuple[int, Path]]:
    """Trainer checkpoints of a phase, oldest first, complete or not."""
    if not phase_dir.is_dir():
        return []
    found = []
    for p in phase_dir.iterdir():
        m = _CKPT.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def newest_complete(phase_dir: Path) -> Path | None:
    """The newest checkpoint that carries the completion marker, or None."""
    for _, path in reversed(checkpoints(phase_dir)):
        if is_complete(path):
            return path
    return None


def discard_after(phase_dir: Path, keep: Path | None) -> None:
    """Remove checkpoints newer than ``keep`` (all of them when None): they are incomplete, and
    Trainer would write into them in place."""
    limit = step_of(keep) if keep is not None else -1
    for step, path in checkpoints(phase_dir):
        if step > limit:
            shutil.rmtree(path, ignore_errors=True)


def step_of(checkpoint: Path) -> int:
    m = _CKPT.match(checkpoint.name)
    if m is None:
        raise ValueError(f"not a checkpoint directory: {checkpoint}")
    return int(m.group(1))


def prepare_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse or replace an existing run directory (``--resume``/``--overwrite``) and save the
    configuration a resume must match."""
    saved = checkpoints_root(run_dir) / "config.json"
    if run_dir.exists() and any(run_dir.iterdir()):
        if cfg.resume:
            if not saved.is_file():
                raise UserError(f"--resume: {run_dir} holds no checkpoints of an earlier run to resume")
            old = read_json(saved, "run configuration")
            diff = {k for k in set(old) | set(cfg.comparable()) if old.get(k) != cfg.comparable().get(k)}
            if diff:
                raise UserError(
                    f"--resume: the options differ from the run in {run_dir} ({', '.join(sorted(diff))}); "
                    "resume with the same options, or pass --overwrite to start again"
                )
            return
        if not cfg.overwrite:
            raise UserError(
                f"{run_dir} already exists; pass --resume to continue it or --overwrite to replace it"
            )
        if rank() == 0:
            shutil.rmtree(run_dir)
    barrier()
    if rank() == 0:
        saved.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved, cfg.comparable())
    barrier()


def load_weights(model: nn.Module, directory: Path) -> None:
    """Load a checkpoint's safetensors weights (not the N:M state) into ``model``."""
    from safetensors.torch import load_file

    state: dict[str, object] = {}
    for f in sorted(directory.glob("*.safetensors")):
        if f.name != "nxm_state.safetensors":
            state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise UserError(
            f"checkpoint {directory} does not match the model (missing {missing[:3]}); start again"
        )
