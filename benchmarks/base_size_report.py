"""The report of ``benchmarks/base_size.py``: per task, the accuracy runs against ``dense_long`` (and
MiniLM's seed-1 value of the same run beside them), the targets met or missed, INT8's speed-up and its
accuracy against its own fp32 export, peak memory and every run's provenance;
``benchmarks/results/base_size.json`` and docs/RESULTS.md's "At base size" section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glue_study_setup import PROFILES, Layout

BASE = PROFILES["base"]  # the study's base profile: its tasks, seed and P2 methods are this report's
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
JSON_OUT = RESULTS / "base_size.json"
CHAIN = Layout.of(BASE).results  # the study's per-run results, and the chain's figures beside them
DOC = REPO / "docs" / "RESULTS.md"
SEED = BASE.seeds[0]
MODEL_DIR = "~/models/all-mpnet-base-v2"
TASKS = BASE.tasks
MODEL_NAME = "sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 109.5M parameters)"
TARGETS = {  # written 2026-12-06, before the runs; reported met or missed, never moved
    "chosen_vs_dense_long": {"at_least": 99.0, "unit": "% of dense_long", "where": "each task"},
    "chosen_minus_asp": {"at_least": 0.0, "unit": "points", "where": "each task"},
    "free_admm_minus_free_sparsegpt": {"at_least": 0.0, "unit": "points", "where": "each task"},
    "int8_speedup_vs_fp32_dense": {"at_least": 1.8, "unit": "x", "where": "1x128 and 8x128, one thread"},
    "int8_vs_own_fp32": {"at_least": -0.5, "unit": "points", "where": "each task"},
}


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


METHODS = ("dense", *BASE.p2_methods)  # P1 dense, then P2's
LABELS = {
    "dense": "P1 dense (3 epochs)",
    "dense_long": "dense_long (3 + 3 dense epochs)",
    "asp": "asp (3 dense + 3 masked)",
    "chosen": "chosen recipe (3 dense + 3 masked)",
    "free_magnitude": "training-free magnitude",
    "free_wanda": "training-free Wanda",
    "free_sparsegpt": "training-free SparseGPT (with its update)",
    "free_admm": "training-free ADMM",
}
COMPARED = {"chosen_vs_dense_long": ("chosen", "dense_long"), "chosen_minus_asp": ("chosen", "asp")}
# What the run records did not say before the thread count was recorded (origin.torch_threads).
RERUN_NOTES = {("MRPC", "2026-12-07T18:17:04+00:00"): "OMP_NUM_THREADS=2; the recorded run: 1 thread"}
# A rerun's CPU where its record predates ``cpu_id``: the same session's benchmarks/determinism.py
# probes (benchmarks/results/determinism.json) named the machine it ran on.
RERUN_CPU = {("MRPC", "2026-12-08T02:42:44+00:00"): "family 26 model 2 stepping 1"}
BEGIN, END = "<!-- base_size:begin -->", "<!-- base_size:end -->"


def _run_result(task: str, method: str, chosen: str) -> dict[str, Any] | None:
    protocol = "P1" if method == "dense" else "P2"
    name = chosen if method == "chosen" else method
    return _load(CHAIN / protocol / task / f"{name}-seed{SEED}.json")


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def _met(value: float | None, at_least: float) -> bool | None:
    return None if value is None else bool(value >= at_least)


def _minilm(task: str, method: str, chosen: str) -> float | None:
    """The MiniLM value of the same task, method and seed (glue_study.json), for the table."""
    study = _load(RESULTS / "glue_study.json") or {}
    name = {"dense": "dense", "chosen": chosen}.get(method, method)
    proto = "P1" if method == "dense" else "P2"
    vals = (((study.get("protocols") or {}).get(proto) or {}).get("tasks") or {}).get(task, {}).get(name)
    for seed, v in zip((vals or {}).get("seeds") or [], (vals or {}).get("values") or [], strict=True):
        if seed == SEED:
            return v
    return None


def _speedups(model: dict[str, Any]) -> dict[str, float]:
    return {f"{s['batch']}x{s['seq_len']}": round(s["speedup"], 2) for s in model["latency"]}


def _int8(figures: dict[str, Any]) -> dict[str, Any] | None:
    """The static 2:4 INT8 export against fp32 dense and its own fp32; every export of int8.py as
    measured; and MiniLM's speed-up at the same shapes (``benchmarks/results/int8.json``) beside it."""
    models = figures["models"]
    sp8, sp32 = models.get("sparse-int8"), models["sparse-fp32"]
    if not sp8:
        return None
    speedup = _speedups(sp8)
    minilm = (_load(RESULTS / "int8.json") or {}).get("models", {}).get("sparse-int8")
    small = _speedups(minilm) if minilm else {}
    shared = [k for k in speedup if k in small]
    return {
        "speedup_vs_fp32_dense": speedup,
        "dev": sp8["dev"],
        "own_fp32_dev": sp32["dev"],
        "vs_own_fp32_points": round(100 * (sp8["dev"] - sp32["dev"]), 2),
        "agreement_with_fp32_dense": sp8["agreement_with_dense"],
        "minilm_speedup_vs_fp32_dense": small or None,
        "bigger_favours_int8": all(speedup[k] > small[k] for k in shared) if shared else None,
        "exports": {
            name: {
                "dev": m["dev"],
                "agreement_with_fp32_dense": m["agreement_with_dense"],
                "speedup_vs_fp32_dense": _speedups(m),
            }
            for name, m in models.items()
        },
    }


def task_report(task: str, chosen: str) -> dict[str, Any]:
    res = {m: _run_result(task, m, chosen) for m in METHODS}
    val = {m: (r or {}).get("value") for m, r in res.items()}
    ref = val["dense_long"]
    pct = {m: (round(100 * v / ref, 2) if v is not None and ref else None) for m, v in val.items()}
    diff = {
        "chosen_minus_asp": _minus(val["chosen"], val["asp"]),
        "free_admm_minus_free_sparsegpt": _minus(val["free_admm"], val["free_sparsegpt"]),
    }
    chain_ = _load(chain_path(task))
    int8 = _int8(chain_["int8"]) if chain_ else None
    return {
        "values": val,
        "pct_of_dense_long": pct,
        "differences": diff,
        "minilm_seed1": {m: _minilm(task, m, chosen) for m in METHODS},
        "peak_memory_mib": {
            "train": {m: (r or {}).get("peak_rss_mib") for m, r in res.items()},
            "export": (chain_ or {}).get("peak_memory_mib"),
        },
        "int8": int8,
        "predictor": (chain_ or {}).get("predictor"),
        "starts": {m: r["start_value"] for m, r in res.items() if r and r.get("start_value") is not None},
        "dense_reruns": (res["dense"] or {}).get("reruns") or [],
        "provenance": {
            m: {k: r.get(k) for k in ("tool_version", "source", "libraries", "machine", "command", "date")}
            for m, r in res.items()
            if r
        },
    }


def targets(tasks: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in TARGETS.items():
        per_task: dict[str, Any] = {}
        for task, t in tasks.items():
            if name == "chosen_vs_dense_long":
                per_task[task] = _met(t["pct_of_dense_long"]["chosen"], spec["at_least"])
            elif name == "chosen_minus_asp":
                per_task[task] = _met(t["differences"]["chosen_minus_asp"], spec["at_least"])
            elif name == "free_admm_minus_free_sparsegpt":
                per_task[task] = _met(t["differences"]["free_admm_minus_free_sparsegpt"], spec["at_least"])
            elif name == "int8_speedup_vs_fp32_dense":
                s = (t["int8"] or {}).get("speedup_vs_fp32_dense")
                per_task[task] = None if not s else all(v >= spec["at_least"] for v in s.values())
            else:
                per_task[task] = _met((t["int8"] or {}).get("vs_own_fp32_points"), spec["at_least"])
        known = [v for v in per_task.values() if v is not None]
        met = None if len(known) < len(per_task) else all(known)
        out[name] = {**spec, "per_task": per_task, "met": met}
        if name in COMPARED:  # a comparison across different P1 starts is provisional
            same = {task: _same_start(t, *COMPARED[name]) for task, t in tasks.items()}
            out[name]["different_start"] = [task for task, v in same.items() if v is False]
    return out


def _same_start(t: dict[str, Any], *methods: str) -> bool | None:
    """Whether the P2 runs compared continued the same P1 dense weights (None: one is not there)."""
    starts = [t["starts"].get(m) for m in methods]
    return None if None in starts else len(set(starts)) == 1


def _threads(task: str, rerun: dict[str, Any]) -> str:
    """A rerun's thread count, and its CPU where recorded (``cpu_id``, since 2026-12-08)."""
    if rerun.get("torch_threads"):
        n = rerun["torch_threads"]
        cpu = rerun.get("cpu_id") or RERUN_CPU.get((task, rerun["date"]))
        return f"{n} thread{'s' if n != 1 else ''}" + (f", CPU {cpu}" if cpu else "")
    return RERUN_NOTES.get((task, rerun["date"]), "thread count not recorded")


def _provisional(name: str, t: dict[str, Any]) -> str:
    """Why a comparison is provisional: the P1 starts its runs continued."""
    starts = ", ".join(f"{m} {_cell(t['starts'].get(m))}" for m in COMPARED[name])
    return f" (provisional: different P1 starts: {starts})"


def _cell(v: Any, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _doc(data: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## At base size: all-mpnet-base-v2 (MPNet, 109.5M parameters)",
        "",
        "Written by `python benchmarks/base_size.py --report-only` from `benchmarks/results/base_size.json`. "
        "Commands (resumable; run them again to continue):",
        "",
        "```bash",
        *data["commands"],
        "```",
        "",
        f"{data['model']}; seed {SEED}; lr 2e-5, batch 32, max 128 tokens; SST-2 on 5,000 training rows "
        "(the fixed seed-0 subset), MRPC on all. P2's budget: 3 dense + 3 masked epochs = 6 in all; "
        "`dense_long`: 3 + 3 dense epochs = 6; the training-free prunes add none to the 3 of P1 dense. "
        "Dev metric in points (SST-2 accuracy, MRPC F1); % of `dense_long` in brackets; MiniLM's seed-1 "
        "value of the same run beside it.",
        "",
    ]
    tasks = data["tasks"]
    head = ["method"] + [f"{t} (MPNet)" for t in tasks] + [f"{t} (MiniLM)" for t in tasks]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for m in METHODS:
        cells = [LABELS[m]]
        for t in tasks.values():
            v, p = t["values"][m], t["pct_of_dense_long"][m]
            cells.append("-" if v is None else f"{v:.2f} ({p:.1f}%)" if p is not None else f"{v:.2f}")
        cells += [_cell(t["minilm_seed1"][m]) for t in tasks.values()]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Where each P2 run started (the dev value of the P1 dense weights it continued) and every "
              "retraining of P1 dense (a rerun on the same code and data; PyTorch's thread count changes "
              "the order of its sums):", ""]  # fmt: skip
    for name, t in tasks.items():
        starts = ", ".join(f"{m} {_cell(v)}" for m, v in t["starts"].items())
        reruns = "; ".join(
            f"{r['value']:.2f} on {r['date'][:10]} ({_threads(name, r)})" for r in t["dense_reruns"]
        )
        lines.append(f"- {name}: starts: {starts or '-'}; P1 dense {_cell(t['values']['dense'])}, "
                     f"retrained: {reruns or 'never'}")  # fmt: skip
    lines += ["", "Targets (written in `benchmarks/base_size_report.py` on 2026-12-06, before the runs):", ""]
    for name, tg in data["targets"].items():
        state = {True: "met", False: "**missed**", None: "not yet measured"}[tg["met"]]
        per = ", ".join(
            f"{k}: {({True: 'met', False: 'missed', None: '-'})[v]}"
            + (_provisional(name, data["tasks"][k]) if k in tg.get("different_start", ()) else "")
            for k, v in tg["per_task"].items()
        )
        lines.append(f"- `{name}` at least {tg['at_least']:g} {tg['unit']} ({tg['where']}): {state} ({per})")
    lines += [
        "",
        "INT8 (2:4 static Q/DQ against fp32 dense, ONNX Runtime, one thread; `benchmarks/int8.py` on the "
        "base-size runs) and memory:",
        "",
    ]
    for name, t in tasks.items():
        i8 = t["int8"]
        if i8:
            sp = ", ".join(f"{k} {v:.2f}x" for k, v in i8["speedup_vs_fp32_dense"].items())
            lines.append(
                f"- {name}: speed-up {sp}; dev {100 * i8['dev']:.2f} against its own fp32 "
                f"{100 * i8['own_fp32_dev']:.2f} ({i8['vs_own_fp32_points']:+.2f} points)"
            )
            if i8["minilm_speedup_vs_fp32_dense"]:
                small = ", ".join(f"{k} {v:.2f}x" for k, v in i8["minilm_speedup_vs_fp32_dense"].items())
                verdict = {True: "yes", False: "no", None: "-"}[i8["bigger_favours_int8"]]
                lines.append(
                    f"- {name}: MiniLM's 2:4 static INT8 on SST-2 (`benchmarks/results/int8.json`): {small}. "
                    f"Do the bigger matrices favour INT8? {verdict}"
                )
        pred = t["predictor"]
        if pred:
            lines.append(
                f"- {name}: `Predictor` over all {pred['rows']} dev rows on the chosen fp32 export: "
                f"{100 * pred['main']:.2f} in {pred['wall_s']:.0f} s (one thread)"
            )
        mem = t["peak_memory_mib"]
        train = [v for v in mem["train"].values() if v]
        export = mem["export"] or {}
        fp32 = [export[k] for k in ("export_dense_mib", "export_sparse_mib") if export.get(k)]
        lines.append(
            f"- {name} peak resident memory: training {_cell(max(train) if train else None, '{:.0f}')} MiB; "
            f"fp32 export {_cell(max(fp32) if fp32 else None, '{:.0f}')} MiB; "
            f"INT8 exports and bench (one process) {_cell(export.get('int8_and_bench_mib'), '{:.0f}')} MiB"
        )
    for name, t in tasks.items():
        i8 = t["int8"]
        if not i8:
            continue
        shapes = list(i8["speedup_vs_fp32_dense"])
        caption = (
            f"Every export of the {name} chain (dev metric in points, the share of dev rows given the "
            "same class as fp32 dense, and the speed-up over fp32 dense at each shape; one thread):"
        )
        lines += ["", caption, ""]
        lines += ["| export | dev | same class as fp32 dense | " + " | ".join(shapes) + " |",
                  "|---|---:|---:|" + "---:|" * len(shapes)]  # fmt: skip
        for ename, e in i8["exports"].items():
            cells = [ename, f"{100 * e['dev']:.2f}", f"{100 * e['agreement_with_fp32_dense']:.2f}%"]
            cells += [f"{e['speedup_vs_fp32_dense'].get(k, 0):.2f}x" for k in shapes]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def report() -> dict[str, Any]:
    from glue_study_setup import chosen_of

    chosen = chosen_of("P2") or "default"
    tasks = {t: task_report(t, chosen) for t in TASKS}
    data = {
        "model": MODEL_NAME,
        "seed": SEED,
        "chosen": chosen,
        "commands": [
            f"python scripts/fetch_base_model.py --out {MODEL_DIR}",
            f"OMP_NUM_THREADS=1 python benchmarks/base_size.py --model {MODEL_DIR} --tasks SST-2 &",
            f"OMP_NUM_THREADS=1 python benchmarks/base_size.py --model {MODEL_DIR} --tasks MRPC",
            "python benchmarks/base_size.py --report-only",
        ],
        "tasks": tasks,
        "targets": targets(tasks),
    }
    from common.report import write_section
    from common.runs import save

    save(JSON_OUT, data)

    write_section(DOC, _doc(data), BEGIN, END)
    return data


def chain_path(task: str) -> Path:
    """Where base_size.py keeps one task's chain figures (check, exports, INT8, Predictor)."""
    return CHAIN / f"chain-{task}.json"
