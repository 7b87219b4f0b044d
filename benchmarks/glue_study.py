"""The second GLUE study (issue 18): 2:4 on every encoder linear of MiniLM, five tasks, seeds 1-3,
from the pretrained weights (P1) and from the fine-tuned dense run (P2), and a layer choice.

    OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks RTE --seeds 1 --max-hours 2
    OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P2 --tasks MRPC --max-hours 2
    python benchmarks/glue_study.py --protocols layers          # P2, seed 1: FFN only, sensitivity
    python benchmarks/glue_study.py --report-only               # rebuild the JSON and docs/RESULTS.md
    python benchmarks/glue_study.py --smoke --protocols P1,P2 --methods dense,asp,free_admm
        # plumbing only: RTE, 64 train / 32 dev rows, 0.2 epochs; everything under
        # benchmarks/work/glue_study-smoke/ (results, JSON, RESULTS.md, plots), never benchmarks/results;
        # sparsegpt.py scores whole dev sets, so under the smoke's dev cap it refuses (one line)

Data: CoLA, SST-2, MRPC, STS-B and RTE from ``--data-dir`` (default ``$GLUE_DIR``), the training
subsets of the first study (``glue_methods.py``'s ``full`` profile: SST-2 5000 and CoLA 6000 rows,
fixed seed-0 subsets; the others whole), dev sets whole, lr 1e-4, batch 32, 128 tokens.

Protocols (every method is an exact list of ``nxm-deploy train`` options, :func:`method_args`):

* ``P1``: 3 epochs in all from the pretrained weights: ``dense``, ``oneshot``, ``asp``, ``admm`` (the
  new default: the penalty decoupled from Adam, rho 0.01/lr = 100 growing x1.3 every 32 steps up
  to 1e4), ``srste`` and ``default`` (the recipe that ``benchmarks/admm_tuning.py`` chose for the
  pretrained start, without a dev set).
* ``P2``: every sparse method starts from the P1 ``dense`` run of the same task and seed
  (``--init-from``, ``--epochs 6``: 3 more epochs): ``asp`` (prune + 3 masked: NVIDIA's recipe),
  ``asp_admm_prune``, ``admm``, ``srste``, ``default`` (admm_tuning's fine-tuned winner),
  ``free_admm`` (the training-free ADMM prune: ``--epochs 3``, nothing more to train) and
  ``sparsegpt`` (ModelOpt's SparseGPT on the same dense run, through ``benchmarks/sparsegpt.py`` in
  the separate interpreter ``--modelopt-python``; skipped with one line when it is missing).
* ``layers``: P2, seed 1, ``default`` and ``asp``: 2:4 on the FFN linears only, and on the layers
  that ``nxm-deploy sensitivity`` keeps for a 1-point budget on the P1 dense run.

No distillation, for every method: the first edition's held-out rows (admm_tuning.py, stage 2) showed
no gain from it. "chosen" is the default recipe (admm_tuning.py's rule, written before any dev number);
when it is not decided yet, ``default`` is skipped with one line and the rest runs. When the default's
options equal another method's, that method is named as chosen and is not run twice.

Resumable: one small JSON per (protocol, task, method, seed) under
``benchmarks/results/glue_study/<P>/<TASK>/`` (committed; never weights), skipped when its settings
match. P1 results of the first study (``benchmarks/results/glue_methods/full/``) are reused where their
training options are exactly those of P1 now (``reused_from``). Run directories live under
``benchmarks/work/glue_study/`` (not committed); P1 dense runs are kept (P2 starts from them) and
retrained when gone, recording whether the retrained run reproduces the recorded value.

This script trains and runs the loop; the setup (profiles, protocols, methods as train options,
where results go) is glue_study_setup.py, the statistics glue_study_stats.py, and the report (JSON,
doc section, plots) glue_study_report.py, on benchmarks/common.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import runs
from common.runs import METRIC, REPO, load_result, save
from glue_study_report import report
from glue_study_setup import (
    LAYER_METHODS,
    P1_METHODS,
    P2_METHODS,
    PROFILES,
    PROTOCOLS,
    SENSITIVITY_BUDGET,
    START,
    Layout,
    Profile,
    _stem,
    alias_of_default,
    canonical,
    config,
    default_recipe,
    method_args,
    methods_of,
    result_path,
    reuse_first_study,
    run_dir,
)

say = functools.partial(runs.say, "glue_study")


# ---------------------------------------------------------------- training


def train(profile: Profile, lay: Layout, glue: str, protocol: str, task: str, method: str, seed: int) -> Path:
    """Run (or resume) one training run as a subprocess; returns its run directory."""
    out = run_dir(lay, protocol, task, method, seed)
    if (out / "nxm.json").is_file():
        return out
    args = method_args(profile, protocol, task, method, seed)
    assert args is not None
    start = ["--model", runs.model_path()]
    if protocol != "P1":
        start = ["--init-from", str(ensure_dense(profile, lay, glue, task, seed))]
    if protocol == "layers" and method.startswith("sensitivity:"):
        args = [*args, *sensitivity_exclude(profile, lay, glue, task, seed)["args"]]
    log = lay.work / "logs" / f"{protocol}-{task}-{_stem(method, seed)}.log"
    return runs.train(out, [*start, "--task", task, "--data-dir", glue, *args], log,
                      f"{protocol} {task} {method} {seed}")  # fmt: skip


def _dense_matches(run: Path, cfg: dict[str, Any]) -> bool:
    if not (run / "nxm.json").is_file():
        return False
    hp = runs.manifest(run)["hyperparameters"]
    want = canonical(cfg["train_args"])
    have = {"--seed": hp["seed"], "--epochs": hp["epochs"], "--lr": hp["lr"],
            "--batch-size": hp["batch_size"], "--max-seq-len": hp["max_seq_len"],
            "--method": hp["method"]}  # fmt: skip
    for flag, key in (
        ("--max-train-samples", "max_train_samples"),
        ("--max-eval-samples", "max_eval_samples"),
    ):
        if hp.get(key) is not None:
            have[flag] = hp[key]
    return canonical([str(x) for kv in have.items() for x in kv]) == want and hp.get("teacher") is None


def ensure_dense(profile: Profile, lay: Layout, glue: str, task: str, seed: int) -> Path:
    """The P1 dense run of (task, seed): ours, or the first study's when it was reused; retrained
    when gone, with the rerun's value recorded beside the first one (reproduces or not)."""
    cfg = config(profile, "P1", task, "dense", seed)
    assert cfg is not None
    ours = run_dir(lay, "P1", task, "dense", seed)
    first = runs.WORK / "full" / task / f"dense-seed{seed}"
    for cand in (ours, first):
        if _dense_matches(cand, cfg):
            return cand
    path = result_path(lay, "P1", task, "dense", seed)
    recorded = load_result(path, cfg) or reuse_first_study(profile, lay, task, "dense", seed)
    say(f"  (re)training P1 {task} dense seed {seed}: P2 starts from its weights")
    run = train(profile, lay, glue, "P1", task, "dense", seed)
    if recorded is None:
        record(profile, lay, "P1", task, "dense", seed, run)
    else:
        value = _value(task, run)
        recorded.setdefault("reruns", []).append({"value": value, "date": runs.manifest(run)["created"]})
        recorded["reproduces"] = all(abs(r["value"] - recorded["value"]) <= 0.01 for r in recorded["reruns"])
        save(path, recorded)
        say(f"  rerun {value:.2f} against the recorded {recorded['value']:.2f}")
    return run


def _value(task: str, run: Path) -> float:
    return round(100 * runs.manifest(run)["metrics"][METRIC[task]], 2)


def record(
    profile: Profile, lay: Layout, protocol: str, task: str, method: str, seed: int, run: Path
) -> dict:
    man = runs.manifest(run)
    metric = METRIC[task]
    result: dict[str, Any] = {
        "protocol": protocol,
        "task": task,
        "method": method,
        "seed": seed,
        "metric": metric,
        "value": round(100 * man["metrics"][metric], 2),
        "metrics": man["metrics"],
        "phases": [
            {k: p.get(k) for k in ("kind", "epochs", "metrics", "primal_residual")} for p in man["phases"]
        ],
        "config": config(profile, protocol, task, method, seed),
        "layers": len(man.get("layers") or []),
        "prune": {k: (man.get("prune") or {}).get(k) for k in ("solver", "wall_time_s")}
        if man.get("prune")
        else None,
        "init_from": man.get("init_from"),
        "train_rows": man["data"]["train_rows"],
        "train_sha256": man["data"]["train_sha256"],
        "dev_rows": {k: v["rows"] for k, v in man["data"]["dev"].items()},
        "wall_time_s": man["wall_time_s"],
        "tool_version": man["tool_version"],
        "date": man["created"],
        "machine": runs.machine(),
    }
    if protocol != "P1":
        result["start_value"] = _value(task, Path(man["init_from"]["run"]))
    if method.startswith("sensitivity:"):
        result["exclude"] = [n for n in man["hyperparameters"]["exclude"]]
    save(result_path(lay, protocol, task, method, seed), result)
    return result


def sensitivity_exclude(profile: Profile, lay: Layout, glue: str, task: str, seed: int) -> dict[str, Any]:
    """``nxm-deploy sensitivity`` on the P1 dense run for a 1-point budget (its JSON copied under
    results/layers/<TASK>/): the exclude list, as train options, and the 2:4 share of FLOPs."""
    keep = lay.results / "layers" / task / f"sensitivity-seed{seed}.json"
    if not keep.is_file():
        dense = ensure_dense(profile, lay, glue, task, seed)
        out = lay.work / "layers" / task / f"sensitivity-seed{seed}.json"
        cmd = [sys.executable, "-m", "nxm_deploy", "sensitivity", str(dense), "--out", str(out), "--data-dir",
               glue, "--budget", str(SENSITIVITY_BUDGET), "--overwrite"]  # fmt: skip
        if profile.sensitivity_rows:
            cmd += ["--rows", str(profile.sensitivity_rows)]
        runs.run_or_exit(
            cmd, lay.work / "logs" / f"sensitivity-{task}-seed{seed}.log", f"sensitivity {task} seed {seed}"
        )
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, keep)
    rep = json.loads(keep.read_text())
    args = [x for name in rep["exclude"] for x in ("--exclude", name)]
    return {"exclude": rep["exclude"], "flops_share": rep["flops_share"], "args": args}


def run_sparsegpt(profile: Profile, lay: Layout, glue: str, task: str, seed: int, python: str) -> dict | None:
    """ModelOpt's SparseGPT on the P1 dense run through benchmarks/sparsegpt.py (its own venv)."""
    script = REPO / "benchmarks" / "sparsegpt.py"
    if not script.is_file():
        say(f"  sparsegpt skipped: {script.relative_to(REPO)} is not in this tree")
        return None
    if not Path(python).is_file():
        say(f"  sparsegpt skipped: no ModelOpt interpreter at {python} (pass --modelopt-python PATH)")
        return None
    dense = ensure_dense(profile, lay, glue, task, seed)
    out = runs.RESULTS / "sparsegpt.json" if profile.name == "full" else lay.results / "sparsegpt.json"
    cmd = [python, str(script), str(dense), "--data-dir", glue, "--out", str(out),
           "--work", str(lay.work / "P2" / task / "sparsegpt")]  # fmt: skip
    log = lay.work / "logs" / f"P2-{task}-sparsegpt-seed{seed}.log"
    if runs.call(cmd, log) != 0:  # the comparison, not the study: the other methods go on
        last = (log.read_text().splitlines() or [""])[-1]
        say(f"  sparsegpt failed on {task} seed {seed} (log {log}): {last}")
        return None
    name = f"{runs.manifest(dense)['task']}/{dense.name}"
    entry = json.loads(out.read_text())["runs"][name]
    result = {
        "protocol": "P2", "task": task, "method": "sparsegpt", "seed": seed, "metric": METRIC[task],
        "value": round(100 * entry["sparsegpt"]["dev"], 2), "phases": [],
        "config": config(profile, "P2", task, "sparsegpt", seed), "start_value": _value(task, dense),
        "source": f"{out.relative_to(REPO) if out.is_relative_to(REPO) else out} runs[{name!r}]",
        "wall_time_s": entry["sparsegpt"].get("wall_s", 0), "date": entry.get("date", ""),
        "machine": runs.machine(),
    }  # fmt: skip
    save(result_path(lay, "P2", task, "sparsegpt", seed), result)
    return result


# ---------------------------------------------------------------- the study loop


def plan(
    profile: Profile, protocols: list[str], tasks: list[str], seeds: list[int], methods: list[str] | None
) -> list[tuple[str, str, str, int]]:
    """(protocol, task, method, seed) in the order they run: P1, then P2, then the layer choice."""
    out = []
    for protocol in protocols:
        if protocol == "layers":
            if 1 in seeds:
                out += [("layers", t, f"{v}:{m}", 1) for v in ("ffn_only", "sensitivity") for t in tasks
                        for m in LAYER_METHODS if methods is None or m in methods]  # fmt: skip
            continue
        names = [m for m in methods_of(protocol) if methods is None or m in methods]
        out += [(protocol, t, m, s) for s in seeds for t in tasks for m in names]
    return out


def study(profile: Profile, lay: Layout, glue: str, protocols: list[str], tasks: list[str], seeds: list[int],
          methods: list[str] | None, max_hours: float | None, python: str) -> None:  # fmt: skip
    t0 = time.time()
    todo = plan(profile, protocols, tasks, seeds, methods)
    refused: set[str] = set()
    for i, (protocol, task, method, seed) in enumerate(todo, 1):
        base = method.split(":")[-1]
        if base == "default":
            if default_recipe(protocol)[1] is None:
                if protocol not in refused:
                    say(f"{protocol}: default skipped: admm_tuning.json has no winner for the "
                        f"{START['P2' if protocol == 'layers' else protocol]} start yet")  # fmt: skip
                    refused.add(protocol)
                continue
            alias = alias_of_default(protocol)
            if alias and (protocol != "layers" or alias in LAYER_METHODS):
                continue  # the same options as a listed method: reported under that name
        cfg = config(profile, protocol, task, method, seed)
        path = result_path(lay, protocol, task, method, seed)
        if load_result(path, cfg) or (
            protocol == "P1" and reuse_first_study(profile, lay, task, method, seed)
        ):
            continue
        if max_hours is not None and time.time() - t0 > max_hours * 3600:
            say(f"--max-hours {max_hours} reached; run the same command again to continue")
            break
        say(f"[{i}/{len(todo)}] {protocol} {task} {method} seed {seed}")
        t = time.time()
        if method == "sparsegpt":
            result = run_sparsegpt(profile, lay, glue, task, seed, python)
            if result is None:
                continue
        else:
            run = train(profile, lay, glue, protocol, task, method, seed)
            result = record(profile, lay, protocol, task, method, seed, run)
            if not (protocol == "P1" and method == "dense"):  # dense runs stay: P2 starts from them
                shutil.rmtree(run, ignore_errors=True)
        say(f"  {result['metric']} {result['value']:.2f} in {time.time() - t:.0f} s")
        report(profile, lay)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--protocols", default="P1,P2,layers", help="comma-separated: P1, P2, layers")
    ap.add_argument("--tasks", default=None, help="comma-separated tasks [all five]")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds [1,2,3]")
    ap.add_argument("--methods", default=None, help="comma-separated methods [each protocol's]")
    ap.add_argument("--max-hours", type=float, default=None, help="start no run after this many hours")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the JSON, the doc and the plots")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--modelopt-python", default="/work/venv-modelopt/bin/python",
                    help="the interpreter that has ModelOpt, for sparsegpt")  # fmt: skip
    # plumbing only: RTE, 64 rows, 0.2 epochs, into benchmarks/work/glue_study-smoke/
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "full"]
    lay = Layout.of(profile)
    protocols = [p for p in args.protocols.split(",") if p]
    tasks = args.tasks.split(",") if args.tasks else list(profile.tasks)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(profile.seeds)
    methods = args.methods.split(",") if args.methods else None
    known = set(P1_METHODS) | set(P2_METHODS)
    checks = (("protocols", protocols, PROTOCOLS), ("tasks", tasks, profile.tasks),
              ("seeds", seeds, profile.seeds), ("methods", methods or [], known))  # fmt: skip
    for what, given, allowed in checks:
        if set(given) - set(allowed):
            sys.exit(f"unknown {what} {sorted(set(given) - set(allowed))}; choose from {list(allowed)}")
    if not args.report_only:
        study(profile, lay, runs.data_dir(args.data_dir), protocols, tasks, seeds, methods, args.max_hours,
              args.modelopt_python)  # fmt: skip
    data = report(profile, lay)
    for p, v in data["protocols"].items():
        say(f"{p}: averages {v['average']}; chosen {v['chosen']}; targets {v['targets']}")


if __name__ == "__main__":
    main()
