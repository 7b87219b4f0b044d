"""How strong a SmoothQuant for static INT8: each candidate alpha scored on training rows that neither
trained the run nor calibrated it, never on dev rows.

    python benchmarks/int8_alpha.py [--runs demo-out/runs/dense,demo-out/runs/sparse] [--work int8-bench]
                                    [--json benchmarks/results/int8_alpha.json]

The rule, written before any number: for each run, ``nxm-deploy export --quantize int8`` is made with
every alpha in ``ALPHAS`` (0: no SmoothQuant) and scored by its agreement with the run's own FP32 ONNX
(same predicted class) on ``--rows`` (2000) training rows outside the run's training subset (the demo
trains on 4000 of SST-2's 67,349) and outside the calibration draw; the default is the alpha with the
highest agreement averaged over the runs, the smaller alpha on a tie. A run trained on all its
training rows has none held out and is refused.

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
from nxm_deploy.export.quantize import QuantizeSpec, calibration_rows, quantize_onnx
from nxm_deploy.manifest import RunManifest
from nxm_deploy.runtime.encoding import TextEncoder

ALPHAS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
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
    from transformers import AutoTokenizer

    results: dict[str, Any] = {}
    for run_dir in [Path(r) for r in args.runs.split(",")]:
        role = run_dir.name
        run = RunManifest.read(run_dir)
        fp32 = args.work / "exports" / f"{role}-fp32"
        if not (fp32 / "model.onnx").is_file():
            _say(f"exporting {run_dir} -> {fp32}")
            export(ExportConfig(run_dir=run_dir, out=fp32, data_dir=args.data_dir, overwrite=True))
        tokenizer = AutoTokenizer.from_pretrained(str(fp32))
        import onnx

        names = [i.name for i in onnx.load(str(fp32 / "model.onnx"), load_external_data=False).graph.input]
        max_len = int(run.body["hyperparameters"]["max_seq_len"])
        rows = calibration_rows(run, args.data_dir, CALIBRATION_ROWS, 0)
        texts_a, texts_b = _held_out(run, args.data_dir, args.rows, args.seed)
        encoder = TextEncoder(tokenizer, names, max_len)
        encoded = encoder.encode(texts_a, texts_b)
        reference = _predictions(fp32 / "model.onnx", encoder, encoded, len(encoded))
        by_alpha = {}
        for alpha in ALPHAS:
            out = args.work / "alpha" / f"{role}-{alpha:g}.onnx"
            out.parent.mkdir(parents=True, exist_ok=True)
            t = time.time()
            section = quantize_onnx(fp32 / "model.onnx", out, QuantizeSpec("int8", smooth_alpha=alpha), rows,
                                    tokenizer, names, max_len)  # fmt: skip
            got = _predictions(out, encoder, encoded, len(encoded))
            agree = float(np.mean(got == reference))
            by_alpha[f"{alpha:g}"] = {"agreement": agree, "smoothquant": section["smoothquant"]}
            _say(f"{role} alpha {alpha:g}: agreement {100 * agree:.2f}% on {len(encoded)} held-out rows "
                 f"({time.time() - t:.0f} s)")  # fmt: skip
            out.unlink()
        results[role] = {"run": str(run_dir), "held_out_rows": len(encoded), "by_alpha": by_alpha}
    mean = {f"{a:g}": float(np.mean([r["by_alpha"][f"{a:g}"]["agreement"] for r in results.values()]))
            for a in ALPHAS}  # fmt: skip
    best = max(ALPHAS, key=lambda a: (round(mean[f"{a:g}"], 6), -a))
    figures = {
        "rule": __doc__.split("\n\n")[2].replace("\n", " "),
        "command": ["python", "benchmarks/int8_alpha.py", *sys.argv[1:]],
        "calibration": {"rows": CALIBRATION_ROWS, "method": "minmax", "seed": 0},
        "runs": results,
        "mean_agreement": mean,
        "chosen_alpha": best,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print("| alpha | " + " | ".join(results) + " | mean |\n|---|" + "---:|" * (len(results) + 1))
    for a in ALPHAS:
        k = f"{a:g}"
        cells = [f"{100 * r['by_alpha'][k]['agreement']:.2f}%" for r in results.values()]
        print(f"| {k} | " + " | ".join(cells) + f" | {100 * mean[k]:.2f}% |")
    _say(f"chosen alpha {best:g}; wrote {args.json}")


if __name__ == "__main__":
    main()
