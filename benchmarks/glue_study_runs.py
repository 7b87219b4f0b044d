"""The GLUE study's runs: training one (protocol, task, method, seed) through ``common.runs``, the
P1 dense run that P2 starts from (:func:`ensure_dense`), the result file of a run (its value, phases,
provenance, peak memory and dev predictions), the sensitivity scan and random layers of the layer
choice, and ModelOpt's mask through benchmarks/sparsegpt.py.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from common import runs
from common.predict import predict_run
from common.runs import METRIC, REPO, repo_relative, save
from glue_study_layers import exclude_args, random_choice
from glue_study_setup import (
    SENSITIVITY_BUDGET,
    Layout,
    Profile,
    _stem,
    canonical,
    config,
    current,
    method_args,
    predictions_path,
    result_path,
    run_dir,
    superseded,
)

from nxm_deploy.admm.predictions import PREDICTIONS_FILE
from nxm_deploy.admm.staging import saved_config, staging_dir

say = functools.partial(runs.say, "glue_study")
PROVENANCE = ("tool_version", "source", "command", "libraries", "machine", "created")


def model_of(profile: Profile) -> str:
    return profile.model or runs.model_path()


def train(profile: Profile, lay: Layout, glue: str, protocol: str, task: str, method: str,
          seed: int) -> runs.Trained:  # fmt: skip
    """Run (or resume) one training run as a subprocess: its run directory and peak memory."""
    out = run_dir(lay, protocol, task, method, seed)
    finished = (out / "nxm.json").is_file()
    reuse = protocol == "P1" or not finished or _continued_dense(profile, lay, task, seed, out)
    if finished and reuse:
        return runs.Trained(out, None)
    args = method_args(profile, protocol, task, method, seed)
    assert args is not None
    start = ["--model", model_of(profile)]
    if protocol != "P1":
        dense = ensure_dense(profile, lay, glue, task, seed)
        start = ["--init-from", str(dense)]
        begun = saved_config(staging_dir(out))
        if begun.is_file() and begun.stat().st_mtime < (dense / "nxm.json").stat().st_mtime:
            say(f"  {out}'s interrupted run continued P1 dense weights since retrained: started again")
            shutil.rmtree(staging_dir(out))
    if protocol == "layers":
        args = [*args, *layer_choice(profile, lay, glue, task, method, seed)["args"]]
    if profile.save_steps:
        args = [*args, "--save-steps", str(profile.save_steps)]
    log = lay.work / "logs" / f"{protocol}-{task}-{_stem(method, seed)}.log"
    if not reuse:
        say(f"  {out} continued other P1 dense weights than those on disk: trained again")
    return runs.train_run(out, [*start, "--task", task, "--data-dir", glue, *args], log,
                          f"{protocol} {task} {method} {seed}", reuse)  # fmt: skip


def _dense_on_disk(profile: Profile, lay: Layout, task: str, seed: int) -> dict[str, Any] | None:
    """The manifest of the P1 dense run of (task, seed) a P2 run would start from now; None if gone."""
    cfg = config(profile, "P1", task, "dense", seed)
    ours = run_dir(lay, "P1", task, "dense", seed)
    return runs.manifest(ours) if cfg is not None and _dense_matches(ours, cfg) else None


def _continued_dense(profile: Profile, lay: Layout, task: str, seed: int, run: Path) -> bool:
    """Whether the finished run at ``run`` continued the P1 dense run on disk (or none is there to
    tell): the start's ``created`` time or dev metrics its manifest records (a P1 run retrained on
    the same thread count gives the same weights), or, for a run made before manifests recorded
    them, whether it was made after that P1 run."""
    dense = _dense_on_disk(profile, lay, task, seed)
    if dense is None:
        return True
    man = runs.manifest(run)
    start = man.get("init_from") or {}
    if not start.get("created"):
        return man["created"] > dense["created"]
    return start["created"] == dense["created"] or start.get("metrics") == dense["metrics"]


def other_start(profile: Profile, lay: Layout, task: str, seed: int, r: dict[str, Any]) -> str | None:
    """Why the kept P2 result ``r`` continued other P1 dense weights than those on disk (a P1 run
    retrained since: on a CPU another thread count gives another run), or None when it continued
    them or no P1 run is on disk to compare (the same ``created`` time, or the same dev value: a P1
    run retrained on the same thread count reproduces). Such a result is trained again from the run
    on disk, so that every P2 method of (task, seed) continues the same weights."""
    dense = _dense_on_disk(profile, lay, task, seed)
    if dense is None or r.get("start_value") is None:
        return None
    now = _points(task, dense["metrics"])
    if r.get("start_created") == dense["created"] or r["start_value"] == now:
        return None
    return f"continued P1 dense weights of dev {r['start_value']:.2f}; those on disk give {now:.2f}"


def mixed_starts(profile: Profile, lay: Layout, task: str, seed: int) -> list[float]:
    """The P1 dense values that the kept P2 results of (task, seed) record having continued, when they
    are more than one and no P1 run is on disk to tell which of them are stale (else ``[]``): the
    study then trains the P1 run again first (the run directories went, the results stayed)."""
    if _dense_on_disk(profile, lay, task, seed) is not None:
        return []
    starts = set()
    for path in (lay.results / "P2" / task).glob(f"*-seed{seed}.json"):
        value = json.loads(path.read_text()).get("start_value")
        if value is not None:
            starts.add(value)
    return sorted(starts) if len(starts) > 1 else []


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
    """The P1 dense run of (task, seed); retrained when gone, with the rerun's value recorded beside
    the first one (reproduces or not), or the value it replaces kept as ``earlier``."""
    cfg = config(profile, "P1", task, "dense", seed)
    assert cfg is not None
    ours = run_dir(lay, "P1", task, "dense", seed)
    if _dense_matches(ours, cfg):
        return ours
    path = result_path(lay, "P1", task, "dense", seed)
    recorded = current(path, cfg)
    say(f"  (re)training P1 {task} dense seed {seed}: P2 starts from its weights")
    done = train(profile, lay, glue, "P1", task, "dense", seed)
    if recorded is None:  # a first-study copy or another config stays on record as ``earlier``
        record(profile, lay, glue, "P1", task, "dense", seed, done, superseded(path, cfg))
    else:
        value = _value(task, done.out)
        man = runs.manifest(done.out)
        machine = man.get("machine") or {}
        recorded.setdefault("reruns", []).append(
            {"value": value, "date": man["created"], "torch_threads": machine.get("torch_threads"),
             "cpu_id": machine.get("cpu_id"), "cpu_isa": machine.get("cpu_isa")}
        )  # fmt: skip
        recorded["reproduces"] = all(
            runs.reproduces(r["value"], recorded["value"]) for r in recorded["reruns"]
        )
        save(path, recorded)
        say(f"  rerun {value:.2f} against the recorded {recorded['value']:.2f}")
    return done.out


def _points(task: str, metrics: dict[str, float]) -> float:
    """The task's dev metric in points, as results record it."""
    return round(100 * metrics[METRIC[task]], 2)


def _value(task: str, run: Path) -> float:
    return _points(task, runs.manifest(run)["metrics"])


def keep_predictions(lay: Layout, glue: str, protocol: str, task: str, method: str, seed: int,
                     run: Path) -> Path:  # fmt: skip
    """The run's predictions.tsv copied beside the results (made by one dev pass of its weights where
    the run was made before runs kept them)."""
    dest = predictions_path(lay, protocol, task, method, seed)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if (run / PREDICTIONS_FILE).is_file():
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(run / PREDICTIONS_FILE, tmp)
        tmp.replace(dest)
    else:
        say(f"  {run} has no {PREDICTIONS_FILE}: one dev pass of its weights")
        predict_run(run, glue, dest)
    return dest


def record(profile: Profile, lay: Layout, glue: str, protocol: str, task: str, method: str, seed: int,
           done: runs.Trained, earlier: dict[str, Any] | None = None) -> dict:  # fmt: skip
    run = done.out
    man = runs.manifest(run)
    metric = METRIC[task]
    result: dict[str, Any] = {
        "protocol": protocol,
        "task": task,
        "method": method,
        "seed": seed,
        "metric": metric,
        "value": _points(task, man["metrics"]),
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
        "epochs_total": man.get("epochs_total"),
        "train_rows": man["data"]["train_rows"],
        "train_sha256": man["data"]["train_sha256"],
        "dev_rows": {k: v["rows"] for k, v in man["data"]["dev"].items()},
        "wall_time_s": man["wall_time_s"],
        "peak_rss_mib": done.peak_rss_mib,
        "tool_version": man.get("tool_version"),
        "date": man.get("created"),
        "machine": runs.machine(),
        "provenance": {k: man.get(k) for k in PROVENANCE},
        "predictions": repo_relative(keep_predictions(lay, glue, protocol, task, method, seed, run)),
    }
    if protocol != "P1":
        start = man["init_from"]  # a run made before manifests recorded its start: the run there now
        result["start_value"] = _points(task, start["metrics"]) if start.get("metrics") else \
            _value(task, Path(start["run"]))  # fmt: skip
        result["start_created"] = start.get("created")  # None: not recorded, compared by value
    if protocol == "layers":
        result["exclude"] = list(man["hyperparameters"].get("exclude") or [])
        choice = layer_choice(profile, lay, glue, task, method, seed)
        result["layer_choice"] = {k: v for k, v in choice.items() if k != "args"}
    if earlier:
        result["earlier"] = earlier
    save(result_path(lay, protocol, task, method, seed), result)
    return result


def sensitivity(profile: Profile, lay: Layout, glue: str, task: str, seed: int) -> dict[str, Any]:
    """``nxm-deploy sensitivity`` on the P1 dense run for a 1-point budget (its JSON copied under
    results/layers/<TASK>/): the layers it keeps dense, their 2:4 share of FLOPs, and whether it
    scored the rows the run trained on (``in_sample``). A kept scan made before the tool said where
    its rows came from (0.3.0) scored the run's own training rows: it is scanned again."""
    keep = lay.results / "layers" / task / f"sensitivity-seed{seed}.json"
    stale = keep.is_file() and not scan_says_rows(json.loads(keep.read_text()))
    if stale:
        say(f"  {repo_relative(keep)} scored the run's own training rows (made before 0.3.0): scanned again")
    if stale or not keep.is_file():
        dense = ensure_dense(profile, lay, glue, task, seed)
        out = lay.work / "layers" / task / f"sensitivity-seed{seed}.json"
        cmd = [sys.executable, "-m", "nxm_deploy", "sensitivity", str(dense), "--out", str(out), "--data-dir",
               glue, "--budget", str(SENSITIVITY_BUDGET), "--rows-from", "auto", "--overwrite"]  # fmt: skip
        if profile.sensitivity_rows:
            cmd += ["--rows", str(profile.sensitivity_rows)]
        runs.run_or_exit(
            cmd, lay.work / "logs" / f"sensitivity-{task}-seed{seed}.log", f"sensitivity {task} seed {seed}"
        )
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, keep)
    rep = json.loads(keep.read_text())
    return {"exclude": rep["exclude"], "flops_share": rep["flops_share"],
            "in_sample": (rep.get("rows") or {}).get("in_sample")}  # fmt: skip


def scan_says_rows(rep: dict[str, Any]) -> bool:
    """Whether a sensitivity scan's JSON says where its rows came from (``rows.rows_from``, 0.3.0 on):
    one that does not was scored in sample, on the rows the scanned run trained on."""
    return "rows_from" in (rep.get("rows") or {})


def layer_choice(profile: Profile, lay: Layout, glue: str, task: str, method: str, seed: int) -> dict:
    """A ``layers`` method's extra train options (``args``) and what they choose."""
    from glue_study_stats import ffn_flops_share

    variant = method.split(":", 1)[0]
    if variant == "sensitivity":
        s = sensitivity(profile, lay, glue, task, seed)
        return {**s, "args": exclude_args(s["exclude"])}
    if variant.startswith("random_"):
        share = (ffn_flops_share() if variant == "random_ffn_only"
                 else sensitivity(profile, lay, glue, task, seed)["flops_share"])  # fmt: skip
        r = random_choice(model_of(profile), share, seed)
        return {**r, "args": exclude_args(r["exclude"])}
    return {"args": []}


def run_sparsegpt(profile: Profile, lay: Layout, glue: str, task: str, seed: int, python: str) -> dict | None:
    """ModelOpt's SparseGPT mask (no weight update) on the P1 dense run through benchmarks/sparsegpt.py
    (its own venv): the ``modelopt_mask`` row."""
    script = REPO / "benchmarks" / "sparsegpt.py"
    if not script.is_file():
        say(f"  modelopt_mask skipped: {script.relative_to(REPO)} is not in this tree")
        return None
    if not Path(python).is_file():
        say(f"  modelopt_mask skipped: no ModelOpt interpreter at {python} (pass --modelopt-python PATH)")
        return None
    dense = ensure_dense(profile, lay, glue, task, seed)
    out = runs.RESULTS / "sparsegpt.json" if profile.name == "full" else lay.results / "sparsegpt.json"
    cmd = [python, str(script), str(dense), "--data-dir", glue, "--out", str(out),
           "--work", str(lay.work / "P2" / task / "sparsegpt")]  # fmt: skip
    log = lay.work / "logs" / f"P2-{task}-sparsegpt-seed{seed}.log"
    done = runs.run(cmd, log)
    if done.returncode != 0:  # the comparison, not the study: the other methods go on
        last = (log.read_text().splitlines() or [""])[-1]
        say(f"  modelopt_mask failed on {task} seed {seed} (log {log}): {last}")
        return None
    name = f"{runs.manifest(dense)['task']}/{dense.name}"
    entry = json.loads(out.read_text())["runs"][name]
    result = {
        "protocol": "P2", "task": task, "method": "modelopt_mask", "seed": seed, "metric": METRIC[task],
        "value": round(100 * entry["sparsegpt"]["dev"], 2), "phases": [],
        "config": config(profile, "P2", task, "modelopt_mask", seed), "start_value": _value(task, dense),
        "source": f"{repo_relative(out)} runs[{name!r}]", "wall_time_s": entry["sparsegpt"].get("wall_s", 0),
        "peak_rss_mib": done.peak_rss_mib, "date": entry.get("date", ""), "machine": runs.machine(),
    }  # fmt: skip
    save(result_path(lay, "P2", task, "modelopt_mask", seed), result)
    return result
