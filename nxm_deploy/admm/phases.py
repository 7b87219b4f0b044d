"""What each phase kind adds to a phase: how it starts and the callbacks that run it.

* ``admm``: Z <- project(W), U <- 0; the Z/U updates (:class:`~nxm_deploy.admm.callbacks.AdmmCallback`);
* ``srste``: the learned masks (:class:`~nxm_deploy.admm.srste.SrsteState`), from the start or, with
  ``--freeze-variance``, from the switch step on; :class:`~nxm_deploy.admm.callbacks.SrsteCallback`;
* ``masked``: the hard prune (unless the masks are fixed already), then masks on weights and gradients.
"""

from __future__ import annotations

from typing import Any

from nxm_deploy.admm.calibrate import hard_prune
from nxm_deploy.admm.callbacks import AdmmCallback, MaskCallback, SrsteCallback
from nxm_deploy.admm.hardware import StepSkips
from nxm_deploy.admm.registry import Phase
from nxm_deploy.admm.srste import SrsteState
from nxm_deploy.admm.state import AdmmSchedule


def start_phase(phase: Phase, run: Any) -> None:
    """Start ``phase`` of ``run`` (``admm.run._Run``) from scratch (a resumed phase loads instead)."""
    if phase.kind == "admm":
        run.sparsity.start_admm(run.cfg.admm_rho())
    elif phase.kind == "srste" and not run.cfg.freeze_variance:
        run.sparsity.srste.begin()
    elif phase.kind == "masked":
        run.sparsity.stop_admm()
        if not run.sparsity.masked:
            hard_prune(run.sparsity, run.model, run.data.train, run.cfg)


def phase_callbacks(phase: Phase, run: Any, index: int) -> list[Any]:
    """The callbacks of ``phase``'s kind, after the :class:`StepSkips` they share (it must run
    first); an SR-STE phase also attaches its state to the run's sparsity state here, before the
    phase starts or loads a checkpoint."""
    cfg, sparsity, skips = run.cfg, run.sparsity, StepSkips()
    if phase.kind == "masked":
        return [skips, MaskCallback(sparsity, skips)]
    if phase.kind == "admm":
        schedule = AdmmSchedule(cfg.admm_rho_max(), cfg.rho_growth)
        decoupled = cfg.admm_penalty == "decoupled"
        admm = AdmmCallback(sparsity, schedule, cfg.admm_interval, run.trainlog, index, skips, decoupled)
        return [skips, admm]
    if phase.kind == "srste":
        sparsity.srste = SrsteState(sparsity.weights, sparsity.pattern, cfg.srste_decay,
                                    cfg.srste_decay_mode == "decoupled", cfg.mask_interval)  # fmt: skip
        switch = cfg.switch_fraction if cfg.freeze_variance else None
        return [skips, SrsteCallback(sparsity.srste, run.trainlog, index, switch, skips)]
    return []
