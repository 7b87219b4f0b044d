"""Properties of the N:M core (nxm_deploy/nm.py), checked against plain reference loops."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nxm_deploy import nm
from nxm_deploy.errors import PatternError

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tensors(draw: st.DrawFn, with_ties: bool = True) -> tuple[torch.Tensor, nm.Pattern, int]:
    """A tensor, a pattern N:M and an axis whose size divides by M."""
    m = draw(st.integers(2, 8))
    n = draw(st.integers(1, m - 1))
    ndim = draw(st.integers(1, 3))
    axis = draw(st.integers(0, ndim - 1))
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    shape[axis] = m * draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]))
    numel = 1
    for s in shape:
        numel *= s
    # Small integer values produce many ties (and zeros); floats exercise the general case.
    if with_ties and draw(st.booleans()):
        vals = draw(st.lists(st.integers(-3, 3), min_size=numel, max_size=numel))
    else:
        vals = draw(st.lists(st.floats(-100, 100, allow_nan=False, width=16), min_size=numel, max_size=numel))
    w = torch.tensor(vals, dtype=torch.float64).reshape(shape).to(dtype)
    return w, nm.Pattern(n, m), axis - ndim if draw(st.booleans()) else axis


def groups_of(w: torch.Tensor, m: int, axis: int) -> list[list[tuple[int, ...]]]:
    """Reference: the index tuples of each group of m along axis, by plain loops."""
    axis %= w.dim()
    out = []
    others = [range(s) if d != axis else [0] for d, s in enumerate(w.shape)]
    for base in itertools.product(*others):
        for g in range(w.shape[axis] // m):
            group = []
            for k in range(m):
                idx = list(base)
                idx[axis] = g * m + k
                group.append(tuple(idx))
            out.append(group)
    return out


@PROPS
@given(tensors())
def test_projection_satisfies_pattern(case: tuple[torch.Tensor, nm.Pattern, int]) -> None:
    w, p, axis = case
    out = nm.project(w, p, axis)
    assert out.dtype == w.dtype and out.shape == w.shape
    assert nm.check(out, p, axis).ok
    for group in groups_of(out, p.m, axis):
        assert sum(1 for i in group if out[i] != 0) <= p.n


@PROPS
@given(tensors())
def test_projection_is_idempotent(case: tuple[torch.Tensor, nm.Pattern, int]) -> None:
    w, p, axis = case
    once = nm.project(w, p, axis)
    assert torch.equal(nm.project(once, p, axis), once)


@PROPS
@given(tensors())
def test_projection_keeps_maximal_magnitude_set(case: tuple[torch.Tensor, nm.Pattern, int]) -> None:
    w, p, axis = case
    keep = nm.mask(w, p, axis)
    a = w.abs().double()
    for group in groups_of(w, p.m, axis):
        kept = [i for i in group if keep[i]]
        assert len(kept) == p.n  # exactly N kept (some may be zeros)
        best = sum(sorted((float(a[i]) for i in group), reverse=True)[: p.n])
        assert sum(float(a[i]) for i in kept) == best
        # Deterministic ties: among equal magnitudes the lower index is kept first.
        for i, j in itertools.combinations(group, 2):
            if a[i] == a[j] and keep[j]:
                assert keep[i]


@PROPS
@given(tensors())
def test_valid_input_is_unchanged(case: tuple[torch.Tensor, nm.Pattern, int]) -> None:
    w, p, axis = case
    valid = nm.project(w, p, axis) * 3  # any N:M-valid tensor
    assert torch.equal(nm.project(valid, p, axis), valid)


@PROPS
@given(tensors())
def test_check_agrees_with_reference_loop(case: tuple[torch.Tensor, nm.Pattern, int]) -> None:
    w, p, axis = case
    result = nm.check(w, p, axis)
    groups = groups_of(w, p.m, axis)
    bad = [g for g in groups if sum(1 for i in g if w[i] != 0) > p.n]
    assert result.groups == len(groups)
    assert result.bad_groups == len(bad)
    if bad:
        assert result.first_bad == min(g[0] for g in bad)
    else:
        assert result.first_bad is None and result.ok


def test_mask_keeps_n_largest_example() -> None:
    w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.0]])
    assert nm.mask(w, "2:4").tolist() == [[False, True, True, False, True, True, False, False]]
    assert nm.project(w, "1:4").tolist() == [[0.0, -3.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]


def test_axis_zero_groups_run_down_columns() -> None:
    w = torch.tensor([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0], [4.0, 6.0]])  # [K=4, N=2]
    out = nm.project(w, "2:4", axis=0)
    assert out.tolist() == [[0.0, 9.0], [0.0, 8.0], [3.0, 0.0], [4.0, 0.0]]
    assert nm.check(out, "2:4", axis=0).ok


def test_stats() -> None:
    w = nm.project(torch.randn(8, 16), "2:4")
    s = nm.stats(w, "2:4")
    assert (s.numel, s.groups, s.bad_groups) == (128, 32, 0)
    assert s.density == pytest.approx(0.5)
    dense = nm.stats(torch.ones(8, 16), "2:4")
    assert dense.bad_groups == 32 and dense.density == 1.0


def test_check_reports_first_bad_group_index() -> None:
    w = nm.project(torch.randn(4, 8, 3), "2:4", axis=1)
    w[2, 4:8, 1] = 1.0
    result = nm.check(w, "2:4", axis=1)
    assert result.bad_groups == 1 and result.first_bad == (2, 4, 1)


@pytest.mark.parametrize("text", ["3:2", "0:4", "4:4", "abc", "2:", "2-4", "-1:4", "2:4:8"])
def test_invalid_patterns_raise_typed_error(text: str) -> None:
    with pytest.raises(PatternError, match="invalid N:M pattern"):
        nm.parse_pattern(text)


def test_axis_that_does_not_divide_by_m() -> None:
    with pytest.raises(PatternError, match="not a multiple of M=4"):
        nm.project(torch.randn(3, 6), "2:4")
    with pytest.raises(PatternError, match="out of range"):
        nm.check(torch.randn(3, 8), "2:4", axis=2)


def test_integer_tensor_is_refused() -> None:
    with pytest.raises(PatternError, match="floating-point"):
        nm.mask(torch.ones(2, 4, dtype=torch.int32), "2:4")


def test_pattern_round_trip() -> None:
    assert str(nm.parse_pattern(" 2 : 4 ")) == "2:4"
    assert nm.parse_pattern(nm.Pattern(1, 4)) == nm.Pattern(1, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu() -> None:
    w = torch.randn(64, 128)
    assert torch.equal(nm.project(w.cuda(), "2:4").cpu(), nm.project(w, "2:4"))
