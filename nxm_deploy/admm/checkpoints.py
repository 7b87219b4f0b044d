"""Where a run keeps its checkpoints and how a resumed run finds the newest complete one.

A run is built in ``PARENT/.NAME.staging/`` and renamed to ``RUN_DIR`` when complete; ``--resume``
continues the run staged there (``staging``: where, and whether there is one to resume). Layout
under ``.NAME.staging/checkpoints/``::

    config.json                      the exact configuration of the run (resume refuses another)
    phase-0-admm/checkpoint-40/      Trainer checkpoint + nxm_state.* (Z, U, masks, rho) + COMPLETE
    phase-0-admm/final/              weights and state at the end of the phase + COMPLETE
    phase-1-masked/checkpoint-60/    ...

Trainer writes checkpoints in place, so a checkpoint counts only once it holds the ``COMPLETE``
marker, written after Trainer's files and after Z, U and the masks.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from nxm_deploy.admm.dist import barrier, rank
from nxm_deploy.admm.staging import checkpoints_root, resumable, saved_config, staging_dir
from nxm_deploy.admm.trainlog import LOG_NAME
from nxm_deploy.errors import UserError
from nxm_deploy.io import read_json, write_json_atomic
from nxm_deploy.manifest import RUN_MANIFEST
from nxm_deploy.outputs import (
    check_out_path,
    record_owned,
    remove_owned,
    require_replaceable,
    swap_into_place,
)

if TYPE_CHECKING:
    from torch import nn

    from nxm_deploy.admm.config import TrainConfig

MARKER = "COMPLETE"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


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


def plan_run_dir(cfg: TrainConfig, out: str | Path) -> Path:
    """Check ``--out``, ``--resume`` and ``--overwrite`` before any work, changing nothing; return
    the staging directory the run is built (or resumed) in.

    A run is built in the hidden sibling :func:`staging_dir` and renamed to ``--out`` only when it is
    complete, so an existing ``--out`` survives until then. ``--resume`` continues the run staged
    there; ``--overwrite`` replaces ``--out`` (and a staged run) only when they hold nothing but
    what nxm-deploy wrote.
    """
    run_dir = check_out_path(out)
    stage = staging_dir(run_dir)
    if cfg.resume:
        if not resumable(run_dir):
            done = (run_dir / RUN_MANIFEST).is_file()
            raise UserError.naming(
                "{0}: {run_dir} is a complete run, nothing to resume; pass {1} to train again"
                if done
                else "{0}: no interrupted run of {run_dir} to resume (it would be staged in {stage})",
                "resume",
                "overwrite",
                run_dir=run_dir,
                stage=stage,
            )
        old = read_json(saved_config(stage), "run configuration")
        diff = cfg.differs_from(old)
        if diff:
            raise UserError.naming(
                "{0}: the options differ from the run staged in {stage} ({diff}); resume with the same "
                "options, or pass {1} to start again",
                "resume",
                "overwrite",
                stage=stage,
                diff=", ".join(diff),
            )
        return stage
    if run_dir.exists() and any(run_dir.iterdir()):
        if not cfg.overwrite:
            raise UserError.naming("{path} already exists; pass {0} to replace it", "overwrite", path=run_dir)
        require_replaceable(run_dir)
    if stage.exists():
        if not cfg.overwrite:
            raise UserError.naming(
                "an interrupted run of {run_dir} is staged in {stage}; pass {0} to continue it "
                "or {1} to start again",
                "resume",
                "overwrite",
                run_dir=run_dir,
                stage=stage,
            )
        require_replaceable(stage)
    return stage


def prepare_run_dir(cfg: TrainConfig, stage: Path) -> None:
    """Start the staging directory (after :func:`plan_run_dir`): remove a stale staged run when
    starting again, save the configuration a resume must match, and list what the run may write."""
    if rank() == 0 and not cfg.resume:
        remove_owned(stage)
        saved = saved_config(stage)
        saved.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved, cfg.comparable())
        record_owned(stage, also=("checkpoints/", LOG_NAME))
    barrier()


def publish_run_dir(stage: Path, run_dir: Path, keep_checkpoints: bool) -> None:
    """Move the complete run from ``stage`` to ``run_dir`` (replacing an old one only now)."""
    if not keep_checkpoints:
        shutil.rmtree(checkpoints_root(stage), ignore_errors=True)
    record_owned(stage)
    swap_into_place(stage, run_dir)


@contextlib.contextmanager
def loading(checkpoint: Path | None) -> Iterator[None]:
    """Turn a checkpoint that cannot be read safely (truncated, not safetensors, or a pickle that
    ``torch.load(weights_only=True)`` refuses) into one line naming it."""
    try:
        yield
    except (pickle.UnpicklingError, EOFError, SafetensorError, json.JSONDecodeError, RuntimeError) as exc:
        if checkpoint is None or (isinstance(exc, RuntimeError) and "PytorchStreamReader" not in str(exc)):
            raise
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError.naming(
            "{0}: checkpoint {checkpoint} cannot be loaded safely ({reason}); delete that folder to resume "
            "from the one before it, or pass {1} to start again",
            "resume",
            "overwrite",
            checkpoint=checkpoint,
            reason=reason,
        ) from exc


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
