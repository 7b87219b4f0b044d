"""``dense``: plain fine-tuning; the reference model and the distillation teacher."""

from __future__ import annotations

from typing import Any

from nxm_deploy.admm.registry import Budget, Method, Phase, register, remaining


def plan(budget: Budget, opts: Any) -> list[Phase]:
    return [Phase("dense", remaining(budget))]


METHOD = register(Method("dense", "plain fine-tuning (the reference and the teacher)", False, plan))
