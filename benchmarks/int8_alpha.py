"""How strong a SmoothQuant for static INT8: each candidate alpha scored on training rows that neither
trained the run nor calibrated it, never on dev rows.

    python benchmarks/int8_alpha.py [--runs demo-out/runs/dense,demo-out/runs/sparse] [--work int8-bench]
                                    [--json benchmarks/results/int8_alpha.json]

The rule, written before any number: for each run, ``nxm-deploy export --quantize int8`` is made with
every alpha in ``ALPHAS`` (0: no SmoothQuant) and scored by its agreement with the run's own FP32 ONNX
(same predicted class) on ``--rows`` (2000) training rows outside the run's training subset (the demo
trains on 4000 of SST-2's 67,349) and outside the calibration draw; the default is the alpha with the
highest agreement averaged over the runs, the smaller alpha on a tie. Then, at that alpha, the
calibration methods ``METHODS`` are scored the same way; ``minmax`` stays the default unless another
has a higher mean (added after stage 1 had run; stage 1's results are kept from the JSON when its
settings match). A run trained on all its training rows has none held out and is refused.

Uses the library's own quantizer (``nxm_deploy.export.quantize.quantize_onnx``) on the FP32 ONNX of
``int8.py``'s work directory (``<work>/exports/<role>-fp32``, exported when missing).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.data import get_task, load_split
from nxm_deploy.data.encode import subset_indices
from nxm_deploy.export import ExportConfig, export
from nxm_deploy.export.quantize import QuantizeSpec, quantize_onnx
from nxm_deploy.export.rows import calibration_rows
from nxm_deploy.manifest import RunManifest
from nxm_deploy.runtime.encoding import TextEncoder

ALPHAS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
METHODS = ("minmax", "percentile", "entropy")  # stage 2, at the chosen alpha
CALIBRATION_ROWS = 512


def _say(msg: str) -> None:
    print(f"[int8_alpha {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _held_out(
    run: RunManifest, data_dir: str | None, n: int, seed: int
) -> tuple[list[str], list[str] | None]:
    task = get_task(str(run.facts.task))
    split = load_split(task, task.train_split, data_dir)
    limit = (run.body.get("hyperparameters") or {}).get("max_train_samples")
    used = set(subset_indices(len(split), int(limit) if limit else None))
    rest = [i for i in range(len(split)) if i not in used]
    if not rest:
        sys.exit(f"{run.path} trained on all {len(split)} training rows: none are held out to choose on")
    pick = sorted(random.Random(seed).sample(rest, min(n, len(rest))))
    b = [split.texts_b[i] for i in pick] if split.texts_b is not None else None
    return [split.texts_a[i] for i in pick], b


def _predictions(path: Path, encoder: TextEncoder, encoded: Any, n: int) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = np.zeros(n, dtype=np.int64)
    for batch in encoder.batches(encoded, 32, 1):
        out[batch.rows] = session.run(None, batch.feed)[0].argmax(axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", default="demo-out/runs/dense,demo-out/runs/sparse")
    ap.add_argument("--work", type=Path, default=Path("int8-bench"))
    ap.add_argument("--data-dir", default=None, help="GLUE root (default $GLUE_DIR)")
    ap.add_argument("--rows", type=int, default=2000, help="held-out training rows to score on")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/int8_alpha.json"))
    args = ap.parse_args()
    previous = json.loads(args.json.read_text()) if args.json.is_file() else {}
    contexts = {}
    for run_dir in [Path(r) for r in args.runs.split(",")]:
        contexts[run_dir.name] = _context(run_dir, args)
    results: dict[str, Any] = {
        role: {"run": str(c["run_dir"]), "held_out_rows": c["n"], "by_alpha": {}, "by_method": {}}
        for role, c in contexts.items()
    }

    def score(role: str, alpha: float, method: str) -> dict[str, Any]:
        key, table = (f"{alpha:g}", "by_alpha") if method == "minmax" else (method, "by_method")
        old = previous.get("runs", {}).get(role, {}).get(table, {}).get(key)
        if old and old.get("alpha", alpha) == alpha and previous.get("rows") == args.rows:
            return old  # the same settings: kept from the last run of this script
        c = contexts[role]
        out = args.work / "alpha" / f"{role}-{alpha:g}-{method}.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        t = time.time()
        spec = QuantizeSpec("int8", calibration_method=method, smooth_alpha=alpha)
        section = quantize_onnx(c["fp32"], out, spec, c["rows"], c["tokenizer"], c["names"], c["max_len"])
        got = _predictions(out, c["encoder"], c["encoded"], c["n"])
        out.unlink()
        agree = float(np.mean(got == c["reference"]))
        _say(f"{role} alpha {alpha:g} {method}: agreement {100 * agree:.2f}% on {c['n']} held-out rows "
             f"({time.time() - t:.0f} s)")  # fmt: skip
        return {"alpha": alpha, "method": method, "agreement": agree, "smoothquant": section["smoothquant"]}

    for role in contexts:  # stage 1: alpha, minmax calibration
        for alpha in ALPHAS:
            results[role]["by_alpha"][f"{alpha:g}"] = score(role, alpha, "minmax")
    mean = {f"{a:g}": float(np.mean([r["by_alpha"][f"{a:g}"]["agreement"] for r in results.values()]))
            for a in ALPHAS}  # fmt: skip
    best = max(ALPHAS, key=lambda a: (round(mean[f"{a:g}"], 6), -a))
    for role in contexts:  # stage 2: the calibration method at the chosen alpha
        results[role]["by_method"]["minmax"] = results[role]["by_alpha"][f"{best:g}"]
        for method in METHODS[1:]:
            results[role]["by_method"][method] = score(role, best, method)
    method_mean = {m: float(np.mean([r["by_method"][m]["agreement"] for r in results.values()]))
                   for m in METHODS}  # fmt: skip
    method = max(METHODS, key=lambda m: (round(method_mean[m], 6), -METHODS.index(m)))
    figures = {
        "rule": __doc__.split("\n\n")[2].replace("\n", " "),
        "command": ["python", "benchmarks/int8_alpha.py", *sys.argv[1:]],
        "rows": args.rows,
        "calibration": {"rows": CALIBRATION_ROWS, "seed": 0},
        "runs": results,
        "mean_agreement": mean,
        "chosen_alpha": best,
        "method_mean_agreement": method_mean,
        "chosen_method": method,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print("| alpha (minmax) | " + " | ".join(results) + " | mean |\n|---|" + "---:|" * (len(results) + 1))
    for a in ALPHAS:
        k = f"{a:g}"
        cells = [f"{100 * r['by_alpha'][k]['agreement']:.2f}%" for r in results.values()]
        print(f"| {k} | " + " | ".join(cells) + f" | {100 * mean[k]:.2f}% |")
    print(
        f"\n| method (alpha {best:g}) | "
        + " | ".join(results)
        + " | mean |\n|---|"
        + "---:|" * (len(results) + 1)
    )
    for m in METHODS:
        cells = [f"{100 * r['by_method'][m]['agreement']:.2f}%" for r in results.values()]
        print(f"| {m} | " + " | ".join(cells) + f" | {100 * method_mean[m]:.2f}% |")
    _say(f"chosen alpha {best:g}, calibration {method}; wrote {args.json}")


def _context(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The run's FP32 ONNX (exported when missing), calibration rows, held-out rows and FP32 predictions."""
    import onnx
    from transformers import AutoTokenizer

    run = RunManifest.read(run_dir)
    fp32 = args.work / "exports" / f"{run_dir.name}-fp32"
    if not (fp32 / "model.onnx").is_file():
        _say(f"exporting {run_dir} -> {fp32}")
        export(ExportConfig(run_dir=run_dir, out=fp32, data_dir=args.data_dir, overwrite=True))
    tokenizer = AutoTokenizer.from_pretrained(str(fp32))
    names = [i.name for i in onnx.load(str(fp32 / "model.onnx"), load_external_data=False).graph.input]
    max_len = int(run.body["hyperparameters"]["max_seq_len"])
    texts_a, texts_b = _held_out(run, args.data_dir, args.rows, args.seed)
    encoder = TextEncoder(tokenizer, names, max_len)
    encoded = encoder.encode(texts_a, texts_b)
    return {
        "run_dir": run_dir,
        "fp32": fp32 / "model.onnx",
        "tokenizer": tokenizer,
        "names": names,
        "max_len": max_len,
        "rows": calibration_rows(run, args.data_dir, CALIBRATION_ROWS, 0),
        "encoder": encoder,
        "encoded": encoded,
        "n": len(encoded),
        "reference": _predictions(fp32 / "model.onnx", encoder, encoded, len(encoded)),
    }


if __name__ == "__main__":
    main()
