"""``dense``: plain fine-tuning; the reference model and the distillation teacher."""

from nxm_deploy.admm.registry import Budget, Method, Phase, register, remaining


def plan(budget: Budget) -> list[Phase]:
    return [Phase("dense", remaining(budget))]


METHOD = register(Method("dense", "plain fine-tuning (the reference and the teacher)", False, plan))
