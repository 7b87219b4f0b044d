"""Load on ``nxm-deploy serve``: closed-loop callers over HTTP and gRPC, beside the in-process ``Predictor``.

    python benchmarks/serve_load.py EXPORT_DIR [--callers 1,4,16] [--seconds 10] [--rows 256]
        [--data-dir DIR] [--max-batch-size 32] [--max-queue-delay-us 2000] [--instances 1]
        [--threads N] [--out serve_load.json]

One run, on one machine, so that the ratios mean something (absolute times depend on the machine):

1. in process: one ``Predictor`` over EXPORT_DIR; for each caller count N, N threads each calling
   ``predict`` on one dev row at a time (the callers' own shape) and one thread calling it on N rows
   at a time (batched: what Triton's dynamic batcher should get close to), each for ``--seconds``;
2. served: ``nxm-deploy serve EXPORT_DIR`` started on 127.0.0.1 with free ports (stopped at the end,
   whatever happens); for each protocol (HTTP, gRPC) and each N, N callers each with its own
   ``tritonclient`` client send one dev row per request, for ``--seconds`` (and at most
   ``MAX_REQUESTS`` requests per caller).

Rows are the first ``--rows`` dev rows of the export's GLUE task (``--data-dir``, else
``$GLUE_DIR``, else the hub), each caller starting from its own offset. Every served answer is
compared with the in-process answer for its row (label; scores within 1e-4). Reports, per row: rows/s,
latency p50/p95/p99 in ms, errors and mismatches, and the served rows/s as a share of the in-process
batched rows/s at the same N. Exits 1 when any request failed or disagreed.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from load_test import dev_items  # the same dev rows as the in-process load test

MAX_REQUESTS = 100_000  # per caller and phase: a bound besides the time
SCORE_ATOL = 1e-4
HOST = "127.0.0.1"  # the load only ever goes to this machine


def _percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p95": None, "p99": None}
    p = np.percentile(np.asarray(latencies), [50, 95, 99])
    return {"p50": round(float(p[0]), 2), "p95": round(float(p[1]), 2), "p99": round(float(p[2]), 2)}


def closed_loop(callers: int, seconds: float, work: Any) -> dict[str, Any]:
    """``callers`` threads each run ``work(caller, i)`` (one call: rows done) until ``seconds`` pass."""
    lat: list[list[float]] = [[] for _ in range(callers)]
    rows, errors, samples = [0] * callers, [0] * callers, []
    deadline = time.perf_counter() + seconds

    def loop(c: int) -> None:
        for i in range(MAX_REQUESTS):
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            try:
                rows[c] += work(c, i)
            except Exception as exc:  # counted and sampled: the report is the result
                errors[c] += 1
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            lat[c].append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(c,)) for c in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    flat = [x for per in lat for x in per]
    return {"callers": callers, "seconds": round(wall, 2), "requests": len(flat), "rows": sum(rows),
            "rows_per_s": round(sum(rows) / wall, 1), "latency_ms": _percentiles(flat),
            "errors": sum(errors), "error_samples": samples}  # fmt: skip


def in_process(predictor: Any, items: list[Any], counts: list[int], seconds: float) -> dict[str, Any]:
    n, out = len(items), {}
    for callers in counts:

        def one_row(c: int, i: int) -> int:
            return len(predictor.predict([items[(c * 37 + i) % n]]))

        def batch(_c: int, i: int, size: int = callers) -> int:
            return len(predictor.predict([items[(i * size + j) % n] for j in range(size)]))

        single = closed_loop(callers, seconds, one_row)
        batched = closed_loop(1, seconds, batch)
        out[str(callers)] = {"threads_one_row": single, "one_thread_batched": batched}
    return out


def _inputs(module: Any, item: Any) -> list[Any]:
    texts = [item] if isinstance(item, str) else list(item)
    inputs = []
    for name, text in zip(("text", "text_pair"), texts, strict=False):
        tensor = module.InferInput(name, [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=np.object_))
        inputs.append(tensor)
    return inputs


def served(protocol: str, url: str, name: str, items: list[Any], reference: list[Any],
           counts: list[int], seconds: float) -> dict[str, Any]:  # fmt: skip
    if protocol == "http":
        import tritonclient.http as module
    else:
        import tritonclient.grpc as module
    n, out = len(items), {}
    for callers in counts:
        clients = [module.InferenceServerClient(url) for _ in range(callers)]
        mismatches = [0]

        def work(c: int, i: int, clients: list[Any] = clients, mismatches: list[int] = mismatches) -> int:
            row = (c * 37 + i) % n
            result = clients[c].infer(name, _inputs(module, items[row]))
            ref, label = reference[row], result.as_numpy("label").reshape(-1)[0].decode()
            scores = result.as_numpy("scores").reshape(-1)
            if label != ref.label or np.abs(scores - [ref.scores[k] for k in ref.scores]).max() > SCORE_ATOL:
                mismatches[0] += 1
            return 1

        report = closed_loop(callers, seconds, work)
        report["mismatches"] = mismatches[0]
        out[str(callers)] = report
        for client in clients:
            client.close()
    return out


def start_serve(
    export_dir: str, args: argparse.Namespace, log: Path
) -> tuple[subprocess.Popen[bytes], int, int]:
    from nxm_deploy.serve.process import free_port

    http, grpc = free_port(HOST), free_port(HOST)
    cmd = [sys.executable, "-m", "nxm_deploy", "serve", export_dir, "--host", HOST,
           "--http-port", str(http), "--grpc-port", str(grpc), "--max-batch-size", str(args.max_batch_size),
           "--max-queue-delay-us", str(args.max_queue_delay_us),
           "--instances", str(args.instances)]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if "serving on" in log.read_text(errors="replace"):
            return proc, http, grpc
        time.sleep(0.2)
    stop_serve(proc)
    raise SystemExit(f"serve did not start:\n{log.read_text(errors='replace')}")


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--callers", default="1,4,16", help="comma-separated caller counts")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue-delay-us", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.callers.split(",")]
    if not 0 < args.seconds <= 600 or min(counts) < 1 or max(counts) > 256:
        parser.error("--seconds must be in (0, 600] and each caller count in [1, 256]")

    from nxm_deploy.runtime import Predictor
    from nxm_deploy.runtime.triton import model_name_for

    predictor = Predictor.from_export(args.export_dir, max_batch=args.max_batch_size, threads=args.threads)
    items, source = dev_items(predictor.task, args.data_dir, args.rows)
    reference = predictor.predict(items)
    report: dict[str, Any] = {
        "export_dir": str(Path(args.export_dir).resolve()), "task": predictor.task, "data": source,
        "rows": len(items), "seconds_each": args.seconds, "max_batch_size": args.max_batch_size,
        "max_queue_delay_us": args.max_queue_delay_us, "instances": args.instances,
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "in_process": in_process(predictor, items, counts, args.seconds),
    }  # fmt: skip
    log = Path(args.out or "serve_load.json").with_suffix(".serve.log")
    proc, http, grpc = start_serve(args.export_dir, args, log)
    try:
        name = model_name_for(args.export_dir)
        report["served"] = {
            "http": served("http", f"{HOST}:{http}", name, items, reference, counts, args.seconds),
            "grpc": served("grpc", f"{HOST}:{grpc}", name, items, reference, counts, args.seconds),
        }
    finally:
        stop_serve(proc)
    print(
        f"{'N':>3} {'path':<24} {'rows/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'err':>4} {'vs batched':>10}"
    )
    for n in map(str, counts):
        local = report["in_process"][n]
        batched = local["one_thread_batched"]["rows_per_s"]
        rows = [(f"in-process {n} threads x1", local["threads_one_row"], None),
                (f"in-process 1 thread x{n}", local["one_thread_batched"], None)]  # fmt: skip
        for proto in ("http", "grpc"):
            r = report["served"][proto][n]
            r["share_of_batched"] = round(r["rows_per_s"] / batched, 3) if batched else None
            rows.append((f"served {proto} {n} callers", r, r["share_of_batched"]))
        for label, r, share in rows:
            lat = r["latency_ms"]
            shown = "" if share is None else f"{100 * share:.0f}%"
            print(f"{n:>3} {label:<24} {r['rows_per_s']:>8} {lat['p50']!s:>8} {lat['p95']!s:>8} "
                  f"{lat['p99']!s:>8} {r['errors']:>4} {shown:>10}")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    result = main()
    bad = sum(
        r["errors"] + r.get("mismatches", 0) for proto in result["served"].values() for r in proto.values()
    )
    sys.exit(1 if bad else 0)
