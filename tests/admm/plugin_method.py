"""A training method that lives only in the tests: importing this module registers it, and nothing
else in the library changes. ``shrink``: every optimizer step, the weights that the N:M magnitude
mask would drop are multiplied by ``shrink_factor`` (a gradual pull towards N:M), then the shared
hard prune and masked phase. Its options, its phase kind with a start hook and a callback, and its
own state (checkpointed with the run) are all declared here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nxm_deploy.admm.registry import Budget, Method, Phase, PhaseKind, register, remaining, split_epochs
from nxm_deploy.errors import OptionError


@dataclass(frozen=True)
class ShrinkOptions:
    shrink_factor: float = field(
        default=0.9, metadata={"help": "SHRINK: factor of the dropped weights per step."}
    )
    shrink_epochs: float | None = field(
        default=None, metadata={"type": float, "help": "SHRINK: epochs [1/2]."}
    )

    def __post_init__(self) -> None:
        if not 0 <= self.shrink_factor < 1:
            raise OptionError(
                "{0} must be within [0, 1), got {value}", "shrink_factor", value=self.shrink_factor
            )


def plan(budget: Budget, opts: ShrinkOptions) -> list[Phase]:
    total = remaining(budget)
    first, rest = split_epochs(total, opts.shrink_epochs or total / 2, "shrink_epochs")
    return [Phase("shrink", first), Phase("masked", rest)]


def _state_class() -> type:
    import torch

    from nxm_deploy import nm
    from nxm_deploy.admm.state import MethodState

    class ShrinkState(MethodState):
        def __init__(self, weights: dict[str, Any], pattern: nm.Pattern, factor: float) -> None:
            self.weights, self.pattern, self.factor, self.steps = weights, pattern, factor, 0

        @torch.no_grad()
        def shrink(self) -> None:
            for w in self.weights.values():
                keep = nm.mask(w.detach(), self.pattern, nm.LINEAR_AXIS)
                w.mul_(torch.where(keep, 1.0, self.factor).to(w.dtype))
            self.steps += 1

        def facts(self) -> dict[str, Any]:
            return {"shrink_steps": self.steps}

        def log(self) -> dict[str, float]:
            return {"shrink_steps": float(self.steps)}

        def meta(self) -> dict[str, Any]:
            return {"shrink": {"steps": self.steps}}

        def restore(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
            self.steps = int((meta.get("shrink") or {}).get("steps", 0))

    return ShrinkState


def callbacks(phase: Phase, run: Any, index: int, skips: Any) -> list[Any]:
    from transformers import TrainerCallback

    state = _state_class()(run.sparsity.weights, run.sparsity.pattern, run.options.shrink_factor)
    run.sparsity.method = state

    class ShrinkCallback(TrainerCallback):
        def on_optimizer_step(self, args: Any, st: Any, control: Any, **kwargs: Any) -> None:
            if not skips.skipped:
                state.shrink()

    return [ShrinkCallback()]


def start(phase: Phase, run: Any) -> None:
    run.trainlog.write({"phase": 0, "phase_kind": "shrink", "step": 0, "event": "shrink_start"})


METHOD = register(
    Method(
        "shrink",
        "test only: shrink the dropped weights, hard prune, masked",
        True,
        plan,
        options=ShrinkOptions,
        kinds=(PhaseKind("shrink", start=start, callbacks=callbacks),),
    )
)
