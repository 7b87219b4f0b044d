"""N:M semi-structured sparsity: pure, vectorised tensor functions.

Every function takes the tensor, the pattern and the ``axis`` along which the groups of M consecutive
elements run (the *reduction* axis of the consumer: axis 1 of an ``nn.Linear`` weight ``[out, in]``,
axis 0 of an ONNX ``MatMul`` weight ``[K, N]``). Nothing here touches modules or files (pure
functions of tensors, so they test in isolation); trainers and exporters call these functions.

Pattern strings are written NVIDIA's way, ``N:M``: at most N nonzeros in every M consecutive
weights (the NxMTransformer paper writes the group size first, "4x2" for our ``2:4``).

    >>> w = torch.tensor([[0.1, -3.0, 2.0, 0.5]])
    >>> project(w, "2:4").tolist()
    [[0.0, -3.0, 2.0, 0.0]]
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from nxm_deploy.errors import PatternError

__all__ = [
    "DEFAULT_PATTERN",
    "LINEAR_AXIS",
    "CheckResult",
    "Pattern",
    "Stats",
    "check",
    "mask",
    "parse_pattern",
    "project",
    "projected_weights",
    "stats",
]

LINEAR_AXIS = 1
"""The axis the groups run along in an ``nn.Linear`` weight ``[out, in]``: the input (reduction) axis."""

_PATTERN_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Pattern:
    """At most ``n`` nonzeros in every group of ``m`` consecutive elements."""

    n: int
    m: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and isinstance(self.m, int)) or not 0 < self.n < self.m:
            raise PatternError(f"invalid N:M pattern {self.n}:{self.m}: need 0 < N < M (for example 2:4)")
        if self.m > 255:
            raise PatternError(f"invalid N:M pattern {self}: M must be at most 255")

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"

    @property
    def density(self) -> float:
        return self.n / self.m


DEFAULT_PATTERN = Pattern(2, 4)
"""2:4, the pattern NVIDIA's sparse tensor cores run."""


def parse_pattern(pattern: str | Pattern) -> Pattern:
    """Parse ``"2:4"`` (N nonzeros per M) into a :class:`Pattern`; raise :class:`PatternError`."""
    if isinstance(pattern, Pattern):
        return pattern
    match = _PATTERN_RE.match(str(pattern))
    if match is None:
        raise PatternError(f"invalid N:M pattern {pattern!r}: write it as N:M with integers, for example 2:4")
    return Pattern(int(match.group(1)), int(match.group(2)))


def _grouped(w: torch.Tensor, p: Pattern, axis: int) -> tuple[torch.Tensor, int]:
    """View ``w`` as ``(M, pre, G, post)`` (a strided view, no copy) and return it with ``axis``.

    Element ``[i, a, g, b]`` is the i-th member of group g along ``axis``.
    """
    if w.dim() == 0:
        raise PatternError("cannot apply an N:M pattern to a scalar")
    if not -w.dim() <= axis < w.dim():
        raise PatternError(f"axis {axis} is out of range for a tensor of shape {tuple(w.shape)}")
    axis = axis % w.dim()
    k = w.shape[axis]
    if k % p.m != 0:
        raise PatternError(
            f"pattern {p} does not fit shape {tuple(w.shape)}: axis {axis} has size {k}, "
            f"which is not a multiple of M={p.m}"
        )
    pre = 1
    for s in w.shape[:axis]:
        pre *= s
    post = 1
    for s in w.shape[axis + 1 :]:
        post *= s
    return w.reshape(pre, k // p.m, p.m, post).movedim(2, 0), axis


def _keep(x: torch.Tensor, p: Pattern) -> torch.Tensor:
    """Boolean keep-mask for a grouped view ``x`` of shape ``(M, pre, G, post)``, same layout."""
    a = x.abs()
    # wins[i] counts the positions j of its group that position i beats; for i < j, i beats j when
    # |w_i| >= |w_j| (ties go to the lower index). Position i starts with i wins, one for each
    # earlier j, and loses one each time an earlier j beats it: one uint8 buffer, no second pass.
    # One comparison per pair of positions (M(M-1)/2 in all), each over every group at once.
    wins = torch.arange(p.m, dtype=torch.uint8, device=x.device).view(p.m, 1, 1, 1)
    wins = wins.expand(a.shape).clone()
    for i in range(p.m):
        for j in range(i + 1, p.m):
            ge = torch.ge(a[i], a[j]).view(torch.uint8)  # 1 where i beats j
            wins[i].add_(ge)
            wins[j].sub_(ge)
    return wins >= (p.m - p.n)


def mask(w: torch.Tensor, pattern: str | Pattern, axis: int = -1) -> torch.Tensor:
    """Boolean mask of the N largest ``|w|`` in each group of M along ``axis``.

    Ties go to the element with the lower index in its group, so the mask is deterministic.
    Vectorised: no Python loop over groups or rows (a BERT-base layer holds ~150k groups).
    """
    p = parse_pattern(pattern)
    _require_float(w)
    x, _ = _grouped(w, p, axis)  # (M, pre, G, post)
    out = torch.empty(w.shape, dtype=torch.bool, device=w.device)
    _grouped(out, p, axis)[0].copy_(_keep(x, p))
    return out


def project(w: torch.Tensor, pattern: str | Pattern, axis: int = -1) -> torch.Tensor:
    """Euclidean projection onto the N:M set: keep the N largest ``|w|`` per group, zero the rest.

    Returns a new contiguous tensor of ``w``'s dtype and shape; ``w`` is not modified.
    """
    p = parse_pattern(pattern)
    _require_float(w)
    x, _ = _grouped(w, p, axis)  # (M, pre, G, post)
    out = torch.empty(w.shape, dtype=w.dtype, device=w.device)
    torch.mul(x, _keep(x, p), out=_grouped(out, p, axis)[0])
    return out


def _require_float(w: torch.Tensor) -> None:
    if not w.is_floating_point():
        raise PatternError(f"N:M masks need a floating-point tensor, got {w.dtype}")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check`. ``first_bad`` is the index of the first element of the first group
    that holds more than N nonzeros (row-major order), or ``None``."""

    pattern: Pattern
    axis: int
    groups: int
    bad_groups: int
    first_bad: tuple[int, ...] | None

    @property
    def ok(self) -> bool:
        return self.bad_groups == 0


def check(w: torch.Tensor, pattern: str | Pattern, axis: int = -1) -> CheckResult:
    """Count the groups of M along ``axis`` that hold more than N nonzeros."""
    p = parse_pattern(pattern)
    x, ax = _grouped(w, p, axis)  # (M, pre, G, post)
    nonzeros = (x != 0).sum(dim=0)  # (pre, G, post)
    bad = nonzeros > p.n
    n_bad = int(bad.sum())
    first: tuple[int, ...] | None = None
    if n_bad:
        pre_i, g_i, post_i = (int(v) for v in bad.nonzero()[0])
        before = _unravel(pre_i, tuple(w.shape[:ax]))
        after = _unravel(post_i, tuple(w.shape[ax + 1 :]))
        first = (*before, g_i * p.m, *after)
    return CheckResult(p, ax, nonzeros.numel(), n_bad, first)


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        out.append(flat % size)
        flat //= size
    return tuple(reversed(out))


@dataclass(frozen=True)
class Stats:
    """Sparsity figures of one tensor under one pattern along one axis."""

    numel: int
    nonzeros: int
    groups: int
    bad_groups: int

    @property
    def density(self) -> float:
        return self.nonzeros / self.numel if self.numel else 0.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density


def stats(w: torch.Tensor, pattern: str | Pattern, axis: int = -1) -> Stats:
    """Density and group counts of ``w`` for ``pattern`` along ``axis``."""
    result = check(w, pattern, axis)
    return Stats(
        numel=w.numel(),
        nonzeros=int((w != 0).sum()),
        groups=result.groups,
        bad_groups=result.bad_groups,
    )


@contextlib.contextmanager
def projected_weights(weights: Iterable[torch.Tensor], pattern: str | Pattern,
                      axis: int = LINEAR_AXIS) -> Iterator[None]:  # fmt: skip
    """Inside the block each of ``weights`` (``nn.Linear`` weights by default) is projected to N:M by
    magnitude, in place; after it, the exact values from before (a copy kept of each)."""
    weights = list(weights)
    saved = [w.detach().clone() for w in weights]
    try:
        with torch.no_grad():
            for w in weights:
                w.copy_(project(w, pattern, axis))
        yield
    finally:
        with torch.no_grad():
            for w, old in zip(weights, saved, strict=True):
                w.copy_(old)
