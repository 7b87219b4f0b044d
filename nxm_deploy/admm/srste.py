"""SR-STE's learned masks (Zhou et al. 2021, arXiv 2102.04010) and STEP's frozen Adam variance
(Lu et al. 2023, arXiv 2302.01172), as tensors beside the model.

SR-STE, for each selected weight W (``nn.Linear`` ``[out, in]``, groups along axis 1):

* forward with ``W * mask``, ``mask = top-N-of-M(|W|)`` recomputed every ``interval`` optimizer steps;
* the gradient of the masked weight passes straight through to the dense W (the weights are swapped
  for their masked copy around forward and backward, then restored: nothing is registered on the
  model, so checkpoints and ``save_pretrained`` stay plain);
* the pruned weights decay: ``grad += decay * (1 - mask) * W`` ("grad"), or after the optimizer step
  ``W <- W - lr_t * decay * (1 - mask) * W`` ("decoupled").

STEP: :class:`FrozenVarianceAdamW` is AdamW until :meth:`~FrozenVarianceAdamW.freeze_variance`; from
then on ``exp_avg_sq`` (and its bias correction) stay as they were at the switch and precondition
every later step. Both live in the optimizer's state dict, which Trainer checkpoints and restores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from nxm_deploy import nm
from nxm_deploy.admm.state import MethodState

FROZEN_AT = "variance_frozen_at"  # param-group key: the optimizer step at which v was frozen


class SrsteState(MethodState):
    """The current and the starting masks of the selected weights, and SR-STE's settings.

    Checkpoint keys: tensors ``srste/<layer>`` and ``srste_start/<layer>``; ``nxm_state.json``'s
    ``srste`` object."""

    def __init__(self, weights: dict[str, nn.Parameter], pattern: nm.Pattern, decay: float,
                 decoupled: bool, interval: int) -> None:  # fmt: skip
        self.weights = weights
        self.pattern = pattern
        self.decay = decay
        self.decoupled = decoupled
        self.interval = interval
        self.masks: dict[str, torch.Tensor] = {}  # bool, the weight's shape
        self.start: dict[str, torch.Tensor] = {}  # the masks when mask learning began
        self.switch_step: int | None = None  # STEP: the step Adam's variance was frozen at
        self.recomputes = 0

    @property
    def active(self) -> bool:
        """Whether the mask is being learned (False during STEP's dense warm-up)."""
        return bool(self.masks)

    @torch.no_grad()
    def begin(self) -> None:
        """Start learning the mask from the current weights' top-N-of-M."""
        self.masks = {n: nm.mask(w.detach(), self.pattern, nm.LINEAR_AXIS) for n, w in self.weights.items()}
        self.start = {n: m.clone() for n, m in self.masks.items()}
        self.recomputes = 0

    @torch.no_grad()
    def recompute(self) -> None:
        for n, w in self.weights.items():
            self.masks[n] = nm.mask(w.detach(), self.pattern, nm.LINEAR_AXIS)
        self.recomputes += 1

    @torch.no_grad()
    def flipped(self) -> float:
        """The fraction of mask entries that changed since mask learning began."""
        changed = sum(int((self.masks[n] != self.start[n]).sum()) for n in self.masks)
        total = sum(m.numel() for m in self.masks.values())
        return changed / max(total, 1)

    @contextlib.contextmanager
    def masked_weights(self) -> Iterator[None]:
        """Inside the block the selected weights are ``W * mask``; their gradients land on the same
        parameters, so after the block (dense W restored) they are the straight-through gradients."""
        if not self.active:
            yield
            return
        dense = {n: w.detach().clone() for n, w in self.weights.items()}
        try:
            with torch.no_grad():
                for n, w in self.weights.items():
                    w.mul_(self.masks[n])
            yield
        finally:
            with torch.no_grad():
                for n, w in self.weights.items():
                    w.copy_(dense[n])

    @torch.no_grad()
    def decay_grads(self) -> None:
        """``grad += decay * (1 - mask) * W`` (the "grad" mode, once per optimizer step)."""
        for n, w in self.weights.items():
            if w.grad is not None:
                w.grad.add_(w.detach() * ~self.masks[n], alpha=self.decay)

    @torch.no_grad()
    def decoupled_decay(self, lr: float) -> None:
        """``W <- W - lr * decay * (1 - mask) * W`` (the "decoupled" mode, after the optimizer step)."""
        s = min(1.0, lr * self.decay)
        for n, w in self.weights.items():
            w.sub_(w * ~self.masks[n], alpha=s)

    def forward(self) -> contextlib.AbstractContextManager[None]:
        return self.masked_weights()

    def log(self) -> dict[str, float]:
        return {"mask_flipped": self.flipped()} if self.active else {}

    def place(self) -> None:
        for store in (self.masks, self.start):
            for n in list(store):
                store[n] = store[n].to(self.weights[n].device)

    def facts(self) -> dict[str, Any]:
        """For the log and nxm.json: how far the mask moved."""
        out: dict[str, Any] = {"mask_flipped": self.flipped()} if self.active else {}
        if self.switch_step is not None:
            out["variance_frozen_at"] = self.switch_step
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"srste/{n}": m.contiguous().cpu() for n, m in self.masks.items()}
        out.update({f"srste_start/{n}": m.contiguous().cpu() for n, m in self.start.items()})
        return out

    def meta(self) -> dict[str, Any]:
        return {
            "srste": {"active": self.active, "recomputes": self.recomputes, "switch_step": self.switch_step}
        }

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        meta = meta.get("srste") or {}
        if not meta:
            return
        dev = {n: w.device for n, w in self.weights.items()}
        self.masks = {n: tensors[f"srste/{n}"].to(dev[n]) for n in dev if f"srste/{n}" in tensors}
        self.start = {n: tensors[f"srste_start/{n}"].to(dev[n]) for n in dev if f"srste_start/{n}" in tensors}
        self.recomputes = int(meta.get("recomputes", 0))
        self.switch_step = meta.get("switch_step")


class FrozenVarianceAdamW(torch.optim.AdamW):
    """AdamW whose second moment can be frozen (STEP). Before :meth:`freeze_variance` it is
    ``torch.optim.AdamW`` (non-fused, so fp16's loss scaler unscales before it); after it::

        m <- b1 m + (1 - b1) g;   W <- W (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v* / (1 - b2^t*)) + eps)

    with ``v*`` the ``exp_avg_sq`` at the switch step ``t*``, left untouched in the state dict.
    """

    def __init__(self, params: Any, **kwargs: Any) -> None:
        kwargs.pop("fused", None)
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            group.setdefault(FROZEN_AT, None)

    @property
    def frozen_at(self) -> int | None:
        return self.param_groups[0].get(FROZEN_AT)

    def freeze_variance(self) -> int:
        """Freeze v from now on; returns the step it was frozen at."""
        steps = [float(s["step"]) for s in self.state.values() if "step" in s]
        at = int(max(steps, default=0))
        for group in self.param_groups:
            group[FROZEN_AT] = at
        return at

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if self.frozen_at is None or self.frozen_at == 0:
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            b1, b2 = group["betas"]
            correction2 = 1 - b2 ** group[FROZEN_AT]
            for p in group["params"]:
                state = self.state[p]
                if p.grad is None or "exp_avg_sq" not in state:
                    continue  # no gradient, or none before the switch: nothing to precondition with
                state["step"] += 1
                t = float(state["step"])
                p.mul_(1 - lr * wd)
                state["exp_avg"].lerp_(p.grad, 1 - b1)
                denom = (state["exp_avg_sq"] / correction2).sqrt_().add_(eps)
                p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - b1**t))
        return loss
