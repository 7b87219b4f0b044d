"""The N:M check on saved weights: a run directory or a bare safetensors file.

``nxm-deploy check`` prints one row per tensor (name, shape, axis, groups, bad groups, density).
Weights are read with safetensors only (never pickle). ONNX files are checked by
:mod:`nxm_deploy.export.check`, which returns the same rows.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nxm_deploy import nm
from nxm_deploy.errors import SparsityError, UserError
from nxm_deploy.manifest import RUN_MANIFEST, read_run_manifest

# A 2-D weight inside an encoder block: ``...layer.<i>....weight`` (also ``layers.<i>``, ``h.<i>``).
_ENCODER_WEIGHT = re.compile(r"(^|\.)\d+\..*\.weight$")


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

    def failure_line(self) -> str:
        """One line naming the first offending tensor and group (or the empty selection)."""
        if not self.rows:
            return f"{self.source}: no tensors selected to check; use --include to name them"
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


def _glob_filter(names: Iterable[str], include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    out = [n for n in names if not include or any(fnmatch.fnmatchcase(n, g) for g in include)]
    return [n for n in out if not any(fnmatch.fnmatchcase(n, g) for g in exclude)]


def _natural_key(name: str) -> list[int | str]:
    """Sort ``layer.2`` before ``layer.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def safetensors_files(path: Path) -> list[Path]:
    """The safetensors files of a model dir (one file or shards), or the file itself."""
    if path.is_file():
        return [path]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise UserError(f"{path} holds no .safetensors weights")
    return files


def load_tensors(path: Path, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Read tensors (all, or ``names``) from safetensors file(s), with a one-line error if corrupt."""
    from safetensors import SafetensorError, safe_open

    wanted = set(names) if names is not None else None
    out: dict[str, torch.Tensor] = {}
    for f in safetensors_files(path):
        try:
            with safe_open(str(f), framework="pt") as st:
                for k in st.keys():
                    if wanted is None or k in wanted:
                        out[k] = st.get_tensor(k)
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(f"{f} is not a readable safetensors file ({exc}); re-save it") from exc
    return out


def check_safetensors(
    path: str | Path,
    pattern: str | nm.Pattern = "2:4",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> CheckReport:
    """Check the 2-D ``*.weight`` tensors inside encoder blocks (or those ``include`` names)."""
    p = nm.parse_pattern(pattern)
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    tensors = load_tensors(path)
    candidates = [k for k, v in tensors.items() if v.dim() == 2 and v.is_floating_point()]
    if not include:
        candidates = [k for k in candidates if _ENCODER_WEIGHT.search(k)]
    names = sorted(_glob_filter(candidates, include, exclude), key=_natural_key)
    rows = [check_tensor(n, tensors[n], p, axis=1, layer=n.removesuffix(".weight")) for n in names]
    return CheckReport(str(path), p, rows)


def check_run_dir(run_dir: str | Path, pattern: str | nm.Pattern | None = None) -> CheckReport:
    """Check the layers and pattern that a run directory's manifest names.

    A dense run (no pattern in its manifest) reports density only and passes.
    """
    run_dir = Path(run_dir)
    manifest = read_run_manifest(run_dir)
    claimed = manifest.get("pattern")
    layers: list[str] = list(manifest.get("layers") or [])
    p = nm.parse_pattern(pattern or claimed or "2:4")
    if not claimed:
        report = check_safetensors(run_dir, p)
        return CheckReport(f"{run_dir} (dense run)", p, report.rows, expect_sparse=False)
    if not layers:
        raise UserError(f"{run_dir / RUN_MANIFEST} claims pattern {claimed} but names no layers")
    names = [f"{layer}.weight" for layer in layers]
    tensors = load_tensors(run_dir, names)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise SparsityError(
            f"{run_dir}: the manifest names layer {missing[0].removesuffix('.weight')} but the "
            "weights have no such tensor; the run directory is incomplete or was edited"
        )
    rows = [check_tensor(n, tensors[n], p, axis=1, layer=n.removesuffix(".weight")) for n in names]
    return CheckReport(str(run_dir), p, rows)


def _check_export_dir(
    path: Path, pattern: str | None, include: Sequence[str], exclude: Sequence[str]
) -> CheckReport:
    """An export directory: its ONNX, against the pattern its manifest records (dense: density only)."""
    from nxm_deploy.manifest import read_json

    manifest = read_json(path / "export.json", "export manifest")
    claimed = (manifest.get("sparsity") or {}).get("pattern")
    report = check_path(path / "model.onnx", pattern or claimed or "2:4", include, exclude)
    if claimed or pattern:
        return report
    return CheckReport(f"{path} (dense export)", report.pattern, report.rows, expect_sparse=False)


def check_path(
    path: str | Path,
    pattern: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> CheckReport:
    """Dispatch on what ``path`` is: run directory, safetensors file or ONNX file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; pass a run directory, a .safetensors or an .onnx file")
    if path.is_dir():
        if (path / RUN_MANIFEST).is_file():
            return check_run_dir(path, pattern)
        if (path / "export.json").is_file() and (path / "model.onnx").is_file():
            return _check_export_dir(path, pattern, include, exclude)
        raise UserError(
            f"{path} is neither a run directory (no {RUN_MANIFEST}) nor an export directory; "
            "pass a run directory, a .safetensors or an .onnx file"
        )
    if path.suffix == ".onnx":
        from nxm_deploy.export.check import check_onnx

        return check_onnx(path, pattern or "2:4", include, exclude)
    return check_safetensors(path, pattern or "2:4", include, exclude)
