"""Interleaved latency measurement of two models on one input, and its statistics.

    pair = measure_pair(dense_call, sparse_call, TimingPlan(warmup=3, repeats=20))
    shape_summary(pair, batch=8)  # medians, p90, p99, throughput, sparse/dense ratio

Protocol (nanoGPT's ``bench.py`` habit: warm up, then time between synchronisations):

1. Warm-up: ``warmup`` untimed calls of each model, alternating, so that both have allocated their
   buffers, picked their kernels and filled the caches before any sample counts.
2. Timed pairs: pair ``i`` times one call of each model, back to back. Even pairs run dense first,
   odd pairs sparse first (the order alternates, "ABBA"), so a slow drift of the machine (clock
   boost, a neighbour's load) and any first-of-a-pair effect fall on both models alike.
3. Stop after at least ``repeats`` pairs *and* ``min_time_s`` seconds of timed pairs (fast shapes get
   more samples), or once ``max_time_s`` has passed with at least ``MIN_PAIRS`` pairs (slow shapes stay
   affordable).

Each sample is ``time.perf_counter_ns()`` around one call. The calls block until the result is ready
(ONNX Runtime on CPU returns finished outputs; the CUDA backends synchronise their stream inside the
call), so a sample is the wall time of one inference, tokenization and host/device copies excluded.

Statistics per model: median, p90 and p99 (numpy's default linear interpolation between order
statistics; with fewer than 100 samples p99 lies between the two slowest), mean, standard deviation,
min, max, and throughput = batch size / median (sequences per second). Per shape: ``ratio`` =
sparse median / dense median (below 1.0: the sparse model was faster), and the paired ratios
``sparse_i / dense_i`` of the pairs (median and quartiles): the spread of the ratio within one run.
Whether the difference is more than noise: a two-sided sign test over the pairs (under "no difference"
each pair is equally likely to favour either model; ``p_value`` is the exact binomial probability of a
split at least as lopsided; ties are dropped). A shape counts as faster or slower at ``ALPHA`` = 0.05.
With fewer than 6 pairs no split can reach 0.05, so slow shapes need more pairs to show a difference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np

from nxm_deploy.errors import UserError

__all__ = [
    "ALPHA",
    "MIN_PAIRS",
    "PairTiming",
    "TimingPlan",
    "measure_pair",
    "ratio_summary",
    "shape_summary",
    "sign_test",
    "summarize",
]

MIN_PAIRS = 3
"""Fewest timed pairs per shape, even when ``max_time_s`` has run out."""
ALPHA = 0.05
"""Significance level of the sign test."""


@dataclass(frozen=True)
class TimingPlan:
    """How many calls to make per shape. Defaults keep a MiniLM bench on 1,8,32 x 32,128 at about two
    minutes on two CPU cores (see docs/bench.md)."""

    warmup: int = 3
    repeats: int = 30
    min_time_s: float = 1.0
    max_time_s: float = 15.0

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise UserError.naming("{0} must be 0 or more, got {value}", "warmup", value=self.warmup)
        if self.repeats < MIN_PAIRS:
            raise UserError.naming(
                "{0} must be at least {low}, got {value}", "repeats", low=MIN_PAIRS, value=self.repeats
            )
        for param, value in (("min_time_s", self.min_time_s), ("max_time_s", self.max_time_s)):
            if not math.isfinite(value):
                raise UserError.naming("{0} must be a finite number, got {value}", param, value=value)
        times = {"low": self.min_time_s, "high": self.max_time_s}
        if self.min_time_s < 0 or self.max_time_s <= 0:
            raise UserError.naming(
                "{0} and {1} must be positive, got {low} and {high}", "min_time_s", "max_time_s", **times
            )
        if self.max_time_s < self.min_time_s:
            raise UserError.naming("{1} {high} is below {0} {low}", "min_time_s", "max_time_s", **times)

    def to_json(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "repeats": self.repeats,
            "min_time_s": self.min_time_s,
            "max_time_s": self.max_time_s,
            "min_pairs": MIN_PAIRS,
        }


@dataclass(frozen=True)
class PairTiming:
    """Seconds per call of each model; ``dense_s[i]`` and ``sparse_s[i]`` were timed back to back."""

    dense_s: list[float]
    sparse_s: list[float]
    wall_s: float


def measure_pair(dense: Callable[[], Any], sparse: Callable[[], Any], plan: TimingPlan) -> PairTiming:
    """Warm up both calls, then time them in alternating order (see the module docstring)."""
    for _ in range(plan.warmup):
        dense()
        sparse()
    dense_s: list[float] = []
    sparse_s: list[float] = []
    start = time.perf_counter()
    while True:
        order = ((dense, dense_s), (sparse, sparse_s))
        for call, samples in order if len(dense_s) % 2 == 0 else reversed(order):
            t0 = time.perf_counter_ns()
            call()
            samples.append((time.perf_counter_ns() - t0) * 1e-9)
        pairs, elapsed = len(dense_s), time.perf_counter() - start
        if pairs >= plan.repeats and elapsed >= plan.min_time_s:
            break
        if elapsed >= plan.max_time_s and pairs >= MIN_PAIRS:
            break
    return PairTiming(dense_s, sparse_s, time.perf_counter() - start)


def summarize(samples_s: Sequence[float], batch: int) -> dict[str, Any]:
    """Latency statistics in milliseconds, and throughput in sequences per second."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3  # (n,)
    if ms.size == 0:
        raise ValueError("no latency samples")
    median = float(np.median(ms))
    return {
        "n": int(ms.size),
        "median_ms": median,
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "throughput_seq_per_s": batch / (median * 1e-3) if median > 0 else math.inf,
    }


def sign_test(dense_s: Sequence[float], sparse_s: Sequence[float]) -> dict[str, Any]:
    """Two-sided exact sign test of the pairs: how many favour the sparse model, and the p-value."""
    faster = sum(1 for d, s in zip(dense_s, sparse_s, strict=True) if s < d)
    slower = sum(1 for d, s in zip(dense_s, sparse_s, strict=True) if s > d)
    n = faster + slower
    tail = sum(comb(n, i) for i in range(min(faster, slower) + 1))
    p = min(1.0, 2 * tail / 2**n) if n else 1.0
    return {"sparse_faster_pairs": faster, "sparse_slower_pairs": slower, "p_value": p}


def shape_summary(pair: PairTiming, batch: int) -> dict[str, Any]:
    """``dense`` and ``sparse`` statistics, ``ratio`` (of medians) and the paired ratios."""
    dense, sparse = summarize(pair.dense_s, batch), summarize(pair.sparse_s, batch)
    paired = np.asarray(pair.sparse_s) / np.asarray(pair.dense_s)  # (pairs,)
    return {
        "dense": dense,
        "sparse": sparse,
        "ratio": sparse["median_ms"] / dense["median_ms"],
        "paired_ratio": {
            "median": float(np.median(paired)),
            "p25": float(np.percentile(paired, 25)),
            "p75": float(np.percentile(paired, 75)),
        },
        "sign_test": sign_test(pair.dense_s, pair.sparse_s),
        "timed_seconds": pair.wall_s,
    }


def ratio_summary(shapes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Over the shapes (``shape_summary`` results): the smallest, largest and geometric mean of the
    ratios, and on how many shapes the sparse model was faster or slower by the sign test at ``ALPHA``."""
    r = np.asarray([s["ratio"] for s in shapes], dtype=np.float64)

    def significant(s: dict[str, Any], key: str) -> bool:
        t = s["sign_test"]
        other = "sparse_slower_pairs" if key == "sparse_faster_pairs" else "sparse_faster_pairs"
        return t["p_value"] < ALPHA and t[key] > t[other]

    return {
        "shapes": len(shapes),
        "ratio": {"min": float(r.min()), "max": float(r.max()), "geomean": float(np.exp(np.log(r).mean()))},
        "alpha": ALPHA,
        "sparse_faster_significant": sum(1 for s in shapes if significant(s, "sparse_faster_pairs")),
        "sparse_slower_significant": sum(1 for s in shapes if significant(s, "sparse_slower_pairs")),
    }
