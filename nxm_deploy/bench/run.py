"""Dense export vs sparse export: latency per shape, dev accuracy, per-layer sparsity, one report.

    nxm-deploy bench --dense exports/sst2-dense --sparse exports/sst2-admm --task SST-2 --out reports/sst2

    result = bench(BenchConfig(dense="exports/sst2-dense", sparse="exports/sst2-admm", task="SST-2",
                               out="reports/sst2"))
    result.report["latency"]["shapes"][0]["ratio"]

Steps: read both directories and refuse a wrong pairing (``sources``: task, roles, tokenizer); check
the weights of both (``layers``: the sparse one must hold its pattern); open one session per model
(``nxm_deploy.runtime``'s, the ones ``Predictor`` uses); score the full dev set through each
(``accuracy``); time every batch size x sequence length with the two models interleaved
(``latency``); write report.json, report.md and the plots (``report``, ``plots``) into a directory
built aside and renamed into place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.bench import accuracy, also, latency, layers, sources
from nxm_deploy.bench.config import BenchConfig
from nxm_deploy.bench.machine import library_versions, machine_info
from nxm_deploy.bench.report import write_report_dir
from nxm_deploy.bench.rows import bench_rows
from nxm_deploy.data.encode import fixed_shape_batch
from nxm_deploy.errors import Given, UserError
from nxm_deploy.manifest import Provenance, ReportManifest
from nxm_deploy.outputs import check_out_path, prepare_out
from nxm_deploy.runtime.encoding import Encoded, TextEncoder
from nxm_deploy.runtime.ort_providers import ort_providers
from nxm_deploy.runtime.session import Session, require_tensorrt
from nxm_deploy.runtime.torch_session import torch_threads

__all__ = ["BenchConfig", "BenchResult", "bench"]

log = logging.getLogger("nxm_deploy.bench")

_ROLES = ("dense", "sparse")


@dataclass(frozen=True)
class BenchResult:
    out: Path
    report: dict[str, Any]


def _refuse_out(cfg: BenchConfig) -> Path:
    out = check_out_path(cfg.out)  # "" is not "."
    for given in (cfg.dense, cfg.sparse, *(path for _, path in cfg.also)):
        p = Path(given).resolve()
        if out.resolve() == p or out.resolve() in p.parents:
            raise UserError.naming(
                "{0} {out} would replace {given}; choose another path", "out", out=out, given=given
            )
    return prepare_out(out, cfg.overwrite)  # a safe path, and only the tool's files replaced


def _tokenizer_dir(source: sources.ModelSource, backend: str) -> Path:
    if backend == "torch" and source.run_dir is not None:
        return source.run_dir
    return source.path


def _check_position_limit(cfg: BenchConfig, tokenizer: Any, models: dict[str, sources.ModelSource]) -> None:
    """Refuse, before any work, a ``seq_lens`` longer than the tokenizer or any model takes (the model's
    position embeddings, as its export recorded them)."""
    longest = cfg.seq_lens[-1]
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000 and longest > limit:
        raise UserError.naming(
            "{0} {longest} exceeds the tokenizer's limit of {limit} tokens",
            "seq_lens",
            longest=longest,
            limit=limit,
        )
    for source in models.values():
        limit = source.position_limit()
        if limit is not None and longest > limit:
            raise UserError.naming(
                "{0} {longest} exceeds the position limit of {label} ({limit} tokens); "
                "pass {0} up to {limit}",
                "seq_lens",
                longest=longest,
                label=source.label,
                limit=limit,
            )


def _accuracy(
    cfg: BenchConfig,
    sessions: dict[str, Session],
    models: dict[str, sources.ModelSource],
    tokenizer: Any,
    dev: Any,
) -> tuple[dict[str, Any], dict[str, accuracy.AccuracyResult]]:
    """Score the full dev set through each session (``--also`` models too); the ``accuracy`` section of
    the report (dense and sparse), and every model's result."""
    task = dev.task
    results: dict[str, accuracy.AccuracyResult] = {}
    lengths: dict[str, int] = {}
    cache: dict[tuple[int, tuple[str, ...]], tuple[TextEncoder, Encoded]] = {}
    for role in sessions:
        session = sessions[role]
        max_len = models[role].max_seq_len or 128
        if session.limits:
            max_len = min(max_len, session.limits[1][1])
        lengths[role] = max_len
        key = (max_len, session.input_names)
        if key not in cache:
            encoder = TextEncoder(tokenizer, session.input_names, max_len)
            cache[key] = encoder, encoder.encode(dev.texts_a, dev.texts_b)
        encoder, encoded = cache[key]
        log.info("accuracy: %s model over %d %s dev rows", role, len(dev), task.name)
        results[role] = accuracy.evaluate(session, encoder, encoded, task, dev.labels, cfg.eval_batch_size)
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in results[role].metrics.items())
        log.info("accuracy: %s %s (%.1f s)", role, metrics, results[role].seconds)
    dense, sparse = results["dense"], results["sparse"]
    section = {
        "split": dev.name,
        "source": dev.source,
        "examples": len(dev),
        "batch_size": cfg.eval_batch_size,
        "max_seq_len": {r: lengths[r] for r in _ROLES},
        "order": "rows sorted by token count, batched, each batch padded to its longest row",
        "main_metric": task.main_metric,
        "dense": dense.to_json(),
        "sparse": sparse.to_json(),
        "difference": {k: sparse.metrics[k] - dense.metrics[k] for k in dense.metrics},
        "main_difference": sparse.main - dense.main,
        "agreement": accuracy.agreement(task, dense.logits, sparse.logits),
    }
    return section, results


def _latency(
    cfg: BenchConfig, sessions: dict[str, Session], tokenizer: Any, dev: Any
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Time every (batch, sequence) shape, both models interleaved; the ``latency`` section, and each
    ``--also`` model's shapes (timed in pairs with the dense model)."""
    shapes = []
    extra: dict[str, list[dict[str, Any]]] = {name: [] for name in sessions if name not in _ROLES}
    for batch in cfg.batch_sizes:
        for seq in cfg.seq_lens:
            enc = fixed_shape_batch(tokenizer, dev.texts_a, dev.texts_b, batch, seq)
            feed = {k: v.numpy() for k, v in enc.items()}  # each (batch, seq) int64
            for session in sessions.values():
                session.check_shape(batch, seq)
            calls = {role: session.stage(feed) for role, session in sessions.items()}
            pair = latency.measure_pair(calls["dense"], calls["sparse"], cfg.plan)
            row = {
                "batch": batch,
                "seq_len": seq,
                "real_token_fraction": float(np.mean(feed["attention_mask"])),
                **latency.shape_summary(pair, batch),
            }
            shapes.append(row)
            log.info(
                "latency %dx%d: dense %.2f ms, sparse %.2f ms (medians of %d pairs), ratio %.3f",
                batch,
                seq,
                row["dense"]["median_ms"],
                row["sparse"]["median_ms"],
                row["dense"]["n"],
                row["ratio"],
            )
            for name, rows in extra.items():
                rows.append(
                    also.time_against_dense(
                        calls["dense"], calls[name], cfg.plan, batch, seq, row["real_token_fraction"]
                    )
                )
                log.info("latency %dx%d: %s/dense ratio %.3f", batch, seq, name, rows[-1]["ratio"])
    section = {
        "method": {
            "plan": cfg.plan.to_json(),
            "order": "pairs alternate: dense then sparse, sparse then dense, ...",
            "timer": "time.perf_counter_ns around one blocking call (CUDA: synchronised inside the call)",
            "percentiles": "numpy.percentile, linear interpolation",
            "throughput": "batch / median latency, sequences per second",
            "inputs": "the first B dev rows (cycled if fewer), tokenized and padded or truncated to exactly "
            "S tokens; tokenization and host-to-device copies are not timed",
        },
        "shapes": shapes,
        "summary": latency.ratio_summary(shapes),
    }
    return section, extra


def _backend_section(cfg: BenchConfig, sessions: dict[str, Session]) -> dict[str, Any]:
    info = {role: sessions[role].info() for role in _ROLES}
    sparse = info["sparse"]
    keys = ("runtime", "version", "provider", "device", "precision", "threads")
    return {
        "name": cfg.backend,
        **{k: sparse.get(k) for k in keys},
        "threads_requested": cfg.threads,
        "sparse_kernels": bool(sparse["sparse_kernels"]),
        "sparse_detail": sparse["sparse_detail"],
        "per_model": info,
    }


def engine_caches(models: dict[str, Any]) -> dict[str, Path]:
    """The TensorRT provider's engine-cache folder of each model (by role); refuses two roles that
    would share one, which only byte-identical models do: bench would time one engine against itself."""
    from nxm_deploy.runtime.ort_session import trt_engine_cache

    caches = {role: trt_engine_cache(source.onnx_path) for role, source in models.items()}
    seen: dict[Path, str] = {}
    for role, folder in caches.items():
        if folder in seen:
            raise UserError.naming(
                "{first} and {second} hold the same model.onnx (byte for byte: {name}); pass the export "
                "of the other model",
                first=sources.given(seen[folder], ""),
                second=sources.given(models[role].role, ""),
                name=folder.name,
            )
        seen[folder] = models[role].role
    return caches


def bench(cfg: BenchConfig) -> BenchResult:
    """Run the comparison and write the report directory ``cfg.out``; see the module docstring."""
    from nxm_deploy.models import load_tokenizer

    start = time.perf_counter()
    out = _refuse_out(cfg)
    if cfg.backend == "trt":
        require_tensorrt(Given("backend", "trt"))
    if cfg.backend == "ort":
        ort_providers(cfg.ort_provider)  # one line, before any work, when this ONNX Runtime lacks it
    models = {role: sources.resolve_source(getattr(cfg, role), role, cfg.backend) for role in _ROLES}
    task, dev = bench_rows(cfg, models)  # GLUE --task, or own data (--data or what the runs recorded)
    taken = [models[r].path for r in _ROLES]
    models.update(also.resolve_also(cfg.also, cfg.backend, task.name, taken))
    tokenizers = {role: load_tokenizer(_tokenizer_dir(models[role], cfg.backend)) for role in models}
    for role in models:
        if role != "dense":
            fingerprint = sources.check_same_tokenizer(tokenizers["dense"], tokenizers[role], dev.texts_a,
                                                       dev.texts_b, models[role].label)  # fmt: skip
    tokenizer = tokenizers["dense"]
    _check_position_limit(cfg, tokenizer, models)

    pattern = models["sparse"].pattern
    assert pattern is not None  # check_roles refused a dense --sparse
    log.info("checking the %s pattern of both models", pattern)
    checks = {role: layers.weight_check(models[role], pattern, cfg.backend) for role in models}
    for role in models:
        if models[role].pattern is not None:
            layers.require_sparse(models[role], checks[role])

    if cfg.backend == "ort" and cfg.ort_provider == "tensorrt":
        engine_caches(models)  # one engine per model: never the dense one's for the sparse model
    with torch_threads(cfg.threads):
        log.info("opening both models on %s", cfg.backend)
        sessions = {
            role: sources.open_source(models[role], cfg.backend, tokenizer, cfg.threads, cfg.ort_provider)
            for role in models
        }
        backend = _backend_section(cfg, sessions)
        acc, results = _accuracy(cfg, sessions, models, tokenizer, dev)
        lat, extra = _latency(cfg, sessions, tokenizer, dev)

    notes = []
    if not backend["sparse_kernels"]:
        notes.append(backend["sparse_detail"])
    manifest = ReportManifest(
        task=task.name,
        provenance=Provenance.here(),
        backend=backend,
        models={role: models[role].describe() for role in _ROLES},
        tokenizer=fingerprint,
        latency=lat,
        accuracy=acc,
        sparsity=layers.sparsity_section(checks["dense"], checks["sparse"], models["sparse"]),
        also=tuple(
            also.also_entry(
                name,
                models[name],
                task,
                results[name],
                results["dense"],
                shapes,
                layers.weights_summary(checks[name], models[name]),
            )
            for name, shapes in extra.items()
        ),
        machine=machine_info(cfg.threads),
        versions=library_versions(),
        notes=tuple(notes),
        wall_time_s=round(time.perf_counter() - start, 1),
    )
    report = write_report_dir(manifest, out, cfg.overwrite).to_json()
    log.info("wrote %s", out)
    return BenchResult(out, report)
