"""The GPU path of nxm-deploy, proven in one call on one NVIDIA GPU (Ampere or later).

    PYTHONPATH=. python scripts/gpu_check.py --out gpu_check.json [--quick] [--parts a,b,c,d,e]
    python scripts/gpu_check.py --plan      # the parts and their budgets; exits 0 on any machine

Five parts, each run in a process of its own under its own timeout, the whole call under one
deadline (``--deadline-s``, 8 minutes, start-up included). ``gpu_check.json`` is rewritten
(atomically) after every part, and every part records its rows as it measures them, so a segfault,
a sticky CUDA error, a hang or a kill of one part keeps the results of the others and the rows that
part had measured; the part itself is a ``fail`` with the reason (``crashed (signal SIGSEGV)``,
``ran past its budget of N s``, or its error).

(a) kernels: PyTorch's semi-structured 2:4 kernels, per GEMM and whole encoder (``gpu_kernels.py``);
(b) train: ``nxm-deploy train`` dense and ADMM of MiniLM on CUDA in bf16, ``check``, ``export``, and
    parity of PyTorch on CUDA against the ONNX model (``gpu_parts.py``, as are (c)-(e));
(c) bench-torch: ``bench --backend torch`` of the two runs on CUDA: latency ratio and accuracy;
(d) ort-gpu: ONNX Runtime's CUDA and TensorRT providers: parity, latency ratio and accuracy;
(e) tensorrt: ``export --engine trt`` in fp16 and INT8: each engine's real precision and the layers on
    sparse tactics (it passes only with at least one), then one GEMM built without and with
    ``BuilderFlag.SPARSE_WEIGHTS``, timed on a dedicated stream.

Only this project and its dependencies are imported; nothing is downloaded (``HF_HUB_OFFLINE=1``; the
model is the MiniLM of the ``demo`` extra or ``--model DIR``).

``--simulate-failure PART[:crash|hang|error]`` runs every part as a stub that records two rows
(no GPU needed) and makes PART crash (SIGSEGV), hang past its budget, or raise, after its first row:
the proof, on any machine, that the report survives a part's failure.

Exit codes: 0 every part passed or was skipped; 1 a part failed; 3 no usable CUDA GPU (one line).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_common, gpu_kernels, gpu_parts

from gpu_common import Deadline, Recorder, Skip, first_line, write_json

EXIT_FAILED = 1
EXIT_NO_GPU = 3
DEADLINE_S = 480.0  # the whole call: 8 minutes, start-up included
STARTUP_S = 20.0  # this process: Python, torch import, CUDA init, environment facts (a few s each)


@dataclass(frozen=True)
class Part:
    key: str
    name: str
    budget_s: float
    proves: str
    why: str  # how the budget was derived (H100/H200 estimates; each child also pays ~10 s of imports)


PARTS = (
    Part(
        "a",
        "kernels",
        55,
        "per-GEMM and whole-encoder 2:4 vs dense, PyTorch semi-structured kernels (fp16)",
        "10 s imports+CUDA; 24 GEMMs x 2 timings x (10 warm-up + 20 samples of >=1 ms) ~ 25 s; 2 encoders "
        "built and 2:4-converted ~ 5 s each; 8 encoder shapes x 2 x ~1 s ~ 16 s",
    ),
    Part(
        "b",
        "train",
        125,
        "train dense + ADMM (MiniLM, CUDA, bf16), check, export, parity on CUDA",
        "5 CLI processes at ~10 s of imports each; 2 trainings of 32 steps ~ 10 s each; check ~ 5 s; "
        "2 ONNX exports with their parity ~ 20 s each; CUDA parity ~ 10 s",
    ),
    Part(
        "c",
        "bench-torch",
        45,
        "bench --backend torch on CUDA: whole-model latency ratio and accuracy",
        "10 s imports; 2 models loaded and converted ~ 5 s; SST-2 dev accuracy ~ 5 s; 4 shapes x 2 "
        "models under --max-time 5 s, most far shorter ~ 20 s",
    ),
    Part(
        "d",
        "ort-gpu",
        100,
        "ONNX Runtime CUDA and TensorRT providers: parity, latency, accuracy",
        "CUDA: sessions ~ 5 s, bench ~ 30 s; TensorRT: ONNX Runtime builds 2 engines (dense, 2:4) of "
        "~ 20 s each, cached per model and reused by bench ~ 25 s; the TensorRT row is cut first",
    ),
    Part(
        "e",
        "tensorrt",
        115,
        "TensorRT fp16 and INT8 engines with sparse weights; layers on sparse tactics",
        "fp16: export ~ 25 s + engine build ~ 25 s; INT8: calibration + export ~ 25 s + build ~ 25 s; "
        "GEMM: 2 builds of ~ 5-10 s and the timings; a step that finds no time left is skipped",
    ),
)
KILL_GRACE_S = 3.0  # past its budget, a part gets this long before its process group is killed
RESERVE_S = DEADLINE_S - STARTUP_S - sum(p.budget_s for p in PARTS)  # slack for the report and kills


def plan_text() -> str:
    lines = [f"(start-up)      {STARTUP_S:>4.0f} s  Python, torch, CUDA init, environment facts"]
    lines += [f"({p.key}) {p.name:<12} {p.budget_s:>4.0f} s  {p.proves}" for p in PARTS]
    lines += [f"(reserve)       {RESERVE_S:>4.0f} s  the report, and killing a part that overruns"]
    total = STARTUP_S + sum(p.budget_s for p in PARTS) + RESERVE_S
    return "\n".join(
        [*lines, f"total {total:.0f} s (8 minutes at most); without a CUDA GPU the check exits 3"]
    )


def gpu_problem() -> str | None:
    """One line saying why this machine cannot run the check, or ``None``."""
    import torch

    from nxm_deploy.runtime.availability import gpu_name

    if not torch.cuda.is_available():
        return (
            "no CUDA GPU is visible (torch.cuda.is_available() is False); run this on an NVIDIA GPU machine"
        )
    if torch.cuda.get_device_capability(0) < (8, 0):
        return f"{gpu_name()} has no sparse tensor cores: 2:4 kernels need sm_80 (Ampere) or newer"
    return None


def environment() -> dict[str, Any]:
    import torch
    import transformers

    from nxm_deploy.runtime.availability import gpu_name, trt_unavailable_reason, trt_version

    return {
        "gpu": gpu_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cusparselt": torch.backends.cusparselt.version(),
        "transformers": transformers.__version__,
        "tensorrt": trt_version(),
        "tensorrt_absent_reason": trt_unavailable_reason(),
        "python": platform.python_version(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="The GPU path of nxm-deploy in one call (see the module docstring)."
    )
    p.add_argument("--out", default="gpu_check.json", help="JSON report path (default gpu_check.json)")
    p.add_argument("--plan", action="store_true", help="print the parts and their budgets, then exit 0")
    p.add_argument("--parts", default="abcde", help="which parts to run, e.g. a,b,c (default all)")
    p.add_argument("--quick", action="store_true", help="part (a): fewer shapes and repeats")
    p.add_argument("--backend", choices=("auto", "cusparselt", "cutlass"), default="auto",
                   help="part (a)'s kernels (auto: the library's rule)")  # fmt: skip
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per timing (default 10, quick 5)")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed samples, median kept (default 20, quick 7)"
    )
    p.add_argument("--atol", type=float, default=3e-2, help="fp16 parity: absolute tolerance (default 3e-2)")
    p.add_argument("--rtol", type=float, default=3e-2, help="fp16 parity: relative tolerance (default 3e-2)")
    p.add_argument("--deadline-s", type=float, default=DEADLINE_S, help="the whole call's deadline (480)")
    p.add_argument("--budget-scale", type=float, default=1.0, help="multiply every part's budget (tests)")
    p.add_argument("--no-trt", action="store_true", help="skip the TensorRT part (e)")
    p.add_argument("--model", default=None, help="parts (b)-(e): model directory [the demo extra's MiniLM]")
    p.add_argument("--data-dir", default=None, help="GLUE root with SST-2/ [$GLUE_DIR, else built-in rows]")
    p.add_argument(
        "--train-rows", type=int, default=1024, help="part (b): SST-2 training rows (default 1024)"
    )
    p.add_argument("--parity-atol", type=float, default=1e-3, help="part (b): CUDA vs ONNX fp32 logits atol")
    p.add_argument("--work-dir", default=None, help="keep the runs, exports and reports here [a temp dir]")
    p.add_argument("--simulate-failure", default=None, metavar="PART[:MODE]",
                   help="stub parts (no GPU); PART crashes, hangs or raises (crash|hang|error)")  # fmt: skip
    p.add_argument("--run-part", default=None, help=argparse.SUPPRESS)  # the child process of one part
    p.add_argument("--part-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--part-budget", type=float, default=None, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    opts.warmup = opts.warmup if opts.warmup is not None else (5 if opts.quick else 10)
    opts.repeats = opts.repeats if opts.repeats is not None else (7 if opts.quick else 20)
    opts.parts = [k for k in opts.parts.replace(",", "") if k.strip()]
    keys = [q.key for q in PARTS]
    unknown = sorted(set(opts.parts) - set(keys))
    if unknown:
        p.error(f"--parts: unknown part(s) {', '.join(unknown)}; choose from {', '.join(keys)}")
    opts.simulate = None
    if opts.simulate_failure:
        part, _, mode = opts.simulate_failure.partition(":")
        if part not in keys or (mode or "crash") not in ("crash", "hang", "error"):
            p.error("--simulate-failure: write PART[:crash|hang|error] with PART one of " + ", ".join(keys))
        opts.simulate = (part, mode or "crash")
    return opts


# ------------------------------------------------------------------------------------------------
# One part, in its own process


def simulated(key: str, opts: argparse.Namespace, rec: Recorder) -> None:
    """A stub part: two rows; the part named by --simulate-failure fails after its first row."""
    rec.append("rows", {"part": key, "row": 1})
    if opts.simulate and opts.simulate[0] == key:
        mode = opts.simulate[1]
        if mode == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif mode == "hang":
            time.sleep(3600)
        raise RuntimeError(f"simulated failure of part ({key}) after its first row")
    rec.append("rows", {"part": key, "row": 2})


def part_job(key: str, opts: argparse.Namespace) -> Callable[[Recorder, Deadline], None]:
    if opts.simulate:
        return lambda rec, d: simulated(key, opts, rec)
    import gpu_kernels
    import gpu_parts

    work = Path(opts.work_dir)
    opts.glue_root, opts.data_source = gpu_parts.data_root(opts.data_dir, work)
    if key == "e" and opts.no_trt:

        def no_trt(rec: Recorder, d: Deadline) -> None:
            raise Skip("--no-trt")

        return no_trt
    return {
        "a": lambda rec, d: gpu_kernels.part_kernels(opts, rec, d),
        "b": lambda rec, d: gpu_parts.part_train(work, opts, rec, d),
        "c": lambda rec, d: gpu_parts.part_bench_torch(work, opts, rec, d),
        "d": lambda rec, d: gpu_parts.part_ort_gpu(work, opts, rec, d),
        "e": lambda rec, d: gpu_parts.part_tensorrt(work, opts, rec, d),
    }[key]


def child_main(opts: argparse.Namespace) -> int:
    """Run one part; its Recorder file says pass/skip/fail, or stays ``running`` if this dies."""
    rec = Recorder(opts.part_out)
    deadline = Deadline(opts.part_budget or 60)
    try:
        part_job(opts.run_part, opts)(rec, deadline)
    except Skip as exc:
        rec.finish("skip", str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "skipped")
        return 0
    except Exception as exc:  # every failure of a part is reported; the driver goes on with the next
        rec.finish("fail", first_line(exc))
        return EXIT_FAILED
    rec.finish("pass")
    return 0


# ------------------------------------------------------------------------------------------------
# The driver


def run_part(part: Part, argv: Sequence[str], budget: float, work: Path) -> dict[str, Any]:
    """``part`` in a child process with ``budget`` seconds; its row for the report."""
    out = work / "parts" / f"{part.key}.json"
    out.unlink(missing_ok=True)
    row: dict[str, Any] = {
        "part": part.key,
        "name": part.name,
        "proves": part.proves,
        "budget_s": round(budget, 1),
    }
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--run-part", part.key,
           "--part-out", str(out), "--part-budget", str(budget), "--work-dir", str(work)]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(cmd, start_new_session=True)  # its own group: a kill takes its children too
    try:
        code: int | None = proc.wait(timeout=budget + KILL_GRACE_S)  # the child's deadline, then this
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    row["seconds"] = round(time.monotonic() - started, 1)
    try:
        result = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError):
        result = {"status": "running", "reason": None, "details": {}}
    row["details"] = result.get("details") or {}
    if code is None:
        row.update(status="fail", reason=f"ran past its budget of {budget:.0f} s and was killed")
    elif code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        row.update(status="fail", reason=f"crashed (signal {name})")
    elif result.get("status") in ("pass", "skip", "fail"):
        row.update(status=result["status"], reason=result.get("reason"))
    else:
        row.update(status="fail", reason=f"exited {code} without a result")
    if row["status"] == "pass" and row["seconds"] > budget:
        row.update(status="fail", reason=f"over its budget ({row['seconds']} s > {budget:.0f} s)")
    return row


def run(opts: argparse.Namespace, argv: Sequence[str], deadline: Deadline) -> dict[str, Any]:
    work = Path(opts.work_dir or tempfile.mkdtemp(prefix="nxm-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "tool": "nxm-deploy scripts/gpu_check.py",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "complete": False,
        "simulated": opts.simulate_failure,
        "quick": opts.quick,
        "pattern": "2:4",
        "deadline_s": opts.deadline_s,
        "environment": None if opts.simulate else environment(),
        "timing": {"warmup": opts.warmup, "repeats": opts.repeats, "statistic": "median ms per call"},
        "work_dir": str(work),
        "parts": [],
    }
    write_json(opts.out, report)
    for part in PARTS:
        if part.key not in opts.parts:
            report["parts"].append(
                {"part": part.key, "name": part.name, "status": "skip", "reason": "not in --parts"}
            )
            continue
        budget = min(part.budget_s * opts.budget_scale, deadline.left() - 5)
        if budget < min(5.0, part.budget_s * opts.budget_scale):  # the deadline has not this much left
            row = {"part": part.key, "name": part.name, "status": "skip",
                   "reason": f"no time left in the {opts.deadline_s:.0f} s deadline"}  # fmt: skip
        else:
            row = run_part(part, argv, budget, work)
        report["parts"].append(row)
        write_json(opts.out, report)  # after every part: a later crash or kill keeps this one
        reason = f" ({row['reason']})" if row.get("reason") else ""
        print(f"({part.key}) {part.name}: {row['status']}{reason}", flush=True)
    report["complete"] = True
    report["wall_seconds"] = round(opts.deadline_s - deadline.left(), 1)
    write_json(opts.out, report)
    return report


def print_summary(report: dict[str, Any]) -> None:
    from gpu_kernels import format_table

    env = report["environment"] or {}
    if env:
        print(
            f"GPU {env['gpu']}, torch {env['torch']}, CUDA {env['cuda']}, "
            f"TensorRT {env['tensorrt'] or 'absent'}"
        )
    kernels = next((p.get("details") or {} for p in report["parts"] if p["part"] == "a"), {})
    if kernels.get("gemm"):
        cols = ["model", "layer", "tokens", "dense_ms", "sparse_ms", "speedup"]
        print("\n(a) GEMM, fp16, speedup = dense / sparse\n" + format_table(kernels["gemm"], cols))
    if kernels.get("encoder"):
        cols = ["model", "batch", "seq", "dense_ms", "sparse_ms", "speedup", "max_abs_diff", "parity_ok"]
        print("\n(a) Encoder forward, fp16\n" + format_table(kernels["encoder"], cols))
    print()
    for p in report["parts"]:
        print(
            f"({p['part']}) {p['name']:<12} {p['status']:<4} {p.get('seconds', '-')} s", p.get("reason") or ""
        )


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()  # the deadline counts this process's own start-up
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(argv)
    if opts.run_part:
        return child_main(opts)
    if opts.plan:
        print(plan_text())
        return 0
    deadline = Deadline(opts.deadline_s - (time.monotonic() - started))
    if not opts.simulate:
        problem = gpu_problem()
        if problem:
            print(f"gpu_check: {problem}", file=sys.stderr)
            return EXIT_NO_GPU
    report = run(opts, argv, deadline)
    print_summary(report)
    print(f"\nwrote {opts.out} in {report['wall_seconds']} s")
    failed = [p["part"] for p in report["parts"] if p["status"] == "fail"]
    if failed:
        print(f"gpu_check: part(s) {', '.join(failed)} failed (see {opts.out})", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
