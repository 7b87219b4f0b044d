"""What every part of scripts/gpu_check.py shares: ``Skip``, ``Deadline``, and ``Recorder``, which
writes a part's results to its JSON file after every measurement, so that a crash, a kill or a failed
sub-step keeps what was measured before it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


class Skip(Exception):
    """A part (or a sub-step) that cannot run on this machine; the message says why."""


class Deadline:
    """What is left of a time budget; steps ask before they start."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, for a report."""
    text = (str(exc).strip().splitlines() or [""])[0][:limit]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON through a temporary file and a rename (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class Recorder:
    """A part's results, rewritten to ``path`` (atomically) after every change.

    ``status`` is ``running`` until the part ends (``pass``, ``skip`` or ``fail``); a file still
    ``running`` after its process ended tells the driver that the process crashed or was killed,
    and its ``details`` are what had been measured by then."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.data: dict[str, Any] = {"status": "running", "reason": None, "details": {}}
        self._flush()

    @property
    def details(self) -> dict[str, Any]:
        return self.data["details"]

    def update(self, key: str, value: Any) -> None:
        self.details[key] = value
        self._flush()

    def append(self, key: str, row: Any) -> None:
        self.details.setdefault(key, []).append(row)
        self._flush()

    def finish(self, status: str, reason: str | None = None) -> None:
        self.data.update(status=status, reason=reason)
        self._flush()

    def _flush(self) -> None:
        if self.path is not None:
            write_json(self.path, self.data)
