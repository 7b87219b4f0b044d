"""The calibration pass of ``--prune-solver admm``: Gram matrices of the selected layers' inputs on
training rows, and the layer-wise reconstruction in order (:mod:`nxm_deploy.admm.reconstruct`).

Layers are solved in stages: the layers of one stage read the same input tensor (query, key and
value), so they share one pass; each later stage sees the outputs of the already-pruned layers
before it. Each pass stops (by an exception from a hook) as soon as its stage's inputs are seen,
so the cost of a stage grows with its depth, not the model's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nxm_deploy import nm
from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.admm.reconstruct import AXIS, AdmmSolver, admm_prune, relative_error
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.data.encode import EncodedDataset, subset_indices

MAX_TOKENS = 128  # tokens per calibration row
BATCH_ROWS = 64


class _Stop(Exception):
    """Raised by a hook once every layer of the stage has seen its input: the rest of the forward
    pass is not needed."""


def calibration_batches(train: EncodedDataset, rows: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``rows`` training rows (a fixed random subset), at most :data:`MAX_TOKENS` tokens each, sorted
    by length and padded per batch; ``attention_mask`` marks the real tokens."""
    idx = sorted(subset_indices(len(train), rows, seed), key=lambda i: len(train.encodings["input_ids"][i]))
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in train.encodings]
    batches = []
    for start in range(0, len(idx), BATCH_ROWS):
        part = idx[start : start + BATCH_ROWS]
        seqs = {k: [train.encodings[k][i][:MAX_TOKENS] for i in part] for k in keys}
        width = max(len(s) for s in seqs["input_ids"])
        batch = {k: torch.tensor([s + [0] * (width - len(s)) for s in v]) for k, v in seqs.items()}
        batch["attention_mask"] = torch.tensor(
            [[1] * len(s) + [0] * (width - len(s)) for s in seqs["input_ids"]]
        )
        batches.append(batch)
    return batches


def _forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
    device = next(model.parameters()).device
    try:
        model(**{k: v.to(device) for k, v in batch.items()})
    except _Stop:
        pass


def stages(model: nn.Module, layers: Sequence[str], batch: dict[str, torch.Tensor]) -> list[list[str]]:
    """``layers`` grouped in the order the forward pass reaches them; consecutive layers that read
    the same input tensor form one stage."""
    mods = dict(model.named_modules())
    seen: list[tuple[str, torch.Tensor]] = []  # the tensors stay referenced, so no id is reused
    handles = [mods[n].register_forward_hook(lambda m, inp, out, n=n: seen.append((n, inp[0])))
               for n in layers]  # fmt: skip
    try:
        with torch.no_grad():
            _forward(model, {k: v[:2] for k, v in batch.items()})
    finally:
        for h in handles:
            h.remove()
    out: list[list[str]] = []
    last: torch.Tensor | None = None
    done: set[str] = set()
    for name, x in seen:
        if name in done:
            continue  # a layer called twice: its first input decides
        done.add(name)
        if out and x is last:
            out[-1].append(name)
        else:
            out.append([name])
        last = x
    missing = [n for n in layers if n not in done]
    return out + [[n] for n in missing]


def grams(
    model: nn.Module, names: Sequence[str], batches: Sequence[dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """``X^T X [in, in]`` (float32) of each named layer's inputs over the real tokens of ``batches``."""
    mods = dict(model.named_modules())
    out = {n: torch.zeros(mods[n].in_features, mods[n].in_features) for n in names}
    real: list[torch.Tensor] = []  # the current batch's attention mask [B, T]
    fired: set[str] = set()

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], _: Any, name: str) -> None:
        if name in fired:
            return
        x = inp[0][real[0].to(inp[0].device).bool()].float().cpu()  # [tokens, in], padding dropped
        out[name].addmm_(x.T, x)
        fired.add(name)
        if len(fired) == len(names):
            raise _Stop

    handles = [mods[n].register_forward_hook(lambda m, i, o, n=n: hook(m, i, o, n)) for n in names]
    try:
        with torch.no_grad():
            for batch in batches:
                real[:] = [batch["attention_mask"]]
                fired.clear()
                _forward(model, batch)
    finally:
        for h in handles:
            h.remove()
    return out


@torch.no_grad()
def reconstruct(
    model: nn.Module,
    layers: Sequence[str],
    pattern: nm.Pattern,
    batches: Sequence[dict[str, torch.Tensor]],
    solver: AdmmSolver | None = None,
    in_order: bool = True,
) -> dict[str, Any]:
    """Replace each selected weight with its ADMM N:M reconstruction; returns what nxm.json records:
    each layer's relative output error under magnitude pruning and under ADMM, and the wall time.

    ``in_order``: each stage's Gram matrices come from the model whose earlier layers are already
    pruned (the default); otherwise all from the dense model in one pass (faster, less accurate).
    """
    t0 = time.time()
    solver = solver or AdmmSolver()
    was_training = model.training
    model.eval()
    mods = dict(model.named_modules())
    errors: dict[str, dict[str, float]] = {}
    try:
        groups = stages(model, layers, batches[0]) if in_order else [list(layers)]
        for stage in groups:
            g = grams(model, stage, batches)
            for name in stage:
                w = mods[name].weight
                wf = w.detach().float().cpu()  # [out, in]
                new = admm_prune(wf, g[name], pattern, solver)  # [out, in]
                errors[name] = {
                    "magnitude": round(relative_error(wf, nm.project(wf, pattern, AXIS), g[name]), 6),
                    "admm": round(relative_error(wf, new, g[name]), 6),
                }
                w.copy_(new.to(w.device, w.dtype))
    finally:
        model.train(was_training)
    return {
        "solver": "admm",
        "calibration_rows": sum(len(b["input_ids"]) for b in batches),
        "calibration_tokens": sum(int(b["attention_mask"].sum()) for b in batches),
        "in_order": in_order,
        "stages": len(groups),
        "settings": {k: getattr(solver, k) for k in ("iterations", "tighten", "damp", "rho")},
        "wall_time_s": round(time.time() - t0, 1),
        "layer_errors": errors,
    }


def hard_prune(sparsity: SparsityState, model: nn.Module, train: EncodedDataset, cfg: TrainConfig) -> None:
    """The run's hard prune: the masks are fixed from here on. ``--prune-solver admm`` first rewrites
    each selected weight as its N:M reconstruction on the calibration rows (a seeded subset of the
    training rows), so the magnitude mask that follows is its support."""
    if cfg.prune_solver == "admm":
        batches = calibration_batches(train, cfg.calibration_rows, cfg.seed)
        sparsity.prune_report = reconstruct(model, sparsity.layers, sparsity.pattern, batches)
    sparsity.hard_prune()
