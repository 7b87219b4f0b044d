"""What each phase kind adds to a phase: how it starts, its callbacks and its optimizer.

The two shared kinds live here: ``dense`` (nothing added) and ``masked`` (the hard prune, unless
the masks are fixed already, then masks on weights and gradients). The others come with their
method (:class:`~nxm_deploy.admm.registry.PhaseKind`): ``admm`` (``methods/admm.py``), ``srste``
(``methods/srste.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import nn

from nxm_deploy.admm.callbacks import MaskCallback
from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.admm.hardware import StepSkips
from nxm_deploy.admm.inputs import TaskData
from nxm_deploy.admm.prune.reconstruct import hard_prune
from nxm_deploy.admm.registry import Phase, get_kind
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.admm.trainlog import TrainLog


class RunContext(Protocol):
    """What a phase hook sees of the run: the configuration and the chosen method's options, the
    model and its teacher, the tokenized rows, the N:M state and the log (``admm.run`` builds it)."""

    cfg: TrainConfig
    model: nn.Module
    teacher: nn.Module | None
    data: TaskData
    sparsity: SparsityState
    trainlog: TrainLog

    @property
    def options(self) -> Any: ...


def start_phase(phase: Phase, run: RunContext) -> None:
    """Start ``phase`` of ``run`` from scratch (a resumed phase loads its checkpoint instead)."""
    if phase.kind == "masked":
        run.sparsity.method = None  # the method's pull towards N:M ends at the hard prune
        if not run.sparsity.masked:
            hard_prune(run.sparsity, run.model, run.data.train, run.cfg)
        return
    kind = get_kind(phase.kind)
    if kind is not None and kind.start is not None:
        kind.start(phase, run)


def phase_callbacks(phase: Phase, run: RunContext, index: int) -> list[Any]:
    """The callbacks of ``phase``'s kind, after the :class:`StepSkips` they share (it must run
    first). A method's kind also attaches its state to ``run.sparsity.method`` here, before the
    phase starts or loads a checkpoint."""
    skips = StepSkips()
    if phase.kind == "masked":
        return [skips, MaskCallback(run.sparsity, skips)]
    kind = get_kind(phase.kind)
    if kind is None or kind.callbacks is None:
        return []
    return [skips, *kind.callbacks(phase, run, index, skips)]


def phase_optimizer(phase: Phase, run: RunContext) -> type | None:
    """The optimizer class of ``phase``'s Trainer; None: Trainer's own."""
    kind = get_kind(phase.kind)
    return kind.optimizer(phase, run) if kind is not None and kind.optimizer is not None else None
