"""INT8 with 2:4 on a CPU: the MiniLM runs of the demo exported in fp32, int8-dynamic and int8 (static
Q/DQ), all six benched in one report against the fp32 dense export, with one thread.

    python benchmarks/int8.py [--dense-run demo-out/runs/dense] [--sparse-run demo-out/runs/sparse]
                              [--work int8-bench] [--json benchmarks/results/int8.json]
                              [--smooth-alpha 0.95] [--exports-only]

Steps: ``nxm-deploy export`` of each run three times (``--quantize`` none, ``int8-dynamic``, ``int8``
calibrated on 512 of the run's training rows), each export proven N:M and scored against PyTorch on
the full dev set (export.json); then one ``nxm-deploy bench --dense <dense fp32> --sparse <2:4 fp32>
--also ...`` with the four INT8 exports, one ONNX Runtime thread, batch 1 and 8 at 128 tokens. Exports
already in ``--work`` are reused. Writes the figures to ``--json`` and prints a Markdown table.

ONNX Runtime has no 2:4 kernels on a CPU: every speed-up here is INT8's alone; the 2:4 exports run
the same dense GEMMs as the dense ones. What 2:4 adds on a GPU needs TensorRT (docs/export.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

from nxm_deploy.bench import BenchConfig, TimingPlan, bench
from nxm_deploy.export import ExportConfig, export
from nxm_deploy.export.quantize import DEFAULT_SMOOTH_ALPHA
from nxm_deploy.manifest import EXPORT_MANIFEST

MODES = (None, "int8-dynamic", "int8")
NOTE = (
    "ONNX Runtime has no 2:4 kernels on a CPU: the 2:4 exports run the same dense GEMMs, so every "
    "speed-up here is INT8's alone."
)


def _name(role: str, mode: str | None) -> str:
    return f"{role}-{mode or 'fp32'}"


def _kept(run: Path, out: Path) -> bool:
    """An export in ``out`` is reused only when it was made from ``run`` after the run was written
    (a run trained again at the same path is exported again)."""
    manifest = out / EXPORT_MANIFEST
    if not manifest.is_file():
        return False
    source = json.loads(manifest.read_text(encoding="utf-8"))["source_run"]["path"]
    newer = manifest.stat().st_mtime >= (run / "nxm.json").stat().st_mtime
    return Path(source).resolve() == run.resolve() and newer


def _export(run: Path, out: Path, mode: str | None, args: argparse.Namespace) -> dict[str, Any]:
    if not _kept(run, out):
        print(f"[int8] exporting {run} -> {out} ({mode or 'fp32'})", flush=True)
        options: dict[str, Any] = {}  # export refuses the options a mode would ignore
        if mode is not None:
            options["min_agreement"] = args.min_agreement
        if mode == "int8":
            options |= dict(calibration_rows=args.calibration_rows, smooth_alpha=args.smooth_alpha,
                            calibration_method=args.calibration_method)  # fmt: skip
        config = ExportConfig(run_dir=run, out=out, data_dir=args.data_dir, quantize=mode, overwrite=True,
                              **options)  # fmt: skip
        export(config, progress=lambda msg: print(f"[export] {msg}", flush=True))
    return json.loads((out / EXPORT_MANIFEST).read_text(encoding="utf-8"))


def _export_figures(m: dict[str, Any]) -> dict[str, Any]:
    q = m.get("quantization")
    return {
        "path": str(Path(m["source_run"]["path"])),
        "method": m["source_run"]["method"],
        "pattern": m["source_run"]["pattern"],
        "quantization": q["mode"] if q else None,
        "onnx_bytes": m["onnx"]["bytes"],
        "sparse_layers_proven": len(m["sparsity"]["sparse_layers"]) if m["sparsity"]["ok"] else 0,
        "dev_through_ort": q["agreement"]["main"]["onnx"] if q else None,
        "dev_pytorch_fp32": q["agreement"]["main"]["torch"] if q else None,
        "agreement_with_pytorch_fp32": q["agreement"]["agreement"] if q else None,
        "max_logit_diff": q["agreement"]["logits"]["max_abs_diff"] if q else None,
        "calibration": q["calibration"] if q else None,
        "smoothquant": q.get("smoothquant") if q else None,
    }


def _table(figures: dict[str, Any]) -> str:
    shapes = [f"{s['batch']}x{s['seq_len']}" for s in figures["models"]["dense-fp32"]["latency"]]
    head = ["export", "dev " + figures["main_metric"], "same class as fp32 dense"]
    head += [f"{s} ms" for s in shapes] + [f"{s} speed-up vs fp32 dense" for s in shapes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in figures["models"].items():
        agree = m["agreement_with_dense"]
        cells = [name, f"{m['dev']:.4f}", f"{100 * agree:.2f}%" if agree is not None else "-"]
        cells += [f"{s['median_ms']:.2f}" for s in m["latency"]]
        cells += [f"{s['speedup']:.2f}x" for s in m["latency"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figures(
    report: dict[str, Any], exports: dict[str, dict[str, Any]], command: list[str]
) -> dict[str, Any]:
    acc = report["accuracy"]
    models: dict[str, Any] = {}
    pair_shapes = report["latency"]["shapes"]
    for role, key in (("dense-fp32", "dense"), ("sparse-fp32", "sparse")):
        models[role] = {
            "dev": acc[key]["main"],
            "agreement_with_dense": 1.0 if key == "dense" else acc["agreement"],
            "latency": [
                {
                    "batch": s["batch"],
                    "seq_len": s["seq_len"],
                    "median_ms": s[key]["median_ms"],
                    "p90_ms": s[key]["p90_ms"],
                    "speedup": s["dense"]["median_ms"] / s[key]["median_ms"],
                }
                for s in pair_shapes
            ],
        }
    for e in report["also"]:
        models[e["name"]] = {
            "dev": e["accuracy"]["main"],
            "agreement_with_dense": e["accuracy"]["agreement_with_dense"],
            "latency": [
                {
                    "batch": s["batch"],
                    "seq_len": s["seq_len"],
                    "median_ms": s["model"]["median_ms"],
                    "p90_ms": s["model"]["p90_ms"],
                    "speedup": 1.0 / s["ratio"],
                }
                for s in e["latency"]["shapes"]
            ],
        }
    return {
        "command": command,
        "task": report["task"],
        "main_metric": acc["main_metric"],
        "dev_rows": acc["examples"],
        "backend": {k: report["backend"][k] for k in ("runtime", "version", "device", "threads")},
        "machine": report["machine"],
        "python": platform.python_version(),
        "note": NOTE,
        "speedup": "fp32 dense median latency / the export's median latency, each timed in alternating "
        "pairs with the fp32 dense export (bench --also)",
        "exports": {name: _export_figures(m) for name, m in exports.items()},
        "models": models,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dense-run", type=Path, default=Path("demo-out/runs/dense"))
    ap.add_argument("--sparse-run", type=Path, default=Path("demo-out/runs/sparse"))
    ap.add_argument("--task", default="SST-2")
    ap.add_argument("--data-dir", default=None, help="GLUE root (default $GLUE_DIR)")
    ap.add_argument("--work", type=Path, default=Path("int8-bench"), help="exports and the report go here")
    ap.add_argument("--calibration-rows", type=int, default=512)
    ap.add_argument("--calibration-method", default="minmax")
    ap.add_argument("--smooth-alpha", type=float, default=DEFAULT_SMOOTH_ALPHA,
                    help="SmoothQuant's alpha for the static int8 exports (0: off)")  # fmt: skip
    ap.add_argument("--exports-only", action="store_true",
                    help="make the exports (no idle machine needed) and stop before the timing")  # fmt: skip
    ap.add_argument("--min-agreement", type=float, default=0.0,
                    help="the INT8 gate of export; 0: record the agreement, never refuse")  # fmt: skip
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--seq-lens", default="128")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/int8.json"))
    args = ap.parse_args()

    exports: dict[str, dict[str, Any]] = {}
    dirs: dict[str, Path] = {}
    for role, run in (("dense", args.dense_run), ("sparse", args.sparse_run)):
        for mode in MODES:
            name = _name(role, mode)
            dirs[name] = args.work / "exports" / name
            exports[name] = _export(run, dirs[name], mode, args)
    if args.exports_only:
        print(f"[int8] {len(dirs)} exports ready in {args.work / 'exports'}", flush=True)
        return
    also = tuple(f"{name}={dirs[name]}" for name in dirs if not name.endswith("-fp32"))
    config = BenchConfig(dense=dirs["dense-fp32"], sparse=dirs["sparse-fp32"], task=args.task,
                         out=args.work / "report", data_dir=args.data_dir, threads=args.threads,
                         batch_sizes=args.batch_sizes, seq_lens=args.seq_lens, plan=TimingPlan(),
                         also=also, overwrite=True)  # fmt: skip
    print(f"[int8] bench: {len(also) + 2} exports, {args.threads} thread(s)", flush=True)
    report = bench(config).report
    command = ["python", "benchmarks/int8.py", *sys.argv[1:]]
    figures = _figures(report, exports, command)
    figures["report"] = str(args.work / "report" / "report.md")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(_table(figures))
    print(f"\n{NOTE}\nwrote {args.json}")


if __name__ == "__main__":
    main()
