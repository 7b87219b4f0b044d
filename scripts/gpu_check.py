"""The GPU path of nxm-deploy, proven in one call on one NVIDIA GPU (Ampere or later).

    PYTHONPATH=. python scripts/gpu_check.py --out gpu_check.json [--quick] [--parts a,b,c,d,e]
    python scripts/gpu_check.py --plan      # the parts and their budgets; exits 0 on any machine

Five parts, each with its own time budget (8 minutes in all), each reported as pass, fail or skip
with its reason, all in one JSON report (``--out``):

(a) kernels: for MiniLM (hidden 384, FFN 1536) and BERT-base (768, 3072) linear shapes (Q/K/V and
    attention output ``[h, h]``, FFN in ``[4h, h]``, FFN out ``[h, 4h]``) at several token counts, fp16
    ``F.linear`` with the 2:4-projected weight dense vs the same weight as ``to_sparse_semi_structured``;
    and whole ``BertModel`` encoders (random weights from configs, every encoder linear made 2:4 with
    ``nxm_deploy.nm.project`` along the input axis) dense vs sparse, the sparse output within
    ``--atol``/``--rtol`` of the masked-dense one;
(b) train: ``nxm-deploy train`` dense and ADMM (distilled from the dense run) of MiniLM on CUDA in bf16
    on SST-2 rows from ``--data-dir``/``$GLUE_DIR`` (else built-in sentences), ``check``, ``export``,
    and parity of PyTorch on CUDA against the ONNX model;
(c) bench-torch: ``nxm-deploy bench --backend torch`` of the two runs on CUDA: whole-model latency
    ratio and accuracy;
(d) ort-gpu: ONNX Runtime's CUDA and TensorRT providers (where onnxruntime-gpu imports): parity
    against its CPU provider, latency ratio and accuracy through ``bench --backend ort --ort-provider``;
(e) tensorrt: ``nxm-deploy export --engine trt`` (where TensorRT imports): the engine with sparse
    weights and the layers that picked sparse kernels; then one GEMM built without and with
    ``BuilderFlag.SPARSE_WEIGHTS``, timed.

Parts (b)-(e) live in ``scripts/gpu_parts.py`` and run the CLI as a user does. Only this project and
its dependencies are imported; nothing is downloaded (``HF_HUB_OFFLINE=1``; the model is the MiniLM of
the ``demo`` extra or ``--model DIR``). Timing: warm-up, CUDA events around a calibrated number of
calls, median of ``--repeats`` samples.

Exit codes: 0 every part passed or was skipped; 1 a part failed; 3 no usable CUDA GPU (one line).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

EXIT_FAILED = 1
EXIT_NO_GPU = 3
PATTERN = "2:4"


@dataclass(frozen=True)
class Part:
    key: str
    name: str
    budget_s: float
    proves: str


PARTS = (
    Part(
        "a", "kernels", 120, "per-GEMM and whole-encoder 2:4 vs dense, PyTorch semi-structured kernels (fp16)"
    ),
    Part("b", "train", 150, "train dense + ADMM (MiniLM, CUDA, bf16), check, export, parity on CUDA"),
    Part("c", "bench-torch", 60, "bench --backend torch on CUDA: whole-model latency ratio and accuracy"),
    Part("d", "ort-gpu", 90, "ONNX Runtime CUDA and TensorRT providers: parity, latency, accuracy"),
    Part("e", "tensorrt", 60, "TensorRT engine with sparse weights; the layers that picked sparse kernels"),
)


def plan_text() -> str:
    lines = [f"({p.key}) {p.name:<12} {p.budget_s:>4.0f} s  {p.proves}" for p in PARTS]
    total = sum(p.budget_s for p in PARTS)
    return "\n".join([*lines, f"total budget {total:.0f} s; without a CUDA GPU the check exits 3"])


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden: int
    ffn: int
    layers: int = 12
    heads: int = 12


MODELS = (ModelShape("minilm", 384, 1536), ModelShape("bert-base", 768, 3072))
TOKENS_FULL = (128, 1024, 4096, 16384)
TOKENS_QUICK = (128, 4096)
ENCODER_SHAPES_FULL = ((1, 128), (8, 128), (32, 128), (32, 512))
ENCODER_SHAPES_QUICK = ((8, 128), (32, 128))


@dataclass(frozen=True)
class GemmCase:
    """``y[tokens, out] = x[tokens, in] @ W[out, in].T`` for one linear layer of one model."""

    model: str
    layer: str
    tokens: int
    out_features: int
    in_features: int


def gemm_cases(quick: bool = False) -> list[GemmCase]:
    """The three distinct linear shapes of each model (Q/K/V equals attention-out) at each token count."""
    cases = []
    for m in MODELS:
        layers = (
            ("qkv/attn-out", m.hidden, m.hidden),
            ("ffn-in", m.ffn, m.hidden),
            ("ffn-out", m.hidden, m.ffn),
        )
        for tokens in TOKENS_QUICK if quick else TOKENS_FULL:
            cases += [GemmCase(m.name, layer, tokens, out_f, in_f) for layer, out_f, in_f in layers]
    return cases


def encoder_shapes(quick: bool = False) -> tuple[tuple[int, int], ...]:
    """(batch, sequence) shapes at which whole encoders are timed."""
    return ENCODER_SHAPES_QUICK if quick else ENCODER_SHAPES_FULL


def compare(dense_ms: float, sparse_ms: float) -> dict[str, float]:
    """``speedup`` is dense / sparse: above 1 the sparse kernel is faster."""
    return {
        "dense_ms": round(dense_ms, 4),
        "sparse_ms": round(sparse_ms, 4),
        "speedup": round(dense_ms / sparse_ms, 3) if sparse_ms > 0 else float("nan"),
    }


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain fixed-width table of ``columns`` over ``rows`` (missing cells print as '-')."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "-" if value is None else str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


class Deadline:
    """Remaining share of the time budget; sections ask before they start."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


# ------------------------------------------------------------------------------------------------
# GPU checks and timing


def gpu_problem() -> str | None:
    """One line saying why this machine cannot run the check, or ``None``."""
    if not torch.cuda.is_available():
        return (
            "no CUDA GPU is visible (torch.cuda.is_available() is False); run this on an NVIDIA GPU machine"
        )
    major, minor = torch.cuda.get_device_capability(0)
    if major < 8:
        name = torch.cuda.get_device_name(0)
        return (
            f"{name} (sm_{major}{minor}) has no sparse tensor cores: 2:4 kernels need sm_80 (Ampere) or newer"
        )
    return None


def time_cuda(fn: Callable[[], Any], warmup: int, repeats: int) -> float:
    """Median milliseconds per call of ``fn``, from CUDA events around a calibrated batch of calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    stop.record()
    torch.cuda.synchronize()
    inner = max(1, min(200, math.ceil(1.0 / max(start.elapsed_time(stop), 1e-3))))  # >= ~1 ms a sample
    samples = []
    for _ in range(repeats):
        start.record()
        for _ in range(inner):
            fn()
        stop.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(stop) / inner)
    return statistics.median(samples)


def choose_backend(requested: str) -> str:
    """``cusparselt`` when PyTorch has it (the default of ``to_sparse_semi_structured``), else CUTLASS."""
    from torch.sparse import SparseSemiStructuredTensor

    if requested == "auto":
        requested = "cusparselt" if torch.backends.cusparselt.is_available() else "cutlass"
    SparseSemiStructuredTensor._FORCE_CUTLASS = requested == "cutlass"
    return requested


def two_four(w: torch.Tensor) -> torch.Tensor:
    """2:4 projection of a linear weight ``[out, in]`` along its input (reduction) axis."""
    from nxm_deploy import nm

    return nm.project(w, PATTERN, axis=1)


# ------------------------------------------------------------------------------------------------
# (a) GEMMs


def run_gemm(case: GemmCase, warmup: int, repeats: int) -> dict[str, Any]:
    from torch.sparse import to_sparse_semi_structured

    x = torch.randn(case.tokens, case.in_features, dtype=torch.float16, device="cuda")
    w = two_four(torch.randn(case.out_features, case.in_features, dtype=torch.float16, device="cuda"))
    w_sparse = to_sparse_semi_structured(w)
    with torch.no_grad():
        dense_out = torch.nn.functional.linear(x, w)
        sparse_out = torch.nn.functional.linear(x, w_sparse)
        dense_ms = time_cuda(lambda: torch.nn.functional.linear(x, w), warmup, repeats)
        sparse_ms = time_cuda(lambda: torch.nn.functional.linear(x, w_sparse), warmup, repeats)
    diff = (sparse_out.float() - dense_out.float()).abs().max().item()
    return {**asdict(case), **compare(dense_ms, sparse_ms), "max_abs_diff": diff}


# ------------------------------------------------------------------------------------------------
# (b) Encoders


def encoder_linears(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """Every ``nn.Linear`` of the encoder blocks (Q, K, V, attention output, FFN in, FFN out)."""
    return [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]


def build_encoders(shape: ModelShape) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    """(masked-dense model, semi-structured sparse model, number of sparsified linears), fp16 on GPU."""
    from torch.sparse import to_sparse_semi_structured
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=shape.hidden,
        intermediate_size=shape.ffn,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        dense = BertModel(config).half().eval()
    linears = encoder_linears(dense)
    with torch.no_grad():
        for lin in linears:
            lin.weight.copy_(two_four(lin.weight))
    sparse = copy.deepcopy(dense)
    for lin in encoder_linears(sparse):
        lin.weight = torch.nn.Parameter(to_sparse_semi_structured(lin.weight.detach()), requires_grad=False)
        lin.register_forward_pre_hook(_contiguous_input)  # the sparse linear views its input as 2-D
    return dense, sparse, len(linears)


def _contiguous_input(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(), *args[1:])


def compare_encoders(
    dense: torch.nn.Module, sparse: torch.nn.Module, batch: int, seq: int, opts: argparse.Namespace
) -> dict[str, Any]:
    """Time both models at one (batch, seq) and check the sparse output against the masked-dense one."""
    ids = torch.randint(0, 30522, (batch, seq), device="cuda")
    mask = torch.ones(batch, seq, dtype=torch.long, device="cuda")

    def forward(model: torch.nn.Module) -> torch.Tensor:
        return model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, H)

    with torch.no_grad():
        ref, out = forward(dense).float(), forward(sparse).float()
        dense_ms = time_cuda(lambda: forward(dense), opts.warmup, opts.repeats)
        sparse_ms = time_cuda(lambda: forward(sparse), opts.warmup, opts.repeats)
    return {
        **compare(dense_ms, sparse_ms),
        "max_abs_diff": (out - ref).abs().max().item(),
        "atol": opts.atol,
        "rtol": opts.rtol,
        "parity_ok": bool(torch.allclose(out, ref, atol=opts.atol, rtol=opts.rtol)),
    }


def run_encoder(
    shape: ModelShape, batch_seq: Sequence[tuple[int, int]], opts: argparse.Namespace, deadline: Deadline
) -> list[dict[str, Any]]:
    dense, sparse, n_linears = build_encoders(shape)
    rows: list[dict[str, Any]] = []
    for batch, seq in batch_seq:
        row: dict[str, Any] = {"model": shape.name, "batch": batch, "seq": seq, "sparse_linears": n_linears}
        if deadline.left() < 10:
            rows.append({**row, "skipped": "time budget"})
            continue
        rows.append({**row, **compare_encoders(dense, sparse, batch, seq, opts)})
    return rows


# ------------------------------------------------------------------------------------------------
# (c) TensorRT (optional)


def tensorrt_absent_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (the `tensorrt` package comes from NVIDIA's own package index)"
    except OSError as exc:
        return f"TensorRT is installed but its libraries fail to load ({exc})"
    return None


def _trt_logger(trt: Any, lines: list[str]) -> Any:
    """A ``trt.ILogger`` that keeps every message, verbose included, in ``lines``."""

    class Capture(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            lines.append(f"[{severity}] {msg}")

    return Capture()


def _trt_gemm_engine(trt: Any, logger: Any, case: GemmCase, w: Any, sparse_flag: bool) -> Any:
    """Serialized engine for ``y = x @ W.T`` with W a constant (fp16, strongly typed network)."""
    builder = trt.Builder(logger)
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))  # TRT 11: typed anyway
    x = network.add_input("x", trt.float16, (case.tokens, case.in_features))
    weight = network.add_constant((case.out_features, case.in_features), trt.Weights(w))
    y = network.add_matrix_multiply(
        x, trt.MatrixOperation.NONE, weight.get_output(0), trt.MatrixOperation.TRANSPOSE
    )
    y.get_output(0).name = "y"
    network.mark_output(y.get_output(0))
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if sparse_flag:
        config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT returned no engine")
    return plan


def _trt_time(
    trt: Any, logger: Any, plan: Any, case: GemmCase, opts: argparse.Namespace
) -> tuple[float, Any]:
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    x = torch.randn(case.tokens, case.in_features, dtype=torch.float16, device="cuda")
    y = torch.empty(case.tokens, case.out_features, dtype=torch.float16, device="cuda")
    context.set_tensor_address("x", x.data_ptr())
    context.set_tensor_address("y", y.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream
    ms = time_cuda(lambda: context.execute_async_v3(stream), opts.warmup, opts.repeats)
    info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    return ms, info


def run_tensorrt(case: GemmCase, opts: argparse.Namespace) -> dict[str, Any]:
    import tensorrt as trt

    from nxm_deploy.export.trt import parse_builder_log, parse_inspector_json  # stdlib-only module

    w = two_four(torch.randn(case.out_features, case.in_features, dtype=torch.float16, device="cuda"))
    w_np = w.cpu().numpy()  # must outlive the builds
    result: dict[str, Any] = {**asdict(case), "tensorrt_version": trt.__version__}
    timings = {}
    for label, flag in (("dense", False), ("sparse", True)):
        lines: list[str] = []
        logger = _trt_logger(trt, lines)
        start = time.perf_counter()
        plan = _trt_gemm_engine(trt, logger, case, w_np, flag)
        result[f"{label}_build_s"] = round(time.perf_counter() - start, 2)
        timings[label], info = _trt_time(trt, logger, plan, case, opts)
        result[f"{label}_tactics"] = [layer["tactic"] for layer in parse_inspector_json(info)]
        if flag:
            result.update(parse_builder_log("\n".join(lines)))
    return {**result, **compare(timings["dense"], timings["sparse"])}


# ------------------------------------------------------------------------------------------------
# Driver


def environment(backend: str) -> dict[str, Any]:
    import transformers

    major, minor = torch.cuda.get_device_capability(0)
    trt_reason = tensorrt_absent_reason()
    trt_version = None
    if trt_reason is None:
        import tensorrt

        trt_version = tensorrt.__version__
    return {
        "gpu": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cusparselt": torch.backends.cusparselt.version(),
        "sparse_backend": backend,
        "transformers": transformers.__version__,
        "tensorrt": trt_version,
        "tensorrt_absent_reason": trt_reason,
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
    p.add_argument("--backend", choices=("auto", "cusparselt", "cutlass"), default="auto")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per timing (default 10, quick 5)")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed samples, median kept (default 20, quick 7)"
    )
    p.add_argument("--atol", type=float, default=3e-2, help="fp16 parity: absolute tolerance (default 3e-2)")
    p.add_argument("--rtol", type=float, default=3e-2, help="fp16 parity: relative tolerance (default 3e-2)")
    p.add_argument("--budget-s", type=float, default=None, help="part (a)'s budget in seconds (default 120)")
    p.add_argument("--no-trt", action="store_true", help="skip the TensorRT part (e)")
    p.add_argument("--model", default=None, help="parts (b)-(e): model directory [the demo extra's MiniLM]")
    p.add_argument("--data-dir", default=None, help="GLUE root with SST-2/ [$GLUE_DIR, else built-in rows]")
    p.add_argument(
        "--train-rows", type=int, default=1024, help="part (b): SST-2 training rows (default 1024)"
    )
    p.add_argument("--parity-atol", type=float, default=1e-3, help="part (b): CUDA vs ONNX fp32 logits atol")
    p.add_argument("--work-dir", default=None, help="keep the runs, exports and reports here [a temp dir]")
    opts = p.parse_args(argv)
    opts.warmup = opts.warmup if opts.warmup is not None else (5 if opts.quick else 10)
    opts.repeats = opts.repeats if opts.repeats is not None else (7 if opts.quick else 20)
    opts.budget_s = opts.budget_s if opts.budget_s is not None else PARTS[0].budget_s
    opts.parts = [k for k in opts.parts.replace(",", "") if k.strip()]
    unknown = sorted(set(opts.parts) - {q.key for q in PARTS})
    if unknown:
        p.error(
            f"--parts: unknown part(s) {', '.join(unknown)}; choose from {', '.join(q.key for q in PARTS)}"
        )
    return opts


class Skip(Exception):
    """A part that cannot run on this machine; the message says why."""


def _guarded(label: str, skipped: list[str], fn: Callable[..., Any], *args: Any) -> Any:
    """Run one measurement; a kernel that refuses a shape or dtype is reported, not fatal."""
    try:
        return fn(*args)
    except Exception as exc:  # a benchmark reports every failure and goes on with the other shapes
        first_line = (str(exc).splitlines() or [""])[0][:200]
        skipped.append(f"{label}: {type(exc).__name__}: {first_line}")
        return None


def part_kernels(opts: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    """(a): per-GEMM and whole-encoder dense vs 2:4 with PyTorch's semi-structured kernels."""
    budget = deadline.left()
    result: dict[str, Any] = {"gemm": [], "encoder": [], "skipped": []}
    skipped = result["skipped"]
    for case in gemm_cases(opts.quick):
        label = f"gemm {case.model} {case.layer} x{case.tokens}"
        if deadline.left() < budget * 0.6:  # keep most of the budget for the encoders
            skipped.append(f"{label}: time budget")
            continue
        row = _guarded(label, skipped, run_gemm, case, opts.warmup, opts.repeats)
        if row:
            result["gemm"].append(row)
    for shape in MODELS:
        if deadline.left() < 20:
            skipped.append(f"encoder {shape.name}: time budget")
            continue
        shapes = encoder_shapes(opts.quick)
        result["encoder"] += (
            _guarded(f"encoder {shape.name}", skipped, run_encoder, shape, shapes, opts, deadline) or []
        )
    bad = [r for r in result["encoder"] if r.get("parity_ok") is False]
    if bad:
        raise RuntimeError(f"{len(bad)} encoder output(s) differ from masked-dense beyond atol/rtol")
    if not result["gemm"] and not result["encoder"]:
        raise RuntimeError("no measurement completed: " + "; ".join(skipped[:3]))
    return result


def tensorrt_gemm(opts: argparse.Namespace) -> dict[str, Any]:
    bert = MODELS[1]
    return run_tensorrt(GemmCase(bert.name, "ffn-in", 4096, bert.ffn, bert.hidden), opts)


def _parts_module() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu_parts

    return gpu_parts


def run_part(part: Part, fn: Callable[[Deadline], dict[str, Any]], budget: float) -> dict[str, Any]:
    """One part, timed: ``pass`` with its details, ``skip`` with the reason, or ``fail`` with the
    first line of what went wrong."""
    deadline = Deadline(budget)
    started = time.monotonic()
    row: dict[str, Any] = {"part": part.key, "name": part.name, "proves": part.proves, "budget_s": budget}
    try:
        row.update(status="pass", reason=None, details=fn(deadline))
    except Exception as exc:  # every failure of a part is reported, and the next part runs
        skip = type(exc).__name__ == "Skip"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        row.update(
            status="skip" if skip else "fail", reason=first if skip else f"{type(exc).__name__}: {first}"
        )
    row["seconds"] = round(time.monotonic() - started, 1)
    if row["status"] == "pass" and row["seconds"] > budget:
        row.update(status="fail", reason=f"over its budget ({row['seconds']} s > {budget:.0f} s)")
    return row


def run(opts: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    backend = choose_backend(opts.backend)
    parts = _parts_module()
    work = Path(opts.work_dir or tempfile.mkdtemp(prefix="nxm-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    opts.glue_root, opts.data_source = parts.data_root(opts.data_dir, work)

    def no_trt(_: Deadline) -> dict[str, Any]:
        raise Skip("--no-trt")

    jobs: dict[str, Callable[[Deadline], dict[str, Any]]] = {
        "a": lambda d: part_kernels(opts, d),
        "b": lambda d: parts.part_train(work, opts, d),
        "c": lambda d: parts.part_bench_torch(work, opts, d),
        "d": lambda d: parts.part_ort_gpu(work, opts, d),
        "e": no_trt
        if opts.no_trt
        else lambda d: parts.part_tensorrt(work, opts, d, lambda: tensorrt_gemm(opts)),
    }
    results = []
    for part in PARTS:
        if part.key not in opts.parts:
            results.append(
                {"part": part.key, "name": part.name, "status": "skip", "reason": "not in --parts"}
            )
            continue
        budget = opts.budget_s if part.key == "a" else part.budget_s
        results.append(run_part(part, jobs[part.key], budget))
        print(f"({part.key}) {part.name}: {results[-1]['status']}" + (
            f" ({results[-1]['reason']})" if results[-1].get("reason") else ""), flush=True)  # fmt: skip
    return {
        "tool": "nxm-deploy scripts/gpu_check.py",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": opts.quick,
        "pattern": PATTERN,
        "environment": environment(backend),
        "timing": {"warmup": opts.warmup, "repeats": opts.repeats, "statistic": "median ms per call"},
        "work_dir": str(work),
        "data": opts.data_source,
        "parts": results,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def print_summary(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"GPU {env['gpu']} (sm {env['compute_capability']}), torch {env['torch']}, CUDA {env['cuda']}, "
        f"sparse backend {env['sparse_backend']}, TensorRT {env['tensorrt'] or 'absent'}"
    )
    by_key = {p["part"]: p for p in report["parts"]}
    kernels = (by_key.get("a") or {}).get("details") or {}
    if kernels:
        cols = ["model", "layer", "tokens", "dense_ms", "sparse_ms", "speedup"]
        print("\n(a) GEMM, fp16, speedup = dense / sparse\n" + format_table(kernels["gemm"], cols))
        cols = ["model", "batch", "seq", "dense_ms", "sparse_ms", "speedup", "max_abs_diff", "parity_ok"]
        print("\n(a) Encoder forward, fp16\n" + format_table(kernels["encoder"], cols))
    print()
    for p in report["parts"]:
        print(
            f"({p['part']}) {p['name']:<12} {p['status']:<4} {p.get('seconds', '-')} s",
            p.get("reason") or "",
        )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.plan:
        print(plan_text())
        return 0
    problem = gpu_problem()
    if problem:
        print(f"gpu_check: {problem}", file=sys.stderr)
        return EXIT_NO_GPU
    report = run(opts)
    write_json(opts.out, report)
    print_summary(report)
    print(f"\nwrote {opts.out} in {report['wall_seconds']} s")
    failed = [p["part"] for p in report["parts"] if p["status"] == "fail"]
    if failed:
        print(f"gpu_check: part(s) {', '.join(failed)} failed (see {opts.out})", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
