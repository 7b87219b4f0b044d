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
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import glue_methods as gm
import stats

REPO = gm.REPO
METRIC = gm.METRIC
TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")
PROTOCOLS = ("P1", "P2", "layers")
NEW_ADMM = ["--method", "admm", "--admm-penalty", "decoupled", "--rho", "100", "--rho-max", "1e4"]
# the methods of each protocol as `nxm-deploy train` options (besides the shared base of Profile.base);
# "default" comes from admm_tuning.json, "sparsegpt" runs through benchmarks/sparsegpt.py
P1_METHODS: dict[str, list[str] | None] = {
    "dense": ["--method", "dense"],
    "oneshot": ["--method", "oneshot"],
    "asp": ["--method", "asp"],
    "admm": NEW_ADMM,
    "srste": ["--method", "srste"],
    "default": None,
}
P2_METHODS: dict[str, list[str] | None] = {
    "asp": ["--method", "asp"],
    "asp_admm_prune": ["--method", "asp", "--prune-solver", "admm"],
    "admm": NEW_ADMM,
    "srste": ["--method", "srste"],
    "default": None,
    "free_admm": ["--method", "oneshot", "--prune-solver", "admm"],  # training-free: no more epochs
    "sparsegpt": None,
}
LAYER_METHODS = ("default", "asp")
# FFN in (intermediate.dense) and the block's output.dense, not attention.output.dense
FFN_GLOBS = (["--include", "*.layer.*.intermediate.dense", "--include", "*.layer.*.output.dense",
              "--exclude", "*.attention.output.dense"])  # fmt: skip
SENSITIVITY_BUDGET = 1.0
START = {"P1": "pretrained", "P2": "fine-tuned"}  # admm_tuning.json's default_recipe keys
TRAINING_FREE = ("free_admm",)
DISTILLATION = (
    "none, for every method: the first edition's held-out rows (benchmarks/admm_tuning.py, stage 2) "
    "showed no gain from distilling from the dense run"
)
CHOSEN_RULE = (
    "the default recipe of benchmarks/admm_tuning.py for this starting point (its RULE, on held-out "
    "SST-2 training rows; written and applied before any dev number of this study)"
)
BOOTSTRAP = {"resamples": 10_000, "seed": 0}
COMMANDS = [  # the head of the docs/RESULTS.md section
    "# two pieces side by side, one thread each (on 2 cores)",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks RTE --seeds 1 --max-hours 2 &",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P1 --tasks MRPC --seeds 1 --max-hours 2",
    "# P2 starts from the P1 dense run of the same task and seed (retrained when its weights are gone)",
    "OMP_NUM_THREADS=1 python benchmarks/glue_study.py --protocols P2 --tasks RTE --seeds 1 --max-hours 2",
    "python benchmarks/glue_study.py --protocols layers --tasks RTE   # P2, seed 1: FFN only, sensitivity",
    "python benchmarks/glue_study.py --report-only   # benchmarks/results/glue_study.json and this section",
    "git add benchmarks/results/glue_study* docs/RESULTS.md   # commit each result as it lands",
]


@dataclass(frozen=True)
class Profile:
    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: float = 3.0  # P1's budget; P2 adds as many again on top of the dense run
    caps: dict[str, int] = field(default_factory=dict)
    eval_cap: int | None = None
    lr: float = 1e-4
    batch_size: int = 32
    max_seq_len: int = 128
    sensitivity_rows: int | None = None  # training rows that sensitivity scores [its default]

    def base(self, task: str, seed: int, epochs: float) -> list[str]:
        """The options every method of this profile shares."""
        out = ["--seed", str(seed), "--epochs", str(epochs), "--lr", str(self.lr),
               "--batch-size", str(self.batch_size), "--max-seq-len", str(self.max_seq_len)]  # fmt: skip
        if task in self.caps:
            out += ["--max-train-samples", str(self.caps[task])]
        if self.eval_cap:
            out += ["--max-eval-samples", str(self.eval_cap)]
        return out

    def budget(self) -> dict[str, Any]:
        return {"profile": self.name, "tasks": list(self.tasks), "seeds": list(self.seeds),
                "epochs": {"P1": self.epochs, "P2": 2 * self.epochs, "free_admm": self.epochs},
                "max_train_samples": self.caps, "max_eval_samples": self.eval_cap, "lr": self.lr,
                "batch_size": self.batch_size, "max_seq_len": self.max_seq_len,
                "sensitivity": {"budget": SENSITIVITY_BUDGET, "rows": self.sensitivity_rows or 1000,
                                "on": "the P1 dense run of seed 1 (training rows)"}}  # fmt: skip


_FULL = gm.PROFILES["full"]
PROFILES = {
    "full": Profile(
        "full",
        TASKS,
        (1, 2, 3),
        _FULL.epochs,
        dict(_FULL.caps),
        None,
        _FULL.lr,
        _FULL.batch_size,
        _FULL.max_seq_len,
    ),
    # plumbing only: one task, 64 rows, 0.2 epochs, into benchmarks/work/glue_study-smoke/
    "smoke": Profile("smoke", ("RTE",), (1,), 0.2, {"RTE": 64}, 32, sensitivity_rows=32),
}


@dataclass(frozen=True)
class Layout:
    """Where one profile's results, runs, aggregate JSON, doc section and plots go."""

    results: Path
    work: Path
    json: Path
    doc: Path
    plots: Path

    @classmethod
    def of(cls, profile: Profile) -> Layout:
        if profile.name == "full":
            res = gm.RESULTS
            return cls(res / "glue_study", gm.WORK / "glue_study", res / "glue_study.json", gm.DOC,
                       res / "glue_study")  # fmt: skip
        root = gm.WORK / f"glue_study-{profile.name}"
        return cls(root / "results", root / "work", root / "glue_study.json", root / "RESULTS.md", root)


# ---------------------------------------------------------------- methods as train options


def tuning() -> dict[str, Any]:
    path = gm.RESULTS / "admm_tuning.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def default_recipe(protocol: str) -> tuple[str | None, list[str] | None, bool]:
    """admm_tuning's winner for the protocol's start: (name, options, training-free) or Nones."""
    t = tuning()
    start = START["P2" if protocol == "layers" else protocol]
    winner = (t.get("default_recipe") or {}).get(start, {}).get("winner")
    if not winner:
        return None, None, False
    # admm_tuning.py's own definition of the setting when it has one: settings that ran while the loss
    # penalty was the default name it there (--admm-penalty loss), not in the args they recorded
    import admm_tuning

    args = {**admm_tuning.GRID, **admm_tuning.LEVERS}.get(winner) or t["settings"][winner]["args"]
    return winner, list(args), "training-free" in winner


def methods_of(protocol: str) -> dict[str, list[str] | None]:
    return dict(P1_METHODS if protocol == "P1" else P2_METHODS)


def canonical(args: list[str]) -> dict[str, Any]:
    """Options as a comparable dict: numbers as floats, repeated options as sorted lists."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        flag = args[i]
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            value: Any = args[i + 1]
            try:
                value = float(value)
            except ValueError:
                pass
            i += 2
        else:
            value, i = True, i + 1
        if flag in ("--include", "--exclude"):
            out[flag] = sorted([*out.get(flag, []), value])
        else:
            out[flag] = value
    return out


def alias_of_default(protocol: str) -> str | None:
    """The listed method whose options equal the default recipe's, if any."""
    _, args, free = default_recipe(protocol)
    if args is None:
        return None
    for m, a in methods_of(protocol).items():
        if (
            m != "default"
            and a is not None
            and canonical(a) == canonical(args)
            and free == (m in TRAINING_FREE)
        ):
            return m
    return None


def chosen_of(protocol: str) -> str | None:
    if default_recipe(protocol)[1] is None:
        return None
    return alias_of_default(protocol) or "default"


def method_args(profile: Profile, protocol: str, task: str, method: str, seed: int) -> list[str] | None:
    """The exact ``nxm-deploy train`` options of one result (paths aside); None: not runnable now."""
    p2 = protocol in ("P2", "layers")
    variant = None
    if protocol == "layers":
        variant, method = method.split(":", 1)
    if method == "default":
        _, args, free = default_recipe(protocol)
        if args is None:
            return None
    else:
        args = methods_of("P2" if p2 else "P1").get(method)
        free = method in TRAINING_FREE
        if args is None:
            return None
    epochs = profile.epochs if (not p2 or free) else 2 * profile.epochs
    out = [*profile.base(task, seed, epochs), *args]
    if variant == "ffn_only":
        out += FFN_GLOBS
    return out


def first_study_args(cfg: dict[str, Any]) -> list[str]:
    """The train options that glue_methods.py ran for a recorded config (its ``train``)."""
    out = ["--method", cfg["method"], "--seed", str(cfg["seed"]), "--epochs", str(cfg["epochs"]),
           "--lr", str(cfg["lr"]), "--batch-size", str(cfg["batch_size"]),
           "--max-seq-len", str(cfg["max_seq_len"])]  # fmt: skip
    if cfg["method"] == "admm":
        out += cfg["train_args"]
        if "--admm-penalty" not in cfg["train_args"]:  # it ran when the loss penalty was the default
            out += ["--admm-penalty", "loss"]
    if cfg["max_train_samples"]:
        out += ["--max-train-samples", str(cfg["max_train_samples"])]
    if cfg.get("teacher"):
        out += ["--teacher", str(cfg["teacher"])]
    return out


# ---------------------------------------------------------------- results on disk


def config(profile: Profile, protocol: str, task: str, method: str, seed: int) -> dict[str, Any] | None:
    args = method_args(profile, protocol, task, method, seed)
    if args is None and method != "sparsegpt":
        return None
    return {
        "protocol": protocol,
        "task": task,
        "method": method,
        "seed": seed,
        "start": "pretrained" if protocol == "P1" else f"P1/{task}/dense-seed{seed}",
        "train_args": args,
        "pattern": "2:4",
    }


def _stem(method: str, seed: int) -> str:
    return f"{method.replace(':', '-')}-seed{seed}"


def result_path(lay: Layout, protocol: str, task: str, method: str, seed: int) -> Path:
    return lay.results / protocol / task / f"{_stem(method, seed)}.json"


def run_dir(lay: Layout, protocol: str, task: str, method: str, seed: int) -> Path:
    return lay.work / protocol / task / _stem(method, seed)


def load_result(path: Path, cfg: dict[str, Any] | None) -> dict[str, Any] | None:
    if cfg is None or not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if data.get("config") == cfg else None


def save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def say(msg: str) -> None:
    print(f"[glue_study {dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def reuse_first_study(profile: Profile, lay: Layout, task: str, method: str, seed: int) -> dict | None:
    """A P1 result of glue_methods.py whose training options are exactly P1's now (for ``default``:
    any first-study method's), copied with ``reused_from``; None when there is none."""
    cfg = config(profile, "P1", task, method, seed)
    if profile.name != "full" or cfg is None:
        return None
    for name in [method] if method != "default" else list(gm.METHODS):
        old_path = gm.RESULTS / "glue_methods" / "full" / task / f"{name}-seed{seed}.json"
        if not old_path.is_file():
            continue
        old = json.loads(old_path.read_text())
        if old["config"].get("teacher"):
            continue
        if canonical(first_study_args(old["config"])) == canonical(cfg["train_args"]):
            result = {**old, "method": method, "config": cfg, "protocol": "P1",
                      "reused_from": str(old_path.relative_to(REPO))}  # fmt: skip
            save(result_path(lay, "P1", task, method, seed), result)
            return result
    return None


# ---------------------------------------------------------------- training


def train(profile: Profile, lay: Layout, glue: str, protocol: str, task: str, method: str, seed: int) -> Path:
    """Run (or resume) one training run as a subprocess; returns its run directory."""
    out = run_dir(lay, protocol, task, method, seed)
    if (out / "nxm.json").is_file():
        return out
    args = method_args(profile, protocol, task, method, seed)
    assert args is not None
    start = ["--model", gm.model_path()]
    if protocol != "P1":
        start = ["--init-from", str(ensure_dense(profile, lay, glue, task, seed))]
    if protocol == "layers" and method.startswith("sensitivity:"):
        args = [*args, *sensitivity_exclude(profile, lay, glue, task, seed)["args"]]
    cmd = [sys.executable, "-m", "nxm_deploy", "train", *start, "--task", task, "--data-dir", glue,
           "--out", str(out), "--no-progress", *args]  # fmt: skip
    staged = out.with_name(f".{out.name}.staging")
    cmd += ["--resume"] if (staged / "checkpoints" / "config.json").is_file() else ["--overwrite"]
    _run(
        cmd,
        lay.work / "logs" / f"{protocol}-{task}-{_stem(method, seed)}.log",
        f"{protocol} {task} {method} {seed}",
    )
    return out


def _call(cmd: list[str], log: Path) -> int:
    """Run ``cmd`` with its output appended to ``log``; its exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
    return proc.returncode


def _run(cmd: list[str], log: Path, what: str) -> None:
    if _call(cmd, log) != 0:
        tail = log.read_text().splitlines()[-5:]
        sys.exit(f"{what} failed; log {log}:\n" + "\n".join(tail))


def _dense_matches(run: Path, cfg: dict[str, Any]) -> bool:
    if not (run / "nxm.json").is_file():
        return False
    hp = json.loads((run / "nxm.json").read_text())["hyperparameters"]
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
    first = gm.WORK / "full" / task / f"dense-seed{seed}"
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
        recorded.setdefault("reruns", []).append({"value": value, "date": _manifest(run)["created"]})
        recorded["reproduces"] = all(abs(r["value"] - recorded["value"]) <= 0.01 for r in recorded["reruns"])
        save(path, recorded)
        say(f"  rerun {value:.2f} against the recorded {recorded['value']:.2f}")
    return run


def _manifest(run: Path) -> dict[str, Any]:
    return json.loads((run / "nxm.json").read_text())


def _value(task: str, run: Path) -> float:
    return round(100 * _manifest(run)["metrics"][METRIC[task]], 2)


def record(
    profile: Profile, lay: Layout, protocol: str, task: str, method: str, seed: int, run: Path
) -> dict:
    man = _manifest(run)
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
        "machine": gm.machine(),
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
        _run(cmd, lay.work / "logs" / f"sensitivity-{task}-seed{seed}.log", f"sensitivity {task} seed {seed}")
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, keep)
    rep = json.loads(keep.read_text())
    args = [x for name in rep["exclude"] for x in ("--exclude", name)]
    return {"exclude": rep["exclude"], "flops_share": rep["flops_share"], "args": args}


@functools.cache
def ffn_flops_share() -> float:
    """The share of the encoder's linear multiply-accumulates that the FFN-only globs select."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from nxm_deploy.sensitivity.layers import candidate_layers, encoder_macs

    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(gm.model_path()))
    inc = [FFN_GLOBS[i + 1] for i in range(0, len(FFN_GLOBS), 2) if FFN_GLOBS[i] == "--include"]
    exc = [FFN_GLOBS[i + 1] for i in range(0, len(FFN_GLOBS), 2) if FFN_GLOBS[i] == "--exclude"]
    return round(sum(x.macs for x in candidate_layers(model, "2:4", inc, exc)) / encoder_macs(model), 6)


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
    out = gm.RESULTS / "sparsegpt.json" if profile.name == "full" else lay.results / "sparsegpt.json"
    cmd = [python, str(script), str(dense), "--data-dir", glue, "--out", str(out),
           "--work", str(lay.work / "P2" / task / "sparsegpt")]  # fmt: skip
    log = lay.work / "logs" / f"P2-{task}-sparsegpt-seed{seed}.log"
    if _call(cmd, log) != 0:  # the comparison, not the study: the other methods go on
        last = (log.read_text().splitlines() or [""])[-1]
        say(f"  sparsegpt failed on {task} seed {seed} (log {log}): {last}")
        return None
    name = f"{_manifest(dense)['task']}/{dense.name}"
    entry = json.loads(out.read_text())["runs"][name]
    result = {
        "protocol": "P2", "task": task, "method": "sparsegpt", "seed": seed, "metric": METRIC[task],
        "value": round(100 * entry["sparsegpt"]["dev"], 2), "phases": [],
        "config": config(profile, "P2", task, "sparsegpt", seed), "start_value": _value(task, dense),
        "source": f"{out.relative_to(REPO) if out.is_relative_to(REPO) else out} runs[{name!r}]",
        "wall_time_s": entry["sparsegpt"].get("wall_s", 0), "date": entry.get("date", ""),
        "machine": gm.machine(),
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


# ---------------------------------------------------------------- the report


def collect(profile: Profile, lay: Layout, protocol: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Saved results whose settings match the current ones: task -> method -> results by seed."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task in profile.tasks:
        for method in methods_of(protocol):
            for seed in profile.seeds:
                r = load_result(result_path(lay, protocol, task, method, seed),
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
    not shrink below what a few pairs per task can show (benchmarks/stats.py)."""
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


def protocol_report(profile: Profile, lay: Layout, protocol: str, p1_dense: float | None) -> dict[str, Any]:
    results = collect(profile, lay, protocol)
    s = summarise(results, profile.tasks)
    chosen = chosen_of(protocol)
    others = [m for m in methods_of(protocol) if m != chosen and m != "default"]
    if protocol == "P1" and chosen != "dense":
        others = [m for m in others if m != "dense"] + ["dense"]
    avg = s["average"]
    c, asp = avg.get(chosen or ""), avg.get("asp")
    pairs = paired(s["tasks"], chosen, others) if chosen else {}
    targets: dict[str, Any] = {}
    if c is not None and asp is not None:
        targets["chosen_minus_asp"] = _target(round(c - asp, 2), 0.5)
    if protocol == "P2":
        if "asp" in pairs and pairs["asp"]["ci95"] is not None:
            targets["chosen_minus_asp_ci95_low"] = _target(pairs["asp"]["ci95"][0], 0.0)
            targets["chosen_minus_asp_ci95_low"]["strict"] = True  # above 0, not at 0
            targets["chosen_minus_asp_ci95_low"]["met"] = pairs["asp"]["ci95"][0] > 0
        if c is not None and p1_dense:
            targets["chosen_over_p1_dense"] = _target(round(c / p1_dense, 4), 0.985, "ratio")
    n_expected = len(profile.tasks) * len(profile.seeds)
    runnable = [m for m in methods_of(protocol) if m != "default" or chosen == "default"]
    complete = all(
        sum(len(results.get(t, {}).get(m, [])) for t in profile.tasks) == n_expected for m in runnable
    )
    every = [r for by in results.values() for rs in by.values() for r in rs]
    return {
        **s,
        "prune": prune_rows(results),
        "chosen": chosen,
        "chosen_rule": CHOSEN_RULE,
        "default_recipe": dict(zip(("name", "args", "training_free"), default_recipe(protocol), strict=True)),
        "targets": {k: v for k, v in targets.items() if v},
        "paired": pairs,
        "complete": complete,
        "wall_time_s": round(sum(r.get("wall_time_s") or 0 for r in every)),
        "dates": sorted(r["date"] for r in every if r.get("date")),
    }


def layer_report(profile: Profile, lay: Layout, p1: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {"ffn_only": {}, "sensitivity": {}}
    share = None
    for variant in out:
        for m in LAYER_METHODS:
            vals, excl, shares = {}, [], []
            for t in profile.tasks:
                r = load_result(result_path(lay, "layers", t, f"{variant}:{m}", 1),
                                config(profile, "layers", t, f"{variant}:{m}", 1))  # fmt: skip
                if not r:
                    continue
                vals[t] = r["value"]
                if variant == "sensitivity":
                    sens = json.loads((lay.results / "layers" / t / "sensitivity-seed1.json").read_text())
                    excl.append({"task": t, "layers": sens["exclude"], "flops_share": sens["flops_share"]})
                    shares.append(sens["flops_share"])
            if not vals:
                continue
            if variant == "ffn_only":
                share = share if share is not None else ffn_flops_share()
            complete = len(vals) == len(profile.tasks)
            entry = {
                "average": round(statistics.fmean(vals.values()), 2) if complete else None,
                "flops_share": share if variant == "ffn_only" else round(statistics.fmean(shares), 4),
                "tasks": vals,
            }
            if variant == "sensitivity":
                entry["exclude"] = excl
            out[variant][m] = entry
    dense1 = p1.get("per_seed_average", {}).get("dense", {}).get("1")
    targets = {}
    for m, e in out["ffn_only"].items():
        if e["average"] is not None and dense1:
            targets[f"ffn_only_{m}_over_dense"] = _target(round(e["average"] / dense1, 4), 0.99, "ratio")
    return {**out, "dense_seed1_average": dense1, "targets": targets}


def report(profile: Profile, lay: Layout) -> dict[str, Any]:
    """Write the aggregate JSON, the doc section and the plots from the saved results."""
    p1 = protocol_report(profile, lay, "P1", None)
    p2 = protocol_report(profile, lay, "P2", p1["average"].get("dense"))
    layers = layer_report(profile, lay, p1)
    dates = sorted(p1.pop("dates") + p2.pop("dates"))
    data = {
        "model": gm.MODEL_NAME,
        "pattern": "2:4",
        "date": dates[-1][:10] if dates else None,
        "machine": gm.machine(),
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
            "ADMM, one third masked); P2: from the P1 dense run of the same task and seed, 3 more epochs "
            "(--epochs 6), free_admm and sparsegpt none",
        },
        "protocols": {"P1": p1, "P2": p2},
        "layer_choice": layers,
        "command": "python benchmarks/glue_study.py"
        + ("" if profile.name == "full" else f" --{profile.name}"),
    }
    save(lay.json, data)
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
        elif m == "sparsegpt":
            args = "benchmarks/sparsegpt.py on the P1 dense run (ModelOpt, its own interpreter)"
        out[m] = args
    return out


def _plots(lay: Layout, data: dict[str, Any]) -> list[Path]:
    """Per-task bars with error bars (one panel per protocol) and accuracy against the 2:4 FLOPs share."""
    protos = {p: v for p, v in data["protocols"].items() if v["tasks"]}
    if not protos:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    out.append(lay.plots / "glue_study_tasks.png")
    out[-1].parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
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
        out.append(lay.plots / "glue_study_flops.png")
        fig.savefig(out[-1], dpi=110)
        plt.close(fig)
    return out


def _table(v: dict[str, Any], tasks: tuple[str, ...], methods: list[str]) -> list[str]:
    lines = ["| task (metric, points) | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for t in tasks:
        row = v["tasks"].get(t, {})
        cells = [f"{row[m]['mean']:.2f}" + (f" ± {row[m]['sd']:.2f}" if row[m]["sd"] is not None else "")
                 + f" (n={len(row[m]['values'])})" if m in row else "–" for m in methods]  # fmt: skip
        lines.append(f"| {t} ({METRIC[t]}) | " + " | ".join(cells) + " |")
    avg = v["average"]
    lines.append(
        "| **average** | " + " | ".join(f"**{avg[m]:.2f}**" if m in avg else "–" for m in methods) + " |"
    )
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
            "P2": "P2: from the P1 dense run of the same task and seed, 3 more epochs"}[p]  # fmt: skip
    lines = [f"### {head}", ""]
    if not v["tasks"]:
        return [*lines, "Nothing has run yet.", ""]
    methods = list(dict.fromkeys(m for by in v["tasks"].values() for m in by))
    lines += _table(v, profile.tasks, methods)
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
            "| method | " + " | ".join(f"seed {s}" for s in seeds) + " |",
            "|---|" + "---:|" * len(seeds),
        ]
        lines += [f"| {m} | " + " | ".join(f"{x[s]:.2f}" if s in x else "–" for s in seeds) + " |"
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
    if not lc["ffn_only"] and not lc["sensitivity"]:
        return [*lines, "Nothing has run yet.", ""]
    lines += ["| layers at 2:4 | method | five-task average | share of encoder linear FLOPs at 2:4 |",
              "|---|---|---:|---:|"]  # fmt: skip
    for m in LAYER_METHODS:
        name = _all_linears(p2, m)
        a = p2["per_seed_average"].get(name or "", {}).get("1")
        if a is not None:
            lines.append(f"| all linears (P2 seed 1, `{name}`) | {m} | {a:.2f} | 100.0% |")
    for variant in ("ffn_only", "sensitivity"):
        for m, e in lc[variant].items():
            a = f"{e['average']:.2f}" if e["average"] is not None else f"({len(e['tasks'])} tasks so far)"
            lines.append(f"| {variant} | {m} | {a} | {100 * e['flops_share']:.1f}% |")
    dense1 = lc.get("dense_seed1_average")
    if dense1:
        lines += ["", f"The start, P1 dense seed 1: {dense1:.2f}. Against it:"]
    lines += ["", *_targets_lines(lc["targets"]), "",
              "Per task (points, seed 1; the last column: the share of encoder linear FLOPs that "
              "`sensitivity` left at 2:4, and how many linears it kept dense):", ""]  # fmt: skip
    cols = [("all linears", m) for m in LAYER_METHODS] + [(v, m) for v in ("ffn_only", "sensitivity")
                                                         for m in LAYER_METHODS]  # fmt: skip
    lines += ["| task | P1 dense | " + " | ".join(f"{v}: {m}" for v, m in cols) + " | sensitivity picks |",
              "|---|" + "---:|" * (len(cols) + 2)]  # fmt: skip
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
    intro = [
        f"MiniLM, 2:4 on every encoder linear, {', '.join(profile.tasks)}; seeds "
        f"{', '.join(map(str, profile.seeds))}; the first study's training subsets (SST-2 5000 and CoLA 6000 "
        "rows, fixed seed-0 subsets), dev sets whole; lr 1e-4, batch 32, 128 tokens. P1: 3 epochs from "
        "the pretrained weights; P2: from the P1 `dense` run of the same task and seed (`--init-from`, "
        "`--epochs 6`), `free_admm` (training-free `--prune-solver admm`) and `sparsegpt` (ModelOpt, "
        "`benchmarks/sparsegpt.py`) add no epochs. `admm` is the new default: `--admm-penalty decoupled "
        "--rho 100 --rho-max 1e4`. The chosen recipe is the default recipe of `benchmarks/admm_tuning.py` "
        "for each start, fixed before any dev number. Distillation: " + DISTILLATION + ".",
        "Pieces resume where they stopped (one JSON per result under `benchmarks/results/glue_study/`, "
        "first-study P1 results reused where their options match: `reused_from`); two pieces run side by "
        "side with `OMP_NUM_THREADS=1` and different `--tasks`. Paired intervals: 10,000 bootstrap "
        "resamples of the (task, seed) pairs within each task. Machine: "
        f"{data['machine']}; last result {data['date'] or 'none yet'}.",
    ]
    lines = [begin, "", "## GLUE study, second edition", "", "```bash", *COMMANDS, "```", ""]
    for para in intro:
        lines += [*textwrap.wrap(para, 100, break_on_hyphens=False, break_long_words=False), ""]
    for p, v in data["protocols"].items():
        lines += _protocol_lines(profile, p, v)
    lines += _layer_lines(profile, data)
    for path in plots:
        rel = os.path.relpath(path, lay.doc.parent)
        lines += [f"![{path.stem}]({rel})", ""]
    lines.append(end)
    block = "\n".join(lines)
    text = lay.doc.read_text() if lay.doc.is_file() else "# Results\n"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    elif "\n## INT8" in text:  # after the first study's section
        i = text.index("\n## INT8") + 1
        text = text[:i] + block + "\n\n" + text[i:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    lay.doc.parent.mkdir(parents=True, exist_ok=True)
    lay.doc.write_text(text)


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
        study(profile, lay, gm.data_dir(args.data_dir), protocols, tasks, seeds, methods, args.max_hours,
              args.modelopt_python)  # fmt: skip
    data = report(profile, lay)
    for p, v in data["protocols"].items():
        say(f"{p}: averages {v['average']}; chosen {v['chosen']}; targets {v['targets']}")


if __name__ == "__main__":
    main()
