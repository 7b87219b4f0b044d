"""Load test: concurrent callers on one Predictor, for a bounded time, on real dev text.

    python benchmarks/load_test.py EXPORT_DIR [--backend ort|trt] [--callers 8] [--seconds 30]
        [--batch 1] [--max-batch 32] [--threads N] [--rows 256] [--data-dir DIR] [--out load.json]

Opens one ``Predictor`` over EXPORT_DIR and reads the dev split of the export's GLUE task
(``--data-dir``, else ``$GLUE_DIR``, else the Hugging Face hub). It first answers the first
``--rows`` dev rows on one thread (the reference, and the warm-up); then ``--callers`` threads each
call ``predict`` with ``--batch`` rows at a time, each thread walking the rows from its own offset,
until ``--seconds`` have passed. Every answer is compared with the reference (same label, scores or
value within 1e-4). Reports throughput (calls and rows per second), latency per call (p50, p90, p99,
max), errors (exceptions) and mismatches (both must be 0), and the process's resident memory (RSS)
before loading, at the start and at the end of the load, and its peak. Writes the report as JSON
to ``--out`` if given. Exits 1 when any call failed or disagreed with the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCORE_ATOL = 1e-4  # batch composition changes float rounding, never more than this


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (from /proc; psutil where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def dev_items(task: str | None, data_dir: str | None, rows: int) -> tuple[list[Any], str]:
    """The first ``rows`` dev inputs of ``task`` (sentences or pairs) and where they came from."""
    from nxm_deploy.data import load_split
    from nxm_deploy.errors import UserError

    if not task:
        raise UserError("the export names no GLUE task, so there is no dev text to send")
    dev = load_split(task, "dev", data_dir)
    n = min(rows, len(dev.texts_a))
    if dev.texts_b is None:
        return list(dev.texts_a[:n]), dev.source
    return list(zip(dev.texts_a[:n], dev.texts_b[:n], strict=True)), dev.source


def same(a: Any, b: Any) -> bool:
    """Whether two Predictions agree: same label and truncation, scores (or value) within SCORE_ATOL."""
    if a.label != b.label or a.truncated != b.truncated:
        return False
    if a.value is not None or b.value is not None:
        return a.value is not None and b.value is not None and abs(a.value - b.value) <= SCORE_ATOL
    return all(abs(a.scores[k] - b.scores[k]) <= SCORE_ATOL for k in a.scores)


@dataclass
class Tally:
    """What the callers saw; each caller appends to its own lists, merged after the run."""

    latencies_ms: list[float] = field(default_factory=list)
    rows: int = 0
    errors: int = 0
    mismatches: int = 0
    error_samples: list[str] = field(default_factory=list)


def caller(
    predictor: Any,
    items: list[Any],
    reference: list[Any],
    start: int,
    batch: int,
    deadline: float,
    tally: Tally,
) -> None:
    """Call ``predictor.predict`` on ``batch`` rows at a time from row ``start`` on, until ``deadline``."""
    n, at = len(items), start
    while time.perf_counter() < deadline:
        idx = [(at + j) % n for j in range(batch)]
        at = (at + batch) % n
        t0 = time.perf_counter()
        try:
            got = predictor.predict([items[i] for i in idx])
        except Exception as exc:  # counted and sampled: the report, not a traceback, is the result
            tally.errors += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(f"{type(exc).__name__}: {exc}")
            continue
        tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
        tally.rows += batch
        tally.mismatches += sum(not same(g, reference[i]) for g, i in zip(got, idx, strict=True))


def run_load_test(
    export_dir: str,
    backend: str = "ort",
    callers: int = 8,
    seconds: float = 30.0,
    batch: int = 1,
    max_batch: int = 32,
    threads: int | None = None,
    rows: int = 256,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Run the load test; return the report (the JSON that ``--out`` gets)."""
    from nxm_deploy.runtime import Predictor

    rss_before = rss_mb()
    predictor = Predictor.from_export(export_dir, backend, max_batch=max_batch, threads=threads)
    items, source = dev_items(predictor.task, data_dir, rows)
    reference = predictor.predict(items)  # one thread: the answers to compare against, and the warm-up
    rss_start = rss_mb()

    tallies = [Tally() for _ in range(callers)]
    t0 = time.perf_counter()
    deadline = t0 + seconds
    workers = [
        threading.Thread(
            target=caller,
            args=(predictor, items, reference, (i * len(items)) // callers, batch, deadline, tallies[i]),
            name=f"caller-{i}",
        )
        for i in range(callers)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0

    lat = np.asarray([x for t in tallies for x in t.latencies_ms], dtype=np.float64)
    calls = len(lat)
    pct = (
        dict(zip(("p50", "p90", "p99"), np.percentile(lat, [50, 90, 99]).tolist(), strict=True))
        if calls
        else {}
    )
    return {
        "export_dir": str(Path(export_dir).resolve()),
        "backend": backend,
        "task": predictor.task,
        "data": source,
        "distinct_rows": len(items),
        "callers": callers,
        "batch": batch,
        "seconds": round(elapsed, 3),
        "calls": calls,
        "rows": sum(t.rows for t in tallies),
        "throughput": {
            "calls_per_s": round(calls / elapsed, 2),
            "rows_per_s": round(sum(t.rows for t in tallies) / elapsed, 2),
        },
        "latency_ms": {
            **{k: round(v, 3) for k, v in pct.items()},
            "mean": round(float(lat.mean()), 3) if calls else None,
            "max": round(float(lat.max()), 3) if calls else None,
        },
        "errors": sum(t.errors for t in tallies),
        "error_samples": [s for t in tallies for s in t.error_samples][:5],
        "mismatches": sum(t.mismatches for t in tallies),
        "rss_mb": {
            "before_load": round(rss_before, 1),
            "start": round(rss_start, 1),
            "end": round(rss_mb(), 1),
            "peak": round(peak_rss_mb(), 1),
        },
        "tokenizer_copies": predictor.encoder.tokenizers_created,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "predictor": predictor.info(),
    }


def _summary(r: dict[str, Any]) -> str:
    lat, rss, rate = r["latency_ms"], r["rss_mb"], r["throughput"]
    nan = float("nan")
    return "\n".join(
        [
            f"load test: {r['callers']} callers x {r['batch']} row(s) per call for {r['seconds']:.1f} s, "
            f"backend {r['backend']}, task {r['task']} ({r['distinct_rows']} dev rows from {r['data']})",
            f"  throughput: {rate['calls_per_s']:.1f} calls/s, {rate['rows_per_s']:.1f} rows/s "
            f"({r['calls']} calls)",
            f"  latency ms: p50 {lat.get('p50', nan):.2f}, p90 {lat.get('p90', nan):.2f}, "
            f"p99 {lat.get('p99', nan):.2f}, max {lat['max'] or nan:.2f}",
            f"  errors: {r['errors']}, mismatches vs single-threaded answers: {r['mismatches']}",
            f"  RSS MiB: before load {rss['before_load']:.0f}, start {rss['start']:.0f}, "
            f"end {rss['end']:.0f}, peak {rss['peak']:.0f}",
            *(f"  error: {s}" for s in r["error_samples"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("export_dir", help="export directory written by 'nxm-deploy export'")
    ap.add_argument("--backend", choices=("ort", "trt"), default="ort")
    ap.add_argument("--callers", type=int, default=8, help="concurrent calling threads [8]")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the load lasts [30]")
    ap.add_argument("--batch", type=int, default=1, help="rows per predict() call [1]")
    ap.add_argument("--max-batch", type=int, default=32, help="the Predictor's max rows per model call [32]")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads [its default]")
    ap.add_argument("--rows", type=int, default=256, help="distinct dev rows to cycle through [256]")
    ap.add_argument("--data-dir", default=None, help="GLUE root [$GLUE_DIR, else the hub]")
    ap.add_argument("--out", default=None, help="write the report as JSON to this file")
    args = ap.parse_args(argv)
    if args.callers < 1 or args.batch < 1 or args.rows < 1 or args.seconds <= 0:
        ap.error("--callers, --batch and --rows must be at least 1, and --seconds positive")
    from nxm_deploy.errors import UserError

    try:
        report = run_load_test(
            args.export_dir,
            args.backend,
            args.callers,
            args.seconds,
            args.batch,
            args.max_batch,
            args.threads,
            args.rows,
            args.data_dir,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    print(_summary(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"  report: {args.out}")
    if report["errors"] or report["mismatches"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
