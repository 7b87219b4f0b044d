"""The GLUE study, third edition (issues 18, 39): 2:4 on every encoder linear of MiniLM, five tasks,
from the pretrained weights (P1) and from the fine-tuned dense run (P2), and a layer choice; and the
same harness at base size (``--profile base``, issue 40).

    # resumable pieces, two lanes side by side (one thread each on 2 cores), P1 dense before P2 of the
    # same (task, seed) (P2 retrains it when it is gone); each piece stops starting runs after --max-hours
    OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks RTE --seeds 1 --max-hours 2 &
    OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks MRPC --seeds 1 --max-hours 2
    OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P2 --tasks RTE --seeds 4,5 --max-hours 2
    OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols layers --tasks MRPC --seeds 2
    python benchmarks/glue_study.py --report-only               # rebuild the JSON and docs/RESULTS.md
    python benchmarks/glue_study.py --profile base --model DIR --protocols P1,P2 --tasks SST-2 --seeds 1
    python benchmarks/glue_study.py --smoke --protocols P1,P2 --methods dense,dense_long,asp,free_admm
        # plumbing only: RTE, 64 train / 32 dev rows, 0.2 epochs; everything under
        # benchmarks/work/glue_study-smoke/ (results, JSON, RESULTS.md, plots), never benchmarks/results;
        # sparsegpt.py scores whole dev sets, so under the smoke's dev cap it refuses (one line)

Data: CoLA, SST-2, MRPC, STS-B and RTE from ``--data-dir`` (default ``$GLUE_DIR``), the training
subsets of the first study (SST-2 5000 and CoLA 6000 rows, fixed seed-0 subsets; the others whole),
dev sets whole, lr 1e-4, batch 32, 128 tokens.

Protocols (every method is an exact list of ``nxm-deploy train`` options, glue_study_setup.py):

* ``P1``: 3 epochs in all from the pretrained weights, seeds 1-3: ``dense``, ``oneshot``, ``asp``,
  ``admm`` (the penalty decoupled from Adam, rho 100 growing x1.3 every 32 steps up to 1e4), ``srste``
  and ``default`` (the recipe that ``benchmarks/admm_tuning.py`` chose for the pretrained start).
* ``P2``: every method starts from the P1 ``dense`` run of the same task and seed (``--init-from``,
  ``--epochs 6``: 3 dense + 3 more = 6 in all): ``dense_long`` (3 + 3 dense epochs = 6: the dense
  reference at the same budget), ``asp`` (prune + 3 masked), ``asp_admm_prune``, ``admm``, ``srste``,
  ``default`` (admm_tuning's fine-tuned winner), ``sparsegpt_ft`` and ``wanda_ft`` (the solver's prune,
  then asp's masked epochs), the training-free prunes ``free_magnitude``, ``free_admm``,
  ``free_sparsegpt`` and ``free_wanda`` (``--epochs 3``: nothing more to train), and ``modelopt_mask``
  (ModelOpt's SparseGPT mask without its weight update, through ``benchmarks/sparsegpt.py`` in the
  interpreter ``--modelopt-python``; skipped with one line when it is missing). The contenders
  (``glue_study_setup.FIVE_SEEDS`` and the chosen recipe) run seeds 1-5, the others 1-3.
* ``layers``: P2, seeds 1-3, ``default`` and ``asp``: 2:4 on the FFN linears only, on the layers that
  ``nxm-deploy sensitivity`` keeps for a 1-point budget on the P1 dense run, and a random-layer control
  of each at the same FLOP share (glue_study_layers.py).

No distillation. "chosen" is the default recipe (admm_tuning.py's rule on held-out training rows);
when it is not decided yet, ``default`` is skipped with one line and the rest runs. When the default's
options equal another method's, that method is named as chosen and is not run twice. The targets are
``glue_study_setup.TARGETS``, written before the third edition's runs.

Resumable: one small JSON per (protocol, task, method, seed) under
``benchmarks/results/glue_study/<P>/<TASK>/`` and its dev predictions under
``benchmarks/results/glue_study/predictions/`` (committed; never weights), skipped when its settings
match and its predictions are there; a result without them is predicted from its run directory where
that is kept, else trained again (its earlier value kept as ``earlier``). Run directories live under
``benchmarks/work/glue_study/`` (not committed); P1 dense runs are kept (P2 starts from them) and
retrained when gone, recording whether the retrained run reproduces the recorded value. Every P2
result records the P1 dense run it continued (``start_value``, ``start_created``); one whose start is
not the P1 run on disk (neither its ``created`` time nor its dev value: a P1 run retrained on another
thread count gives other weights) is trained again from it, its old value kept as ``earlier``, so
that all P2 methods of a (task, seed) continue the same weights. A P1 run retrained on the way is
only compared with the items that follow it in that invocation: run the command again to check all.
When the run directories are gone (a new checkout) and the kept P2 results of a (task, seed) record
more than one start, the P1 run is trained again first, so that the rule above can tell which to keep.

This script runs the loop; the setup (profiles, protocols, methods as train options, targets, where
results go) is glue_study_setup.py, the runs glue_study_runs.py, the statistics glue_study_stats.py
and glue_study_examples.py, and the report (JSON, doc section, plots) glue_study_report.py.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from common import runs
from common.runs import METRIC, load_result, save  # noqa: F401  (the study's names, for its tests)
from glue_study_layers import VARIANTS
from glue_study_report import report
from glue_study_runs import (
    _dense_matches,
    ensure_dense,
    keep_predictions,
    mixed_starts,
    other_start,
    record,
    run_sparsegpt,
    say,
    train,
)
from glue_study_setup import (
    LAYER_METHODS,
    P1_METHODS,
    P2_METHODS,
    PROFILES,
    PROTOCOLS,
    START,
    Layout,
    Profile,
    alias_of_default,
    canonical,
    config,
    current,
    default_recipe,
    method_args,
    methods_of,
    predictions_path,
    result_path,
    run_dir,
    superseded,
)

__all__ = ["Layout", "Profile", "_dense_matches", "canonical", "ensure_dense", "main", "method_args",
           "record", "report"]  # fmt: skip


# ---------------------------------------------------------------- the study loop


def plan(
    profile: Profile, protocols: list[str], tasks: list[str], seeds: list[int], methods: list[str] | None
) -> list[tuple[str, str, str, int]]:
    """(protocol, task, method, seed) in the order they run: P1, then P2, then the layer choice; each
    method at the given seeds that are its own (Profile.seeds_of)."""
    out = []
    for protocol in protocols:
        if protocol == "layers":
            out += [("layers", t, f"{v}:{m}", s) for s in seeds if s in profile.seeds for v in VARIANTS
                    for t in tasks for m in LAYER_METHODS if methods is None or m in methods]  # fmt: skip
            continue
        names = [m for m in methods_of(protocol, profile) if methods is None or m in methods]
        out += [(protocol, t, m, s) for s in seeds for t in tasks for m in names
                if s in profile.seeds_of(protocol, m)]  # fmt: skip
    return out


def _skip_default(protocol: str, method: str, refused: set[str]) -> bool:
    """``default`` when admm_tuning has no winner yet (said once), or when a listed method has its options."""
    if method.split(":")[-1] != "default":
        return False
    if default_recipe(protocol)[1] is None:
        if protocol not in refused:
            say(f"{protocol}: default skipped: admm_tuning.json has no winner for the "
                f"{START['P2' if protocol == 'layers' else protocol]} start yet")  # fmt: skip
            refused.add(protocol)
        return True
    alias = alias_of_default(protocol)
    return bool(alias) and (protocol != "layers" or alias in LAYER_METHODS)


def _complete(profile: Profile, lay: Layout, glue: str, protocol: str, task: str, method: str,
              seed: int) -> tuple[bool, dict | None]:  # fmt: skip
    """Whether (protocol, task, method, seed) is done (its result and predictions); else its earlier
    value when one was recorded. A result without predictions gets them from its run directory."""
    cfg = config(profile, protocol, task, method, seed)
    path = result_path(lay, protocol, task, method, seed)
    r = current(path, cfg)
    if r is None:
        return False, superseded(path, cfg)
    if protocol != "P1" and (starts := mixed_starts(profile, lay, task, seed)):
        values = " and ".join(f"{v:.2f}" for v in starts)
        say(f"  the kept P2 results of {task} seed {seed} continued P1 dense weights of dev {values}, "
            "and no P1 run is on disk to tell which: training it again first")  # fmt: skip
        ensure_dense(profile, lay, glue, task, seed)
    if protocol != "P1" and (why := other_start(profile, lay, task, seed, r)):
        say(f"  {protocol} {task} {method} seed {seed} {why}: trained again")
        return False, {"value": r["value"], "date": r.get("date"), "start_value": r["start_value"],
                       "same_config": False, "note": why}  # fmt: skip
    if method == "modelopt_mask" or predictions_path(lay, protocol, task, method, seed).is_file():
        return True, None
    run = run_dir(lay, protocol, task, method, seed)
    if (run / "nxm.json").is_file():
        r["predictions"] = str(keep_predictions(lay, glue, protocol, task, method, seed, run))
        save(result_path(lay, protocol, task, method, seed), r)
        return True, None
    return False, {"value": r["value"], "date": r.get("date"), "note": "made before runs kept predictions"}


def study(profile: Profile, lay: Layout, glue: str, protocols: list[str], tasks: list[str], seeds: list[int],
          methods: list[str] | None, max_hours: float | None, python: str) -> None:  # fmt: skip
    t0 = time.time()
    todo = plan(profile, protocols, tasks, seeds, methods)
    refused: set[str] = set()
    for i, (protocol, task, method, seed) in enumerate(todo, 1):
        if _skip_default(protocol, method, refused):
            continue
        done, earlier = _complete(profile, lay, glue, protocol, task, method, seed)
        if done:
            continue
        if max_hours is not None and time.time() - t0 > max_hours * 3600:
            say(f"--max-hours {max_hours} reached; run the same command again to continue")
            break
        say(f"[{i}/{len(todo)}] {protocol} {task} {method} seed {seed}")
        t = time.time()
        if method == "modelopt_mask":
            result = run_sparsegpt(profile, lay, glue, task, seed, python)
            if result is None:
                continue
        else:
            trained = train(profile, lay, glue, protocol, task, method, seed)
            result = record(profile, lay, glue, protocol, task, method, seed, trained, earlier)
            if not profile.keeps(protocol, method):  # P1 dense stays: P2 starts from it
                shutil.rmtree(trained.out, ignore_errors=True)
        say(f"  {result['metric']} {result['value']:.2f} in {time.time() - t:.0f} s")
        report(profile, lay)


def _profile(args: argparse.Namespace) -> Profile:
    """The profile named, with ``--model`` (which the base profile needs to train; one line if not)."""
    from dataclasses import replace

    profile = PROFILES["smoke" if args.smoke else args.profile]
    if profile.name == "base" and not args.report_only:
        if not args.model or not Path(args.model).is_dir():
            what = "needs --model DIR" if not args.model else f"--model {args.model} is not a directory"
            sys.exit(f"--profile base {what}: all-mpnet-base-v2 in a local directory "
                     "(python scripts/fetch_base_model.py --out DIR)")  # fmt: skip
    if args.model:
        profile = replace(profile, model=str(Path(args.model).resolve()))
    return profile


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=sorted(set(PROFILES) - {"smoke"}), default="full",
                    help="full (MiniLM, five tasks) or base (all-mpnet-base-v2, --model)")  # fmt: skip
    ap.add_argument("--model", default=None, help="the model directory (--profile base)")
    ap.add_argument("--protocols", default="P1,P2,layers", help="comma-separated: P1, P2, layers")
    ap.add_argument("--tasks", default=None, help="comma-separated tasks [the profile's]")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds [each method's]")
    ap.add_argument("--methods", default=None, help="comma-separated methods [each protocol's]")
    ap.add_argument("--max-hours", type=float, default=None, help="start no run after this many hours")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the JSON, the doc and the plots")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--modelopt-python", default="/work/venv-modelopt/bin/python",
                    help="the interpreter that has ModelOpt, for modelopt_mask")  # fmt: skip
    # plumbing only: RTE, 64 rows, 0.2 epochs, into benchmarks/work/glue_study-smoke/
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    profile = _profile(args)
    lay = Layout.of(profile)
    protocols = [p for p in args.protocols.split(",") if p]
    tasks = args.tasks.split(",") if args.tasks else list(profile.tasks)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(profile.all_seeds())
    methods = args.methods.split(",") if args.methods else None
    known = set(P1_METHODS) | set(P2_METHODS)
    checks = (("protocols", protocols, PROTOCOLS), ("tasks", tasks, profile.tasks),
              ("seeds", seeds, profile.all_seeds()), ("methods", methods or [], known))  # fmt: skip
    for what, given, allowed in checks:
        if set(given) - set(allowed):
            sys.exit(f"unknown {what} {sorted(set(given) - set(allowed))}; choose from {list(allowed)}")
    if not args.report_only:
        study(profile, lay, runs.data_dir(args.data_dir), protocols, tasks, seeds, methods, args.max_hours,
              args.modelopt_python)  # fmt: skip
    data = report(profile, lay)
    for p, v in data["protocols"].items():
        say(f"{p}: averages {v['average']}; chosen {v['chosen']}")
    for k, t in data["targets"].items():
        if k != "date":
            say(f"target {k}: met {t['met']}")


if __name__ == "__main__":
    main()
