"""benchmarks/int8.py reuses an export only when it is of the run it is asked for: a run trained
again at the same path, or another run, is exported again (the base-size chain once met a run
trained again under exports of the first one)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def test_an_export_is_reused_only_for_the_run_it_was_made_from(
    sparse_run: Path, sparse_export: Path, dense_run: Path, tmp_path: Path
) -> None:
    import int8

    run = Path(shutil.copytree(sparse_run, tmp_path / "run"))
    out = Path(shutil.copytree(sparse_export, tmp_path / "export"))
    assert not int8._kept(run, tmp_path / "none")  # nothing there yet
    assert not int8._kept(run, out)  # made from sparse_run, not from this copy
    assert int8._kept(sparse_run, out)
    assert not int8._kept(dense_run, out)
    before = (sparse_run / "nxm.json").stat()
    later = (out / "export.json").stat().st_mtime + 60
    os.utime(sparse_run / "nxm.json", (later, later))  # the run, trained again after the export
    try:
        assert not int8._kept(sparse_run, out)
    finally:
        os.utime(sparse_run / "nxm.json", ns=(before.st_atime_ns, before.st_mtime_ns))
