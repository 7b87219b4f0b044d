"""The N:M check on saved weights: a run directory or a bare safetensors file.

Weights are read with safetensors only (never pickle). Groups run along axis 1 of each 2-D
``*.weight`` tensor (``nn.Linear``'s ``[out, in]``: the input, reduction axis). Which tensors are
checked follows :class:`~nxm_deploy.models.LayerRule` over the layer name (the tensor name without
``.weight``) and the tensor name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch

from nxm_deploy import nm
from nxm_deploy.check.report import CheckReport, check_tensor
from nxm_deploy.errors import SparsityError, UserError
from nxm_deploy.manifest import RUN_MANIFEST, RunManifest
from nxm_deploy.models import DEFAULT_RULE, LayerRule

__all__ = ["check_run_dir", "check_safetensors", "load_tensors", "safetensors_files"]


def _natural_key(name: str) -> list[int | str]:
    """Sort ``layer.2`` before ``layer.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def safetensors_files(path: Path) -> list[Path]:
    """The safetensors files of a model dir (one file or shards), or the file itself."""
    if path.is_file():
        return [path]
    files = sorted(f for f in path.glob("*.safetensors") if not f.name.startswith("."))
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


def _layer(tensor_name: str) -> str:
    return tensor_name.removesuffix(".weight")


def check_safetensors(
    path: str | Path, pattern: str | nm.Pattern = nm.DEFAULT_PATTERN, rule: LayerRule = DEFAULT_RULE
) -> CheckReport:
    """Check the 2-D float ``*.weight`` tensors that ``rule`` selects (default: inside encoder blocks)."""
    p = nm.parse_pattern(pattern)
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    tensors = load_tensors(path)
    candidates = [
        k for k, v in tensors.items() if k.endswith(".weight") and v.dim() == 2 and v.is_floating_point()
    ]
    names = sorted((k for k in candidates if rule.selects(_layer(k), k)), key=_natural_key)
    rows = [check_tensor(n, tensors[n], p, axis=nm.LINEAR_AXIS, layer=_layer(n)) for n in names]
    return CheckReport(str(path), p, rows)


def check_run_dir(
    run: str | Path | RunManifest, pattern: str | nm.Pattern | None = None, rule: LayerRule = DEFAULT_RULE
) -> CheckReport:
    """Check the layers and pattern that a run directory's manifest names (``rule``'s ``exclude``
    leaves some out; its ``include`` checks the weights it names instead).

    A dense run (no pattern in its manifest) reports density only and passes; given ``pattern``, its
    encoder weights are checked against it (and fail unless they hold it).
    """
    manifest = run if isinstance(run, RunManifest) else RunManifest.read(run)
    run_dir, claimed = manifest.path, manifest.facts.pattern
    p = nm.parse_pattern(pattern) if pattern is not None else claimed or nm.DEFAULT_PATTERN
    if claimed is None or rule.include:
        report = check_safetensors(run_dir, p, rule)
        if claimed is None:
            return CheckReport(f"{run_dir} (dense run)", p, report.rows, expect_sparse=pattern is not None)
        return CheckReport(str(run_dir), p, report.rows)
    if not manifest.facts.layers:
        raise UserError(f"{run_dir / RUN_MANIFEST} claims pattern {claimed} but names no layers")
    layers = [n for n in manifest.facts.layers if not rule.excludes(n)]
    names = [f"{layer}.weight" for layer in layers]
    tensors = load_tensors(run_dir, names)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise SparsityError(
            f"{run_dir}: the manifest names layer {_layer(missing[0])} but the "
            "weights have no such tensor; the run directory is incomplete or was edited"
        )
    rows = [check_tensor(n, tensors[n], p, axis=nm.LINEAR_AXIS, layer=_layer(n)) for n in names]
    return CheckReport(str(run_dir), p, rows)
