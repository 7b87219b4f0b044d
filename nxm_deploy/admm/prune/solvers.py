"""Layer-wise N:M pruning from the Gram matrix of a layer's inputs: ADMM reconstruction (Boza 2024,
arXiv 2401.02938), SparseGPT (Frantar & Alistarh 2023, arXiv 2301.00774) and Wanda (Sun et al.
2023, arXiv 2306.11695). Pure tensor functions.

For one ``nn.Linear`` weight ``W [out, in]`` and the Gram matrix ``G = X^T X [in, in]`` of its inputs
``X [tokens, in]``, find the N:M weight ``W'`` that best reproduces the layer's outputs::

    min ||X W^T - X W'^T||^2  s.t.  W' is N:M along the input axis

Inputs are normalised by the Gram diagonal (``d = sqrt(diag G)``), so the mask score of a weight is
``|w| * ||x||`` (Wanda-like); the normalised Gram is damped by a fraction of its mean diagonal; one
fixed ``rho`` makes one factorisation of ``G + (damp + rho) I`` serve every iteration. The mask comes
from the current ``W' + U`` and is tightened over the first iterations (cubic schedule: at first only
a few of the weights N:M would drop are dropped), then held while ADMM converges to the best weight
on that mask.

SparseGPT (:func:`sparsegpt_prune`) walks the input columns in order with the inverse of the damped
Gram matrix (through its upper Cholesky factor): at the first column of each group of M it drops
the M-N weights of that group with the smallest OBS saliency ``w^2 / [H^-1]_jj`` (``[H^-1]_jj`` read
as the squared diagonal of the Cholesky factor, i.e. given the columns already passed), and each
dropped weight's error is spread over the columns not yet visited (the OBS update). Wanda
(:func:`wanda`) drops by ``|w| * ||x||`` and updates nothing. Nothing here touches modules or files:
:func:`~nxm_deploy.admm.prune.reconstruct.reconstruct` feeds these and writes their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nxm_deploy import nm


@dataclass(frozen=True)
class AdmmSolver:
    """The solver's settings (benchmarks/prune_solver.py measures them on MiniLM, SST-2 train rows)."""

    iterations: int = 20
    tighten: int = 10  # iterations over which the mask goes from dense to N:M
    damp: float = 0.1  # fraction of the mean (normalised) Gram diagonal added to it
    rho: float = 1.0  # in units of the mean normalised diagonal (1 after normalisation)

    def __post_init__(self) -> None:
        if not 0 <= self.tighten <= self.iterations or self.iterations < 1:
            raise ValueError(f"need 1 <= iterations and 0 <= tighten <= iterations, got {self}")


def relative_error(w: torch.Tensor, w_new: torch.Tensor, gram: torch.Tensor) -> float:
    """``||X (W - W')^T||^2 / ||X W^T||^2`` from the Gram matrix; ``w [out, in]``, ``gram [in, in]``."""
    d = (w - w_new).double()  # [out, in]
    g = gram.double()  # [in, in]
    num = float(((d @ g) * d).sum())
    den = float(((w.double() @ g) * w.double()).sum())
    return num / den if den > 0 else 0.0


def _normaliser(gram: torch.Tensor) -> torch.Tensor:
    """``d [in]``: the input norms, floored so an input that is always zero does not divide by 0."""
    d = gram.diagonal().clamp_min(0).sqrt()  # [in]
    return d.clamp_min(max(float(d.max()), 1.0) * 1e-6)


def wanda(w: torch.Tensor, gram: torch.Tensor, pattern: str | nm.Pattern) -> torch.Tensor:
    """The N:M mask by ``|w| * ||x||`` with no weight update (Wanda, Sun et al. 2023): a baseline."""
    d = _normaliser(gram.float())  # [in]
    return w * nm.mask(w.float() * d, pattern, nm.LINEAR_AXIS)  # [out, in]


def _tightened_mask(v: torch.Tensor, pattern: nm.Pattern, fraction: float) -> torch.Tensor:
    """Of the entries that N:M would drop from ``v [out, in]``, drop only the ``fraction`` with the
    smallest ``|v|`` in each row; ``fraction`` 1 is the N:M mask itself."""
    keep = nm.mask(v, pattern, nm.LINEAR_AXIS)  # [out, in] bool
    if fraction >= 1:
        return keep
    per_row = v.shape[1] * (pattern.m - pattern.n) // pattern.m
    k = round(fraction * per_row)
    out = torch.ones_like(keep)
    if k > 0:
        score = v.abs().masked_fill(keep, float("inf"))  # only N:M's drop candidates can go
        out.scatter_(1, score.topk(k, dim=1, largest=False).indices, False)
    return out


@torch.no_grad()
def admm_prune(
    w: torch.Tensor, gram: torch.Tensor, pattern: str | nm.Pattern, solver: AdmmSolver | None = None
) -> torch.Tensor:
    """The N:M weight ``[out, in]`` (``w``'s dtype) that best reproduces ``X w^T`` given ``gram = X^T X``."""
    p = nm.parse_pattern(pattern)
    solver = solver or AdmmSolver()
    g = gram.to(torch.float32)  # [in, in]
    d = _normaliser(g)  # [in]
    gn = g / d[:, None] / d[None, :]  # [in, in], unit diagonal where the input is ever nonzero
    scale = float(gn.diagonal().mean())
    gn.diagonal().add_(solver.damp * scale)
    rho = solver.rho * scale
    a = gn.clone()
    a.diagonal().add_(rho)
    inv = torch.cholesky_inverse(torch.linalg.cholesky(a))  # [in, in], the one factorisation
    wn = w.to(torch.float32) * d[None, :]  # [out, in]
    b = wn @ gn  # [out, in]: X^T X W^T, in row form
    z = wn.clone()  # [out, in]
    u = torch.zeros_like(wn)  # [out, in], scaled dual
    keep = torch.ones_like(wn, dtype=torch.bool)
    for it in range(solver.iterations):
        # W' = (G + rho I)^-1 (G W^T + rho (Z - U)^T), in row form (G symmetric)
        x = (b + rho * (z - u)) @ inv  # [out, in]
        v = x + u
        if it < solver.tighten:
            keep = _tightened_mask(v, p, (1 - (1 - (it + 1) / solver.tighten) ** 3))
        elif it == 0:
            keep = nm.mask(v, p, nm.LINEAR_AXIS)
        z = v * keep
        u = v - z
    return (z / d[None, :]).to(w.dtype)  # [out, in], N:M: the last mask is N:M


SPARSEGPT_DAMP = 0.01  # fraction of the mean Gram diagonal added to it (the paper's default)
SPARSEGPT_BLOCK = 128  # columns updated together (lazy batch updates); a multiple of every M used


@torch.no_grad()
def sparsegpt_prune(w: torch.Tensor, gram: torch.Tensor, pattern: str | nm.Pattern,
                    damp: float = SPARSEGPT_DAMP, block: int = SPARSEGPT_BLOCK) -> torch.Tensor:  # fmt: skip
    """SparseGPT's N:M weight ``[out, in]`` (``w``'s dtype) for ``gram = X^T X``: per group of M inputs
    the M-N weights with the smallest OBS saliency are dropped, and each drop's error is compensated
    on the inputs not yet visited. Inputs that are never nonzero (zero diagonal) get weight 0."""
    p = nm.parse_pattern(pattern)
    cols = w.shape[1]
    if cols % p.m:
        raise ValueError(f"input size {cols} is not a multiple of M={p.m}")
    block = max(p.m, block - block % p.m)  # blocks hold whole groups
    h = gram.to(torch.float64).clone()  # [in, in]
    wk = w.to(torch.float64).clone()  # [out, in]
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    wk[:, dead] = 0.0
    h.diagonal().add_(damp * float(h.diagonal().mean()))
    # Upper Cholesky factor of H^-1: row j, from column j on, is what OBS needs after columns < j left.
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)  # [in, in]
    drop = p.m - p.n
    for i1 in range(0, cols, block):  # the OBS update is sequential in the columns: one loop over them
        i2 = min(i1 + block, cols)
        w1 = wk[:, i1:i2].clone()  # [out, b]
        err = torch.zeros_like(w1)  # [out, b]
        h1 = hinv[i1:i2, i1:i2]  # [b, b]
        pruned = torch.zeros_like(w1, dtype=torch.bool)  # [out, b]
        for i in range(i2 - i1):
            if i % p.m == 0 and drop:
                score = w1[:, i : i + p.m] ** 2 / h1.diagonal()[i : i + p.m] ** 2  # [out, M] saliency
                pruned.scatter_(1, i + score.topk(drop, dim=1, largest=False).indices, True)
            q = w1[:, i].masked_fill(pruned[:, i], 0.0)  # [out]
            e = (w1[:, i] - q) / h1[i, i]  # [out]
            w1[:, i:] -= e[:, None] * h1[i, i:][None, :]  # compensate on the columns still to come
            w1[:, i] = q
            err[:, i] = e
        wk[:, i1:i2] = w1
        wk[:, i2:] -= err @ hinv[i1:i2, i2:]  # the block's errors, onto the later blocks at once
    return wk.to(w.dtype)  # [out, in], N:M along the input axis
