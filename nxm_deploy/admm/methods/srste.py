"""``srste``: learned N:M masks (SR-STE, Zhou et al. 2021). The forward pass uses the top-N-of-M
mask of the dense weights, recomputed every --mask-interval steps, gradients pass straight through
to the dense weights and the pruned ones decay; then a hard prune (the final learned mask) and a
fixed-mask phase. Default split: two thirds of --epochs learning the mask, one third masked (the
same split as admm, so the two compare on equal terms).

The decay: "grad" adds ``lambda * (1 - mask) * W`` to the gradient, as the paper writes it (for
SGD), so Adam rescales it per weight like the task gradient; "decoupled" applies
``W <- W - lr_t * lambda * (1 - mask) * W`` after each optimizer step, like AdamW's weight decay
(lambda is then a shrink per unit of learning rate: at lr 1e-4, lambda 100 shrinks a pruned weight
1% per step). "grad" is the default: on held-out SST-2 training rows both forms scored the same
(README, ``--method srste``) and the paper's form is kept on a tie.

STEP (Lu et al. 2023, ``freeze_variance``): a dense warm-up inside the SR-STE phase, then Adam's
second moment is frozen and used as a fixed preconditioner while the mask is learned. The switch is
at a fixed fraction of the phase's optimizer steps (STEP's AutoSwitch rule is not implemented): a
quarter comes well after the 10% learning-rate warm-up, lets Adam's variance average over a quarter
of the phase (about a thousand steps on SST-2), and leaves three quarters to learn the mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nxm_deploy.admm.registry import Budget, Method, Phase, PhaseKind, nonempty, register, remaining
from nxm_deploy.errors import OptionError

if TYPE_CHECKING:
    from nxm_deploy.admm.phases import RunContext

DECAY_MODES = ("grad", "decoupled")


@dataclass(frozen=True)
class SrsteOptions:
    srste_decay: float = field(
        default=2e-4,
        metadata={  # the paper's lambda_W
            "help": "SR-STE: decay of the pruned weights (the paper's lambda_W)."
        },
    )
    srste_decay_mode: str = field(
        default="grad",
        metadata={
            "choices": DECAY_MODES,
            "help": (
                "SR-STE: the decay added to the gradient (the paper; it then goes through Adam), or applied "
                "after each optimizer step like AdamW's weight decay (W -= lr*decay*(1-mask)*W; needs a far "
                "larger decay)."
            ),
        },
    )
    mask_interval: int = field(
        default=1,
        metadata={  # 1: every step, the paper's setting
            "help": "SR-STE: optimizer steps between mask updates."
        },
    )
    # The fixed-mask phase after the hard prune. Default: one third of the budget, as admm's masked
    # phase, so the two learned-mask methods get the same fine-tuning after their prune.
    masked_epochs: float | None = field(
        default=None,
        metadata={
            "type": float,
            "help": "SR-STE: epochs of the fixed-mask phase after the prune [1/3 of --epochs].",
        },
    )
    freeze_variance: bool = field(
        default=False,
        metadata={
            "flag": True,
            "help": (
                "SR-STE: STEP's recipe: dense warm-up, then Adam's second moment frozen while the mask is "
                "learned."
            ),
        },
    )
    switch_fraction: float = field(
        default=0.25,
        metadata={"help": "--freeze-variance: fraction of the SR-STE phase's steps before the switch."},
    )

    def __post_init__(self) -> None:
        if not self.mask_interval > 0:
            raise OptionError("{0} must be positive, got {value}", "mask_interval", value=self.mask_interval)
        if self.srste_decay < 0:
            raise OptionError("{0} must be 0 or more, got {value}", "srste_decay", value=self.srste_decay)
        if self.masked_epochs is not None and self.masked_epochs < 0:
            raise OptionError("{0} must be 0 or more, got {value}", "masked_epochs", value=self.masked_epochs)
        if not 0 < self.switch_fraction < 1:
            raise OptionError("{0} must be within (0, 1), got {value}", "switch_fraction",
                              value=self.switch_fraction)  # fmt: skip
        if self.srste_decay_mode not in DECAY_MODES:
            raise OptionError("{0} must be one of {choices}, got {value!r}", "srste_decay_mode",
                              choices=", ".join(DECAY_MODES), value=self.srste_decay_mode)  # fmt: skip

    def check(self, cfg: Any) -> None:
        if self.switch_fraction != _default("switch_fraction") and not self.freeze_variance:
            raise OptionError("{0} only applies with {1}; drop it or pass that", "switch_fraction",
                              "freeze_variance")  # fmt: skip


def plan(budget: Budget, opts: SrsteOptions) -> list[Phase]:
    total = remaining(budget)
    masked = opts.masked_epochs if opts.masked_epochs is not None else round(total / 3, 6)
    if not 0 <= masked < total:
        raise OptionError(
            "{0} {masked:g} does not fit the budget: it must be at least 0 and below the {total:g} "
            "epochs left ({1} counts the whole run, from the pretrained weights)", "masked_epochs", "epochs",
            masked=masked, total=total,
        )  # fmt: skip
    return nonempty([Phase("srste", round(total - masked, 6)), Phase("masked", masked)])


def callbacks(phase: Phase, run: RunContext, index: int, skips: Any) -> list[Any]:
    """Attach the learned masks (:class:`~nxm_deploy.admm.srste.SrsteState`) and their callback."""
    from nxm_deploy.admm.callbacks import SrsteCallback
    from nxm_deploy.admm.srste import SrsteState

    opts: SrsteOptions = run.options
    s = run.sparsity
    srste = SrsteState(s.weights, s.pattern, opts.srste_decay, opts.srste_decay_mode == "decoupled",
                       opts.mask_interval)  # fmt: skip
    s.method = srste
    switch = opts.switch_fraction if opts.freeze_variance else None
    return [SrsteCallback(srste, run.trainlog, index, switch, skips)]


def start(phase: Phase, run: RunContext) -> None:
    """Learn the mask from the start (with STEP: from the switch, which the callback makes)."""
    if not run.options.freeze_variance:
        run.sparsity.method.begin()  # type: ignore[union-attr]


def optimizer(phase: Phase, run: RunContext) -> type | None:
    """STEP: AdamW whose second moment the SR-STE callback freezes."""
    from nxm_deploy.admm.srste import FrozenVarianceAdamW

    return FrozenVarianceAdamW if run.options.freeze_variance else None


METHOD = register(
    Method(
        "srste",
        "SR-STE: learn the N:M mask in training, hard prune, fine-tune with the mask",
        True,
        plan,
        options=SrsteOptions,
        kinds=(PhaseKind("srste", start=start, callbacks=callbacks, optimizer=optimizer),),
    )
)


def _default(name: str) -> Any:
    return SrsteOptions.__dataclass_fields__[name].default
