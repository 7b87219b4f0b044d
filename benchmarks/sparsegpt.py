"""Training-free 2:4 from fine-tuned dense runs: magnitude, ``--prune-solver admm`` and NVIDIA ModelOpt's
SparseGPT (``modelopt.torch.sparsity``, mode ``sparsegpt``), each scored on the task's full dev set.

    OMP_NUM_THREADS=1 VENV/bin/python benchmarks/sparsegpt.py RUN [RUN ...] [--data-dir DIR] [--rows 512]

``RUN``: run directories of ``nxm-deploy train --method dense`` (task, data directory, seed, sequence
length and training subset come from each run's nxm.json; ``--data-dir`` overrides the directory).
Per run:

* magnitude and admm: ``nxm-deploy train --method oneshot --init-from RUN --epochs E --prune-solver
  {magnitude,admm}`` with E the run's own epochs (nothing left to train: prune, check, evaluate), as
  subprocesses; their run directories go to ``--work`` (default: beside RUN, ``RUN.training-free/``);
* sparsegpt: ModelOpt's search with its defaults (Hessian damping 0.1, column blocks of 128) on the
  layers the admm run sparsified (every encoder linear; pooler and classifier stay dense), calibrated
  on the very rows the admm run used (``calibration_batches`` of the same training rows and seed: 512
  rows, at most 128 tokens each, never dev rows), fed one row at a time so padding never enters a
  Hessian; then ``mts.export``, the N:M check of ``nxm_deploy.nm`` on every selected weight, and the
  task's metric on the full dev set with the project's ``compute_metrics``. The same evaluation loop
  rescores the dense run, which must reproduce the dense run's recorded metric.

Also per layer: the relative output error ``||X (W - W')^T||^2 / ||X W^T||^2`` of each method on the
dense model's inputs for the calibration rows (one Gram matrix per layer, the same for all three).
Note: ModelOpt 0.47's ``sparsegpt`` mode keeps SparseGPT's mask but not its weight update (the search
computes the update to choose the mask, then masks the original weights); the result records whether
any kept weight moved (``weights_updated``).

Results go to benchmarks/results/sparsegpt.json, written atomically after each run; a run already
there with the same settings is skipped. ModelOpt lives in its own virtual environment, never in the
tool's (benchmark-only extra ``sparsegpt`` in pyproject.toml). The commands that made the measured one
(the constraints file keeps the CPU torch that is already installed)::

    /work/main/.venv/bin/python -m venv /work/venv-modelopt
    echo torch==2.13.0 > /work/venv-modelopt/constraints.txt
    /work/venv-modelopt/bin/pip install torch==2.13.0
    /work/venv-modelopt/bin/pip install -c /work/venv-modelopt/constraints.txt -e '.[sparsegpt]'
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
EXTRA = (
    "the benchmark-only extra: pip install -c constraints.txt -e '.[sparsegpt]' (constraints: torch==2.13.0)"
)
SOLVERS = ("magnitude", "admm")


def _modelopt() -> tuple[str, Any]:
    try:
        import modelopt
        import modelopt.torch.sparsity as mts
    except ImportError as exc:
        sys.exit(f"sparsegpt.py: modelopt is not importable ({exc}); install {EXTRA}")
    return modelopt.__version__, mts


def _manifest(run: Path) -> dict[str, Any]:
    path = run / "nxm.json"
    if not path.is_file():
        sys.exit(f"sparsegpt.py: {run} is not a run directory (no nxm.json)")
    return json.loads(path.read_text())


def training_free(run: Path, dense: dict[str, Any], solver: str, out: Path, data_dir: str, rows: int) -> dict:
    """Run (or reuse) ``train --method oneshot --init-from RUN`` with ``solver``; its nxm.json."""
    hp = dense["hyperparameters"]
    if not (out / "nxm.json").is_file():
        cmd = [sys.executable, "-m", "nxm_deploy", "train", "--method", "oneshot", "--init-from", str(run),
               "--task", str(hp["task"]), "--data-dir", data_dir, "--epochs", str(dense["epochs_total"]),
               "--prune-solver", solver, "--max-seq-len", str(hp["max_seq_len"]), "--seed", str(hp["seed"]),
               "--out", str(out), "--overwrite", "--no-progress"]  # fmt: skip
        if hp.get("max_train_samples"):
            cmd += ["--max-train-samples", str(hp["max_train_samples"])]
        if solver == "admm":
            cmd += ["--calibration-rows", str(rows)]
        print("$", " ".join(cmd), flush=True)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        t0 = time.time()
        subprocess.run(cmd, check=True, env=env)
        out.with_name(f"{solver}.wall_s").write_text(f"{time.time() - t0:.1f}\n")
    return json.loads((out / "nxm.json").read_text())


def _config(manifest: dict[str, Any], data_dir: str) -> Any:
    """The TrainConfig a run was made with (its saved hyperparameters), for its rows and calibration."""
    from dataclasses import fields

    from nxm_deploy.admm.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    hp = {k: v for k, v in manifest["hyperparameters"].items() if k in names and k != "data"}
    hp.update(include=tuple(hp.get("include", ())), exclude=tuple(hp.get("exclude", ())), data_dir=data_dir)
    return TrainConfig(**hp)


@torch.no_grad()
def dev_metrics(model: nn.Module, tokenizer: Any, data: Any) -> dict[str, float]:
    """The task's metrics on every dev split (``compute_metrics``, as ``train`` reports them)."""
    from transformers import DataCollatorWithPadding

    from nxm_deploy.data import compute_metrics

    collate = DataCollatorWithPadding(tokenizer)
    model.eval()
    out: dict[str, float] = {}
    for split, ds in data.dev.items():
        logits = []
        for start in range(0, len(ds), 64):
            items = [
                {k: v for k, v in ds[i].items() if k != "labels"}
                for i in range(start, min(start + 64, len(ds)))
            ]
            logits.append(model(**collate(items)).logits.float())  # [b, labels]
        values = compute_metrics(data.task, torch.cat(logits).numpy(), ds.labels)
        prefix = "" if len(data.dev) == 1 else f"{split}/"
        out.update({f"{prefix}{k}": float(v) for k, v in values.items()})
    return out


def _feed_rows(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> None:
    """ModelOpt's forward loop: every calibration row alone, without its padding."""
    for batch in batches:
        for i in range(len(batch["input_ids"])):
            n = int(batch["attention_mask"][i].sum())
            model(**{k: v[i : i + 1, :n] for k, v in batch.items()})


def sparsegpt(run: Path, admm_dir: Path, admm_run: dict[str, Any], data_dir: str, mts: Any) -> dict[str, Any]:
    """ModelOpt SparseGPT 2:4 on the admm run's layers and calibration rows; the dev metrics, checks
    and per-layer errors of all three methods on the dense model's inputs."""
    from safetensors.torch import load_file

    from nxm_deploy import nm
    from nxm_deploy.admm.inputs import load_rows, load_task_data
    from nxm_deploy.admm.prune.calibrate import calibration_batches, grams
    from nxm_deploy.admm.prune.solvers import relative_error
    from nxm_deploy.models import load_model

    cfg = _config(admm_run, data_dir)
    pattern = nm.parse_pattern(admm_run["pattern"])
    model, tokenizer = load_model(run)
    data = load_task_data(cfg, tokenizer, load_rows(cfg))
    batches = calibration_batches(data.train, cfg.calibration_rows, cfg.seed)
    layers: list[str] = admm_run["layers"]
    mods = dict(model.named_modules())
    dense_w = {n: m.weight.detach().clone() for n, m in mods.items() if isinstance(m, nn.Linear)}
    t0 = time.time()
    dense_recheck = dev_metrics(model, tokenizer, data)
    eval_s = time.time() - t0
    feeds = [((), b, b["attention_mask"]) for b in batches]
    gram = dict(zip(layers, grams(model, feeds, [mods[n] for n in layers]), strict=True))  # dense inputs

    t0 = time.time()
    rules = {"nn.Linear": {"*": None, **{n: {} for n in layers}}}  # exactly our layers; the rest dense
    mts.sparsify(model, [("sparsegpt", rules)], config={"forward_loop": lambda m: _feed_rows(m, batches)})
    model = mts.export(model)
    wall = time.time() - t0
    mods = dict(model.named_modules())
    checks = {n: nm.check(mods[n].weight.detach(), pattern, axis=1) for n in layers}
    bad = [n for n, r in checks.items() if not r.ok]
    if bad:
        sys.exit(f"sparsegpt.py: ModelOpt's result breaks {pattern} in {len(bad)} layers, first {bad[0]}")
    others = [n for n in dense_w if n not in layers]
    unchanged = all(torch.equal(mods[n].weight, dense_w[n]) for n in others)
    kept = [mods[n].weight != 0 for n in layers]
    updated = any(
        not torch.equal(mods[n].weight[k], dense_w[n][k]) for n, k in zip(layers, kept, strict=True)
    )
    metrics = dev_metrics(model, tokenizer, data)

    admm_w = load_file(str(admm_dir / "model.safetensors"))
    errors = {}
    for n in layers:
        w, g = dense_w[n].float(), gram[n]
        errors[n] = {
            "magnitude": round(relative_error(w, nm.project(w, pattern, 1), g), 6),
            "admm": round(relative_error(w, admm_w[f"{n}.weight"].float(), g), 6),
            "sparsegpt": round(relative_error(w, mods[n].weight.detach().float(), g), 6),
        }
    return {
        "dense_recheck": dense_recheck,
        "dense_eval_s": round(eval_s, 1),
        "sparsegpt": {
            "metrics": metrics,
            "wall_s": round(wall, 1),  # Hessians (one forward pass per row), mask search, export
            "calibration_rows": sum(len(b["input_ids"]) for b in batches),
            "calibration_tokens": sum(int(b["attention_mask"].sum()) for b in batches),
            "layers": len(layers),
            "nm_check": f"{len(layers)} of {len(layers)} layers {pattern}",
            "other_linears_unchanged": unchanged,
            "weights_updated": updated,
            "settings": "ModelOpt defaults: hessian_damp 0.1, col_block_size 128, one dense forward pass",
        },
        "layer_errors": errors,
    }


def _points(value: float, dense: float) -> float:
    return round(100 * (value - dense), 2)


def measure(run: Path, dense: dict[str, Any], data_dir: str | None, work: Path, rows: int, mts: Any) -> dict:
    hp = dense["hyperparameters"]
    data_dir = data_dir or hp.get("data_dir") or os.environ.get("GLUE_DIR")
    if not data_dir:
        sys.exit(f"sparsegpt.py: {run} records no data directory; pass --data-dir")
    key = dense["main_metric"]
    entry: dict[str, Any] = {
        "run_dir": str(run), "task": dense["task"], "metric": key, "data_dir": data_dir,
        "epochs": dense["epochs_total"], "seed": hp["seed"], "max_seq_len": hp["max_seq_len"],
        "max_train_samples": hp.get("max_train_samples"), "rows_requested": rows,
        "load_average_before": os.getloadavg()[0], "dense": dense["metrics"][key],
    }  # fmt: skip
    made = {s: training_free(run, dense, s, work / s, data_dir, rows) for s in SOLVERS}
    sgpt = sparsegpt(run, work / "admm", made["admm"], data_dir, mts)
    recheck = sgpt["dense_recheck"][key]
    if abs(recheck - entry["dense"]) > 1e-6:
        sys.exit(f"sparsegpt.py: the dense run rescored {recheck}, its nxm.json says {entry['dense']}")
    entry["dense_recheck"] = recheck
    for s, m in made.items():
        # the CLI end to end: load, prune, check, evaluate, save
        wall_file = work / f"{s}.wall_s"
        entry[s] = {
            "dev": m["metrics"][key], "points": _points(m["metrics"][key], entry["dense"]),
            "wall_s": float(wall_file.read_text()) if wall_file.is_file() else None,
            "tool_wall_s": m["wall_time_s"], "run_dir": str(work / s),
        }  # fmt: skip
    prune = made["admm"].get("prune") or {}
    entry["admm"].update({k: prune.get(k) for k in ("wall_time_s", "calibration_rows", "calibration_tokens")})
    sg = sgpt["sparsegpt"]
    dev = sg["metrics"][key]
    entry["sparsegpt"] = {"dev": dev, "points": _points(dev, entry["dense"]), **sg}
    errs = sgpt["layer_errors"]
    entry["mean_relative_error"] = {m: round(statistics.fmean(e[m] for e in errs.values()), 4)
                                    for m in ("magnitude", "admm", "sparsegpt")}  # fmt: skip
    entry["layer_errors"] = errs
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", nargs="+", help="dense run directories (nxm-deploy train --method dense)")
    ap.add_argument("--data-dir", default=None, help="GLUE root (default: each run's own, else $GLUE_DIR)")
    ap.add_argument("--rows", type=int, default=512, help="calibration rows (training rows; default 512)")
    ap.add_argument("--work", default=None, help="where the oneshot runs go (default: RUN.training-free/)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sparsegpt.json"))
    args = ap.parse_args()
    version, mts = _modelopt()
    from nxm_deploy.io import write_json_atomic

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {"runs": {}}
    results.update({
        "versions": {"modelopt": version, "torch": torch.__version__, "python": platform.python_version()},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), {args.threads} torch thread(s)",
        "command": " ".join(["python", "benchmarks/sparsegpt.py", *sys.argv[1:]]),
    })  # fmt: skip
    for run in (Path(r).resolve() for r in args.runs):
        dense = _manifest(run)
        name = f"{dense['task']}/{run.name}"  # the study names its runs dense-seed1 under a task's folder
        old = results["runs"].get(name)
        if old and old.get("run_dir") == str(run) and old.get("rows_requested") == args.rows:
            print(f"{name}: already measured; skipped")
            continue
        work = Path(args.work) / run.name if args.work else run.with_name(f"{run.name}.training-free")
        entry = measure(run, dense, args.data_dir, work, args.rows, mts)
        entry["date"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        entry["command"] = results["command"]
        results["runs"][name] = entry
        write_json_atomic(out, results)
        print(f"{name} ({entry['task']}, {entry['metric']}): dense {entry['dense']:.4f}, magnitude "
              f"{entry['magnitude']['dev']:.4f}, admm {entry['admm']['dev']:.4f}, "
              f"sparsegpt {entry['sparsegpt']['dev']:.4f}", flush=True)  # fmt: skip
    print(f"written to {out}")


if __name__ == "__main__":
    main()
