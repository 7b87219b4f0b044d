"""The GLUE study's layer choice: which linears stay dense for the ``layers`` protocol's variants.

* ``ffn_only``: the FFN globs (``glue_study_setup.FFN_GLOBS``) for every task and seed;
* ``sensitivity``: ``nxm-deploy sensitivity`` on the P1 dense run of the same task and seed, for a
  1-point budget (out of sample where that run trained on a subset: the tool's ``--rows-from auto``);
* ``random_ffn_only`` and ``random_sensitivity``: the controls, layers drawn at random
  (``random.Random(1000 + seed)``) until their share of the encoder's linear FLOPs (in x out per
  linear, as the sensitivity tool counts it) is the closest to that of the choice they control for;
  passed to train as ``--exclude`` of every layer not drawn.
"""

from __future__ import annotations

import functools
import random
from typing import Any

VARIANTS = ("ffn_only", "sensitivity", "random_ffn_only", "random_sensitivity")
DRAW_SEED = 1000  # + the run's seed


@functools.cache
def _layers(model_dir: str) -> tuple[tuple[tuple[str, int], ...], int]:
    """(name, in x out) of every 2:4 candidate linear, and the encoder's linear MACs per token."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from nxm_deploy.sensitivity.layers import candidate_layers, encoder_macs

    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(model_dir))
    return tuple((x.name, x.macs) for x in candidate_layers(model, "2:4")), encoder_macs(model)


def random_choice(model_dir: str, share: float, seed: int) -> dict[str, Any]:
    """Layers drawn at random until their FLOP share is the closest to ``share`` (within one layer's
    share of it): the drawn names, the ``--exclude`` list of the others, and the share reached."""
    layers, total = _layers(model_dir)
    order = list(layers)
    random.Random(DRAW_SEED + seed).shuffle(order)
    drawn: list[tuple[str, int]] = []
    macs = 0
    for name, m in order:
        if macs / total >= share:
            break
        drawn.append((name, m))
        macs += m
    if drawn and abs((macs - drawn[-1][1]) / total - share) < abs(macs / total - share):
        macs -= drawn.pop()[1]  # without the last draw it lands closer
    names = {n for n, _ in drawn}
    return {
        "drawn": [n for n, _ in layers if n in names],
        "exclude": [n for n, _ in layers if n not in names],
        "flops_share": round(macs / total, 6),
        "target_share": round(share, 6),
        "draw_seed": DRAW_SEED + seed,
    }


def exclude_args(names: list[str]) -> list[str]:
    return [x for name in names for x in ("--exclude", name)]
