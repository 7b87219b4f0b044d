"""``asp``: NVIDIA's recipe. Fine-tune dense (or start --init-from a dense run, whose epochs count
as the dense phase), prune by magnitude, fine-tune again with the mask fixed. Default split: half
of --epochs dense, half masked (the same schedule twice)."""

from nxm_deploy.admm.registry import Budget, Method, Phase, nonempty, register, remaining, split_epochs
from nxm_deploy.errors import UserError


def plan(budget: Budget) -> list[Phase]:
    if budget.init_epochs > 0:
        if budget.dense_epochs is not None and abs(budget.dense_epochs - budget.init_epochs) > 1e-9:
            raise UserError(
                f"--dense-epochs {budget.dense_epochs:g} contradicts --init-from, whose run already "
                f"trained {budget.init_epochs:g} dense epochs; leave --dense-epochs out"
            )
        return [Phase("masked", remaining(budget))]
    total = remaining(budget)
    dense_epochs = budget.dense_epochs if budget.dense_epochs is not None else total / 2
    dense, masked = split_epochs(total, dense_epochs, "--dense-epochs")
    return nonempty([Phase("dense", dense), Phase("masked", masked)])


METHOD = register(
    Method("asp", "NVIDIA ASP: fine-tune dense, prune by magnitude, fine-tune with the mask", True, plan)
)
