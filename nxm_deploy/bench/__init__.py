"""Sparse export against dense export: latency per shape, dev accuracy, per-layer sparsity, a report.

    from nxm_deploy.bench import BenchConfig, bench
    result = bench(BenchConfig(dense="exp/dense", sparse="exp/admm", task="SST-2", out="reports/sst2"))

Modules: ``sources`` (what --dense/--sparse name, and the checks on them); ``backends`` (one runner
interface, and ONNX Runtime), ``torch_backend`` and ``trt_backend`` (PyTorch, TensorRT); ``latency``
(interleaved timing and its statistics); ``accuracy`` (full dev set); ``sparsity`` (per-layer
density); ``machine``; ``report`` and ``plots`` (the report directory); ``run`` (the orchestration).
report.json's schema: docs/bench.md.
"""

from nxm_deploy.bench.latency import TimingPlan
from nxm_deploy.bench.run import BenchConfig, BenchResult, bench, parse_sizes

__all__ = ["BenchConfig", "BenchResult", "TimingPlan", "bench", "parse_sizes"]
