"""The GLUE study's numbers from its saved results: per task and method the mean and the spread
over seeds, the five-task averages (and the three-task ones, without RTE and CoLA), the chosen recipe
against each other method on the same (task, seed) with 95% intervals, P2 as a share of dense_long,
where each recipe loses accuracy, the targets, and the layer choice.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from typing import Any

from common import runs, stats
from common.runs import METRIC
from glue_study_setup import (
    BOOTSTRAP,
    CHOSEN_RULE,
    FFN_GLOBS,
    LAYER_METHODS,
    TARGETS,
    THREE_TASKS,
    Layout,
    Profile,
    chosen_of,
    config,
    current,
    default_recipe,
    methods_of,
    result_path,
)


def collect(profile: Profile, lay: Layout, protocol: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Saved results whose settings match the current ones: task -> method -> results by seed."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task in profile.tasks:
        for method in methods_of(protocol, profile):
            for seed in profile.seeds_of(protocol, method):
                r = current(result_path(lay, protocol, task, method, seed),
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


def _restrict(tasks: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    return {t: by for t, by in tasks.items() if t in keep}


def of_dense(tasks: dict[str, dict[str, Any]], ref: str, names: tuple[str, ...]) -> dict[str, float]:
    """Each method's average over ``names`` as a share of ``ref``'s, both over the (task, seed) pairs
    they share (every task of ``names`` needed)."""
    out = {}
    for m in dict.fromkeys(m for by in tasks.values() for m in by):
        a, b = [], []
        for t in names:
            by = tasks.get(t, {})
            if m not in by or ref not in by:
                break
            x, y = (dict(zip(by[k]["seeds"], by[k]["values"], strict=True)) for k in (m, ref))
            common = sorted(set(x) & set(y))
            if not common:
                break
            a.append(statistics.fmean(x[s] for s in common))
            b.append(statistics.fmean(y[s] for s in common))
        else:
            if a and statistics.fmean(b):
                out[m] = round(statistics.fmean(a) / statistics.fmean(b), 4)
    return out


def protocol_report(profile: Profile, lay: Layout, protocol: str, p1_dense: float | None) -> dict[str, Any]:
    results = collect(profile, lay, protocol)
    s = summarise(results, profile.tasks)
    three = tuple(t for t in profile.tasks if t in THREE_TASKS)
    s3 = summarise({t: by for t, by in results.items() if t in three}, three)
    chosen = chosen_of(protocol)
    runnable = list(methods_of(protocol, profile))
    others = [m for m in runnable if m != chosen and m != "default"]
    if protocol == "P1" and chosen != "dense":
        others = [m for m in others if m != "dense"] + ["dense"]
    avg = s["average"]
    c, asp = avg.get(chosen or ""), avg.get("asp")
    pairs = paired(s["tasks"], chosen, others) if chosen else {}
    targets: dict[str, Any] = {}
    if protocol == "P1" and c is not None and asp is not None:  # the second edition's, on P1
        targets["chosen_minus_asp"] = _target(round(c - asp, 2), 0.5)
    if chosen != "default":
        runnable = [m for m in runnable if m != "default"]
    missing = [f"{t} {m} seed {seed}" for t in profile.tasks for m in runnable
               for seed in profile.seeds_of(protocol, m)
               if seed not in {r["seed"] for r in results.get(t, {}).get(m, [])}]  # fmt: skip
    every = [r for by in results.values() for rs in by.values() for r in rs]
    no_preds = sorted(f"{r['task']} {r['method']} seed {r['seed']}" for r in every
                      if r["method"] != "modelopt_mask" and not r.get("predictions"))  # fmt: skip
    out = {
        **s,
        "reruns": reruns(every),
        "three_tasks": {"tasks": list(three), "average": s3["average"],
                        "paired": paired(_restrict(s["tasks"], three), chosen, others) if chosen else {}},
        "prune": prune_rows(results),
        "chosen": chosen,
        "chosen_rule": CHOSEN_RULE,
        "default_recipe": dict(zip(("name", "args", "training_free"), default_recipe(protocol), strict=True)),
        "targets": {k: v for k, v in targets.items() if v},
        "paired": pairs,
        "complete": not missing,
        "missing": missing,
        "without_predictions": no_preds,
        "wall_time_s": round(sum(r.get("wall_time_s") or 0 for r in every)),
        "dates": sorted(r["date"] for r in every if r.get("date")),
    }  # fmt: skip
    if protocol == "P2":
        out["of_dense_long"] = of_dense(s["tasks"], "dense_long", profile.tasks)
        out["three_tasks"]["of_dense_long"] = of_dense(s["tasks"], "dense_long", three)
        out["p1_dense"] = p1_dense
    return out


def _same_config_values(r: dict[str, Any]) -> list[float]:
    """The values one result's config gave, oldest first: the superseded result's (``earlier``, when
    made with the same config) and its reruns, then this one's and its reruns."""
    e = r.get("earlier") or {}
    old = [e, *(e.get("reruns") or ())] if e.get("same_config", True) else []
    values = [x.get("value") for x in (*old, r, *(r.get("reruns") or ()))]
    return [v for v in values if v is not None]


def reruns(every: list[dict[str, Any]]) -> dict[str, Any]:
    """Results trained again with the same config (the value a result replaced, ``earlier``, and the
    ``reruns`` of a P1 dense run retrained): how many values came after the first recorded one, how
    many give it back (within 0.01 point) and the largest difference."""
    pairs = [(v, vs[0]) for vs in map(_same_config_values, every) for v in vs[1:]]
    return {"count": len(pairs), "reproduce": sum(runs.reproduces(v, e) for v, e in pairs),
            "max_abs_diff": round(max(abs(v - e) for v, e in pairs), 2) if pairs else None}  # fmt: skip


def _met(what: str, value: Any, target: str, met: bool | None) -> dict[str, Any]:
    return {"what": TARGETS[what], "value": value, "target": target, "met": met}


def targets(profile: Profile, p2: dict[str, Any]) -> dict[str, Any]:
    """The third edition's targets (TARGETS), each with ``met`` true, false or null (not yet measured:
    a (task, seed) it needs is missing)."""
    tasks, seeds, c = p2["tasks"], set(profile.p2_seeds or profile.seeds), p2["chosen"]

    def full(m: str | None, names: tuple[str, ...]) -> bool:
        return m is not None and all(
            seeds <= set(tasks.get(t, {}).get(m, {}).get("seeds", ())) for t in names
        )

    ratio = p2["of_dense_long"].get(c or "")
    ok = full(c, profile.tasks) and full("dense_long", profile.tasks)
    out = {"date": TARGETS["date"],
           "chosen_over_dense_long": _met("chosen_over_dense_long", ratio, ">= 0.99",
                                          (ratio >= 0.99) if ok and ratio is not None else None)}  # fmt: skip
    d = p2["paired"].get("asp")
    ok = full(c, profile.tasks) and full("asp", profile.tasks) and d is not None and d["ci95_t"] is not None
    met = (d["mean"] >= 0.5 and d["ci95_t"][0] > 0) if ok and d else None
    value = d and {k: d[k] for k in ("mean", "ci95_t", "pairs")}
    out["chosen_minus_asp"] = _met("chosen_minus_asp", value, "mean >= +0.5 and ci95_t low > 0", met)
    three = tuple(p2["three_tasks"]["tasks"])
    d3 = p2["three_tasks"]["paired"].get("asp")
    ok = bool(three) and full(c, three) and full("asp", three) and d3 is not None
    out["chosen_minus_asp_three_tasks"] = _met("chosen_minus_asp_three_tasks", d3 and d3["mean"], "> 0",
                                               (d3["mean"] > 0) if ok and d3 else None)  # fmt: skip
    means = {t: {m: tasks.get(t, {}).get(m, {}).get("mean") for m in ("free_admm", "free_sparsegpt")}
             for t in profile.tasks}  # fmt: skip
    ok = full("free_admm", profile.tasks) and full("free_sparsegpt", profile.tasks)
    out["free_admm_vs_free_sparsegpt"] = _met(
        "free_admm_vs_free_sparsegpt", means, "free_admm >= free_sparsegpt on every task",
        all(v["free_admm"] >= v["free_sparsegpt"] for v in means.values()) if ok else None)  # fmt: skip
    return out


def _layer_entry(profile: Profile, lay: Layout, variant: str, m: str) -> dict[str, Any] | None:
    """One layer-choice variant and method: seed-1 values per task (``tasks``), every seed's
    (``by_seed``), the averages, the FLOP share at 2:4 and, for the sensitivity scan, its picks."""
    by_seed: dict[str, dict[str, float]] = {}
    excl, shares, in_sample = [], [], {}
    for t in profile.tasks:
        for seed in profile.seeds:
            name = f"{variant}:{m}"
            r = current(result_path(lay, "layers", t, name, seed), config(profile, "layers", t, name, seed))
            if not r:
                continue
            by_seed.setdefault(t, {})[str(seed)] = r["value"]
            choice = r.get("layer_choice") or {}
            if variant == "sensitivity":
                sens = json.loads((lay.results / "layers" / t / f"sensitivity-seed{seed}.json").read_text())
                if seed == 1:
                    excl.append({"task": t, "layers": sens["exclude"], "flops_share": sens["flops_share"]})
                shares.append(sens["flops_share"])
                in_sample[f"{t} seed {seed}"] = (sens.get("rows") or {}).get("in_sample")
            elif variant.startswith("random_") and "flops_share" in choice:
                shares.append(choice["flops_share"])
    if not by_seed:
        return None
    vals = {t: v["1"] for t, v in by_seed.items() if "1" in v}
    every = all(set(map(str, profile.seeds)) <= set(by_seed.get(t, {})) for t in profile.tasks)
    entry: dict[str, Any] = {
        "average": round(statistics.fmean(vals.values()), 2) if len(vals) == len(profile.tasks) else None,
        "average_over_seeds": round(statistics.fmean(statistics.fmean(v.values()) for v in by_seed.values()),
                                    2) if every else None,
        "flops_share": ffn_flops_share() if variant == "ffn_only"
        else (round(statistics.fmean(shares), 4) if shares else None),
        "tasks": vals,
        "by_seed": by_seed,
    }  # fmt: skip
    if variant == "sensitivity":
        entry["exclude"] = excl
        entry["in_sample"] = in_sample  # None: a scan made before the tool recorded it
    return entry


def layer_report(profile: Profile, lay: Layout, p1: dict[str, Any]) -> dict[str, Any]:
    from glue_study_layers import VARIANTS

    out: dict[str, dict[str, Any]] = {v: {} for v in VARIANTS}
    for variant in out:
        for m in LAYER_METHODS:
            entry = _layer_entry(profile, lay, variant, m)
            if entry:
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
