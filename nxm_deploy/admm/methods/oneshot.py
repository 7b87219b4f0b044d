"""``oneshot``: magnitude-prune the pretrained weights to N:M, then fine-tune with the mask fixed."""

from nxm_deploy.admm.registry import Budget, Method, Phase, register, remaining


def plan(budget: Budget) -> list[Phase]:
    return [Phase("masked", remaining(budget))]


METHOD = register(
    Method("oneshot", "prune the pretrained weights by magnitude, then fine-tune with the mask", True, plan)
)
