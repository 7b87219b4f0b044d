"""Does this machine give back the same weights? A short dense fine-tune, run ``--runs`` times at one
thread, hashed tensor by tensor; the hash is kept in ``benchmarks/results/determinism.json`` with the
machine (CPU family/model/stepping, the instruction set PyTorch dispatches to, the kernel), the
commit and the libraries, and compared with every earlier probe of the same model, settings and
thread count.

    OMP_NUM_THREADS=1 python benchmarks/determinism.py                       # all-MiniLM-L6-v2
    OMP_NUM_THREADS=1 python benchmarks/determinism.py --model ~/models/all-mpnet-base-v2

Why: every P2 run continues a P1 dense run, and P2 runs are only compared with each other when they
continue the same weights. Where the run directories are gone, the P1 run is trained again; that
only gives back its weights where training is deterministic. Within one process tree at one thread
it is (the same hash each time); across machines it may not be (another CPU generation may run
other kernels): at base size a P1 dense MRPC run trained again at one thread gave dev F1 88.54
against the recorded 89.01. This probe, run once per session, says on which machines the same
weights come back. It reads 256 MRPC training rows and 16 dev rows (the dev metric is not used).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from common import runs

JSON_OUT = runs.RESULTS / "determinism.json"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SETTINGS = {  # one optimizer step per 32 rows: 8 steps, warm-up and decay included
    "task": "MRPC", "method": "dense", "epochs": 1, "max_train_samples": 256, "max_eval_samples": 16,
    "batch_size": 32, "max_seq_len": 128, "lr": 2e-5, "seed": 1,
}  # fmt: skip


def say(msg: str) -> None:
    runs.say("determinism", msg)


def train_args(model: str, glue: str, settings: dict[str, Any]) -> list[str]:
    s = settings
    return ["--model", model, "--task", s["task"], "--data-dir", glue, "--method", s["method"],
            "--epochs", str(s["epochs"]), "--max-train-samples", str(s["max_train_samples"]),
            "--max-eval-samples", str(s["max_eval_samples"]), "--batch-size", str(s["batch_size"]),
            "--max-seq-len", str(s["max_seq_len"]), "--lr", str(s["lr"]),
            "--seed", str(s["seed"])]  # fmt: skip


def weights_sha256(run: Path) -> str:
    """sha256 over a run's weights: every tensor's name, dtype, shape and bytes, in name order (the
    file's own bytes could differ by metadata alone)."""
    import torch
    from safetensors.torch import load_file

    h = hashlib.sha256()
    for f in sorted(run.glob("*.safetensors")):
        if f.name == "nxm_state.safetensors":
            continue
        tensors = load_file(f)
        for name in sorted(tensors):
            t = tensors[name].contiguous()
            h.update(f"{f.name}:{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_sha256(model: str) -> str:
    """sha256 of the model folder's weight files (which pretrained weights the probe starts from)."""
    h = hashlib.sha256()
    files = sorted(Path(model).glob("*.safetensors")) or sorted(Path(model).glob("*.bin"))
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()


def compare(probe: dict[str, Any], earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each earlier probe of the same model, settings and thread count: its date, machine and
    whether it gave the same weights."""
    out = []
    for e in earlier:
        same_probe = (e["model_sha256"], e["settings"], e["threads"]) == (
            probe["model_sha256"], probe["settings"], probe["threads"])  # fmt: skip
        if not same_probe:
            continue
        m = e["provenance"]["machine"]
        out.append({"date": e["date"], "cpu_id": m.get("cpu_id"), "cpu_isa": m.get("cpu_isa"),
                    "os": m.get("os"), "commit": e["provenance"]["source"].get("commit"),
                    "same": e["weights_sha256"][0] == probe["weights_sha256"][0]})  # fmt: skip
    return out


def probe(model: str, glue: str, runs_n: int, threads: int, work: Path) -> dict[str, Any]:
    """Train the probe ``runs_n`` times at ``threads`` threads; its record."""
    import torch

    from nxm_deploy.manifest import provenance

    args = train_args(model, glue, SETTINGS)
    hashes = []
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    before = torch.get_num_threads()
    os.environ.update(dict.fromkeys(THREAD_VARS, str(threads)))  # the training processes'
    torch.set_num_threads(threads)  # so the record's machine says the probe's count
    try:
        for i in range(runs_n):
            out = work / f"run-{i + 1}"
            say(f"run {i + 1}/{runs_n}: {SETTINGS['max_train_samples']} {SETTINGS['task']} rows, "
                f"{threads} thread(s) -> {out}")  # fmt: skip
            runs.train(out, args, work / "train.log", f"probe run {i + 1}", reuse=False)
            hashes.append(weights_sha256(out))
            say(f"  weights sha256 {hashes[-1][:16]}")
        facts = provenance()
    finally:
        torch.set_num_threads(before)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model": model, "model_sha256": model_sha256(model), "settings": dict(SETTINGS),
            "threads": threads, "weights_sha256": hashes, "same_within": len(set(hashes)) == 1,
            "provenance": facts,
            "command": ["benchmarks/determinism.py", *sys.argv[1:]]}  # fmt: skip


def read_kept(path: Path) -> dict[str, Any]:
    """The probes kept at ``path`` ({"probes": []} where there is none); exits with one line when the
    file is not such a record (it is left as it is)."""
    if not path.is_file():
        return {"probes": []}
    try:
        kept = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        sys.exit(f"--out-json {path}: not readable as JSON ({e}); move it away or pass another path")
    if not isinstance(kept, dict) or not isinstance(kept.get("probes"), list):
        sys.exit(
            f'--out-json {path}: not a probes record (no "probes" list); move it away or pass another path'
        )
    return kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model folder [the shipped all-MiniLM-L6-v2]")
    ap.add_argument("--data-dir", default=None, help="GLUE root [$GLUE_DIR, else ../shared/data/glue]")
    ap.add_argument("--runs", type=int, default=2, help="trainings in this session [2]")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads [1]")
    ap.add_argument("--out-json", type=Path, default=JSON_OUT)
    ap.add_argument("--work", type=Path, default=runs.WORK / "determinism")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.threads < 1:
        ap.error("--runs and --threads must be at least 1")
    model = args.model or runs.model_path()
    if not Path(model).is_dir():
        sys.exit(f"--model {model}: not a model folder; pass one that from_pretrained loads")
    kept = read_kept(args.out_json)  # before minutes of training, so a bad file is said at once
    glue = runs.data_dir(args.data_dir)
    rec = probe(str(Path(model).resolve()), glue, args.runs, args.threads, args.work)
    rec["earlier"] = compare(rec, kept["probes"])
    kept["probes"].append(rec)
    runs.save(args.out_json, kept)
    m = rec["provenance"]["machine"]
    say(f"{model}: {'the same' if rec['same_within'] else 'DIFFERENT'} weights in "
        f"{args.runs} run(s) on {m['cpu']} ({m.get('cpu_id')}, {m.get('cpu_isa')})")  # fmt: skip
    for e in rec["earlier"]:
        say(f"  {'same as' if e['same'] else 'differs from'} the probe of {e['date']} "
            f"({e['cpu_id']}, {e['cpu_isa']}, {e['os']})")  # fmt: skip
    say(f"kept in {runs.repo_relative(args.out_json)}")
    return 0 if rec["same_within"] else 1


if __name__ == "__main__":
    sys.exit(main())
