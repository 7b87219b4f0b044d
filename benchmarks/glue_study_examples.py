"""The GLUE study's per-example tests, from the dev predictions each result keeps: for a pair of P2
methods on one task, the exact McNemar test (classification tasks: which examples each got right) or
the paired example bootstrap of the task's metric (STS-B: Pearson), per seed and pooled over every
seed's (seed, example) pairs (which are not independent: the same examples recur)."""

from __future__ import annotations

from typing import Any

import numpy as np
from common import stats
from glue_study_setup import Layout, Profile, predictions_path

from nxm_deploy.admm.predictions import read_predictions

PAIRS = (("chosen", "asp"), ("chosen", "dense_long"), ("free_admm", "free_sparsegpt"))
POOLED = "pooled over seeds (pairs not independent)"
EXAMPLE_BOOTSTRAP = {"resamples": 2000, "seed": 0}


def _load(lay: Layout, task: str, method: str, seed: int) -> Any:
    path = predictions_path(lay, "P2", task, method, seed)
    if not path.is_file():
        return None
    rows = read_predictions(path)
    return next(iter(rows.values())) if len(rows) == 1 else None


def _pearson(pred: np.ndarray, labels: np.ndarray) -> float:
    from nxm_deploy.data import pearson

    return 100 * pearson(pred, labels)


def _test(regression: bool, a: list[Any], b: list[Any]) -> dict[str, Any]:
    """The test on the concatenated examples of ``a`` and ``b`` (lists of Predictions, pairwise alike)."""
    if regression:
        pa = np.concatenate([x.prediction for x in a])
        pb = np.concatenate([x.prediction for x in b])
        labels = np.concatenate([x.label for x in a])
        r = stats.paired_example_bootstrap(_pearson, pa, pb, labels, EXAMPLE_BOOTSTRAP["resamples"],
                                           EXAMPLE_BOOTSTRAP["seed"])  # fmt: skip
        return {"test": "paired example bootstrap of Pearson (points)", "diff": round(r["diff"], 2),
                "ci95": [round(r["lo"], 2), round(r["hi"], 2)], "examples": len(labels)}  # fmt: skip
    ca = np.concatenate([x.correct() for x in a])
    cb = np.concatenate([x.correct() for x in b])
    m = stats.mcnemar(ca, cb)
    return {"test": "exact McNemar (correct or not)", **m, "p_value": round(float(m["p_value"]), 4),
            "examples": len(ca)}  # fmt: skip


def _alike(x: Any, y: Any) -> bool:
    return len(x.index) == len(y.index) and bool((x.index == y.index).all() and (x.label == y.label).all())


def examples(profile: Profile, lay: Layout, chosen: str | None) -> dict[str, Any]:
    """Per pair (``a-b``) and task: the test per seed (or ``"missing"`` where a predictions file is
    not there) and the same test pooled over the seeds that have both."""
    out: dict[str, Any] = {}
    for a, b in PAIRS:
        a = chosen if a == "chosen" else a
        if a is None:
            continue
        per_task: dict[str, Any] = {}
        for task in profile.tasks:
            regression = task == "STS-B"
            seeds = sorted(set(profile.seeds_of("P2", a)) & set(profile.seeds_of("P2", b)))
            per_seed: dict[str, Any] = {}
            have_a, have_b = [], []
            for seed in seeds:
                x, y = _load(lay, task, a, seed), _load(lay, task, b, seed)
                if x is None or y is None or not _alike(x, y):
                    per_seed[str(seed)] = "missing"
                    continue
                per_seed[str(seed)] = _test(regression, [x], [y])
                have_a.append(x)
                have_b.append(y)
            entry: dict[str, Any] = {"per_seed": per_seed}
            if have_a:
                entry["pooled"] = {**_test(regression, have_a, have_b), "label": POOLED, "seeds": len(have_a)}
            per_task[task] = entry
        out[f"{a}-{b}"] = per_task
    return out
