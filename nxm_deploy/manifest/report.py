"""``report.json``, the manifest of a bench report directory, and the JSON file of a sensitivity
analysis: typed at their top level, their measurements kept as JSON (docs/bench.md, README.md).

    report = ReportManifest.read("reports/rte/report.json")
    report.task, report.notes, report.latency["summary"]["ratio"]["geomean"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from nxm_deploy.io import read_json
from nxm_deploy.manifest.fields import (
    PROVENANCE_KEYS,
    REPORT_KIND,
    SENSITIVITY_KIND,
    Fields,
    Provenance,
    check_header,
)

__all__ = ["REPORT_SCHEMA", "SENSITIVITY_SCHEMA", "ReportManifest", "SensitivityManifest"]

REPORT_SCHEMA = 1
SENSITIVITY_SCHEMA = 1
_SECTIONS = ("backend", "models", "tokenizer", "latency", "accuracy", "sparsity", "machine", "versions")


@dataclass(frozen=True)
class ReportManifest:
    """``report.json``: ``task``, the ``also`` models, ``notes``, ``files`` and the wall time typed;
    ``backend``, ``models``, ``tokenizer``, ``latency``, ``accuracy``, ``sparsity``, ``machine`` and
    ``versions`` are the measurements' sections, as JSON."""

    task: str | None
    provenance: Provenance = field(default_factory=Provenance)
    schema: int = REPORT_SCHEMA
    backend: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    sparsity: dict[str, Any] = field(default_factory=dict)
    also: tuple[dict[str, Any], ...] = ()
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    wall_time_s: float | None = None
    files: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Any, where: str | os.PathLike[str]) -> ReportManifest:
        """Parse and check ``body``; ``where`` (the file) is named in every one-line error."""
        fields = Fields(body, str(where))
        schema = check_header(fields, REPORT_KIND, REPORT_SCHEMA, need_kind=True)
        # a report's machine section is the bench's own (cores, threads), not provenance's
        sections = {name: fields.mapping(name) or {} for name in _SECTIONS}
        return cls(
            task=fields.text("task"),
            provenance=Provenance.from_json(fields),
            schema=schema,
            **sections,
            also=fields.objects("also"),
            notes=fields.texts("notes"),
            wall_time_s=fields.number("wall_time_s"),
            files=fields.texts("files"),
            extra=fields.rest(
                "kind",
                "schema",
                *PROVENANCE_KEYS,
                "task",
                *_SECTIONS,
                "also",
                "notes",
                "wall_time_s",
                "files",
            ),
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": REPORT_KIND, "schema": self.schema, **self.provenance.to_json()}
        body.update(task=self.task, **{name: getattr(self, name) for name in _SECTIONS})
        body.update(also=list(self.also), notes=list(self.notes), wall_time_s=self.wall_time_s)
        if self.files:
            body["files"] = list(self.files)
        return {**body, **self.extra}

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ReportManifest:
        """Read a ``report.json`` file."""
        return cls.from_json(read_json(path, "bench report"), Path(path))


_SENSITIVITY_TEXTS = ("run", "task", "metric", "pattern", "train_exclude", "flops", "plot", "torch_version",
                      "transformers_version")  # fmt: skip
_SENSITIVITY_NUMBERS = ("seed", "max_seq_len", "baseline", "budget", "combined_drop", "flops_share",
                        "flops_share_all_nm", "measurements", "wall_time_s")  # fmt: skip
_SENSITIVITY_LISTS = ("layers", "kinds", "ranking", "greedy")


@dataclass(frozen=True)
class SensitivityManifest:
    """The ``--out FILE.json`` of ``sensitivity`` (README.md): the run analysed, the drops measured
    (``layers``, ``kinds``, ``ranking``, ``greedy``: lists of JSON objects) and the ``exclude``
    list chosen under ``budget``."""

    run: str | None
    task: str | None
    metric: str | None
    pattern: str | None
    exclude: tuple[str, ...]
    provenance: Provenance = field(default_factory=Provenance)
    schema: int = SENSITIVITY_SCHEMA
    rows: dict[str, Any] = field(default_factory=dict)
    seed: float | None = None
    max_seq_len: float | None = None
    baseline: float | None = None
    layers: tuple[dict[str, Any], ...] = ()
    kinds: tuple[dict[str, Any], ...] = ()
    ranking: tuple[dict[str, Any], ...] = ()
    budget: float | None = None
    train_exclude: str | None = None
    combined_drop: float | None = None
    flops_share: float | None = None
    flops_share_all_nm: float | None = None
    flops: str | None = None
    greedy: tuple[dict[str, Any], ...] = ()
    measurements: float | None = None
    wall_time_s: float | None = None
    plot: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    torch_version: str | None = None
    transformers_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Any, where: str | os.PathLike[str]) -> SensitivityManifest:
        """Parse and check ``body``; ``where`` (the file) is named in every one-line error."""
        fields = Fields(body, str(where))
        schema = check_header(fields, SENSITIVITY_KIND, SENSITIVITY_SCHEMA, need_kind=True)
        return cls(
            **{k: fields.text(k) for k in _SENSITIVITY_TEXTS},
            **{k: fields.number(k) for k in _SENSITIVITY_NUMBERS},
            **{k: fields.objects(k) for k in _SENSITIVITY_LISTS},
            exclude=fields.texts("exclude"),
            provenance=Provenance.from_json(fields),
            schema=schema,
            rows=fields.mapping("rows") or {},
            config=fields.mapping("config") or {},
            extra=fields.rest(
                "kind",
                "schema",
                *PROVENANCE_KEYS,
                *_SENSITIVITY_TEXTS,
                *_SENSITIVITY_NUMBERS,
                *_SENSITIVITY_LISTS,
                "exclude",
                "rows",
                "config",
            ),
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": SENSITIVITY_KIND, "schema": self.schema}
        for f in dataclass_fields(self):
            if f.name not in ("schema", "provenance", "extra"):
                value = getattr(self, f.name)
                body[f.name] = list(value) if isinstance(value, tuple) else value
        return {**body, **self.provenance.to_json(), **self.extra}

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SensitivityManifest:
        """Read a sensitivity analysis's JSON file."""
        return cls.from_json(read_json(path, "sensitivity report"), Path(path))
