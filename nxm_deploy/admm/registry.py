"""Training methods register themselves here, one module each under ``nxm_deploy/admm/methods/``.

A :class:`Method` brings everything only it reads: its options (a small frozen dataclass whose
fields become ``--flags`` and which the other methods refuse), its plan (the budget -> phases) and
the phase kinds it adds, each with its hooks (how the phase starts, its Trainer callbacks, its
optimizer). ``TrainConfig`` holds what every method shares plus the chosen method's options, and
``--method``'s choices, the method flags and their refusals all come from :data:`METHODS`. So
adding a method is one module that calls :func:`register` (and its import in ``methods/__init__``).
Keep this module and the method modules light at import time (``--help`` reads them): import
torch and the training code inside the hooks.

Budget semantics, the same for every method: ``--epochs E`` is the total number of epochs counted
from the pretrained weights; with ``--init-from RUN_DIR`` the epochs of that run count towards E.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nxm_deploy.errors import OptionError, UserError


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own optimizer and learning-rate schedule.

    Two kinds every method may use: ``dense`` (plain fine-tuning) and ``masked`` (a fixed N:M mask
    on weights and gradients, made at the start of the phase by the hard prune). A method adds its
    own kinds (:class:`PhaseKind`): ``admm`` (the ADMM penalty towards N:M), ``srste`` (learned masks).
    """

    kind: str
    epochs: float

    def dirname(self, index: int) -> str:
        return f"phase-{index}-{self.kind}"


@dataclass(frozen=True)
class Budget:
    """What every method's plan reads besides its own options."""

    epochs: float  # E: total epochs from the pretrained weights
    init_epochs: float = 0.0  # epochs already spent by --init-from's run (0 without it)


@dataclass(frozen=True)
class PhaseKind:
    """A phase kind a method adds, and its hooks (each optional; ``run`` is the run as
    :class:`nxm_deploy.admm.phases.RunContext` describes it):

    * ``start(phase, run)``: start the phase from scratch (a resumed phase loads its checkpoint
      instead), once Trainer has placed the model;
    * ``callbacks(phase, run, index, skips)``: its Trainer callbacks, after the shared
      :class:`~nxm_deploy.admm.hardware.StepSkips` ``skips`` (fp16's skipped steps); this is also
      where a kind attaches its own state (:class:`~nxm_deploy.admm.state.MethodState`) to
      ``run.sparsity.method``, before the phase starts or loads a checkpoint;
    * ``optimizer(phase, run)``: the optimizer class of the phase's Trainer (default: Trainer's).
    """

    name: str
    start: Callable[[Phase, Any], None] | None = None
    callbacks: Callable[[Phase, Any, int, Any], list[Any]] | None = None
    optimizer: Callable[[Phase, Any], type | None] | None = None


@dataclass(frozen=True)
class Method:
    """``options``: a frozen dataclass of the options only this method reads (None: none). Its
    fields become flags (``--rho-max`` for ``rho_max``) with the field's default; ``metadata`` holds
    their ``help`` and, where needed, ``choices``, ``type`` (for a default of None) or ``flag``
    (a switch). Values are checked in its ``__post_init__``; checks that need the shared options
    go in an optional ``check(self, cfg)``, run after the refusals."""

    name: str
    help: str
    sparse: bool
    plan: Callable[[Budget, Any], list[Phase]]  # (budget, this method's options) -> phases
    options: type | None = None
    kinds: tuple[PhaseKind, ...] = ()


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} registered twice")
    taken = {f for m in METHODS.values() for f in option_names(m)} | _kind_names()
    clash = sorted((set(option_names(method)) & taken) | ({k.name for k in method.kinds} & taken))
    if clash:
        raise ValueError(f"method {method.name!r}: {', '.join(clash)} already registered by another method")
    METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method (tests register their own)."""
    METHODS.pop(name, None)


def get_method(name: str) -> Method:
    _load_builtin()
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}") from None


def method_names() -> list[str]:
    _load_builtin()
    return sorted(METHODS)


def methods() -> list[Method]:
    """Every registered method, in registration order (the order of their flags in ``--help``)."""
    _load_builtin()
    return list(METHODS.values())


def option_names(method: Method) -> list[str]:
    return [f.name for f in dataclasses.fields(method.options)] if method.options else []


def option_fields() -> Iterator[tuple[Method, dataclasses.Field[Any]]]:
    """Every method's option fields, with their method."""
    for method in methods():
        for f in dataclasses.fields(method.options) if method.options else ():
            yield method, f


def get_kind(name: str) -> PhaseKind | None:
    """The phase kind ``name`` that a method registered; None for the shared kinds (dense, masked)."""
    _load_builtin()
    return next((k for m in METHODS.values() for k in m.kinds if k.name == name), None)


def _kind_names() -> set[str]:
    return {"dense", "masked"} | {k.name for m in METHODS.values() for k in m.kinds}


def _load_builtin() -> None:
    import nxm_deploy.admm.methods  # noqa: F401  (registers the built-in methods)


def remaining(budget: Budget) -> float:
    """Epochs left for a method's own phases, after --init-from's; must be positive."""
    left = budget.epochs - budget.init_epochs
    if left <= 0:
        raise OptionError(
            "{0} {epochs:g} leaves nothing to train: the {1} run already used {init:g} epochs; "
            "{0} counts from the pretrained weights", "epochs", "init_from",
            epochs=budget.epochs, init=budget.init_epochs,
        )  # fmt: skip
    return left


def split_epochs(total: float, first: float, first_option: str) -> tuple[float, float]:
    """Split ``total`` into ``first`` (the value of the option ``first_option``, such as
    ``admm_epochs``) and the rest, with one clear line when they do not add up."""
    if not 0 < first <= total:
        raise OptionError(
            "{0} {first:g} does not fit the budget: it must be above 0 and at most the {total:g} "
            "epochs left ({1} counts the whole run, from the pretrained weights)", first_option, "epochs",
            first=first, total=total,
        )  # fmt: skip
    return first, round(total - first, 6)


def nonempty(phases: list[Phase]) -> list[Phase]:
    return [p for p in phases if p.epochs > 0]
