"""NVIDIA's own 2:4 check, ``polygraphy inspect sparsity``, agrees with ``check_onnx`` tensor by
tensor on a real export (dense pooler/classifier included) and on one whose weight was made dense.

Polygraphy prints one line per MatMul/Gemm/Conv weight: ``[I] Found sparse tensor: NAME`` or
``[W] Found non-sparse tensor: NAME``. Its axis rule is right for the 2-D weights of an exported
BERT; it maps Transpose axes with ``perm.index(a)``, right only for 2-D (see check/test_onnx.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nxm_deploy.check.onnx import check_onnx
from nxm_deploy.models import LayerRule

from .conftest import densified

FFN_IN = "bert.encoder.layer.0.intermediate.dense"
POLYGRAPHY = Path(sys.executable).with_name("polygraphy")
_LINE = re.compile(r"Found (sparse|non-sparse) tensor: (\S+)\s*$")


def polygraphy_verdicts(path: Path) -> dict[str, bool]:
    if not POLYGRAPHY.exists():
        pytest.skip(f"polygraphy is not installed beside {sys.executable}")
    proc = subprocess.run(
        [str(POLYGRAPHY), "inspect", "sparsity", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        match = _LINE.search(line)
        if match:
            verdicts[match.group(2)] = match.group(1) == "sparse"
    return verdicts


def ours(path: Path) -> dict[str, bool]:
    return {r.name: r.ok for r in check_onnx(path, "2:4", rule=LayerRule(include=("*",))).rows}


def test_polygraphy_agrees_on_a_sparse_export(sparse_export):
    path = sparse_export / "model.onnx"
    theirs = polygraphy_verdicts(path)
    mine = ours(path)
    assert theirs == mine
    assert sum(theirs.values()) == 12  # the encoder weights
    assert theirs["classifier.weight"] is False and theirs["bert.pooler.dense.weight"] is False


def test_polygraphy_agrees_when_a_weight_is_made_dense(sparse_export, tmp_path):
    path = tmp_path / "one-dense.onnx"
    name = densified(sparse_export, path, [FFN_IN])[FFN_IN]
    theirs = polygraphy_verdicts(path)
    assert theirs == ours(path)
    assert theirs[name] is False and sum(theirs.values()) == 11
