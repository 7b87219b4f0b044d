"""Manifests (``nxm.json``, ``export.json``, ``report.json``) and atomic file writes.

Every output directory carries a JSON manifest of how it was made, so the next step needs only the
directory. Files are written to a temporary name beside the target and renamed into place, so a
crash never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nxm_deploy import __version__
from nxm_deploy.errors import UserError

RUN_MANIFEST = "nxm.json"
EXPORT_MANIFEST = "export.json"
REPORT_MANIFEST = "report.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance() -> dict[str, Any]:
    """Who made an output: tool version, command line, time, Python and platform."""
    return {
        "tool": "nxm-deploy",
        "tool_version": __version__,
        "created": now_iso(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a manifest is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | os.PathLike[str], what: str = "manifest") -> dict[str, Any]:
    """Read a JSON object; a missing or unreadable file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{what} {path} is not valid JSON ({exc}); rebuild it") from exc
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object")
    return data


def read_run_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``nxm.json`` of a run directory, or a one-line error saying what the path is instead."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory; pass the run directory that train wrote")
    if not (run_dir / RUN_MANIFEST).is_file():
        raise UserError(
            f"{run_dir} is not a run directory (no {RUN_MANIFEST}); pass a directory written by "
            "'nxm-deploy train'"
        )
    return read_json(run_dir / RUN_MANIFEST, "run manifest")


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Build an output directory in a temporary sibling, then rename it into place.

    An existing ``final`` is refused unless ``overwrite``; it is replaced only once the new one is
    complete, so a failed or interrupted build leaves the old directory (or nothing) behind.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise UserError(f"{final} already exists; pass --overwrite to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result is an ordinary directory
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
