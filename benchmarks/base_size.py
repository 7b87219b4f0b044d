"""At base size: the 2:4 recipe, the training-free prunes and INT8 on all-mpnet-base-v2 (MPNet, 12
layers, hidden 768, 109.5M parameters), SST-2 (5,000 training rows) and MRPC, seed 1.

    python scripts/fetch_base_model.py --out ~/models/all-mpnet-base-v2
    OMP_NUM_THREADS=1 python benchmarks/base_size.py --model ~/models/all-mpnet-base-v2 --tasks SST-2
    python benchmarks/base_size.py --report-only   # benchmarks/results/base_size.json and docs/RESULTS.md

Every step is resumable: run the same command again and it continues where it stopped (a training
run from its newest checkpoint; the chain from the step it stopped in, with the peak memory each
finished step measured, kept for the same two runs in
``benchmarks/work/base_size/<task>/chain/progress.json``). Per task:

The P1 dense run and the chosen recipe come first, then the training-free prunes (minutes each),
then the chain, then the other accuracy runs.

1. **Accuracy** (``glue_study.py --profile base``, the third edition's P2 definitions): P1 ``dense``
   (3 epochs from the pretrained weights), then from it ``dense_long`` (3 more dense epochs, the
   dense model at P2's budget), ``asp``, the chosen recipe, and the training-free prunes
   ``free_magnitude``, ``free_wanda``, ``free_sparsegpt`` (with its weight update) and ``free_admm``.
2. **The chain**: ``nxm-deploy check`` of the chosen run; ``export`` of the dense and the chosen run
   (ONNX parity, the N:M check on the graph), each in its own process so its peak memory is its own;
   ``benchmarks/int8.py`` on the two runs (int8-dynamic and static INT8 of both, one ``bench`` with
   ``--also`` at 1x128 and 8x128 on one thread); and ``Predictor`` over the full dev set on the
   chosen fp32 export.
3. **Report**: ``benchmarks/results/base_size.json`` (with every run's provenance and peak memory)
   and the "At base size" section of docs/RESULTS.md.

lr 2e-5: BERT-base's standard fine-tuning rate (Devlin et al. 2019 searched {5, 3, 2}e-5), fixed
before any run; MiniLM's 1e-4 is for a model a quarter of this width. Nothing here reads a dev set to
choose anything: the chosen recipe is MiniLM's (``benchmarks/admm_tuning.py``, training rows only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from base_size_report import BASE, JSON_OUT, SEED, TASKS, _load, chain_path, report
from common import runs
from glue_study_setup import Layout, run_dir

from nxm_deploy.manifest import ExportManifest

REPO = Path(__file__).resolve().parents[1]
WORK_LAYOUT = Layout.of(BASE)
WORK = WORK_LAYOUT.work


def say(msg: str) -> None:
    runs.say("base_size", msg)


def _must(cmd: list[str], log: Path, what: str) -> float:
    """Run ``cmd`` (exit with the log's tail when it fails); its peak resident memory in MiB."""
    return runs.run_or_exit(cmd, log, what).peak_rss_mib


def accuracy_runs(
    model: str, task: str, glue: str, max_hours: float | None, methods: list[str] | None
) -> None:
    """The study's P1 and P2 runs of ``task`` at base size, or only ``methods`` of them (resumable;
    kept results are skipped)."""
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "glue_study.py"),
        "--profile",
        "base",
        "--model",
        model,
        "--protocols",
        "P1,P2",
        "--tasks",
        task,
        "--seeds",
        str(SEED),
        "--data-dir",
        glue,
    ]
    if max_hours is not None:
        cmd += ["--max-hours", str(max_hours)]
    if methods:
        cmd += ["--methods", ",".join(methods)]
    say(f"{task}: accuracy runs ({' '.join(cmd[1:])})")
    rc = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode
    if rc != 0:
        sys.exit(
            f"{task}: the accuracy runs stopped (exit {rc}); see the lines above, then run the same command"
        )


def chain_runs(model: str, task: str, chosen: str, glue: str) -> tuple[Path, Path]:
    """The P1 dense run and the chosen run the chain exports: kept by the study (its base profile
    keeps them), or trained again, resumably, where an earlier study removed the chosen one."""
    from dataclasses import replace

    from glue_study_runs import train

    profile = replace(BASE, model=str(Path(model).resolve()))
    lay = Layout.of(profile)
    dense = train(profile, lay, glue, "P1", task, "dense", SEED).out
    sparse = run_dir(lay, "P2", task, chosen, SEED)
    if not (sparse / "nxm.json").is_file():
        say(f"{task}: training {chosen} again for the chain (its run directory was not kept)")
    return dense, train(profile, lay, glue, "P2", task, chosen, SEED).out


def _identity(dense_run: Path, chosen_run: Path) -> dict[str, Any]:
    """The two runs a chain exports: their paths and their ``nxm.json``'s sha256 (a run trained again
    at the same path is another run, and nothing exported from the old one is kept for it)."""

    def sha(run: Path) -> str:
        return hashlib.sha256((run / "nxm.json").read_bytes()).hexdigest()

    return {
        "runs": {"dense": runs.repo_relative(dense_run), "chosen": runs.repo_relative(chosen_run)},
        "nxm_sha256": {"dense": sha(dense_run), "chosen": sha(chosen_run)},
    }


def chain(task: str, dense_run: Path, chosen_run: Path, glue: str) -> dict[str, Any]:
    """check, exports (with their peak memory), int8.py and Predictor for one task; kept in
    ``CHAIN/<task>.json`` and reused when it exists for the same two runs.

    Each finished step and its peak memory go to ``WORK/<task>/chain/progress.json`` as it ends, so a
    chain stopped part way continues from the step it stopped in with every figure it had measured."""
    path = chain_path(task)
    ident = _identity(dense_run, chosen_run)
    kept = _load(path)
    if kept and all(kept.get(k) == v for k, v in ident.items()):
        return kept
    work = WORK / task / "chain"
    logs = work / "logs"
    progress_path = work / "progress.json"
    progress = _load(progress_path)
    if not progress or any(progress.get(k) != v for k, v in ident.items()):
        shutil.rmtree(work / "int8", ignore_errors=True)  # exports of other runs
        progress = {**ident, "peak_memory_mib": {}}
    memory: dict[str, float] = progress["peak_memory_mib"]

    def step(key: str, output: Path, msg: str, cmd: list[str], log: str, what: str) -> None:
        if key in memory and output.exists():
            return
        say(f"{task}: {msg}")
        memory[key] = _must(cmd, logs / log, what)
        runs.save(progress_path, progress)

    nxm = [sys.executable, "-m", "nxm_deploy"]
    step("check_mib", logs / "check.log", f"check {chosen_run.name}", [*nxm, "check", str(chosen_run)],
         "check.log", "check")  # fmt: skip
    exports = work / "int8" / "exports"
    for role, run in (("dense", dense_run), ("sparse", chosen_run)):
        out = exports / f"{role}-fp32"
        cmd = [*nxm, "export", str(run), "--out", str(out), "--data-dir", glue, "--overwrite"]
        step(f"export_{role}_mib", out / "export.json", f"export {role} (fp32 ONNX)", cmd,
             f"export-{role}.log", f"export {role}")  # fmt: skip
    int8_json = path.parent / f"int8-{task}.json"
    int8 = [sys.executable, str(REPO / "benchmarks" / "int8.py"), "--dense-run", str(dense_run),
            "--sparse-run", str(chosen_run), "--task", task, "--data-dir", glue, "--work", str(work / "int8"),
            "--json", str(int8_json)]  # fmt: skip
    step("int8_and_bench_mib", int8_json, "INT8 exports and bench (benchmarks/int8.py)", int8, "int8.log",
         "int8.py")  # fmt: skip
    say(f"{task}: Predictor over the dev set")
    result = {
        "task": task,
        **ident,
        "check": "ok",
        "exports": {k: ExportManifest.read(exports / f"{k}-fp32").parity for k in ("dense", "sparse")},
        "int8": json.loads(int8_json.read_text()),
        "predictor": predictor_pass(exports / "sparse-fp32", task, glue),
        "peak_memory_mib": {k: v for k, v in memory.items() if k != "check_mib"},
    }
    runs.save(path, result)
    return result


def predictor_pass(export_dir: Path, task: str, glue: str) -> dict[str, Any]:
    """``Predictor`` (the serving API) over every dev row of ``task`` on one thread: its metrics,
    which must be the export's own (the same ONNX file, the same tokenizer)."""
    import numpy as np

    from nxm_deploy.data import compute_metrics, get_task, load_split, main_metric_value
    from nxm_deploy.runtime import Predictor

    t = get_task(task)
    dev = load_split(t, t.dev_splits[0], glue)
    pairs = dev.texts_b is not None
    items = list(zip(dev.texts_a, dev.texts_b, strict=True)) if pairs else list(dev.texts_a)
    t0 = time.time()
    out = Predictor.from_export(str(export_dir), threads=1).predict(items)
    wall = time.time() - t0
    if t.is_regression:
        outputs = np.array([[p.value] for p in out])
    else:
        outputs = np.eye(t.num_labels)[[p.label_id for p in out]]
    metrics = compute_metrics(t, outputs, np.asarray(dev.labels))
    return {
        "rows": len(items),
        "metrics": metrics,
        "main": main_metric_value(t, metrics),
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", default=None, help="the all-mpnet-base-v2 folder (scripts/fetch_base_model.py)"
    )
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: SST-2, MRPC")
    ap.add_argument("--data-dir", default=None, help="GLUE root [$GLUE_DIR, else ../shared/data/glue]")
    ap.add_argument(
        "--max-hours", type=float, default=None, help="start no training run after this many hours"
    )
    ap.add_argument(
        "--report-only", action="store_true", help="only rebuild base_size.json and the doc section"
    )
    args = ap.parse_args(argv)
    if not args.report_only:
        from common.runs import data_dir

        if not args.model or not Path(args.model).is_dir():
            sys.exit(
                f"--model {args.model}: no such folder; get it with "
                "python scripts/fetch_base_model.py --out DIR and pass --model DIR"
            )
        glue = data_dir(args.data_dir)
        from glue_study_setup import TRAINING_FREE, chosen_of

        chosen = chosen_of("P2") or "default"
        for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            if task not in TASKS:
                sys.exit(f"--tasks: {task} is not one of {', '.join(TASKS)}")
            # the two runs the chain needs first, so its figures (INT8, memory) come early; then the
            # training-free prunes (minutes each), the chain, and the long runs
            accuracy_runs(args.model, task, glue, args.max_hours, ["dense", chosen])
            accuracy_runs(args.model, task, glue, args.max_hours, list(TRAINING_FREE))
            if not chain_path(task).is_file():
                chain(task, *chain_runs(args.model, task, chosen, glue), glue)
            else:
                runs_now = (run_dir(WORK_LAYOUT, "P1", task, "dense", SEED),
                            run_dir(WORK_LAYOUT, "P2", task, chosen, SEED))  # fmt: skip
                if all((r / "nxm.json").is_file() for r in runs_now):
                    chain(task, *runs_now, glue)  # kept for the same two runs, else done again
            accuracy_runs(args.model, task, glue, args.max_hours, None)
    data = report()
    say(f"wrote {JSON_OUT.relative_to(REPO)} and docs/RESULTS.md (At base size)")
    for name, tg in data["targets"].items():
        say(f"  target {name}: {tg['met']}")


if __name__ == "__main__":
    main()
