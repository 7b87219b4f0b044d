"""The layers a sensitivity analysis prunes: the ones ``train`` would select, each with its block
index, its kind and its FLOPs; and magnitude N:M pruning that is undone after each measurement.

    layers = candidate_layers(model, "2:4")          # [Layer(name, block, kind, label, macs)]
    with pruned(model, ["bert.encoder.layer.0.attention.self.query"], "2:4"):
        ...                                          # the weight is N:M here, dense again after

A layer's kind is its name inside its block (``attention.self.query``), the same in every block;
``label`` is the short word for the kinds of BERT-like families (query, key, value, attention
output, FFN in, FFN out). FLOPs are counted as multiply-accumulates per token, ``in x out`` for each
linear layer of the encoder blocks: the attention score products (Q K^T, scores x V) are left out.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nxm_deploy import nm
from nxm_deploy.models import in_encoder_block, linear_layers, select_layers

__all__ = ["Layer", "candidate_layers", "encoder_macs", "pruned"]

_LAST_BLOCK = re.compile(r"^(.*)\.(\d+)\.(.+)$")  # greedy: the last numeric segment is the block
_LABELS = {
    "attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
    "attention.output.dense": "attention output", "intermediate.dense": "FFN in", "output.dense": "FFN out",
    "attention.q_lin": "query", "attention.k_lin": "key", "attention.v_lin": "value",
    "attention.out_lin": "attention output", "ffn.lin1": "FFN in", "ffn.lin2": "FFN out",
    "attention.self.query_proj": "query", "attention.self.key_proj": "key",
    "attention.self.value_proj": "value",
    "attention.attn.q": "query", "attention.attn.k": "key", "attention.attn.v": "value",
    "attention.attn.o": "attention output",
}  # fmt: skip


@dataclass(frozen=True)
class Layer:
    name: str
    block: int
    kind: str  # the name inside the block
    label: str  # query, key, ... or the kind itself
    macs: int  # multiply-accumulates per token: in x out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "block": self.block, "kind": self.kind, "label": self.label,
                "macs_per_token": self.macs}  # fmt: skip


def _layer(name: str, module: Any) -> Layer:
    m = _LAST_BLOCK.match(name)
    block, kind = (int(m.group(2)), m.group(3)) if m else (0, name)
    return Layer(name, block, kind, _LABELS.get(kind, kind), module.in_features * module.out_features)


def candidate_layers(
    model: Any, pattern: str | nm.Pattern, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Layer]:
    """The layers ``train`` would make N:M with these globs, in module order."""
    mods = linear_layers(model)
    return [_layer(n, mods[n]) for n in select_layers(model, pattern, include, exclude)]


def encoder_macs(model: Any) -> int:
    """Multiply-accumulates per token of every linear layer inside the encoder blocks."""
    return sum(m.in_features * m.out_features for n, m in linear_layers(model).items() if in_encoder_block(n))


@contextlib.contextmanager
def pruned(model: Any, names: Sequence[str], pattern: str | nm.Pattern) -> Iterator[None]:
    """Inside: the weights of ``names`` projected to N:M by magnitude (``nm.project`` along the input
    axis). After: the exact dense weights again (a copy kept of each, nothing reloaded)."""
    mods = linear_layers(model)
    with nm.projected_weights([mods[n].weight for n in names], pattern):
        yield
