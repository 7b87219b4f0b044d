"""Statistics for paired comparisons of training recipes, shared by the benchmark scripts (numpy only).

    strata = [np.array([...]), ...]      # per task: chosen - other, one value per seed (a pair)
    stratified_bootstrap_ci(strata)      # percentile interval of the mean difference, resampled per task
    stratified_t_ci(strata)              # stratified t-interval, Welch-Satterthwaite degrees of freedom
    mcnemar(correct_a, correct_b)        # exact two-sided McNemar test on one dev set's examples
    paired_example_bootstrap(...)        # interval of a metric difference, resampling dev examples

The mean difference over all pairs weighs each task by its number of pairs. With few pairs per task a
bootstrap underestimates the spread (it never sees more variation than the pairs show); the
t-interval widens with the few degrees of freedom, which is why targets use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["mcnemar", "paired_example_bootstrap", "stratified_bootstrap_ci", "stratified_t_ci", "t_quantile"]


def stratified_bootstrap_ci(strata: Sequence[np.ndarray], resamples: int = 10_000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float] | None:  # fmt: skip
    """Percentile interval of the mean over all pairs, each stratum resampled with replacement on its
    own; None while a stratum has one pair (nothing to resample)."""
    if not strata or min(len(d) for d in strata) < 2:
        return None
    rng = np.random.default_rng(seed)
    n = sum(len(d) for d in strata)
    total = np.zeros(resamples)
    for d in strata:  # (R, len(d)) draws of this stratum's pairs
        total += np.asarray(d, float)[rng.integers(0, len(d), size=(resamples, len(d)))].sum(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(total / n, [tail, 100 - tail])
    return float(lo), float(hi)


def _t_cdf(x: float, df: float) -> float:
    """Student's t CDF at ``x >= 0`` by Simpson's rule on its density (smooth: 4000 panels suffice)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def pdf(t: float) -> float:
        return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))

    panels = 4000
    h = x / panels
    total = pdf(0.0) + pdf(x) + sum((4 if k % 2 else 2) * pdf(k * h) for k in range(1, panels))
    return 0.5 + total * h / 3


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (``0.5 < p < 1``) of Student's t with ``df`` degrees of freedom (bisection)."""
    if not 0.5 < p < 1 or df <= 0:
        raise ValueError(f"need 0.5 < p < 1 and df > 0, got p={p}, df={df}")
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def stratified_t_ci(strata: Sequence[np.ndarray], level: float = 0.95) -> dict[str, float] | None:
    """The stratified t-interval of the mean difference over all pairs: the mean is
    ``sum_h n_h mean_h / N``, its variance ``sum_h (n_h / N)^2 s_h^2 / n_h`` (each task's own spread),
    and the degrees of freedom Welch-Satterthwaite's, ``(sum a_h)^2 / sum a_h^2 / (n_h - 1)`` with
    ``a_h`` the terms of that variance. None while a stratum has fewer than two pairs."""
    if not strata or min(len(d) for d in strata) < 2:
        return None
    n = sum(len(d) for d in strata)
    mean = sum(float(np.sum(d)) for d in strata) / n
    terms = [(len(d) / n) ** 2 * float(np.var(d, ddof=1)) / len(d) for d in strata]
    var = sum(terms)
    if var == 0:
        return {"mean": mean, "lo": mean, "hi": mean, "df": float("inf"), "se": 0.0}
    df = var**2 / sum(a * a / (len(d) - 1) for a, d in zip(terms, strata, strict=True) if a > 0)
    half = t_quantile(1 - (1 - level) / 2, df) * math.sqrt(var)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "df": df, "se": math.sqrt(var)}


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, float | int]:
    """Exact two-sided McNemar test of two classifiers on the same examples: ``b`` examples only A got
    right, ``c`` only B; under the null each discordant example is a fair coin, so
    ``p = min(1, 2 * P(Binomial(b + c, 1/2) <= min(b, c)))``."""
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b_.shape:
        raise ValueError(f"the two prediction sets differ in length: {a.shape} vs {b_.shape}")
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    n = b + c
    if n == 0:
        return {"only_a": 0, "only_b": 0, "p_value": 1.0}
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return {"only_a": b, "only_b": c, "p_value": min(1.0, 2 * tail)}


def paired_example_bootstrap(metric: Callable[[np.ndarray, np.ndarray], float], pred_a: np.ndarray,
                             pred_b: np.ndarray, labels: np.ndarray, resamples: int = 2000, seed: int = 0,
                             level: float = 0.95) -> dict[str, float]:  # fmt: skip
    """``metric(pred_a) - metric(pred_b)`` on one dev set and its percentile interval from resampling
    the examples (the same draw for both: paired); for metrics that are not a mean over examples
    (Pearson for STS-B, Matthews for CoLA), where McNemar does not apply."""
    pred_a, pred_b, labels = np.asarray(pred_a), np.asarray(pred_b), np.asarray(labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    diffs = np.empty(resamples)
    for r in range(resamples):
        idx = rng.integers(0, n, size=n)
        diffs[r] = metric(pred_a[idx], labels[idx]) - metric(pred_b[idx], labels[idx])
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return {"diff": metric(pred_a, labels) - metric(pred_b, labels), "lo": float(lo), "hi": float(hi)}
