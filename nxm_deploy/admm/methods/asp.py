"""``asp``: NVIDIA's recipe. Fine-tune dense (or start --init-from a dense run, whose epochs count
as the dense phase), prune by magnitude, fine-tune again with the mask fixed. Default split: half
of --epochs dense, half masked (the same schedule twice)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nxm_deploy.admm.registry import Budget, Method, Phase, nonempty, register, remaining, split_epochs
from nxm_deploy.errors import OptionError


@dataclass(frozen=True)
class AspOptions:
    dense_epochs: float | None = field(
        default=None,
        metadata={  # default: half of the budget
            "type": float,
            "help": "ASP: epochs of the dense phase [1/2 of --epochs].",
        },
    )


def plan(budget: Budget, opts: AspOptions) -> list[Phase]:
    if budget.init_epochs > 0:
        if opts.dense_epochs is not None and abs(opts.dense_epochs - budget.init_epochs) > 1e-9:
            raise OptionError(
                "{0} {dense:g} contradicts {1}, whose run already trained {init:g} dense epochs; "
                "leave {0} out", "dense_epochs", "init_from",
                dense=opts.dense_epochs, init=budget.init_epochs,
            )  # fmt: skip
        return [Phase("masked", remaining(budget))]
    total = remaining(budget)
    dense_epochs = opts.dense_epochs if opts.dense_epochs is not None else total / 2
    dense, masked = split_epochs(total, dense_epochs, "dense_epochs")
    return nonempty([Phase("dense", dense), Phase("masked", masked)])


METHOD = register(
    Method(
        "asp",
        "NVIDIA ASP: fine-tune dense, prune by magnitude, fine-tune with the mask",
        True,
        plan,
        options=AspOptions,
    )
)
