"""The calibration pass of the layer-wise solvers: Gram matrices of the selected layers' inputs on
training rows, stage by stage (:func:`nxm_deploy.admm.prune.reconstruct.reconstruct` drives it).

Layers are solved in stages: the layers of one stage read the same input tensor (query, key and
value), so they share one pass; each later stage sees the outputs of the already-pruned layers
before it. Each pass stops (by an exception from a hook) as soon as its stage's inputs are seen,
so the cost of a stage grows with its depth, not the model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

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


Feed = tuple[tuple[Any, ...], dict[str, Any], torch.Tensor]  # a module's args, kwargs; real tokens [B, T]


def model_feeds(model: nn.Module, batches: Sequence[dict[str, torch.Tensor]]) -> list[Feed]:
    device = next(model.parameters()).device
    return [((), {k: v.to(device) for k, v in b.items()}, b["attention_mask"]) for b in batches]


def _run(module: nn.Module, feed: Feed) -> Any:
    try:
        return module(*feed[0], **feed[1])
    except _Stop:
        return None


def grams(module: nn.Module, feeds: Sequence[Feed], layers: Sequence[nn.Linear]) -> list[torch.Tensor]:
    """``X^T X [in, in]`` (float32, CPU) of each layer's inputs over the real tokens of ``feeds``,
    running ``module`` on each feed until every layer has seen its input."""
    out = [torch.zeros(m.in_features, m.in_features) for m in layers]
    real: list[torch.Tensor] = []  # the current feed's real tokens [B, T]
    fired: set[int] = set()

    def hook(i: int, x: torch.Tensor) -> None:
        if i not in fired:
            x = x[real[0].to(x.device).bool()].float().cpu()  # [tokens, in], padding dropped
            out[i].addmm_(x.T, x)
            fired.add(i)
        if len(fired) == len(layers):
            raise _Stop

    handles = [m.register_forward_hook(lambda m, inp, o, i=i: hook(i, inp[0])) for i, m in enumerate(layers)]
    try:
        with torch.no_grad():
            for feed in feeds:
                real[:] = [feed[2]]
                fired.clear()
                _run(module, feed)
    finally:
        for h in handles:
            h.remove()
    return out


def blocks(model: nn.Module, groups: Sequence[Sequence[str]]) -> tuple[list[nn.Module], list[int]] | None:
    """The repeated blocks (the ``nn.ModuleList`` that holds every selected layer) and each stage's
    block, so a stage's pass runs one block on cached inputs; None when the layers do not fit."""
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.ModuleList) or len(mod) == 0:
            continue
        owner = [
            [next((b for b in range(len(mod)) if n.startswith(f"{name}.{b}.")), -1) for n in g]
            for g in groups
        ]
        if all(len(set(o)) == 1 and o[0] >= 0 for o in owner):
            which = [o[0] for o in owner]
            if which == sorted(which):
                return list(mod), which
    return None


def block_inputs(model: nn.Module, block: nn.Module, feeds: Sequence[Feed]) -> list[Feed]:
    """What the model passes to ``block`` (args, kwargs) for each feed; the rest of the pass is skipped."""
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def pre(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append((args, kwargs))
        raise _Stop

    handle = block.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        for feed in feeds:
            _run(model, feed)
    finally:
        handle.remove()
    return [(a, k, f[2]) for (a, k), f in zip(seen, feeds, strict=True)]


def next_inputs(block: nn.Module, feeds: Sequence[Feed]) -> list[Feed]:
    """The next block's inputs: this block's output as hidden states, the other arguments unchanged."""
    out = []
    for args, kwargs, real in feeds:
        h = block(*args, **kwargs)
        h = h[0] if isinstance(h, tuple) else h
        if args:
            out.append(((h, *args[1:]), kwargs, real))
        else:
            out.append(((), {**kwargs, "hidden_states": h}, real))
    return out
