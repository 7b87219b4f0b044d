"""The GLUE study's report: the aggregate JSON, its section of docs/RESULTS.md (between the
``glue_study`` markers) and its figures, all rebuilt from the saved results (the base profile: the
JSON alone).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

from common import report as md
from common import runs
from common.runs import METRIC, save
from glue_study_examples import POOLED, examples
from glue_study_setup import (
    BOOTSTRAP,
    DISTILLATION,
    FFN_GLOBS,
    LABELS,
    LAYER_METHODS,
    SENSITIVITY_BUDGET,
    Layout,
    Profile,
    default_recipe,
    methods_of,
)
from glue_study_stats import layer_report, protocol_report, targets

COMMANDS = [  # the head of the docs/RESULTS.md section
    "# resumable pieces, two lanes side by side, one thread each (on 2 cores)",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks RTE --seeds 1 --max-hours 2 &",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks MRPC --seeds 1 --max-hours 2",
    "# P2 after the P1 dense run of the same task and seed (it starts from its weights; retrained when gone)",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P2 --tasks RTE --seeds 4,5 --max-hours 2",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols layers --tasks RTE --seeds 1",
    "python benchmarks/glue_study.py --report-only   # benchmarks/results/glue_study.json and this section",
    "git add benchmarks/results/glue_study* docs/RESULTS.md   # commit each result as it lands",
]


def report(profile: Profile, lay: Layout) -> dict[str, Any]:
    """Write the aggregate JSON, the doc section and the plots from the saved results."""
    p1 = protocol_report(profile, lay, "P1", None)
    p2 = protocol_report(profile, lay, "P2", p1["average"].get("dense"))
    layers = layer_report(profile, lay, p1)
    dates = sorted(p1.pop("dates") + p2.pop("dates"))
    data = {
        "model": profile.model or (runs.MODEL_NAME if profile.study == "glue_study" else "--model"),
        "pattern": "2:4",
        "date": dates[-1][:10] if dates else None,
        "machine": runs.machine(),
        "budget": {
            **profile.budget(),
            "methods": {
                "P1": _described("P1"),
                "P2": _described("P2"),
                "layers": {"ffn_only": FFN_GLOBS, "sensitivity_budget": SENSITIVITY_BUDGET},
            },
            "distillation": DISTILLATION,
            "bootstrap": {**BOOTSTRAP, "stratified_by": "task", "interval": "percentile, 95%"},
            "note": "P1: 3 epochs from the pretrained weights (asp half dense, half masked; admm two thirds "
            "ADMM, one third masked); P2: from the P1 dense run of the same task and seed, 3 dense + 3 "
            "masked epochs = 6 in all (--epochs 6); dense_long: 3 + 3 dense epochs = 6; the training-free "
            "prunes (free_*) and modelopt_mask add none. Every % of dense in P2 is against dense_long "
            "of the same (task, seed)",
            "labels": LABELS,
        },
        "targets": targets(profile, p2),
        "protocols": {"P1": p1, "P2": p2},
        "examples": examples(profile, lay, p2["chosen"]),
        "layer_choice": layers,
        "command": "python benchmarks/glue_study.py"
        + {"full": "", "smoke": " --smoke"}.get(profile.name, f" --profile {profile.name}"),
    }
    save(lay.json, data)
    if lay.doc is None:  # the base profile: its doc section is composed elsewhere, from this JSON
        return data
    plots = _plots(lay, data)
    _write_doc(profile, lay, data, plots)
    return data


def _described(protocol: str) -> dict[str, Any]:
    """Each method's options; the default recipe's from admm_tuning.json, sparsegpt's script."""
    out: dict[str, Any] = {}
    for m, args in methods_of(protocol).items():
        if m == "default":
            name, args, free = default_recipe(protocol)
            args = {"admm_tuning": name, "args": args, "training_free": free} if name else "not decided yet"
        elif m == "modelopt_mask":
            args = f"{LABELS[m]}: benchmarks/sparsegpt.py on the P1 dense run (ModelOpt, its own interpreter)"
        out[m] = args
    return out


def _plots(lay: Layout, data: dict[str, Any]) -> list[Path]:
    """Per-task bars with error bars (one panel per protocol) and accuracy against the 2:4 FLOPs share."""
    protos = {p: v for p, v in data["protocols"].items() if v["tasks"]}
    if not protos:
        return []
    plt = md.pyplot()
    out = []
    fig, axes = plt.subplots(len(protos), 1, figsize=(10, 3.6 * len(protos)), squeeze=False)
    for ax, (p, v) in zip(axes[:, 0], protos.items(), strict=True):
        tasks = list(v["tasks"])
        methods = list(dict.fromkeys(m for by in v["tasks"].values() for m in by))
        width = 0.8 / max(len(methods), 1)
        for j, m in enumerate(methods):
            xs = [i + j * width for i, t in enumerate(tasks) if m in v["tasks"][t]]
            ys = [v["tasks"][t][m]["mean"] for t in tasks if m in v["tasks"][t]]
            es = [v["tasks"][t][m]["sd"] or 0 for t in tasks if m in v["tasks"][t]]
            ax.bar(xs, ys, width, yerr=es, capsize=2, label=m)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
        ax.set_ylabel("dev metric (points)")
        ax.set_title(f"{p}: mean ± sd over seeds")
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    out.append(md.save_figure(fig, lay.plots / "glue_study_tasks.png"))
    lc, p2 = data["layer_choice"], data["protocols"]["P2"]
    points = []
    for m in LAYER_METHODS:
        name = _all_linears(p2, m)
        all_nm = p2["per_seed_average"].get(name or "", {}).get("1")
        pts = [(1.0, all_nm)] if all_nm is not None else []
        pts += [(lc[v][m]["flops_share"], lc[v][m]["average"]) for v in ("ffn_only", "sensitivity")
                if m in lc[v] and lc[v][m]["average"] is not None]  # fmt: skip
        if len(pts) > 1:  # at least one layer choice beside all linears
            points.append((m, pts))
    if points:
        fig, ax = plt.subplots(figsize=(6, 4))
        for m, pts in points:
            ax.plot(*zip(*sorted(pts), strict=True), "o-", label=m)
        if lc.get("dense_seed1_average"):
            ax.axhline(lc["dense_seed1_average"], color="grey", ls="--", label="P1 dense")
        ax.set_xlabel("share of encoder linear FLOPs at 2:4")
        ax.set_ylabel("five-task average, seed 1 (points)")
        ax.set_title("P2: all linears, FFN only, sensitivity-chosen")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out.append(md.save_figure(fig, lay.plots / "glue_study_flops.png"))
    return out


def _table(v: dict[str, Any], tasks: tuple[str, ...], methods: list[str]) -> list[str]:
    heads = [f"{m} ({LABELS[m]})" if m in LABELS else m for m in methods]
    lines = [md.row(["task (metric, points)", *heads]), md.rule(1, len(methods))]
    for t in tasks:
        by = v["tasks"].get(t, {})
        cells = [f"{by[m]['mean']:.2f}" + (f" ± {by[m]['sd']:.2f}" if by[m]["sd"] is not None else "")
                 + f" (n={len(by[m]['values'])})" if m in by else "–" for m in methods]  # fmt: skip
        lines.append(md.row([f"{t} ({METRIC[t]})", *cells]))
    avg = v["average"]
    lines.append(md.row(["**average**", *(f"**{avg[m]:.2f}**" if m in avg else "–" for m in methods)]))
    three = v["three_tasks"]
    if three["tasks"] and tuple(three["tasks"]) != tasks:
        a3 = three["average"]
        lines.append(md.row([f"average of {', '.join(three['tasks'])}",
                             *(f"{a3[m]:.2f}" if m in a3 else "–" for m in methods)]))  # fmt: skip
    if "of_dense_long" in v:
        of = v["of_dense_long"]
        lines.append(md.row(["% of dense_long (same task, seed)",
                             *(f"{100 * of[m]:.1f}%" if m in of else "–" for m in methods)]))  # fmt: skip
    return lines


def _targets_lines(targets: dict[str, Any]) -> list[str]:
    out = []
    for k, t in targets.items():
        miss = "" if t["met"] else f", missed by {t['missed_by']:g}"
        out.append(f"- `{k}`: {t['value']:g} (target {'>' if t.get('strict') else '>='} {t['target']:g} "
                   f"{t['unit']}): {'met' if t['met'] else 'not met'}{miss}")  # fmt: skip
    return out


def _protocol_lines(profile: Profile, p: str, v: dict[str, Any]) -> list[str]:
    head = {"P1": "P1: 3 epochs from the pretrained weights",
            "P2": "P2: from the P1 dense run of the same task and seed, 3 dense + 3 masked epochs = 6 "
                  "in all (`dense_long`: 3 + 3 dense epochs = 6; free_* add none)"}[p]  # fmt: skip
    lines = [f"### {head}", ""]
    if not v["tasks"]:
        return [*lines, "Nothing has run yet.", ""]
    methods = list(dict.fromkeys(m for by in v["tasks"].values() for m in by))
    lines += _table(v, profile.tasks, methods)
    if p == "P2" and v.get("p1_dense") is not None:
        lines += ["", f"{LABELS['p1_dense']}, the start: five-task average {v['p1_dense']:.2f}."]
    if v["missing"] or v["without_predictions"]:
        lines += ["", f"Missing: {len(v['missing'])} results; {len(v['without_predictions'])} results "
                  "without dev predictions (no per-example test for them)."]  # fmt: skip
    if (rr := v.get("reruns", {})).get("count"):
        n, same, most = rr["count"], rr["reproduce"], rr["max_abs_diff"]
        lines += ["", f"Trained again, same config, over a recorded value: {n} runs; {same} give the first "
                  f"recorded value back within 0.01 point (largest difference {most:.2f})."]  # fmt: skip
    chosen = f"`{v['chosen']}`" if v["chosen"] else "not decided yet (admm_tuning.json has no winner)"
    lines += ["", f"Chosen: {chosen}; the rule: {v['chosen_rule']}; "
              f"{'complete' if v['complete'] else 'incomplete: results so far'}.", ""]  # fmt: skip
    lines += _targets_lines(v["targets"])
    if v["per_seed_average"]:
        seeds = sorted({s for x in v["per_seed_average"].values() for s in x})
        lines += [
            "",
            "Five-task average of each seed on its own:",
            "",
            md.row(["method", *(f"seed {s}" for s in seeds)]),
            md.rule(1, len(seeds)),
        ]
        lines += [md.row([m, *(f"{x[s]:.2f}" if s in x else "–" for s in seeds)])
                  for m, x in v["per_seed_average"].items()]  # fmt: skip
    if v["paired"]:
        lines += ["", f"`{v['chosen']}` minus each method on the same (task, seed); 95% intervals: from "
                  f"{BOOTSTRAP['resamples']} bootstrap resamples of the pairs within each task (seed "
                  f"{BOOTSTRAP['seed']}), and the stratified t-interval (Welch-Satterthwaite degrees of "
                  "freedom; wider, as few pairs per task call for):", "",
                  "| against | pairs | wins | mean difference | 95% bootstrap | 95% t (df) |",
                  "|---|---:|---:|---:|---|---|"]  # fmt: skip
        for m, x in v["paired"].items():
            ci = "– (a task with one pair)" if x["ci95"] is None else "[{:+.2f}, {:+.2f}]".format(*x["ci95"])
            ci_t = "–" if x.get("ci95_t") is None else "[{:+.2f}, {:+.2f}]".format(*x["ci95_t"])
            ci_t += f" ({x['df']:.1f})" if x.get("df") is not None else ""
            lines.append(f"| {m} | {x['pairs']} | {x['wins']} | {x['mean']:+.2f} | {ci} | {ci_t} |")
    rows = [(t, m, x) for t, by in v["prune"].items() for m, x in by.items()]
    if rows:
        lines += ["", "Where each recipe loses accuracy (means over seeds): the start (P2: the dense run), "
                  "right before the hard prune, and the final model:", "",
                  "| task | method | start | before the hard prune | final | change at and after the prune |",
                  "|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for t, m, x in rows:
            start = f"{x['start']:.2f}" if "start" in x else "–"
            lines.append(f"| {t} | {m} | {start} | {x['before_prune']:.2f} | {x['final']:.2f} | "
                         f"{x['final'] - x['before_prune']:+.2f} |")  # fmt: skip
    return [*lines, ""]


def _target_lines(targets: dict[str, Any]) -> list[str]:
    lines = [f"### Targets (written {targets['date']}, before the third edition's runs)", ""]
    for k, t in targets.items():
        if k == "date":
            continue
        met = {True: "met", False: "**not met**", None: "not yet measured"}[t["met"]]
        value = "" if t["met"] is None else f" (value: `{t['value']}`)"
        lines.append(f"- `{k}`: {t['what']}: {met}{value}")
    return [*lines, ""]


def _example_lines(ex: dict[str, Any]) -> list[str]:
    """Per pair and task: McNemar (classification) or the paired example bootstrap (STS-B), per seed
    and pooled."""
    if not ex:
        return []
    lines = ["### Per-example tests (P2 dev predictions)", "",
             "Exact McNemar p-value (examples only the first / only the second got right) for the "
             "classification tasks; for STS-B the Pearson difference with its 95% paired example "
             f"bootstrap interval; `–`: a predictions file is missing; the last column {POOLED}.", "",
             "| pair | task | per seed | pooled |", "|---|---|---|---|"]  # fmt: skip

    def cell(x: Any) -> str:
        if not isinstance(x, dict):
            return "–"
        if "p_value" in x:
            return f"p {x['p_value']:.3g} ({x['only_a']}/{x['only_b']})"
        return f"{x['diff']:+.2f} [{x['ci95'][0]:+.2f}, {x['ci95'][1]:+.2f}]"

    for pair, by in ex.items():
        for task, e in by.items():
            seeds = "; ".join(f"{s}: {cell(x)}" for s, x in e["per_seed"].items())
            lines.append(f"| {pair} | {task} | {seeds} | {cell(e.get('pooled'))} |")
    return [*lines, ""]


def _all_linears(p2: dict[str, Any], method: str) -> str | None:
    """The P2 run (every linear at 2:4) a layer-choice method matches: ``default`` is P2's chosen one."""
    return p2.get("chosen") if method == "default" else method


def _seed1(v: dict[str, Any], task: str, method: str | None) -> float | None:
    """A protocol's seed-1 value of one task and method (None where it has not run)."""
    e = v["tasks"].get(task, {}).get(method or "")
    return dict(zip(e["seeds"], e["values"], strict=True)).get(1) if e else None


def _layer_lines(profile: Profile, data: dict[str, Any]) -> list[str]:
    """The layer-choice section: averages with FLOPs shares, the targets, and the per-task values beside
    the seed-1 dense start and the seed-1 all-linears runs of P2."""
    lc, p1, p2 = data["layer_choice"], data["protocols"]["P1"], data["protocols"]["P2"]
    lines = ["### Layer choice (P2, seed 1)", ""]
    if not any(lc[v] for v in ("ffn_only", "sensitivity", "random_ffn_only", "random_sensitivity")):
        return [*lines, "Nothing has run yet.", ""]
    lines += ["| layers at 2:4 | method | five-task average | share of encoder linear FLOPs at 2:4 |",
              "|---|---|---:|---:|"]  # fmt: skip
    for m in LAYER_METHODS:
        name = _all_linears(p2, m)
        a = p2["per_seed_average"].get(name or "", {}).get("1")
        if a is not None:
            lines.append(f"| all linears (P2 seed 1, `{name}`) | {m} | {a:.2f} | 100.0% |")
    for variant in ("ffn_only", "sensitivity", "random_ffn_only", "random_sensitivity"):
        for m, e in lc[variant].items():
            a = f"{e['average']:.2f}" if e["average"] is not None else f"({len(e['tasks'])} tasks so far)"
            share = "–" if e["flops_share"] is None else f"{100 * e['flops_share']:.1f}%"
            lines.append(f"| {variant} | {m} | {a} | {share} |")
    ins = {k: x for e in lc["sensitivity"].values() for k, x in e.get("in_sample", {}).items()}
    if ins:
        said = {True: "in sample (the rows the run trained on)", False: "out of sample", None: "not recorded"}
        lines += ["", "Sensitivity scans: " + "; ".join(f"{k}: {said[x]}" for k, x in ins.items()) + "."]
    dense1 = lc.get("dense_seed1_average")
    if dense1:
        lines += ["", f"The start, P1 dense seed 1: {dense1:.2f}. Against it:"]
    lines += ["", *_targets_lines(lc["targets"]), "",
              "Per task (points, seed 1; the last column: the share of encoder linear FLOPs that "
              "`sensitivity` left at 2:4, and how many linears it kept dense):", ""]  # fmt: skip
    cols = [("all linears", m) for m in LAYER_METHODS] + [(v, m) for v in ("ffn_only", "sensitivity")
                                                         for m in LAYER_METHODS]  # fmt: skip
    lines += [md.row(["task", "P1 dense", *(f"{v}: {m}" for v, m in cols), "sensitivity picks"]),
              md.rule(1, len(cols) + 2)]  # fmt: skip
    excl = {x["task"]: x for x in next(iter(lc["sensitivity"].values()), {}).get("exclude", [])}
    for t in profile.tasks:
        cells = [_seed1(p1, t, "dense")]
        for v, m in cols:
            if v == "all linears":
                cells.append(_seed1(p2, t, _all_linears(p2, m)))
            else:
                cells.append(lc[v].get(m, {}).get("tasks", {}).get(t))
        pick = f"{100 * excl[t]['flops_share']:.1f}%, {len(excl[t]['layers'])} dense" if t in excl else "–"
        values = " | ".join("–" if c is None else f"{c:.2f}" for c in cells)
        lines.append(f"| {t} | {values} | {pick} |")
    return [*lines, ""]


def _write_doc(profile: Profile, lay: Layout, data: dict[str, Any], plots: list[Path]) -> None:
    begin, end = "<!-- glue_study:begin -->", "<!-- glue_study:end -->"
    seeds = ", ".join(map(str, profile.seeds))
    p2_seeds = ", ".join(map(str, profile.p2_seeds or profile.seeds))
    intro = [
        f"MiniLM, 2:4 on every encoder linear, {', '.join(profile.tasks)}; the first study's training "
        "subsets (SST-2 5000 and CoLA 6000 rows, fixed seed-0 subsets), dev sets whole; lr 1e-4, batch 32, "
        f"128 tokens. P1: 3 epochs from the pretrained weights, seeds {seeds}. P2 starts from the P1 "
        "`dense` run of the same task and seed (`--init-from`, `--epochs 6`): 3 dense + 3 masked epochs "
        "= 6 in all; `dense_long` is the dense reference at that budget (3 + 3 dense epochs = 6) and every "
        "% of dense in P2 is against it on the same (task, seed); the training-free prunes (`free_*`) and "
        f"`modelopt_mask` ({LABELS['modelopt_mask']}) add no epochs. P2's contenders run seeds {p2_seeds}, "
        f"its other methods seeds {seeds}. Distillation: " + DISTILLATION + ".",
        "How the candidates were fixed: the first edition (`benchmarks/glue_methods.py`) fixed its "
        "schedule and dropped distillation on held-out SST-2 training rows before any dev number; the "
        "decoupled ADMM penalty was added after the first edition's dev numbers (`admm` no better than "
        "`asp` on CoLA and SST-2, seed 1) and scored on the same held-out rows. The second edition's "
        "candidate set (`benchmarks/admm_tuning.py`'s stage 3 levers) and its rule for the chosen recipe "
        "were fixed before any of its dev numbers. The third edition adds `dense_long`, the SparseGPT and "
        "Wanda prunes (`free_*`, `*_ft`) and seeds 4 and 5 after the second edition's dev numbers, keeps "
        "the chosen recipe and rule, and wrote its targets (below) before its own runs.",
        "Pieces resume where they stopped (one JSON per result under `benchmarks/results/glue_study/`, "
        "its dev predictions under `benchmarks/results/glue_study/predictions/`; every result from the "
        "current code, none reused from the first edition); two pieces run side by side with "
        "`OMP_NUM_THREADS=1` and different `--tasks`. Paired intervals: 10,000 bootstrap resamples of "
        "the (task, seed) pairs within each task, and the stratified t-interval. Machine: "
        f"{data['machine']}; last result {data['date'] or 'none yet'}.",
    ]
    lines = [begin, "", "## GLUE study, third edition", "", "```bash", *COMMANDS, "```", ""]
    for para in intro:
        lines += [*textwrap.wrap(para, 100, break_on_hyphens=False, break_long_words=False), ""]
    lines += _target_lines(data["targets"])
    for p, v in data["protocols"].items():
        lines += _protocol_lines(profile, p, v)
    lines += _example_lines(data["examples"])
    lines += _layer_lines(profile, data)
    for path in plots:
        rel = os.path.relpath(path, lay.doc.parent)
        lines += [f"![{path.stem}]({rel})", ""]
    lines.append(end)
    # a new section goes after the first study's, before the INT8 one
    md.write_section(lay.doc, "\n".join(lines), begin, end, before="## INT8")
