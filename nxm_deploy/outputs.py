"""Output directories the tool owns: safe ``--out`` paths, the list of what was written, and
replacement that deletes only that.

Every output directory (run, export, report, Triton model, demo) carries ``.nxm-files.json``: the
relative paths the tool wrote into it. ``--overwrite`` (and ``demo --fresh``) replace a directory
only when it is empty or holds nothing but what that list names; anything else is the user's, and
the command refuses with one line naming it. A listed directory (``"runs/"``) is the tool's; what is
inside it is judged by its own list when it has one, else it is the tool's too.

Directories are built in a hidden sibling and swapped in by rename (``staged_dir``), so the old
output survives until the new one is complete, and a crash leaves at most a hidden ``.partial``
directory that the next run on the same ``--out`` removes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from safetensors import SafetensorError

from nxm_deploy.errors import UserError
from nxm_deploy.io import umask, write_json_atomic

__all__ = [
    "OWNED_LIST",
    "check_out_path",
    "contained",
    "foreign_entries",
    "record_owned",
    "remove_owned",
    "require_replaceable",
    "staged_dir",
    "swap_into_place",
]

OWNED_LIST = ".nxm-files.json"
# errors of the file system that are the user's to fix (space, quota, permissions), not bugs
_USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


# ---- where an output may go ---------------------------------------------------------------------


def check_out_path(path: str | os.PathLike[str], param: str = "out") -> Path:
    """``path`` (the parameter ``param``) as an output directory, or a :class:`UserError` saying why
    it can never be one:
    empty, ``/``, the home directory, the current directory or one of its parents, an existing
    file, a path under a file, or a place this user cannot write (or where nothing can be created:
    a hidden folder is made and removed at once to find out)."""
    text = os.fspath(path)
    if not text.strip():
        raise UserError.naming("{0} is empty; name a new directory to write", param)
    target = Path(text).expanduser()
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        raise UserError.naming(
            "{0} {text} is the file-system root; name a new directory to write", param, text=text
        )
    if resolved == Path.home().resolve():
        raise UserError.naming(
            "{0} {text} is your home directory; name a new directory to write", param, text=text
        )
    if resolved == cwd or resolved in cwd.parents:
        raise UserError.naming(
            "{0} {text} is the current directory or one of its parents; name a new directory to write",
            param,
            text=text,
        )
    for place in (resolved, *resolved.parents):
        if not place.exists():
            continue
        if not place.is_dir():
            where = "is a file" if place == resolved else f"lies under the file {place}"
            raise UserError.naming(
                "{0} {text} {where}; name a directory to write", param, text=text, where=where
            )
        parent = place if place != resolved else place.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserError.naming(
                "{0} {text}: {parent} is not writable; choose another place", param, text=text, parent=parent
            )
        _probe(parent, param, text)
        break
    return target


def _probe(parent: Path, param: str, text: str) -> None:
    """Create (and remove at once) a hidden folder in ``parent``: a place that passes the access check
    but refuses every new entry (``/proc``, some network mounts) fails here, before any work, rather
    than when the output is written."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nxm-probe.", dir=parent))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError.naming(
            "{0} {text}: cannot create anything in {parent} ({reason}); choose another place",
            param,
            text=text,
            parent=parent,
            reason=reason,
        ) from exc


def contained(directory: str | os.PathLike[str], name: object, what: str) -> Path:
    """``directory / name`` for a file name read from a manifest, refused unless it is a relative
    path that stays inside ``directory`` (no absolute path, no ``..``, no link that leaves it)."""
    directory = Path(directory)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UserError(f"{what} in {directory} is not a file name ({name!r}); rebuild the directory")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise UserError(f"{what} {name!r} in {directory} points outside it; rebuild the directory")
    path = directory / rel
    root = directory.resolve()
    if path.resolve() != root and root not in path.resolve().parents:
        raise UserError(f"{what} {name!r} in {directory} points outside it; rebuild the directory")
    return path


# ---- what is the tool's --------------------------------------------------------------------------


def record_owned(directory: str | os.PathLike[str], also: Iterable[str] = ()) -> None:
    """Write ``directory``'s list of owned paths: every file and folder in it now, plus ``also``:
    files it will write later, and folders (``"name/"``) that are the tool's whatever they come to
    hold (a run's checkpoints)."""
    directory = Path(directory)
    names = {OWNED_LIST, *(a for a in also if not a.endswith("/"))}
    for path in directory.rglob("*"):
        names.add(_name(path, directory))
    trees = sorted(a for a in also if a.endswith("/"))
    write_json_atomic(
        directory / OWNED_LIST, {"written_by": "nxm-deploy", "paths": sorted(names), "trees": trees}
    )


def _name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel + "/" if path.is_dir() and not path.is_symlink() else rel


def _owned(directory: Path) -> tuple[set[str], tuple[str, ...]] | None:
    try:
        data = json.loads((directory / OWNED_LIST).read_text(encoding="utf-8"))
        paths, trees = set(data["paths"]), tuple(data.get("trees", ()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {p for p in paths if isinstance(p, str)}, tuple(t for t in trees if isinstance(t, str))


def foreign_entries(directory: str | os.PathLike[str]) -> list[str]:
    """Paths inside ``directory`` that the tool did not write (by the owned lists), relative to it.

    A path is the tool's when the list names it, or it lies in one of the list's trees; a listed
    folder that carries its own list is judged by that list.
    """
    directory = Path(directory)
    listed = _owned(directory)
    if listed is None:
        return sorted(_name(p, directory) for p in directory.iterdir())
    paths, trees = listed
    foreign: list[str] = []

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            name = _name(entry, directory)
            if name.startswith(trees):
                continue
            if name not in paths:
                foreign.append(name)
            elif name.endswith("/") and (entry / OWNED_LIST).is_file():
                foreign.extend(name + p for p in foreign_entries(entry))
            elif name.endswith("/"):
                walk(entry)

    walk(directory)
    return foreign


def require_replaceable(directory: str | os.PathLike[str], param: str = "overwrite") -> None:
    """Refuse to replace ``directory`` unless it is missing, empty, or holds only the tool's files
    (``param``: the parameter that asked to replace it)."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise UserError.naming(
            "{0}: {directory} is a file, not an output directory; remove it yourself",
            param,
            directory=directory,
        )
    foreign = foreign_entries(directory)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError.naming(
            "{0}: {directory} holds files nxm-deploy did not write ({shown}); "
            "move them away or choose another {1}",
            param,
            "out",
            directory=directory,
            shown=shown,
        )


def remove_owned(directory: str | os.PathLike[str], param: str = "overwrite") -> None:
    """Delete ``directory`` after :func:`require_replaceable` said it is the tool's."""
    require_replaceable(directory, param)
    shutil.rmtree(directory, ignore_errors=True)


# ---- building a directory aside -------------------------------------------------------------------


def swap_into_place(new: Path, final: Path) -> None:
    """Rename ``new`` to ``final``; an existing ``final`` is moved aside first and deleted only
    after the rename, so at every moment one complete directory exists."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(new, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, final)


def _remove_orphans(final: Path) -> None:
    """Hidden ``.NAME.*.partial`` siblings: what a killed build of ``final`` left behind."""
    for orphan in final.parent.glob(f".{final.name}.*.partial"):
        if orphan.is_dir():
            shutil.rmtree(orphan, ignore_errors=True)


def os_error_reason(exc: BaseException) -> str | None:
    """ "No space left on device" and the like for a full disk, a quota or a read-only place (an
    ``OSError``, or a writer's error that carries one, as safetensors' does); None otherwise."""
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and (m := re.search(r"os error (\d+)", str(exc))):
        code = int(m.group(1))
    return os.strerror(code) if code in _USER_OS_ERRORS else None


def user_os_error(exc: BaseException, final: Path) -> UserError | None:
    """One line for :func:`os_error_reason`'s errors while building ``final``; None for others."""
    reason = os_error_reason(exc)
    if reason is None:
        return None
    return UserError(f"cannot write {final}: {reason}; nothing was written (free space or fix permissions)")


def prepare_out(final: str | os.PathLike[str], overwrite: bool, param: str = "out") -> Path:
    """Check ``final`` as an output directory before any work: a safe path, refused when it exists
    unless ``overwrite``, and then only when it holds nothing but the tool's files."""
    path = check_out_path(final, param)
    if path.exists() and not overwrite:
        raise UserError.naming("{path} already exists; pass {0} to replace it", "overwrite", path=path)
    if path.exists():
        require_replaceable(path)
    return path


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Build an output directory in a temporary sibling, then rename it into place.

    ``final`` is checked with :func:`prepare_out`. The old directory is replaced only once the new
    one is complete, so a failed or interrupted build leaves it (or nothing) behind. Messages that
    name the temporary directory name ``final`` instead; a full disk is one line.
    """
    final = prepare_out(final, overwrite)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise (
            user_os_error(exc, final) or UserError(f"cannot create {final}: {reason}; choose another place")
        ) from exc
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; the result is an ordinary directory
    try:
        yield tmp
        record_owned(tmp)
        swap_into_place(tmp, final)
    except UserError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        exc.replace_text(str(tmp), str(final))
        raise
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise (user_os_error(exc, final) or exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
