"""Training-time N:M state of the selected layers: ADMM's Z and U, the fixed masks, rho.

ADMM, as DESIGN.md describes it: for each selected weight W keep Z (the nearest N:M matrix) and U
(the scaled dual). The loss adds ``sum rho/2 * ||W - Z + U||^2``. Every ``admm_interval`` optimizer
steps: ``Z <- project(W + U)``, ``U <- U + W - Z``, then rho grows towards rho_max and, U being the
scaled dual, ``U <- U * rho_old / rho_new``. After the ADMM phase: hard prune ``W <- project(W)``
and fix the masks. Groups run along axis 1 of each ``nn.Linear`` weight ``[out, in]``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nxm_deploy import nm
from nxm_deploy.admm.srste import SrsteState
from nxm_deploy.io import write_json_atomic

AXIS = 1  # nn.Linear weight [out, in]: groups run along the input (reduction) axis

STATE_TENSORS = "nxm_state.safetensors"
STATE_META = "nxm_state.json"


@dataclass
class AdmmSchedule:
    """How rho grows after each Z/U update (the initial rho is ``start_admm``'s)."""

    rho_max: float
    rho_growth: float

    def next_rho(self, rho: float) -> float:
        return min(rho * self.rho_growth, self.rho_max)


@dataclass
class Residuals:
    primal: float  # ||W - Z|| / ||W|| over all selected layers
    dual: float  # rho * ||Z - Z_prev||
    rho: float  # rho used for this update (before growth)


class SparsityState:
    """Z, U and masks of the selected ``nn.Linear`` weights of one model.

    Buffers are plain tensors on the weights' device; nothing is registered on the model, so the
    model saved by ``save_pretrained`` stays a plain Hugging Face model.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], pattern: nm.Pattern) -> None:
        mods = dict(model.named_modules())
        self.pattern = pattern
        self.layers = list(layers)
        self.weights: dict[str, nn.Parameter] = {n: mods[n].weight for n in self.layers}
        self.masks: dict[str, torch.Tensor] = {}
        self.z: dict[str, torch.Tensor] = {}
        self.u: dict[str, torch.Tensor] = {}
        self._target: dict[str, torch.Tensor] = {}  # Z - U, so the penalty is rho/2 ||W - (Z - U)||^2
        self.rho = 0.0
        self.updates = 0
        self.last: Residuals | None = None
        self.pending = False  # a Z/U update fell on a step fp16's loss scaler skipped: do it next step
        self.prune_report: dict[str, Any] | None = None  # --prune-solver admm's errors, for nxm.json
        self.srste: SrsteState | None = None  # SR-STE's learned masks, until the hard prune

    # ---- ADMM --------------------------------------------------------------------------------

    @property
    def admm_active(self) -> bool:
        return bool(self.z)

    @torch.no_grad()
    def start_admm(self, rho: float) -> None:
        """Z <- project(W), U <- 0."""
        self.rho = rho
        self.updates = 0
        self.pending = False
        for n, w in self.weights.items():
            self.z[n] = nm.project(w.detach().float(), self.pattern, AXIS)
            self.u[n] = torch.zeros_like(self.z[n])
        self._refresh_targets()

    def stop_admm(self) -> None:
        self.z.clear()
        self.u.clear()
        self._target.clear()

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
    def admm_update(self, schedule: AdmmSchedule) -> Residuals:
        """One Z/U update, then the rho step; returns the residuals of this update."""
        primal_sq = weight_sq = dual_sq = 0.0
        for n, w in self.weights.items():
            wf = w.detach().float()
            z_prev = self.z[n]
            z = nm.project(wf + self.u[n], self.pattern, AXIS)
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
        self._refresh_targets()
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

    @torch.no_grad()
    def place(self) -> None:
        """Move Z, U and the masks to the device of their weight (after Trainer, accelerate or DDP
        placed the model)."""
        for store in (self.z, self.u, self.masks):
            for n in list(store):
                store[n] = store[n].to(self.weights[n].device)
        if self.srste is not None:
            self.srste.place()
        self._refresh_targets()

    def phase_facts(self) -> dict[str, Any]:
        """What the end of a phase records about the pull towards N:M (ADMM's or SR-STE's)."""
        out: dict[str, Any] = self.srste.facts() if self.srste is not None else {}
        if self.admm_active and self.last is not None:
            out.update(primal_residual=self.last.primal, rho=self.rho)
        return out

    @contextlib.contextmanager
    def projected(self) -> Iterator[None]:
        """The weights projected to the pattern (by magnitude) inside the block, restored after it."""
        saved = {n: w.detach().clone() for n, w in self.weights.items()}
        try:
            with torch.no_grad():
                for w in self.weights.values():
                    w.copy_(nm.project(w, self.pattern, AXIS))
            yield
        finally:
            with torch.no_grad():
                for n, w in self.weights.items():
                    w.copy_(saved[n])

    def _refresh_targets(self) -> None:
        self._target = {n: (self.z[n] - self.u[n]).to(self.weights[n].dtype) for n in self.z}

    # ---- masks -------------------------------------------------------------------------------

    @property
    def masked(self) -> bool:
        return bool(self.masks)

    @torch.no_grad()
    def hard_prune(self) -> None:
        """W <- project(W) by magnitude; the masks are fixed from here on (SR-STE's learning ends:
        the magnitude mask of its dense weights is its final learned mask)."""
        self.srste = None
        for n, w in self.weights.items():
            self.masks[n] = nm.mask(w.detach(), self.pattern, AXIS)
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        for n, w in self.weights.items():
            w.mul_(self.masks[n])

    @torch.no_grad()
    def mask_grads(self) -> None:
        for n, w in self.weights.items():
            if w.grad is not None:
                w.grad.mul_(self.masks[n])

    def check(self) -> list[tuple[str, nm.CheckResult]]:
        """The N:M check of every selected weight."""
        return [(n, nm.check(w.detach(), self.pattern, AXIS)) for n, w in self.weights.items()]

    # ---- persistence -------------------------------------------------------------------------

    def save(self, directory: Path, extra: dict[str, object] | None = None) -> None:
        """Write Z, U and masks (safetensors) and rho/counters (JSON) into ``directory``."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for n in self.z:
            tensors[f"z/{n}"] = self.z[n].contiguous().cpu()
            tensors[f"u/{n}"] = self.u[n].contiguous().cpu()
        for n, m in self.masks.items():
            tensors[f"mask/{n}"] = m.contiguous().cpu()
        if self.srste is not None:
            tensors.update(self.srste.tensors())
        tmp = directory / f".{STATE_TENSORS}.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(directory / STATE_TENSORS)
        meta = {
            "pattern": str(self.pattern),
            "layers": self.layers,
            "rho": self.rho,
            "updates": self.updates,
            "pending_update": self.pending,
            "admm_active": self.admm_active,
            "masked": self.masked,
            "last_residuals": asdict(self.last) if self.last else None,
            "prune": self.prune_report,
            "srste": self.srste.meta() if self.srste is not None else None,
            **(extra or {}),
        }
        write_json_atomic(directory / STATE_META, meta)

    def load(self, directory: Path) -> dict[str, object]:
        """Restore what :meth:`save` wrote; returns the JSON metadata."""
        from safetensors.torch import load_file

        meta = json.loads((directory / STATE_META).read_text())
        tensors = load_file(str(directory / STATE_TENSORS))
        dev = {n: w.device for n, w in self.weights.items()}
        self.z = {n: tensors[f"z/{n}"].to(dev[n]) for n in self.layers if f"z/{n}" in tensors}
        self.u = {n: tensors[f"u/{n}"].to(dev[n]) for n in self.layers if f"u/{n}" in tensors}
        self.masks = {n: tensors[f"mask/{n}"].to(dev[n]) for n in self.layers if f"mask/{n}" in tensors}
        self.rho = float(meta["rho"])
        self.updates = int(meta["updates"])
        self.pending = bool(meta.get("pending_update", False))
        last = meta.get("last_residuals")
        self.last = Residuals(**last) if last else None
        self.prune_report = meta.get("prune")
        if self.srste is not None and meta.get("srste"):
            self.srste.restore(tensors, meta["srste"])
        self._refresh_targets()
        return meta


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
