"""``admm``: NxMTransformer. Fine-tune with the ADMM penalty that pulls each selected weight towards
its nearest N:M matrix, hard-prune, then fine-tune with the mask fixed. Default split: two thirds
of --epochs ADMM, one third masked.

rho sets how hard W is pulled towards its N:M projection relative to the task loss; it grows by
rho_growth per Z/U update (every admm_interval optimizer steps) up to rho_max, which closes the gap
before the hard prune; the interval amortises the projection and gives W time to move between
updates. Where the penalty acts: "decoupled" (the default), like AdamW's weight decay, after each
optimizer step W <- W - lr_t * rho * (W - Z + U), outside Adam's per-weight scaling. This is the
form that converges: on held-out SST-2 training rows (benchmarks/admm_tuning.py) it brings the
primal residual ||W - Z|| / ||W|| to 0.04 at the prune, where the penalty in the loss stays near 0.5
(Adam moves a weight about one lr per step whatever the penalty's size). "loss": rho/2 ||W - Z + U||^2
in the loss, as the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nxm_deploy.admm.registry import (
    Budget,
    Method,
    Phase,
    PhaseKind,
    nonempty,
    register,
    remaining,
    split_epochs,
)
from nxm_deploy.errors import OptionError

if TYPE_CHECKING:
    from nxm_deploy.admm.phases import RunContext

PENALTIES = ("loss", "decoupled")


@dataclass(frozen=True)
class AdmmOptions:
    # None: rho per penalty form. Decoupled, rho is a pull per unit of learning rate, so the default
    # is 0.01 / lr (each step at the peak lr pulls W 1% of the way to Z - U; 100 at lr 1e-4, the
    # held-out choice), and rho_max 100 x rho. In the loss: rho 1e-4 (the held-out best of
    # benchmarks/admm_tuning.py's stage 1), rho_max 1.
    rho: float | None = field(
        default=None,
        metadata={
            "type": float,
            "help": "ADMM: initial penalty weight [decoupled: 0.01/lr; in the loss: 1e-4].",
        },
    )
    rho_max: float | None = field(
        default=None,
        metadata={
            "type": float,
            "help": "ADMM: largest penalty weight [decoupled: 100 x rho; in the loss: 1].",
        },
    )
    rho_growth: float = field(default=1.3, metadata={"help": "ADMM: rho factor per update."})
    admm_interval: int = field(default=32, metadata={"help": "ADMM: optimizer steps between Z/U updates."})
    admm_penalty: str = field(
        default="decoupled",
        metadata={
            "choices": PENALTIES,
            "help": (
                "ADMM: the penalty applied after each optimizer step like AdamW's weight decay "
                "(W -= lr*rho*(W-Z+U); it converges), or in the loss (the paper)."
            ),
        },
    )
    admm_epochs: float | None = field(
        default=None,
        metadata={  # default: two thirds of the budget
            "type": float,
            "help": "ADMM: epochs of the ADMM phase [2/3 of --epochs].",
        },
    )

    def __post_init__(self) -> None:
        for name in ("rho", "rho_max", "admm_interval"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise OptionError("{0} must be positive, got {value}", name, value=value)
        if self.rho_growth < 1:
            raise OptionError("{0} must be at least 1, got {value}", "rho_growth", value=self.rho_growth)
        if self.admm_penalty not in PENALTIES:
            raise OptionError("{0} must be one of {choices}, got {value!r}", "admm_penalty",
                              choices=", ".join(PENALTIES), value=self.admm_penalty)  # fmt: skip

    def check(self, cfg: Any) -> None:
        if self.max_rho(cfg.lr) < self.initial_rho(cfg.lr):
            raise OptionError("{0} {high:g} is below {1} {low:g}", "rho_max", "rho",
                              high=self.max_rho(cfg.lr), low=self.initial_rho(cfg.lr))  # fmt: skip

    def initial_rho(self, lr: float) -> float:
        """The initial rho: ``rho``, or the default of ``admm_penalty`` (see the class comment)."""
        if self.rho is not None:
            return self.rho
        return 0.01 / lr if self.admm_penalty == "decoupled" else 1e-4

    def max_rho(self, lr: float) -> float:
        if self.rho_max is not None:
            return self.rho_max
        return 100 * self.initial_rho(lr) if self.admm_penalty == "decoupled" else 1.0


def plan(budget: Budget, opts: AdmmOptions) -> list[Phase]:
    total = remaining(budget)
    admm_epochs = opts.admm_epochs if opts.admm_epochs is not None else round(total * 2 / 3, 6)
    admm, masked = split_epochs(total, admm_epochs, "admm_epochs")
    return nonempty([Phase("admm", admm), Phase("masked", masked)])


def callbacks(phase: Phase, run: RunContext, index: int, skips: Any) -> list[Any]:
    """Attach Z/U (:class:`~nxm_deploy.admm.penalty.AdmmState`) and the callback that updates them."""
    from nxm_deploy.admm.callbacks import AdmmCallback
    from nxm_deploy.admm.penalty import AdmmSchedule, AdmmState

    opts: AdmmOptions = run.options
    decoupled = opts.admm_penalty == "decoupled"
    admm = AdmmState(run.sparsity.weights, run.sparsity.pattern, in_loss=not decoupled)
    run.sparsity.method = admm
    schedule = AdmmSchedule(opts.max_rho(run.cfg.lr), opts.rho_growth)
    return [AdmmCallback(admm, schedule, opts.admm_interval, run.trainlog, index, skips, decoupled)]


def start(phase: Phase, run: RunContext) -> None:
    """Z <- project(W), U <- 0."""
    run.sparsity.method.start(run.options.initial_rho(run.cfg.lr))  # type: ignore[union-attr]


METHOD = register(
    Method(
        "admm",
        "NxMTransformer: ADMM towards N:M, hard prune, fine-tune with the mask",
        True,
        plan,
        options=AdmmOptions,
        kinds=(PhaseKind("admm", start=start, callbacks=callbacks),),
    )
)
