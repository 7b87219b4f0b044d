"""The ``admm`` method's training penalty (NxMTransformer): Z, U and rho beside the model.

For each selected weight W keep Z (the nearest N:M matrix) and U (the scaled dual). The loss adds
``sum rho/2 * ||W - Z + U||^2`` (or, decoupled, each optimizer step pulls W towards ``Z - U``).
Every ``admm_interval`` optimizer steps: ``Z <- project(W + U)``, ``U <- U + W - Z``, then rho grows
towards rho_max and, U being the scaled dual, ``U <- U * rho_old / rho_new``. After the ADMM phase
the run's hard prune fixes the masks. Not to be confused with ``--prune-solver admm``, the
layer-wise solver of the hard prune (:mod:`nxm_deploy.admm.prune.solvers`): same algorithm family,
another problem (one layer's outputs on calibration rows, no training).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from nxm_deploy import nm
from nxm_deploy.admm.state import MethodState


@dataclass
class AdmmSchedule:
    """How rho grows after each Z/U update (the initial rho is :meth:`AdmmState.start`'s)."""

    rho_max: float
    rho_growth: float

    def next_rho(self, rho: float) -> float:
        return min(rho * self.rho_growth, self.rho_max)


@dataclass
class Residuals:
    primal: float  # ||W - Z|| / ||W|| over all selected layers
    dual: float  # rho * ||Z - Z_prev||
    rho: float  # rho used for this update (before growth)


class AdmmState(MethodState):
    """Z, U and rho of the selected weights; plain tensors on the weights' device. ``in_loss``: the
    penalty is a term of the loss (else the ADMM callback applies it after each optimizer step).

    Checkpoint keys (kept from the first checkpoints, which a resume must still read): tensors
    ``z/<layer>`` and ``u/<layer>``; ``nxm_state.json``'s top-level ``rho``, ``updates``,
    ``pending_update``, ``admm_active`` and ``last_residuals``."""

    def __init__(self, weights: dict[str, nn.Parameter], pattern: nm.Pattern, in_loss: bool = True) -> None:
        self.weights = weights
        self.pattern = pattern
        self.in_loss = in_loss
        self.z: dict[str, torch.Tensor] = {}
        self.u: dict[str, torch.Tensor] = {}
        self._target: dict[str, torch.Tensor] = {}  # Z - U, so the penalty is rho/2 ||W - (Z - U)||^2
        self.rho = 0.0
        self.updates = 0
        self.last: Residuals | None = None
        self.pending = False  # a Z/U update fell on a step fp16's loss scaler skipped: do it next step

    @property
    def active(self) -> bool:
        return bool(self.z)

    @torch.no_grad()
    def start(self, rho: float) -> None:
        """Z <- project(W), U <- 0."""
        self.rho = rho
        self.updates = 0
        self.pending = False
        for n, w in self.weights.items():
            self.z[n] = nm.project(w.detach().float(), self.pattern, nm.LINEAR_AXIS)
            self.u[n] = torch.zeros_like(self.z[n])
        self.refresh_targets()

    def penalty(self) -> torch.Tensor:
        """``rho/2 * sum ||W - Z + U||^2`` over the selected layers (differentiable in W), in fp32
        whatever autocast (``--mixed-precision``) the loss around it runs under."""
        names = list(self.weights)
        device_type = self.weights[names[0]].device.type
        with torch.autocast(device_type, enabled=False):
            return _Penalty.apply(self.rho, len(names), *(self.weights[n] for n in names),
                                  *(self._target[n] for n in names))  # fmt: skip

    @torch.no_grad()
    def decoupled_step(self, lr: float) -> None:
        """The penalty as a decoupled step (like AdamW's weight decay): ``W <- W - s (W - Z + U)``
        with ``s = min(1, lr * rho)``, i.e. a gradient step of size ``lr`` on ``rho/2 ||W - Z + U||^2``
        that does not go through the optimizer's per-weight scaling."""
        s = min(1.0, lr * self.rho)
        if s <= 0:
            return
        for n, w in self.weights.items():
            w.sub_(s * (w - self._target[n]))

    @torch.no_grad()
    def update(self, schedule: AdmmSchedule) -> Residuals:
        """One Z/U update, then the rho step; returns the residuals of this update."""
        primal_sq = weight_sq = dual_sq = 0.0
        for n, w in self.weights.items():
            wf = w.detach().float()
            z_prev = self.z[n]
            z = nm.project(wf + self.u[n], self.pattern, nm.LINEAR_AXIS)
            self.u[n].add_(wf - z)
            primal_sq += float((wf - z).pow(2).sum())
            weight_sq += float(wf.pow(2).sum())
            dual_sq += float((z - z_prev).pow(2).sum())
            self.z[n] = z
        rho = self.rho
        residuals = Residuals(
            primal=math.sqrt(primal_sq) / max(math.sqrt(weight_sq), 1e-12),
            dual=rho * math.sqrt(dual_sq),
            rho=rho,
        )
        new_rho = schedule.next_rho(rho)
        if new_rho != rho:
            for u in self.u.values():
                u.mul_(rho / new_rho)  # scaled dual: U = Y / rho
            self.rho = new_rho
        self.refresh_targets()
        self.updates += 1
        self.last = residuals
        return residuals

    @torch.no_grad()
    def digest(self) -> list[float]:
        """A cheap fingerprint of Z and U (sums of values and magnitudes, in float64) for comparing
        the state of several processes."""
        out = [0.0, 0.0, 0.0, 0.0]
        for n in self.z:
            z, u = self.z[n].double(), self.u[n].double()
            out[0] += float(z.sum())
            out[1] += float(z.abs().sum())
            out[2] += float(u.sum())
            out[3] += float(u.abs().sum())
        return out

    def refresh_targets(self) -> None:
        """Recompute ``Z - U`` (after Z or U changed outside :meth:`update`)."""
        self._target = {n: (self.z[n] - self.u[n]).to(self.weights[n].dtype) for n in self.z}

    # ---- MethodState -------------------------------------------------------------------------

    @torch.no_grad()
    def place(self) -> None:
        for store in (self.z, self.u):
            for n in list(store):
                store[n] = store[n].to(self.weights[n].device)
        self.refresh_targets()

    def loss_terms(self) -> dict[str, torch.Tensor]:
        return {"admm_penalty": self.penalty()} if self.in_loss and self.active else {}

    def log(self) -> dict[str, float]:
        if not self.active:
            return {}
        out = {"rho": self.rho}
        if self.last is not None:
            out.update(primal_residual=self.last.primal, dual_residual=self.last.dual)
        return out

    def facts(self) -> dict[str, Any]:
        if self.active and self.last is not None:
            return {"primal_residual": self.last.primal, "rho": self.rho}
        return {}

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"z/{n}": z.contiguous().cpu() for n, z in self.z.items()}
        out.update({f"u/{n}": u.contiguous().cpu() for n, u in self.u.items()})
        return out

    def meta(self) -> dict[str, Any]:
        last = asdict(self.last) if self.last else None
        return {"rho": self.rho, "updates": self.updates, "pending_update": self.pending,
                "admm_active": self.active, "last_residuals": last}  # fmt: skip

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        dev = {n: w.device for n, w in self.weights.items()}
        self.z = {n: tensors[f"z/{n}"].to(dev[n]) for n in dev if f"z/{n}" in tensors}
        self.u = {n: tensors[f"u/{n}"].to(dev[n]) for n in dev if f"u/{n}" in tensors}
        self.rho = float(meta.get("rho", 0.0))
        self.updates = int(meta.get("updates", 0))
        self.pending = bool(meta.get("pending_update", False))
        last = meta.get("last_residuals")
        self.last = Residuals(**last) if last else None
        self.refresh_targets()


class _Penalty(torch.autograd.Function):
    """``rho/2 * sum_i ||W_i - T_i||^2`` with ``T = Z - U`` held constant.

    The same value and gradient (``rho * (W - T)``) as writing it with tensor ops, in fewer passes
    over the 10M+ selected weights: the forward keeps no difference tensors, the backward recomputes
    them, and ``torch.dist`` reads both tensors once without a temporary.
    """

    @staticmethod
    def forward(ctx: Any, rho: float, n: int, *tensors: torch.Tensor) -> torch.Tensor:
        weights, targets = tensors[:n], tensors[n:]
        ctx.rho = rho
        ctx.n = n
        ctx.save_for_backward(*weights, *targets)
        total = torch.zeros((), dtype=torch.float32, device=weights[0].device)
        for w, t in zip(weights, targets, strict=True):
            total += torch.dist(w, t).float().square()
        return 0.5 * rho * total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        weights, targets = saved[: ctx.n], saved[ctx.n :]
        scale = ctx.rho * grad
        grads = [torch.sub(w, t).mul_(scale.to(w.dtype)) for w, t in zip(weights, targets, strict=True)]
        return (None, None, *grads, *([None] * ctx.n))
