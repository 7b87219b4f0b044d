"""Part (a) of scripts/gpu_check.py, and the TensorRT GEMM of part (e): single GEMMs and whole
encoders, dense against 2:4, timed on the GPU.

(a) For MiniLM (hidden 384, FFN 1536) and BERT-base (768, 3072) linear shapes (Q/K/V and attention
    output ``[h, h]``, FFN in ``[4h, h]``, FFN out ``[h, 4h]``) at several token counts, fp16
    ``F.linear`` with the 2:4-projected weight dense vs the same weight as a semi-structured sparse
    tensor; then whole ``BertModel`` encoders (random weights, every encoder linear made 2:4 with
    ``nxm_deploy.nm.project`` along the input axis) dense vs sparse, the sparse output within
    ``--atol``/``--rtol`` of the masked-dense one. Which of PyTorch's kernels run (cuSPARSELt or
    CUTLASS) is the library's rule (``semi_structured_kernels``).
(e) One BERT-base FFN GEMM as an FP16 ONNX, built by the library's ``build_engine`` without and with
    the sparse-weights flag, and timed on a dedicated CUDA stream (TensorRT adds synchronisations
    to ``enqueueV3`` on the legacy default stream, which would pull the ratio toward 1).

Timing: warm-up, CUDA events around a calibrated number of calls (at least ~1 ms a sample), median
of ``--repeats`` samples.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from gpu_common import Deadline, Recorder, Skip, first_line

PATTERN = "2:4"


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


def time_cuda(fn: Callable[[], Any], warmup: int, repeats: int, stream: Any = None) -> float:
    """Median milliseconds per call of ``fn``, from CUDA events recorded on ``stream`` (the current
    stream by default) around a calibrated batch of calls."""
    stream = stream or torch.cuda.current_stream()
    for _ in range(warmup):
        fn()
    stream.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(stream)
    fn()
    stop.record(stream)
    stop.synchronize()
    inner = max(1, min(200, math.ceil(1.0 / max(start.elapsed_time(stop), 1e-3))))  # >= ~1 ms a sample
    samples = []
    for _ in range(repeats):
        start.record(stream)
        for _ in range(inner):
            fn()
        stop.record(stream)
        stop.synchronize()
        samples.append(start.elapsed_time(stop) / inner)
    return statistics.median(samples)


def two_four(w: torch.Tensor) -> torch.Tensor:
    """2:4 projection of a linear weight ``[out, in]`` along its input (reduction) axis."""
    from nxm_deploy import nm

    return nm.project(w, PATTERN, axis=1)


def choose_kernels(requested: str) -> str:
    """The semi-structured kernels to use: the library's rule for ``auto`` (``Skip`` where it
    refuses: sm_90+ without cuSPARSELt), else the one asked for."""
    from torch.sparse import SparseSemiStructuredTensor

    from nxm_deploy.errors import BackendUnavailableError
    from nxm_deploy.runtime.torch_session import semi_structured_kernels

    if requested == "auto":
        try:
            chosen = semi_structured_kernels(torch.cuda.get_device_capability(0),
                                             torch.backends.cusparselt.is_available())  # fmt: skip
        except BackendUnavailableError as exc:
            raise Skip(str(exc)) from None
        requested = (chosen or "CUTLASS").lower()
    SparseSemiStructuredTensor._FORCE_CUTLASS = requested == "cutlass"
    return requested


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


def encoder_linears(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """Every ``nn.Linear`` of the encoder blocks (Q, K, V, attention output, FFN in, FFN out)."""
    return [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]


def build_encoders(shape: ModelShape) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    """(masked-dense model, semi-structured sparse model, number of sparsified linears), fp16 on GPU."""
    from torch.sparse import to_sparse_semi_structured
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=shape.hidden, intermediate_size=shape.ffn, num_hidden_layers=shape.layers,
                        num_attention_heads=shape.heads, max_position_embeddings=512)  # fmt: skip
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


def compare_encoders(dense: torch.nn.Module, sparse: torch.nn.Module, batch: int, seq: int,
                     opts: Any) -> dict[str, Any]:  # fmt: skip
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


def part_kernels(opts: Any, rec: Recorder, deadline: Deadline) -> None:
    """(a): per-GEMM and whole-encoder dense vs 2:4 with PyTorch's semi-structured kernels. Every row
    is recorded as it is measured; a shape a kernel refuses is listed under ``skipped``."""
    rec.update("sparse_kernels", choose_kernels(opts.backend))
    budget = deadline.left()
    for case in gemm_cases(opts.quick):
        label = f"gemm {case.model} {case.layer} x{case.tokens}"
        if deadline.left() < budget * 0.6:  # keep most of the budget for the encoders
            rec.append("skipped", f"{label}: time budget")
            continue
        try:
            rec.append("gemm", run_gemm(case, opts.warmup, opts.repeats))
        except (RuntimeError, ValueError, NotImplementedError) as exc:  # a shape or dtype a kernel refuses
            rec.append("skipped", f"{label}: {first_line(exc, 200)}")
    for shape in MODELS:
        if deadline.left() < 20:
            rec.append("skipped", f"encoder {shape.name}: time budget")
            continue
        try:
            dense, sparse, n_linears = build_encoders(shape)
        except (RuntimeError, ValueError, NotImplementedError) as exc:
            rec.append("skipped", f"encoder {shape.name}: {first_line(exc, 200)}")
            continue
        for batch, seq in encoder_shapes(opts.quick):
            row: dict[str, Any] = {
                "model": shape.name,
                "batch": batch,
                "seq": seq,
                "sparse_linears": n_linears,
            }
            if deadline.left() < 10:
                rec.append("encoder", {**row, "skipped": "time budget"})
                continue
            rec.append("encoder", {**row, **compare_encoders(dense, sparse, batch, seq, opts)})
        del dense, sparse
        torch.cuda.empty_cache()
    bad = [r for r in rec.details.get("encoder", []) if r.get("parity_ok") is False]
    if bad:
        raise RuntimeError(f"{len(bad)} encoder output(s) differ from masked-dense beyond atol/rtol")
    if not rec.details.get("gemm") and not rec.details.get("encoder"):
        raise RuntimeError("no measurement completed: " + "; ".join(rec.details.get("skipped", [])[:3]))


# ------------------------------------------------------------------------------------------------
# (e) one GEMM through TensorRT, built by the library


def gemm_onnx(path: Path, case: GemmCase, w: torch.Tensor) -> Path:
    """An FP16 ONNX of ``y = x @ W.T``: MatMul with B = W.T ``[in, out]`` as an initializer (the 2:4
    groups run along B's axis 0, the reduction axis, as Polygraphy reads a MatMul)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    wt = numpy_helper.from_array(w.t().contiguous().cpu().numpy(), "w_t")  # (in, out), fp16
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w_t"], ["y"], name="gemm")],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["tokens", case.in_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["tokens", case.out_features])],
        [wt],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def tensorrt_gemm(case: GemmCase, work: Path, opts: Any, rec: Recorder) -> dict[str, Any]:
    """The GEMM built without and with the sparse-weights flag (``build_engine``), run by the library's
    ``TrtSession`` on its own stream, timed by events on that stream."""
    import numpy as np

    from nxm_deploy.export.trt import ShapeProfile, build_engine
    from nxm_deploy.runtime.trt_session import TrtSession

    folder = work / "trt-gemm"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    w = two_four(torch.randn(case.out_features, case.in_features, dtype=torch.float16, device="cuda"))
    onnx_path = gemm_onnx(folder / "gemm.onnx", case, w)
    shape = (case.tokens, case.in_features)
    profile = ShapeProfile(shape, shape, shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float16)
    result: dict[str, Any] = asdict(case)
    timings = {}
    for label, sparse in (("dense", False), ("sparse", True)):
        section = build_engine(onnx_path, folder / f"{label}.engine", ["x"], profile, "fp16",
                               log_path=folder / f"{label}.log", layer_info_path=folder / f"{label}.json",
                               sparse_weights=sparse)  # fmt: skip
        session = TrtSession(folder / f"{label}.engine", input_names=("x",), output="y", evidence=section)
        call = session.stage({"x": x}, sync=False)
        timings[label] = time_cuda(call, opts.warmup, opts.repeats, stream=call.stream)
        keys = ("build_seconds", "engine_precision", "sparse_weights_flag", "sparse_layers",
                "inspector_sparse_layers")  # fmt: skip
        result[label] = {k: section.get(k) for k in keys}
        rec.update("gemm", {**result, "timings_ms": dict(timings)})
    return {**result, **compare(timings["dense"], timings["sparse"])}


def gemm_case_for_trt() -> GemmCase:
    bert = MODELS[1]
    return GemmCase(bert.name, "ffn-in", 4096, bert.ffn, bert.hidden)


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
