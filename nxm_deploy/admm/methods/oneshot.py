"""``oneshot``: prune the pretrained weights to N:M, then fine-tune with the mask fixed.

With ``--init-from RUN`` and ``--epochs`` equal to that run's epochs there is nothing to fine-tune:
the run is pruned (``--prune-solver admm`` reconstructs each layer) and evaluated, training-free."""

from __future__ import annotations

from typing import Any

from nxm_deploy.admm.registry import Budget, Method, Phase, register, remaining


def plan(budget: Budget, opts: Any) -> list[Phase]:
    if budget.init_epochs > 0 and budget.epochs == budget.init_epochs:
        return []  # training-free: prune the --init-from run (the run prunes at its end), no training
    return [Phase("masked", remaining(budget))]


METHOD = register(
    Method("oneshot", "prune the pretrained weights by magnitude, then fine-tune with the mask", True, plan)
)
