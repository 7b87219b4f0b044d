"""``reconstruct()``: each selected layer's N:M weight by a layer-wise solver on calibration rows,
in the order the forward pass reaches the layers; and the run's :func:`hard_prune`.

The solvers are pure tensor functions (:mod:`~nxm_deploy.admm.prune.solvers`); the Gram matrices of
each stage's inputs come from the calibration pass (:mod:`~nxm_deploy.admm.prune.calibrate`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nxm_deploy import nm
from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.admm.prune.calibrate import (
    block_inputs,
    blocks,
    calibration_batches,
    grams,
    model_feeds,
    next_inputs,
    stages,
)
from nxm_deploy.admm.prune.solvers import (
    SPARSEGPT_BLOCK,
    SPARSEGPT_DAMP,
    AdmmSolver,
    admm_prune,
    relative_error,
    sparsegpt_prune,
    wanda,
)
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.data.encode import EncodedDataset

SOLVERS = ("admm", "sparsegpt", "wanda")  # the layer-wise solvers that need calibration rows


def _solve(
    method: str, w: torch.Tensor, gram: torch.Tensor, pattern: nm.Pattern, solver: AdmmSolver
) -> torch.Tensor:
    if method == "admm":
        return admm_prune(w, gram, pattern, solver)
    if method == "sparsegpt":
        return sparsegpt_prune(w, gram, pattern)
    if method == "wanda":
        return wanda(w, gram, pattern)
    raise ValueError(f"unknown layer-wise solver {method!r}: one of {', '.join(SOLVERS)}")


def _solve_stage(mods: dict[str, nn.Module], stage: Sequence[str], gram: torch.Tensor, pattern: nm.Pattern,
                 solver: AdmmSolver, errors: dict[str, dict[str, float]], method: str) -> None:  # fmt: skip
    """Solve the layers of one stage (one input, so one Gram matrix and one factorisation: their rows
    stacked, as every solver's rows are independent) and write their weights."""
    ws = [mods[n].weight for n in stage]
    wf = [w.detach().float().cpu() for w in ws]  # each [out_i, in]
    new = _solve(method, torch.cat(wf), gram, pattern, solver).split([w.shape[0] for w in wf])  # [out_i, in]
    for name, w, old, rec in zip(stage, ws, wf, new, strict=True):
        errors[name] = {
            "magnitude": round(relative_error(old, nm.project(old, pattern, nm.LINEAR_AXIS), gram), 6),
            "wanda": round(relative_error(old, wanda(old, gram, pattern), gram), 6),
            method: round(relative_error(old, rec, gram), 6),
        }
        w.copy_(rec.to(w.device, w.dtype))


@torch.no_grad()
def reconstruct(
    model: nn.Module,
    layers: Sequence[str],
    pattern: nm.Pattern,
    batches: Sequence[dict[str, torch.Tensor]],
    solver: AdmmSolver | None = None,
    in_order: bool = True,
    method: str = "admm",
) -> dict[str, Any]:
    """Replace each selected weight with its N:M solution by ``method`` (``admm``: the ADMM
    reconstruction; ``sparsegpt``: SparseGPT with its weight update; ``wanda``: Wanda's mask, no
    update); returns what nxm.json records: each layer's relative output error
    ``||X (W - W')^T||^2 / ||X W^T||^2`` on its calibration inputs under magnitude pruning, Wanda's
    mask and ``method``, and the wall time.

    ``in_order``: each stage's Gram matrix comes from the model whose earlier layers are already
    pruned (the default); otherwise all from the dense model in one pass (faster, less accurate).
    When the layers sit in repeated blocks, each block's inputs are cached and only that block runs.
    """
    t0 = time.time()
    solver = solver or AdmmSolver()
    if method not in SOLVERS:
        raise ValueError(f"unknown layer-wise solver {method!r}: one of {', '.join(SOLVERS)}")
    was_training = model.training
    model.eval()
    mods = dict(model.named_modules())
    errors: dict[str, dict[str, float]] = {}
    try:
        groups = stages(model, layers, batches[0])
        feeds = model_feeds(model, batches)
        firsts = [mods[g[0]] for g in groups]  # a stage's layers share their input
        cached = blocks(model, groups) if in_order else None
        if not in_order:
            for stage, gram in zip(groups, grams(model, feeds, firsts), strict=True):
                _solve_stage(mods, stage, gram, pattern, solver, errors, method)
        elif cached is None:
            for stage, first in zip(groups, firsts, strict=True):
                _solve_stage(mods, stage, grams(model, feeds, [first])[0], pattern, solver, errors, method)
        else:
            mods_list, owner = cached
            feeds = block_inputs(model, mods_list[owner[0]], feeds)
            for b in range(owner[0], owner[-1] + 1):
                block = mods_list[b]
                for stage, first, o in zip(groups, firsts, owner, strict=True):
                    if o == b:
                        gram = grams(block, feeds, [first])[0]
                        _solve_stage(mods, stage, gram, pattern, solver, errors, method)
                if b < owner[-1]:
                    feeds = next_inputs(block, feeds)
    finally:
        model.train(was_training)
    return {
        "solver": method,
        "calibration_rows": sum(len(b["input_ids"]) for b in batches),
        "calibration_tokens": sum(int(b["attention_mask"].sum()) for b in batches),
        "in_order": in_order,
        "stages": len(groups),
        "cached_blocks": cached is not None,
        "settings": _settings(method, solver),
        "wall_time_s": round(time.time() - t0, 1),
        "layer_errors": errors,
    }


def _settings(method: str, solver: AdmmSolver) -> dict[str, Any]:
    if method == "admm":
        return {k: getattr(solver, k) for k in ("iterations", "tighten", "damp", "rho")}
    if method == "sparsegpt":
        return {"damp": SPARSEGPT_DAMP, "block": SPARSEGPT_BLOCK}
    return {}


def hard_prune(sparsity: SparsityState, model: nn.Module, train: EncodedDataset, cfg: TrainConfig) -> None:
    """The run's hard prune (every sparse method's, once): the masks are fixed from here on and the
    method's own state ends. ``--prune-solver admm|sparsegpt|wanda``
    first rewrites each selected weight as that solver's N:M weight on the calibration rows (a seeded
    subset of the training rows), so the magnitude mask that follows is its support."""
    if cfg.prune_solver in SOLVERS:
        batches = calibration_batches(train, cfg.calibration_rows, cfg.seed)
        sparsity.prune_report = reconstruct(model, sparsity.layers, sparsity.pattern, batches,
                                            method=cfg.prune_solver)  # fmt: skip
    sparsity.fix_masks()
