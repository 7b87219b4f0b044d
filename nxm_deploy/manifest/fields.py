"""What every manifest shares: the file names and kinds, the header check (``kind``, ``schema``), the
provenance section, and :class:`Fields`, the typed reading of one JSON object with one-line errors.

    fields = Fields(body, "runs/rte/nxm.json")
    fields.count("max_seq_len")      # a positive int, None when absent; else one line naming the field
    fields.texts("layers")           # a tuple of str

A field whose value has the wrong type is a :class:`~nxm_deploy.errors.UserError` (an
:class:`~nxm_deploy.errors.ExportDirError` for ``export.json``) naming the file and the field: the
file was edited or damaged. A field that is absent reads as ``None`` (or empty): manifests written
by older versions of the tool lack the newer fields.
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nxm_deploy import origin
from nxm_deploy.errors import UserError
from nxm_deploy.io import now_iso
from nxm_deploy.version import __version__

__all__ = ["Fields", "Provenance", "check_header", "positive_int", "provenance"]

RUN_MANIFEST = "nxm.json"
EXPORT_MANIFEST = "export.json"
REPORT_MANIFEST = "report.json"
RUN_KIND = "nxm-deploy/run"
EXPORT_KIND = "nxm-deploy/export"
REPORT_KIND = "nxm-deploy/report"
SENSITIVITY_KIND = "nxm-deploy/sensitivity"
DAMAGED = "the file was edited or damaged; write it again with nxm-deploy"


def positive_int(value: Any, where: str, error: type[UserError] = UserError) -> int | None:
    """A count read from a manifest (``None`` when absent), or one line naming the field when it is not
    a positive integer (``"huge"``, ``-3``, ``1.5``): the file was edited or damaged."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"{where} must be a positive integer, got {value!r}; write the file again")
    return value


class Fields:
    """Typed reads of the JSON object ``body``; ``where`` names the file and ``prefix`` the section
    (``"tokenizer."``) in the one-line ``error`` raised for a value of the wrong type."""

    @classmethod
    def of(cls, body: Any, where: str, error: type[UserError] = UserError) -> Fields:
        """``body`` itself when it is Fields already, else its Fields."""
        return body if isinstance(body, Fields) else cls(body, where, error)

    def __init__(self, body: Any, where: str, error: type[UserError] = UserError, prefix: str = "") -> None:
        if not isinstance(body, Mapping):
            name = f"{where}: {prefix.rstrip('.')}" if prefix else where
            raise error(f"{name} must be a JSON object, got {type(body).__name__}; {DAMAGED}")
        self.body, self.where, self.error, self.prefix = body, where, error, prefix

    def name(self, key: str) -> str:
        """The field as a message names it: ``export.json: tokenizer.max_seq_len``."""
        return f"{self.where}: {self.prefix}{key}"

    def bad(self, key: str, want: str) -> UserError:
        return self.error(f"{self.name(key)} must be {want}, got {self.body[key]!r}; {DAMAGED}")

    def section(self, key: str) -> Fields:
        """The object at ``key`` (an empty one when absent or null)."""
        value = self.body.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self.bad(key, "a JSON object")
        return Fields(value or {}, self.where, self.error, f"{self.prefix}{key}.")

    def text(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is not None and not isinstance(value, str):
            raise self.bad(key, "a string")
        return value

    def flag(self, key: str) -> bool | None:
        value = self.body.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.bad(key, "true or false")
        return value

    def integer(self, key: str) -> int | None:
        value = self.body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise self.bad(key, "a whole number")
        return value

    def count(self, key: str) -> int | None:
        return positive_int(self.body.get(key), self.name(key), self.error)

    def number(self, key: str) -> float | None:
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.bad(key, "a number")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.body.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(key, "a list of strings")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, Any] | None:
        """An open-ended object (metrics, hyperparameters...), copied; None when absent or null."""
        value = self.body.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self.bad(key, "a JSON object")
        return None if value is None else dict(value)

    def objects(self, key: str) -> tuple[dict[str, Any], ...]:
        """A list of open-ended objects (phases, layers...)."""
        value = self.body.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.bad(key, "a list of JSON objects")
        return tuple(dict(v) for v in value)

    def rest(self, *typed: str) -> dict[str, Any]:
        """The keys not in ``typed``: kept as they are, so a file round-trips."""
        return {k: v for k, v in self.body.items() if k not in typed}


def check_header(fields: Fields, kind: str, schema: int, need_kind: bool = False) -> int:
    """The manifest's schema version (1 when absent), after checking its ``kind`` (absent is allowed
    unless ``need_kind``); a schema newer than ``schema`` is refused in one line: upgrade the tool."""
    found = fields.body.get("kind")
    if found != kind and (need_kind or found is not None):
        raise fields.error(
            f"{fields.where} is not an nxm-deploy {kind.split('/')[-1]} manifest (kind {found!r})"
        )
    version = fields.count("schema") or 1
    if version > schema:
        raise fields.error(
            f"{fields.where} has schema {version}, newer than this nxm-deploy {__version__} reads "
            f"(up to {schema}); upgrade nxm-deploy (pip install -U nxm-deploy)"
        )
    return version


PROVENANCE_KEYS = ("tool", "tool_version", "source", "created", "command", "python", "platform",
                   "libraries", "machine")  # fmt: skip


@dataclass(frozen=True)
class Provenance:
    """Who made an output: the tool and its version (the one home of the version in a manifest), its
    source revision (git ``commit``, ``dirty``; None for an installed wheel), the time, the command
    line, Python and platform, the libraries' versions and the machine."""

    tool: str | None = "nxm-deploy"
    tool_version: str | None = None
    source: dict[str, Any] | None = None
    created: str | None = None
    command: tuple[str, ...] = ()
    python: str | None = None
    platform: str | None = None
    libraries: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def here(cls) -> Provenance:
        """This process: its version, revision, command line and machine, now."""
        return cls(
            tool="nxm-deploy",
            tool_version=__version__,
            source=origin.source_revision(),
            created=now_iso(),
            command=(Path(sys.argv[0]).name, *sys.argv[1:]),
            python=platform.python_version(),
            platform=platform.platform(),
            libraries=origin.library_versions(),
            machine=origin.machine(),
        )

    @classmethod
    def from_json(cls, fields: Fields) -> Provenance:
        """Read from the top level of a manifest; a schema-1 run manifest's duplicate
        ``nxm_deploy_version`` stands in for a missing ``tool_version``."""
        version = fields.text("tool_version") or fields.text("nxm_deploy_version")
        return cls(
            tool=fields.text("tool"),
            tool_version=version,
            source=fields.mapping("source"),
            created=fields.text("created"),
            command=fields.texts("command"),
            python=fields.text("python"),
            platform=fields.text("platform"),
            libraries=fields.mapping("libraries") or {},
            machine=fields.mapping("machine") or {},
        )

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


def provenance() -> dict[str, Any]:
    """The provenance of an output made now, as the keys a manifest carries at its top level."""
    return Provenance.here().to_json()
