"""The ``--out FILE.json`` of a sensitivity analysis and its plot ``FILE.png`` beside it.

    json_path, png_path = check_out_file("reports/rte-sensitivity.json", overwrite=False)
    write_outputs(report, json_path, png_path)

Refused before any work: an empty ``--out``, one that does not end in ``.json``, a directory, a path
under a file, a place this user cannot write, and (without ``--overwrite``) a JSON or PNG that is
already there. ``--overwrite`` replaces only a JSON that a sensitivity analysis wrote (its ``kind``)
and the plot beside it. Both files are written atomically, the plot first: the JSON is the last word.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from nxm_deploy.errors import UserError
from nxm_deploy.io import write_bytes_atomic, write_json_atomic
from nxm_deploy.manifest import SENSITIVITY_KIND
from nxm_deploy.outputs import user_os_error

__all__ = ["SENSITIVITY_KIND", "check_out_file", "write_outputs"]


def _ours(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == SENSITIVITY_KIND
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def check_out_file(path: str | os.PathLike[str], overwrite: bool, param: str = "out") -> tuple[Path, Path]:
    """(the JSON path, the PNG path beside it), or a one-line :class:`UserError` (module docstring)
    naming ``param``, the parameter that gave ``path``."""
    text = os.fspath(path)
    if not text.strip():
        raise UserError.naming("{0} is empty; name a .json file to write", param)
    out = Path(text).expanduser()
    if out.is_dir():
        raise UserError.naming(
            "{0} {text} is a directory; name a .json file to write (the plot goes beside it)",
            param,
            text=text,
        )
    if out.suffix.lower() != ".json":
        raise UserError.naming(
            "{0} {text} must name a .json file (the plot goes beside it as .png)", param, text=text
        )
    for place in out.resolve().parents:
        if not place.exists():
            continue
        if not place.is_dir():
            raise UserError.naming(
                "{0} {text} lies under the file {place}; name a .json file in a directory",
                param,
                text=text,
                place=place,
            )
        if not os.access(place, os.W_OK | os.X_OK):
            raise UserError.naming(
                "{0} {text}: {place} is not writable; choose another place", param, text=text, place=place
            )
        break
    plot = out.with_suffix(".png")
    if plot.is_dir():
        raise UserError.naming(
            "{0} {text}: {plot} is a directory, where the plot would go; choose another name",
            param,
            text=text,
            plot=plot,
        )
    there = [p for p in (out, plot) if p.exists()]
    if there and not overwrite:
        raise UserError.naming("{path} already exists; pass {0} to replace it", "overwrite", path=there[0])
    if there and not (_ours(out) if out.exists() else False):
        raise UserError.naming(
            "{0}: {path} was not written by 'nxm-deploy sensitivity' (no {kind} JSON beside it); "
            "move it away or choose another {1}",
            "overwrite",
            param,
            path=there[0],
            kind=SENSITIVITY_KIND,
        )
    return out, plot


def write_outputs(report: dict[str, Any], out: Path, plot: Path) -> None:
    """The plot, then the JSON; a full disk or a read-only place is one line."""
    from nxm_deploy.sensitivity.plot import draw

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        draw(report).savefig(buf, format="png")
        write_bytes_atomic(plot, buf.getvalue())
        write_json_atomic(out, report)
    except OSError as exc:
        raise (user_os_error(exc, out) or exc) from exc
