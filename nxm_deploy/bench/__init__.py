"""``bench()``: a sparse export against a dense one on the same runtime: latency per shape, dev
accuracy, per-layer sparsity, one report directory.

    from nxm_deploy.bench import BenchConfig, bench
    result = bench(BenchConfig(dense="exp/dense", sparse="exp/admm", task="SST-2", out="reports/sst2"))

Modules: ``sources`` (what --dense/--sparse name, the checks on them, the session that runs each:
``nxm_deploy.runtime``'s, shared with ``Predictor``); ``latency`` (interleaved timing and its
statistics); ``accuracy`` (full dev set); ``layers`` (per-layer density and the proof that the
sparse model is sparse); ``machine``; ``report`` and ``plots`` (the report directory); ``run`` (the
orchestration). report.json's schema: docs/bench.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.bench.config import BenchConfig, parse_sizes
    from nxm_deploy.bench.latency import TimingPlan
    from nxm_deploy.bench.run import BenchResult, bench

__all__ = ["BenchConfig", "BenchResult", "TimingPlan", "bench", "parse_sizes"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BenchConfig": "nxm_deploy.bench.config",
        "BenchResult": "nxm_deploy.bench.run",
        "TimingPlan": "nxm_deploy.bench.latency",
        "bench": "nxm_deploy.bench.run",
        "parse_sizes": "nxm_deploy.bench.config",
    },
)
