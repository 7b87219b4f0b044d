"""The second GLUE study's setup: its profiles, protocols and methods (each an exact list of
``nxm-deploy train`` options), and where each result and run goes.

``default`` is the recipe that admm_tuning.py chose for the protocol's start (read from
``benchmarks/results/admm_tuning.json``); a P1 result of the first study (glue_methods.py) is reused
where its training options are exactly P1's now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import glue_methods as gm
from common import runs
from common.runs import REPO, save

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
            res = runs.RESULTS
            return cls(res / "glue_study", runs.WORK / "glue_study", res / "glue_study.json", runs.DOC,
                       res / "glue_study")  # fmt: skip
        root = runs.WORK / f"glue_study-{profile.name}"
        return cls(root / "results", root / "work", root / "glue_study.json", root / "RESULTS.md", root)


# ---------------------------------------------------------------- methods as train options


def tuning() -> dict[str, Any]:
    path = runs.RESULTS / "admm_tuning.json"
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
    from admm_tuning_settings import GRID, LEVERS

    args = {**GRID, **LEVERS}.get(winner) or t["settings"][winner]["args"]
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


def reuse_first_study(profile: Profile, lay: Layout, task: str, method: str, seed: int) -> dict | None:
    """A P1 result of glue_methods.py whose training options are exactly P1's now (for ``default``:
    any first-study method's), copied with ``reused_from``; None when there is none."""
    cfg = config(profile, "P1", task, method, seed)
    if profile.name != "full" or cfg is None:
        return None
    for name in [method] if method != "default" else list(gm.METHODS):
        old_path = runs.RESULTS / "glue_methods" / "full" / task / f"{name}-seed{seed}.json"
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
