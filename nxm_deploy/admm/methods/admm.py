"""``admm``: NxMTransformer. Fine-tune with the ADMM penalty that pulls each selected weight towards
its nearest N:M matrix, hard-prune, then fine-tune with the mask fixed. Default split: two thirds
of --epochs ADMM, one third masked."""

from nxm_deploy.admm.registry import Budget, Method, Phase, nonempty, register, remaining, split_epochs


def plan(budget: Budget) -> list[Phase]:
    total = remaining(budget)
    admm_epochs = budget.admm_epochs if budget.admm_epochs is not None else round(total * 2 / 3, 6)
    admm, masked = split_epochs(total, admm_epochs, "--admm-epochs")
    return nonempty([Phase("admm", admm), Phase("masked", masked)])


METHOD = register(
    Method("admm", "NxMTransformer: ADMM towards N:M, hard prune, fine-tune with the mask", True, plan)
)
