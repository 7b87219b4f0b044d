"""Training-time N:M state of the selected layers: the fixed masks, and the chosen method's own state.

Every sparse method ends in the same hard prune and masked weights (:class:`SparsityState`); what a
method keeps while it pulls the weights towards N:M before that (ADMM's Z and U, SR-STE's learned
masks) is its :class:`MethodState`, attached to ``SparsityState.method`` by its phase kind and
dropped at the hard prune. Groups run along the input axis of each ``nn.Linear`` weight ``[out, in]``
(:data:`nxm_deploy.nm.LINEAR_AXIS`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nxm_deploy import nm
from nxm_deploy.io import write_json_atomic

STATE_TENSORS = "nxm_state.safetensors"
STATE_META = "nxm_state.json"


class MethodState:
    """A method's own tensors beside the model, and what it adds to training. Every hook is optional
    (these defaults do nothing); :class:`~nxm_deploy.admm.penalty.AdmmState` and
    :class:`~nxm_deploy.admm.srste.SrsteState` are the built-in ones."""

    def place(self) -> None:
        """Move the tensors to their weights' device (after Trainer placed the model)."""

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Terms added to the training loss, by the name they are logged under."""
        return {}

    def forward(self) -> contextlib.AbstractContextManager[None]:
        """Wraps each training forward and backward pass (SR-STE swaps in the masked weights)."""
        return contextlib.nullcontext()

    def log(self) -> dict[str, float]:
        """Added to every Trainer log record."""
        return {}

    def facts(self) -> dict[str, Any]:
        """What the end of a phase records (train_log.jsonl, nxm.json's phases)."""
        return {}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Saved into each checkpoint's ``nxm_state.safetensors``; keys must not clash with ``mask/``."""
        return {}

    def meta(self) -> dict[str, Any]:
        """Merged into each checkpoint's ``nxm_state.json``."""
        return {}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Load what :meth:`tensors` and :meth:`meta` saved."""


class SparsityState:
    """The masks of the selected ``nn.Linear`` weights of one model, and the method's state.

    Buffers are plain tensors on the weights' device; nothing is registered on the model, so the
    model saved by ``save_pretrained`` stays a plain Hugging Face model.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], pattern: nm.Pattern) -> None:
        mods = dict(model.named_modules())
        self.pattern = pattern
        self.layers = list(layers)
        self.weights: dict[str, nn.Parameter] = {n: mods[n].weight for n in self.layers}
        self.masks: dict[str, torch.Tensor] = {}
        self.prune_report: dict[str, Any] | None = None  # a layer-wise solver's errors, for nxm.json
        self.method: MethodState | None = None  # the method's state until the hard prune

    @torch.no_grad()
    def place(self) -> None:
        """Move the masks and the method's state to the device of their weight (after Trainer,
        accelerate or DDP placed the model)."""
        for n in list(self.masks):
            self.masks[n] = self.masks[n].to(self.weights[n].device)
        if self.method is not None:
            self.method.place()

    def phase_facts(self) -> dict[str, Any]:
        """What the end of a phase records about the pull towards N:M (the method's)."""
        return self.method.facts() if self.method is not None else {}

    @contextlib.contextmanager
    def projected(self) -> Iterator[None]:
        """The weights projected to the pattern (by magnitude) inside the block, restored after it."""
        with nm.projected_weights(self.weights.values(), self.pattern):
            yield

    # ---- masks -------------------------------------------------------------------------------

    @property
    def masked(self) -> bool:
        return bool(self.masks)

    @torch.no_grad()
    def fix_masks(self) -> None:
        """W <- project(W) by magnitude; the masks are fixed from here on and the method's state ends
        (SR-STE: the magnitude mask of its dense weights is its final learned mask)."""
        self.method = None
        for n, w in self.weights.items():
            self.masks[n] = nm.mask(w.detach(), self.pattern, nm.LINEAR_AXIS)
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
        return [(n, nm.check(w.detach(), self.pattern, nm.LINEAR_AXIS)) for n, w in self.weights.items()]

    # ---- persistence -------------------------------------------------------------------------

    def save(self, directory: Path, extra: dict[str, object] | None = None) -> None:
        """Write the masks and the method's tensors (safetensors) and metadata (JSON) into ``directory``."""
        from safetensors.torch import save_file

        tensors = {f"mask/{n}": m.contiguous().cpu() for n, m in self.masks.items()}
        if self.method is not None:
            tensors.update(self.method.tensors())
        tmp = directory / f".{STATE_TENSORS}.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(directory / STATE_TENSORS)
        meta = {
            "pattern": str(self.pattern),
            "layers": self.layers,
            "masked": self.masked,
            "prune": self.prune_report,
            **(self.method.meta() if self.method is not None else {}),
            **(extra or {}),
        }
        write_json_atomic(directory / STATE_META, meta)

    def load(self, directory: Path) -> dict[str, object]:
        """Restore what :meth:`save` wrote (the method's part into the attached method state, if
        any); returns the JSON metadata."""
        from safetensors.torch import load_file

        meta = json.loads((directory / STATE_META).read_text())
        tensors = load_file(str(directory / STATE_TENSORS))
        dev = {n: w.device for n, w in self.weights.items()}
        self.masks = {n: tensors[f"mask/{n}"].to(dev[n]) for n in self.layers if f"mask/{n}" in tensors}
        self.prune_report = meta.get("prune")
        if self.method is not None:
            self.method.restore(tensors, meta)
        return meta
