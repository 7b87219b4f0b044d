"""``check()``: prove that weights hold an N:M pattern, tensor by tensor.

    from nxm_deploy.check import check
    report = check("runs/rte-admm")              # or an export dir, a .onnx or a .safetensors file
    report.ok, report.failure_line()

- ``weights``: run directories and safetensors files (groups along axis 1 of ``[out, in]``);
- ``onnx``: ONNX graphs, along each MatMul/Gemm's reduction axis, traced back to the stored weight;
- ``report``: the rows, the verdict, the table and the JSON that ``nxm-deploy check`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nxm_deploy import nm
    from nxm_deploy.check.report import CheckReport

__all__ = ["check"]


def check(
    path: str | Path,
    pattern: str | nm.Pattern | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> CheckReport:
    """Check ``path``: a run directory (the layers and pattern its manifest names; a dense run
    reports its density and passes, unless ``pattern`` is given: then it must hold it), an export
    directory (its ONNX, against the pattern its manifest records), an ``.onnx`` file or a
    ``.safetensors`` file (encoder weights, or those ``include`` names). ``pattern`` defaults to the
    manifest's, else 2:4. A path inside a ``.NAME.XXXX.partial`` folder (an unfinished export) is
    refused."""
    from nxm_deploy import nm
    from nxm_deploy.check.onnx import check_onnx
    from nxm_deploy.check.report import CheckReport
    from nxm_deploy.check.weights import check_run_dir, check_safetensors
    from nxm_deploy.errors import UserError
    from nxm_deploy.manifest import RUN_MANIFEST, ExportManifest, RunManifest
    from nxm_deploy.models import LayerRule

    path = Path(path)
    rule = LayerRule(tuple(include), tuple(exclude))
    given = nm.parse_pattern(pattern) if pattern is not None else None
    if not path.exists():
        raise UserError(f"{path} does not exist; pass a run directory, a .safetensors or an .onnx file")
    _refuse_partial(path)
    if path.is_dir():
        if RunManifest.is_run_dir(path):
            return check_run_dir(path, given, rule)
        if ExportManifest.is_export_dir(path):
            export = ExportManifest.read(path)
            claimed = export.exported_pattern
            report = check_onnx(export.onnx_path, given or claimed or nm.DEFAULT_PATTERN, rule)
            if claimed or given:
                return report
            return CheckReport(f"{path} (dense export)", report.pattern, report.rows, expect_sparse=False)
        raise UserError(
            f"{path} is neither a run directory (no {RUN_MANIFEST}) nor an export directory; "
            "pass a run directory, a .safetensors or an .onnx file"
        )
    if path.suffix == ".onnx":
        return check_onnx(path, given or nm.DEFAULT_PATTERN, rule)
    return check_safetensors(path, given or nm.DEFAULT_PATTERN, rule)


def _refuse_partial(path: Path) -> None:
    """A path inside ``.NAME.XXXX.partial``, the hidden folder an export (bench, Triton) is built in: it
    is incomplete (still being written, or left by a killed run) and proves nothing."""
    import re

    from nxm_deploy.errors import UserError

    absolute = path.absolute()
    for folder in (absolute, *absolute.parents):
        m = re.fullmatch(r"\.(.+)\.[^.]+\.partial", folder.name)
        if m:
            raise UserError(
                f"{path} lies in {folder}, an incomplete export (still being written, or left by a killed "
                f"'nxm-deploy export'); check the finished {folder.parent / m.group(1)} instead"
            )
