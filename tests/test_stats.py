"""benchmarks/common/stats.py: the intervals and tests the studies' claims rest on, checked against values
known in closed form or from the tables (and against SciPy where it happens to be installed)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import import_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "common" / "stats.py"


@pytest.fixture(scope="module")
def stats():
    try:
        yield import_script(SCRIPT)
    finally:
        sys.modules.pop("stats", None)


@pytest.mark.parametrize(
    ("df", "q"), [(1, 12.706205), (4, 2.776445), (10, 2.228139), (30, 2.042272), (1e6, 1.959966)]
)
def test_t_quantiles_match_the_tables(stats, df, q):
    assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=2e-6)


def test_one_stratum_t_interval_is_the_textbook_one(stats):
    d = np.array([1.0, 2.0, 0.5, 3.0])
    out = stats.stratified_t_ci([d])
    half = 3.182446 * d.std(ddof=1) / math.sqrt(4)  # t_{0.975, 3}
    assert out["df"] == pytest.approx(3) and out["mean"] == pytest.approx(d.mean())
    assert (out["lo"], out["hi"]) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-5)


def test_stratified_t_interval_is_wider_than_the_bootstrap_with_three_pairs_a_task(stats):
    rng = np.random.default_rng(0)
    strata = [rng.normal(1.0, s, 3) for s in (0.5, 1.0, 2.0, 0.3, 3.0)]
    t = stats.stratified_t_ci(strata)
    lo, hi = stats.stratified_bootstrap_ci(strata)
    assert t["hi"] - t["lo"] > hi - lo and 2 <= t["df"] <= 14  # Welch-Satterthwaite: at most N - H
    assert stats.stratified_t_ci([np.array([1.0]), np.array([2.0, 3.0])]) is None  # one pair: no spread


def test_mcnemar_exact_two_sided(stats):
    a = [True] * 3 + [False] * 9 + [True] * 5
    b = [False] * 3 + [True] * 9 + [True] * 5
    out = stats.mcnemar(a, b)
    expected = 2 * sum(math.comb(12, k) for k in range(4)) / 2**12  # 2 P(Bin(12, 1/2) <= 3)
    assert out == {"only_a": 3, "only_b": 9, "p_value": pytest.approx(expected)}
    assert stats.mcnemar(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        stats.mcnemar(a, b[:-1])


def test_paired_example_bootstrap_of_a_correlation(stats):
    rng = np.random.default_rng(1)
    labels = rng.normal(size=300)
    good, bad = labels + rng.normal(0, 0.3, 300), labels + rng.normal(0, 1.5, 300)

    def pearson(pred, y):
        return float(np.corrcoef(pred, y)[0, 1])

    out = stats.paired_example_bootstrap(pearson, good, bad, labels, resamples=500)
    assert out["diff"] == pytest.approx(pearson(good, labels) - pearson(bad, labels))
    assert 0 < out["lo"] < out["diff"] < out["hi"]
