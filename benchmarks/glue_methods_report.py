"""The first GLUE study's numbers and tables, from its aggregated results: each method's average
per seed, the chosen method against each other on the same (task, seed), the targets, where the
accuracy goes at the hard prune, and its section of docs/RESULTS.md. Functions of the data that
glue_methods.py collects, which passes its methods and chosen one in.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from common import report as md
from common.runs import DOC, METRIC


def per_seed_average(
    tasks: dict[str, dict[str, Any]], names: tuple[str, ...], methods: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Each method's five-task average for each seed that every task has: the seed-to-seed spread."""
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        by_task = [_by_seed(tasks[t][m]) for t in names if m in tasks.get(t, {})]
        if len(by_task) < len(names):
            continue
        for seed in sorted(set.intersection(*(set(b) for b in by_task))):
            out.setdefault(m, {})[str(seed)] = round(statistics.fmean(b[seed] for b in by_task), 2)
    return out


def _by_seed(entry: dict[str, Any]) -> dict[int, float]:
    return dict(zip(entry["seeds"], entry["values"], strict=True))


def paired(
    tasks: dict[str, dict[str, Any]], chosen: str, others: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """``chosen`` minus each other method on every (task, seed) that has both: wins and differences."""
    out: dict[str, dict[str, Any]] = {}
    for other in others:
        diffs = []
        for by in tasks.values():
            if chosen in by and other in by:
                a, b = _by_seed(by[chosen]), _by_seed(by[other])
                diffs += [a[s] - b[s] for s in sorted(set(a) & set(b))]
        if diffs:
            out[other] = {
                "pairs": len(diffs),
                "wins": sum(d > 0 for d in diffs),
                "mean": round(statistics.fmean(diffs), 2),
                "min": round(min(diffs), 2),
                "max": round(max(diffs), 2),
            }
    return out


def targets(average: dict[str, float], chosen: str) -> dict[str, Any]:
    c, o, a, d = (average.get(k) for k in (chosen, "oneshot", "asp", "dense"))
    out: dict[str, Any] = {}
    if c is not None and o is not None:
        out["chosen_minus_oneshot"] = {"value": round(c - o, 2), "target": 1.7, "met": c - o >= 1.7}
    if c is not None and a is not None:
        out["chosen_minus_asp"] = {"value": round(c - a, 2), "target": 0.5, "met": c - a >= 0.5}
    if c is not None and d is not None:
        out["chosen_over_dense"] = {"value": round(c / d, 4), "target": 0.99, "met": c / d >= 0.99}
    return out


def before_prune(task: str, results: list[dict[str, Any]]) -> dict[str, float] | None:
    """Mean dev metric at the end of the first (unpruned) phase, final metric and residual at the prune."""
    before = [r["phases"][0]["metrics"].get(METRIC[task]) for r in results if len(r["phases"]) > 1]
    if not before or None in before:
        return None
    out = {
        "before_prune": round(100 * statistics.fmean(before), 2),
        "final": round(statistics.fmean(r["value"] for r in results), 2),
    }
    res = [r["phases"][0].get("primal_residual") for r in results]
    if None not in res:
        out["primal_residual"] = round(statistics.fmean(res), 3)
    return out


def prune_table(tasks: Sequence[str], data: dict[str, Any]) -> list[str]:
    """Where the accuracy goes: each two-phase method before its hard prune, and at the end."""
    rows = []
    for task in tasks:
        for m, v in data.get("prune", {}).get(task, {}).items():
            res = f"{v['primal_residual']:.3f}" if "primal_residual" in v else "–"
            rows.append(f"| {task} | {m} | {v['before_prune']:.2f} | {v['final']:.2f} | "
                        f"{v['final'] - v['before_prune']:+.2f} | {res} |")  # fmt: skip
    if not rows:
        return []
    return ["", "Where the accuracy goes (dev metric at the end of the first phase, i.e. the dense phase "
            "of `asp` or the ADMM phase of `admm`, against the final masked model; means over seeds):", "",
            "| task | method | before the hard prune | final | change | primal residual at the prune |",
            "|---|---|---:|---:|---:|---:|", *rows]  # fmt: skip


def spread_lines(data: dict[str, Any]) -> list[str]:
    """The five-task average of each seed on its own, and the paired (task, seed) differences."""
    out = []
    per_seed = data.get("per_seed_average", {})
    if per_seed:
        seeds = sorted({s for v in per_seed.values() for s in v})
        out += ["", "Five-task average of each seed on its own (seeds that every task has):", "",
                "| method | " + " | ".join(f"seed {s}" for s in seeds) + " |"]  # fmt: skip
        out.append("|---|" + "---:|" * len(seeds))
        for m, v in per_seed.items():
            out.append(f"| {m} | " + " | ".join(f"{v[s]:.2f}" if s in v else "–" for s in seeds) + " |")
    pairs = data.get("paired", {})
    if pairs:
        out += [
            "",
            f"`{data['chosen']}` against each method on the same (task, seed):",
            "",
            "| against | pairs | wins | mean difference | min | max |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        out += [f"| {m} | {v['pairs']} | {v['wins']} | {v['mean']:+.2f} | {v['min']:+.2f} | {v['max']:+.2f} |"
                for m, v in pairs.items()]  # fmt: skip
    return out


def write_doc(profile: Any, data: dict[str, Any], methods: Sequence[str], chosen: str) -> None:
    """Replace (or add) the profile's section of docs/RESULTS.md."""
    begin, end = f"<!-- glue_methods:{profile.name}:begin -->", f"<!-- glue_methods:{profile.name}:end -->"
    lines = [begin, "", f"Profile `{profile.name}`: `{data['command']}`; {data['machine']}; last result "
             f"{data['date']}; {data['wall_time_s'] / 3600:.1f} h of training in all"
             f"{'' if data['complete'] else ' (incomplete: results so far)'}.", ""]  # fmt: skip
    methods = list(methods)
    lines.append("| task (metric, points) | " + " | ".join(methods) + " |")
    lines.append("|---|" + "---:|" * len(methods))
    for task in profile.tasks:
        row = data["tasks"].get(task, {})
        cells = []
        for m in methods:
            if m in row:
                vals = row[m]["values"]
                sd = f" ± {statistics.stdev(vals):.1f}" if len(vals) > 1 else ""
                cells.append(f"{row[m]['mean']:.2f}{sd} (n={len(vals)})")
            else:
                cells.append("–")
        lines.append(f"| {task} ({METRIC[task]}) | " + " | ".join(cells) + " |")
    avg = data["average"]
    lines.append(
        "| **average** | " + " | ".join(f"**{avg[m]:.2f}**" if m in avg else "–" for m in methods) + " |"
    )
    lines.append("")
    partial = data.get("partial")
    if partial:
        a = partial["average"]
        avg_p = ", ".join(f"{m} {v:.2f}" for m, v in a.items())
        lines += [f"Until every task is done: the average over {', '.join(partial['tasks'])} (the tasks with "
                  f"every method that the targets compare) is {avg_p}; {chosen} "
                  f"{a[chosen] - a['oneshot']:+.2f} against oneshot, {a[chosen] - a['asp']:+.2f} against "
                  f"asp, {100 * a[chosen] / a['dense']:.1f}% of dense.", ""]  # fmt: skip
    for key, t in data["targets"].items():
        lines.append(f"- `{key}`: {t['value']} (target {t['target']}): {'met' if t['met'] else 'not met'}")
    lines += spread_lines(data)
    lines += prune_table(profile.tasks, data)
    lines += ["", end]
    md.write_section(DOC, "\n".join(lines), begin, end)
