"""The result of an N:M check: one row per tensor, the verdict, a table and JSON.

report = check("runs/rte-admm")
report.ok, report.failure_line(), format_table(report.rows), report.to_json()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nxm_deploy import nm

__all__ = ["CheckReport", "TensorCheck", "check_tensor", "format_table", "verdict"]


@dataclass(frozen=True)
class TensorCheck:
    """One row of the check table. ``layer`` is the PyTorch module the tensor belongs to, if known."""

    name: str
    shape: tuple[int, ...]
    axis: int
    groups: int
    bad_groups: int
    density: float
    first_bad: tuple[int, ...] | None = None
    layer: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_groups == 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["first_bad"] = list(self.first_bad) if self.first_bad is not None else None
        d["ok"] = self.ok
        return d


def check_tensor(
    name: str, w: torch.Tensor, pattern: nm.Pattern, axis: int, layer: str | None = None
) -> TensorCheck:
    result = nm.check(w, pattern, axis)
    return TensorCheck(
        name=name,
        shape=tuple(w.shape),
        axis=result.axis,
        groups=result.groups,
        bad_groups=result.bad_groups,
        density=float((w != 0).sum()) / max(w.numel(), 1),
        first_bad=result.first_bad,
        layer=layer,
    )


@dataclass(frozen=True)
class CheckReport:
    """All rows of one check, with what was checked and whether it is meant to be sparse."""

    source: str
    pattern: nm.Pattern
    rows: list[TensorCheck]
    expect_sparse: bool = True

    @property
    def ok(self) -> bool:
        return bool(self.rows) and (not self.expect_sparse or all(r.ok for r in self.rows))

    @property
    def first_failure(self) -> TensorCheck | None:
        return next((r for r in self.rows if not r.ok), None)

    def failure_line(self, name_of: Callable[[str], str] = str) -> str:
        """One line naming the first offending tensor and group (or the empty selection, and the
        parameter ``include`` as ``name_of`` writes it: the CLI writes ``--include``)."""
        if not self.rows:
            return f"{self.source}: no tensors selected to check; use {name_of('include')} to name them"
        bad = self.first_failure
        if bad is None:
            return ""
        n_bad = sum(1 for r in self.rows if not r.ok)
        return (
            f"{self.source}: {bad.name} breaks {self.pattern} along axis {bad.axis}: "
            f"{bad.bad_groups} of {bad.groups} groups hold more than {self.pattern.n} nonzeros, "
            f"first at index {list(bad.first_bad or ())}"
            + (f" ({n_bad} of {len(self.rows)} tensors fail)" if n_bad > 1 else "")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "pattern": str(self.pattern),
            "expect_sparse": self.expect_sparse,
            "ok": self.ok,
            "tensors": [r.to_json() for r in self.rows],
        }


def format_table(rows: Sequence[TensorCheck]) -> str:
    """A plain-text table, one tensor per line; a ``layer`` column names the PyTorch layer when the
    tensor's own name does not (ONNX initializers)."""
    header: tuple[str, ...] = ("tensor", "shape", "axis", "groups", "bad", "density")
    body = [
        (r.name, "x".join(map(str, r.shape)), str(r.axis), str(r.groups), str(r.bad_groups),
         f"{r.density:.3f}")
        for r in rows
    ]  # fmt: skip
    if any(r.layer and r.layer != r.name.removesuffix(".weight") for r in rows):
        header = (*header, "layer")
        body = [(*b, r.layer or "?") for b, r in zip(body, rows, strict=True)]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for b in body:
        cells = [b[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(b[1:6], widths[1:6], strict=True)]
        cells += [c.ljust(w) for c, w in zip(b[6:], widths[6:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def verdict(report: CheckReport) -> str:
    """The closing line of a passing check: all tensors hold the pattern, or a dense model's density."""
    if report.expect_sparse:
        return f"all {len(report.rows)} tensors hold {report.pattern}"
    groups = sum(r.groups for r in report.rows)
    density = sum(r.density * r.groups for r in report.rows) / max(groups, 1)
    return f"dense run: {len(report.rows)} encoder weights, density {density:.3f}"
