"""Training methods register themselves here (STYLE.md habit 4).

A method turns the user's budget into a list of :class:`Phase` objects; ``--method``'s choices come
from :data:`METHODS`, so adding a method is one new module under ``nxm_deploy/admm/methods/``.

Budget semantics, the same for every method: ``--epochs E`` is the total number of epochs counted
from the pretrained weights; with ``--init-from RUN_DIR`` the epochs of that run count towards E.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from nxm_deploy.errors import UserError

PhaseKind = Literal["dense", "admm", "srste", "masked"]


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own optimizer and learning-rate schedule.

    ``dense``: plain fine-tuning. ``admm``: task loss plus the ADMM penalty, Z/U updated every
    ``admm_interval`` optimizer steps. ``srste``: learned masks (SR-STE): the forward pass uses the
    current top-N-of-M mask of the dense weights, gradients pass straight through. ``masked``: a
    fixed N:M mask on weights and gradients; the mask is made at the start of the phase by magnitude
    projection of the current weights (hard prune).
    """

    kind: PhaseKind
    epochs: float

    def dirname(self, index: int) -> str:
        return f"phase-{index}-{self.kind}"


@dataclass(frozen=True)
class Budget:
    """What a method needs to plan its phases."""

    epochs: float  # E: total epochs from the pretrained weights
    init_epochs: float  # epochs already spent by --init-from's run (0 without it)
    admm_epochs: float | None
    dense_epochs: float | None
    masked_epochs: float | None = None  # srste: the fixed-mask phase


@dataclass(frozen=True)
class Method:
    name: str
    help: str
    sparse: bool
    plan: Callable[[Budget], list[Phase]]


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} registered twice")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    _load_builtin()
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}") from None


def method_names() -> list[str]:
    _load_builtin()
    return sorted(METHODS)


def _load_builtin() -> None:
    import nxm_deploy.admm.methods  # noqa: F401  (registers the built-in methods)


def remaining(budget: Budget) -> float:
    """Epochs left for a method's own phases, after --init-from's; must be positive."""
    left = budget.epochs - budget.init_epochs
    if left <= 0:
        raise UserError(
            f"--epochs {budget.epochs:g} leaves nothing to train: the --init-from run already used "
            f"{budget.init_epochs:g} epochs; --epochs counts from the pretrained weights"
        )
    return left


def split_epochs(total: float, first: float, first_flag: str) -> tuple[float, float]:
    """Split ``total`` into ``first`` and the rest, with one clear line when they do not add up."""
    if not 0 < first <= total:
        raise UserError(
            f"{first_flag} {first:g} does not fit the budget: it must be above 0 and at most the "
            f"{total:g} epochs left (--epochs counts the whole run, from the pretrained weights)"
        )
    return first, round(total - first, 6)


def nonempty(phases: list[Phase]) -> list[Phase]:
    return [p for p in phases if p.epochs > 0]
