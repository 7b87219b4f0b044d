"""``srste``: learned N:M masks (SR-STE, Zhou et al. 2021). The forward pass uses the top-N-of-M
mask of the dense weights, recomputed every --mask-interval steps, gradients pass straight through
to the dense weights and the pruned ones decay; then a hard prune (the final learned mask) and a
fixed-mask phase. Default split: two thirds of --epochs learning the mask, one third masked (the
same split as admm, so the two compare on equal terms)."""

from nxm_deploy.admm.registry import Budget, Method, Phase, nonempty, register, remaining
from nxm_deploy.errors import UserError


def plan(budget: Budget) -> list[Phase]:
    total = remaining(budget)
    masked = budget.masked_epochs if budget.masked_epochs is not None else round(total / 3, 6)
    if not 0 <= masked < total:
        raise UserError(
            f"--masked-epochs {masked:g} does not fit the budget: it must be at least 0 and below the "
            f"{total:g} epochs left (--epochs counts the whole run, from the pretrained weights)"
        )
    return nonempty([Phase("srste", round(total - masked, 6)), Phase("masked", masked)])


METHOD = register(
    Method("srste", "SR-STE: learn the N:M mask in training, hard prune, fine-tune with the mask", True, plan)
)
