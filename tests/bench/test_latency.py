"""nxm_deploy.bench.latency: the interleaving order, the stopping rule and the statistics (no timing
values are asserted: the calls below are plain Python functions that record when they ran, and one
sleeps, so only which of a pair is slower is asserted)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nxm_deploy.bench.latency import (
    MIN_PAIRS,
    PairTiming,
    TimingPlan,
    measure_pair,
    ratio_summary,
    shape_summary,
    sign_test,
    summarize,
)
from nxm_deploy.bench.report import _verdict
from nxm_deploy.errors import UserError


def _recorder(log: list[str], name: str, sleep_s: float = 0.0):
    def call() -> None:
        log.append(name)
        if sleep_s:
            time.sleep(sleep_s)

    return call


def test_warmup_then_pairs_alternate_order():
    log: list[str] = []
    plan = TimingPlan(warmup=2, repeats=4, min_time_s=0.0, max_time_s=10.0)
    timing = measure_pair(_recorder(log, "D"), _recorder(log, "S"), plan)
    assert log[:4] == ["D", "S", "D", "S"]  # warm-up
    assert log[4:] == ["D", "S", "S", "D", "D", "S", "S", "D"]  # pairs alternate which model goes first
    assert len(timing.dense_s) == len(timing.sparse_s) == 4


def test_min_time_adds_pairs_for_fast_calls():
    log: list[str] = []
    plan = TimingPlan(warmup=0, repeats=3, min_time_s=0.05, max_time_s=10.0)
    timing = measure_pair(_recorder(log, "D", 0.002), _recorder(log, "S", 0.002), plan)
    assert len(timing.dense_s) > 3  # 3 pairs take ~12 ms, less than min_time
    assert timing.wall_s >= 0.05


def test_max_time_stops_slow_shapes_after_min_pairs():
    log: list[str] = []
    plan = TimingPlan(warmup=0, repeats=1000, min_time_s=0.0, max_time_s=0.01)
    timing = measure_pair(_recorder(log, "D", 0.005), _recorder(log, "S", 0.005), plan)
    assert MIN_PAIRS <= len(timing.dense_s) < 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": -1},
        {"repeats": MIN_PAIRS - 1},
        {"min_time_s": 5.0, "max_time_s": 1.0},
        {"max_time_s": 0.0},
    ],
)
def test_bad_plans_are_user_errors(kwargs):
    with pytest.raises(UserError):
        TimingPlan(**kwargs)


def test_summarize_matches_numpy():
    samples = [0.010, 0.012, 0.011, 0.030, 0.009]
    s = summarize(samples, batch=8)
    ms = np.asarray(samples) * 1e3
    assert s["n"] == 5
    assert s["median_ms"] == pytest.approx(np.median(ms))
    assert s["p90_ms"] == pytest.approx(np.percentile(ms, 90))
    assert s["p99_ms"] == pytest.approx(np.percentile(ms, 99))
    assert s["min_ms"] == pytest.approx(9.0) and s["max_ms"] == pytest.approx(30.0)
    assert s["throughput_seq_per_s"] == pytest.approx(8 / 0.011)


def test_a_measured_faster_sparse_call_reads_below_one_in_the_report():
    """A real pair where the sparse call skips the dense one's 5 ms sleep (which never returns early):
    the ratio reads below 1.0, every pair favours sparse, and the report's verdict shows the ratio
    to three decimals and counts the shape as faster by the sign test."""
    plan = TimingPlan(warmup=1, repeats=10, min_time_s=0.0, max_time_s=30.0)
    pair = measure_pair(_recorder([], "D", 0.005), _recorder([], "S"), plan)
    s = shape_summary(pair, batch=1)
    assert s["ratio"] < 1.0 and s["paired_ratio"]["p75"] < 1.0
    assert s["sign_test"]["sparse_faster_pairs"] == 10 and s["sign_test"]["p_value"] < 0.05
    verdict = _verdict({"latency": {"summary": ratio_summary([s])}})
    assert f"median-latency ratio: {s['ratio']:.3f} over 1 shapes" in verdict
    assert "below 1.0 means the sparse model was faster" in verdict
    assert "the sparse model was faster on 1 and slower on 0 of 1 shapes" in verdict


def test_sign_test_exact_values():
    # 10 of 10 pairs favour sparse: p = 2 / 2**10
    t = sign_test([1.0] * 10, [0.5] * 10)
    assert t["p_value"] == pytest.approx(2 / 1024)
    # 5 pairs can never reach 0.05: p = 2 / 32
    assert sign_test([1.0] * 5, [0.5] * 5)["p_value"] == pytest.approx(0.0625)
    # a balanced split is no evidence at all
    assert sign_test([1.0, 1.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0])["p_value"] == pytest.approx(1.0)


def test_ratio_summary_counts_significant_shapes():
    faster = shape_summary(PairTiming([1.0] * 10, [0.5] * 10, 1.0), 1)
    slower = shape_summary(PairTiming([0.5] * 10, [1.0] * 10, 1.0), 1)
    noisy = shape_summary(PairTiming([1.0, 0.5, 1.0, 0.5], [0.5, 1.0, 0.5, 1.0], 1.0), 1)
    s = ratio_summary([faster, slower, noisy])
    assert s["shapes"] == 3
    assert s["sparse_faster_significant"] == 1 and s["sparse_slower_significant"] == 1
    assert s["ratio"]["geomean"] == pytest.approx(1.0)
