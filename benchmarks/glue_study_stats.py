"""The second GLUE study's numbers from its saved results: per task and method the mean and the
spread over seeds, the five-task averages, the chosen recipe against each other method on the same
(task, seed) with 95% intervals, where each recipe loses accuracy, the targets, and the layer choice.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from typing import Any

from common import runs, stats
from common.runs import METRIC, load_result
from glue_study_setup import (
    BOOTSTRAP,
    CHOSEN_RULE,
    FFN_GLOBS,
    LAYER_METHODS,
    Layout,
    Profile,
    chosen_of,
    config,
    default_recipe,
    methods_of,
    result_path,
)


def collect(profile: Profile, lay: Layout, protocol: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Saved results whose settings match the current ones: task -> method -> results by seed."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task in profile.tasks:
        for method in methods_of(protocol):
            for seed in profile.seeds:
                r = load_result(result_path(lay, protocol, task, method, seed),
                                config(profile, protocol, task, method, seed))  # fmt: skip
                if r:
                    out.setdefault(task, {}).setdefault(method, []).append(r)
    return out


def _sd(values: list[float]) -> float | None:
    return round(statistics.stdev(values), 2) if len(values) > 1 else None


def summarise(results: dict[str, dict[str, list[dict[str, Any]]]], tasks: tuple[str, ...]) -> dict[str, Any]:
    table = {
        t: {m: {"metric": METRIC[t], "values": [r["value"] for r in rs], "seeds": [r["seed"] for r in rs],
                "mean": round(statistics.fmean(r["value"] for r in rs), 2),
                "sd": _sd([r["value"] for r in rs])}
            for m, rs in by.items()}
        for t, by in results.items()
    }  # fmt: skip
    methods = list(dict.fromkeys(m for by in table.values() for m in by))
    average = {m: round(statistics.fmean(table[t][m]["mean"] for t in tasks), 2)
               for m in methods if all(m in table.get(t, {}) for t in tasks)}  # fmt: skip
    per_seed: dict[str, dict[str, float]] = {}
    for m in methods:
        by_task = [dict(zip(table[t][m]["seeds"], table[t][m]["values"], strict=True))
                   for t in tasks if m in table.get(t, {})]  # fmt: skip
        if len(by_task) == len(tasks):
            for s in sorted(set.intersection(*(set(b) for b in by_task))):
                per_seed.setdefault(m, {})[str(s)] = round(statistics.fmean(b[s] for b in by_task), 2)
    return {"tasks": table, "average": average, "per_seed_average": per_seed}


def paired(tasks: dict[str, dict[str, Any]], chosen: str, others: list[str]) -> dict[str, dict[str, Any]]:
    """``chosen`` minus each other method over the (task, seed) pairs that have both: a 95% percentile
    interval of the mean difference from a bootstrap over pairs stratified by task (``ci95``), and the
    stratified t-interval with Welch-Satterthwaite degrees of freedom (``ci95_t``, ``df``), which does
    not shrink below what a few pairs per task can show (benchmarks/common/stats.py)."""
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    for other in others:
        strata = []
        for by in tasks.values():
            if chosen in by and other in by:
                a = dict(zip(by[chosen]["seeds"], by[chosen]["values"], strict=True))
                b = dict(zip(by[other]["seeds"], by[other]["values"], strict=True))
                d = [a[s] - b[s] for s in sorted(set(a) & set(b))]
                if d:
                    strata.append(np.asarray(d))
        if not strata:
            continue
        diffs = np.concatenate(strata)
        # a task with one pair has no spread to resample: no interval until every task has two
        boot = stats.stratified_bootstrap_ci(strata, BOOTSTRAP["resamples"], BOOTSTRAP["seed"])
        t = stats.stratified_t_ci(strata)
        out[other] = {"mean": round(float(diffs.mean()), 2),
                      "ci95": [round(v, 2) for v in boot] if boot else None,
                      "ci95_t": [round(t["lo"], 2), round(t["hi"], 2)] if t else None,
                      "df": round(t["df"], 1) if t and math.isfinite(t["df"]) else None,
                      "wins": int((diffs > 0).sum()), "pairs": int(diffs.size)}  # fmt: skip
    return out


def _target(value: float | None, target: float, unit: str = "points") -> dict[str, Any] | None:
    if value is None:
        return None
    met = value >= target
    return {"value": value, "target": target, "unit": unit, "met": met,
            "missed_by": None if met else round(target - value, 4)}  # fmt: skip


def prune_rows(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Per task and method (means over seeds): the starting dense value (P2), the dev metric right
    before the hard prune (end of the first phase when there were two, else the start), and the final."""
    out: dict[str, dict[str, Any]] = {}
    for task, by in results.items():
        for m, rs in by.items():
            row: dict[str, Any] = {}
            starts = [r.get("start_value") for r in rs]
            if None not in starts:
                row["start"] = round(statistics.fmean(starts), 2)
            phases = [r["phases"] for r in rs]
            if all(len(p) > 1 and p[0]["metrics"].get(METRIC[task]) is not None for p in phases):
                row["before_prune"] = round(
                    100 * statistics.fmean(p[0]["metrics"][METRIC[task]] for p in phases), 2
                )
                res = [p[0].get("primal_residual") for p in phases]
                if None not in res:
                    row["primal_residual"] = round(statistics.fmean(res), 3)
            elif "start" in row:
                row["before_prune"] = row["start"]
            if "before_prune" in row and m != "dense":
                row["final"] = round(statistics.fmean(r["value"] for r in rs), 2)
                out.setdefault(task, {})[m] = row
    return out


def protocol_report(profile: Profile, lay: Layout, protocol: str, p1_dense: float | None) -> dict[str, Any]:
    results = collect(profile, lay, protocol)
    s = summarise(results, profile.tasks)
    chosen = chosen_of(protocol)
    others = [m for m in methods_of(protocol) if m != chosen and m != "default"]
    if protocol == "P1" and chosen != "dense":
        others = [m for m in others if m != "dense"] + ["dense"]
    avg = s["average"]
    c, asp = avg.get(chosen or ""), avg.get("asp")
    pairs = paired(s["tasks"], chosen, others) if chosen else {}
    targets: dict[str, Any] = {}
    if c is not None and asp is not None:
        targets["chosen_minus_asp"] = _target(round(c - asp, 2), 0.5)
    if protocol == "P2":
        if "asp" in pairs and pairs["asp"]["ci95"] is not None:
            targets["chosen_minus_asp_ci95_low"] = _target(pairs["asp"]["ci95"][0], 0.0)
            targets["chosen_minus_asp_ci95_low"]["strict"] = True  # above 0, not at 0
            targets["chosen_minus_asp_ci95_low"]["met"] = pairs["asp"]["ci95"][0] > 0
        if c is not None and p1_dense:
            targets["chosen_over_p1_dense"] = _target(round(c / p1_dense, 4), 0.985, "ratio")
    n_expected = len(profile.tasks) * len(profile.seeds)
    runnable = [m for m in methods_of(protocol) if m != "default" or chosen == "default"]
    complete = all(
        sum(len(results.get(t, {}).get(m, [])) for t in profile.tasks) == n_expected for m in runnable
    )
    every = [r for by in results.values() for rs in by.values() for r in rs]
    return {
        **s,
        "prune": prune_rows(results),
        "chosen": chosen,
        "chosen_rule": CHOSEN_RULE,
        "default_recipe": dict(zip(("name", "args", "training_free"), default_recipe(protocol), strict=True)),
        "targets": {k: v for k, v in targets.items() if v},
        "paired": pairs,
        "complete": complete,
        "wall_time_s": round(sum(r.get("wall_time_s") or 0 for r in every)),
        "dates": sorted(r["date"] for r in every if r.get("date")),
    }


def layer_report(profile: Profile, lay: Layout, p1: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {"ffn_only": {}, "sensitivity": {}}
    share = None
    for variant in out:
        for m in LAYER_METHODS:
            vals, excl, shares = {}, [], []
            for t in profile.tasks:
                r = load_result(result_path(lay, "layers", t, f"{variant}:{m}", 1),
                                config(profile, "layers", t, f"{variant}:{m}", 1))  # fmt: skip
                if not r:
                    continue
                vals[t] = r["value"]
                if variant == "sensitivity":
                    sens = json.loads((lay.results / "layers" / t / "sensitivity-seed1.json").read_text())
                    excl.append({"task": t, "layers": sens["exclude"], "flops_share": sens["flops_share"]})
                    shares.append(sens["flops_share"])
            if not vals:
                continue
            if variant == "ffn_only":
                share = share if share is not None else ffn_flops_share()
            complete = len(vals) == len(profile.tasks)
            entry = {
                "average": round(statistics.fmean(vals.values()), 2) if complete else None,
                "flops_share": share if variant == "ffn_only" else round(statistics.fmean(shares), 4),
                "tasks": vals,
            }
            if variant == "sensitivity":
                entry["exclude"] = excl
            out[variant][m] = entry
    dense1 = p1.get("per_seed_average", {}).get("dense", {}).get("1")
    targets = {}
    for m, e in out["ffn_only"].items():
        if e["average"] is not None and dense1:
            targets[f"ffn_only_{m}_over_dense"] = _target(round(e["average"] / dense1, 4), 0.99, "ratio")
    return {**out, "dense_seed1_average": dense1, "targets": targets}


@functools.cache
def ffn_flops_share() -> float:
    """The share of the encoder's linear multiply-accumulates that the FFN-only globs select."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from nxm_deploy.sensitivity.layers import candidate_layers, encoder_macs

    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(runs.model_path()))
    inc = [FFN_GLOBS[i + 1] for i in range(0, len(FFN_GLOBS), 2) if FFN_GLOBS[i] == "--include"]
    exc = [FFN_GLOBS[i + 1] for i in range(0, len(FFN_GLOBS), 2) if FFN_GLOBS[i] == "--exclude"]
    return round(sum(x.macs for x in candidate_layers(model, "2:4", inc, exc)) / encoder_macs(model), 6)
