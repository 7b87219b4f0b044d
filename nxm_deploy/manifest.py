"""The manifests every output directory carries, and one reader for each kind.

    run = RunManifest.read("runs/rte-admm")          # nxm.json
    run.facts.pattern                                 # nm.Pattern(2, 4), parsed once; None: dense
    export = ExportManifest.read("exports/rte-admm")  # export.json
    export.source.layers, export.onnx_path, export.run_dir

``nxm.json`` (run directory, written by ``train``), ``export.json`` (export directory) and
``report.json`` (report directory) are JSON objects whose ``kind`` names the step that wrote them;
their schemas are in README.md, docs/export.md and docs/bench.md. ``RunFacts`` is what a run says
about its model: the same keys in ``nxm.json`` and in ``export.json``'s ``source_run`` section, so
``export`` and ``bench`` read a run's facts the same way whichever directory they are given.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy import nm, origin
from nxm_deploy.errors import ExportDirError, PatternError, UserError
from nxm_deploy.io import now_iso, read_json
from nxm_deploy.outputs import contained
from nxm_deploy.version import __version__

__all__ = [
    "EXPORT_KIND",
    "EXPORT_MANIFEST",
    "REPORT_KIND",
    "REPORT_MANIFEST",
    "RUN_KIND",
    "RUN_MANIFEST",
    "ExportManifest",
    "RunFacts",
    "RunManifest",
    "provenance",
]

RUN_MANIFEST = "nxm.json"
EXPORT_MANIFEST = "export.json"
REPORT_MANIFEST = "report.json"
RUN_KIND = "nxm-deploy/run"
EXPORT_KIND = "nxm-deploy/export"
REPORT_KIND = "nxm-deploy/report"
RUN_FACT_KEYS = ("kind", "tool_version", "base_model", "task", "method", "pattern", "layers",
                 "num_labels", "max_seq_len", "labels", "is_regression", "dataset")  # fmt: skip
"""The keys of ``nxm.json`` that ``export.json`` copies into ``source_run``."""


def provenance() -> dict[str, Any]:
    """Who made an output: tool version and source revision (git commit, dirty tree), command line,
    time, Python and platform, the libraries' versions and the machine."""
    return {
        "tool": "nxm-deploy",
        "tool_version": __version__,
        "source": origin.source_revision(),
        "created": now_iso(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": origin.library_versions(),
        "machine": origin.machine(),
    }


def positive_int(value: Any, where: str, error: type[UserError] = UserError) -> int | None:
    """A count read from a manifest (``None`` when absent), or one line naming the field when it is not
    a positive integer (``"huge"``, ``-3``, ``1.5``): the file was edited or damaged."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"{where} must be a positive integer, got {value!r}; write the file again")
    return value


@dataclass(frozen=True)
class RunFacts:
    """What a run says about its model. ``pattern`` is None for a dense run; ``layers`` are the
    layers made sparse (none for a dense run)."""

    task: str | None
    method: str | None
    pattern: nm.Pattern | None
    layers: tuple[str, ...]
    base_model: str | None
    max_seq_len: int | None
    num_labels: int | None

    @classmethod
    def from_json(cls, body: dict[str, Any], where: str | os.PathLike[str]) -> RunFacts:
        """Parse ``body`` (``nxm.json``, or ``export.json``'s ``source_run``); ``where`` names it in
        the one-line error for a pattern that does not parse."""
        try:
            pattern = nm.parse_pattern(body["pattern"]) if body.get("pattern") else None
        except PatternError as exc:
            raise UserError(f"{where}: {exc}") from exc
        layers = tuple(str(n) for n in body.get("layers") or ()) if pattern else ()
        return cls(
            task=body.get("task"),
            method=body.get("method"),
            pattern=pattern,
            layers=layers,
            base_model=body.get("base_model"),
            max_seq_len=positive_int(body.get("max_seq_len"), f"{where}: max_seq_len"),
            num_labels=positive_int(body.get("num_labels"), f"{where}: num_labels"),
        )

    @property
    def sparse(self) -> bool:
        return self.pattern is not None


@dataclass(frozen=True)
class RunManifest:
    """A run directory and its ``nxm.json``."""

    path: Path
    body: dict[str, Any]
    facts: RunFacts

    @classmethod
    def read(cls, run_dir: str | os.PathLike[str], role: str = "run directory") -> RunManifest:
        """Read ``run_dir/nxm.json``, or raise a one-line error saying what the path is instead."""
        path = Path(run_dir)
        if not path.exists():
            raise UserError(f"{role} {path} does not exist")
        if not path.is_dir():
            raise UserError(f"{path} is not a directory; pass the run directory that train wrote")
        if not (path / RUN_MANIFEST).is_file():
            raise UserError(
                f"{path} is not a run directory (no {RUN_MANIFEST}); pass a directory written by "
                "'nxm-deploy train'"
            )
        body = read_json(path / RUN_MANIFEST, "run manifest")
        return cls(path, body, RunFacts.from_json(body, path / RUN_MANIFEST))

    @staticmethod
    def is_run_dir(path: str | os.PathLike[str]) -> bool:
        return (Path(path) / RUN_MANIFEST).is_file()

    @property
    def metrics(self) -> dict[str, float]:
        metrics = self.body.get("metrics")
        return dict(metrics) if isinstance(metrics, dict) else {}

    @property
    def epochs_total(self) -> float:
        return float(self.body.get("epochs_total") or 0)

    def export_facts(self) -> dict[str, Any]:
        """The ``source_run`` section of an ``export.json`` made from this run."""
        return {"path": str(self.path.resolve()), **{k: self.body.get(k) for k in RUN_FACT_KEYS}}


@dataclass(frozen=True)
class ExportManifest:
    """An export directory and its ``export.json``; ``source`` are the facts of the run it came
    from, ``run_dir`` that run's directory when it is still there."""

    path: Path
    body: dict[str, Any]
    source: RunFacts
    run_dir: Path | None

    @classmethod
    def read(cls, export_dir: str | os.PathLike[str]) -> ExportManifest:
        """Read ``export_dir/export.json``; one-line :class:`ExportDirError` when it is not one."""
        path = Path(export_dir)
        if not path.exists():
            raise ExportDirError(f"export directory {path} does not exist")
        if not path.is_dir():
            raise ExportDirError(
                f"{path} is not a directory; pass the directory that 'nxm-deploy export' wrote"
            )
        if not (path / EXPORT_MANIFEST).is_file():
            if (path / RUN_MANIFEST).is_file():
                raise ExportDirError(
                    f"{path} is a run directory ({RUN_MANIFEST}), not an export; export it first: "
                    f"nxm-deploy export {path} --out EXPORT_DIR"
                )
            raise ExportDirError(
                f"{path} is not an export directory (no {EXPORT_MANIFEST}); pass a directory written by "
                "'nxm-deploy export'"
            )
        try:
            body = read_json(path / EXPORT_MANIFEST, "export manifest")
        except UserError as exc:
            raise ExportDirError(str(exc)) from exc
        if body.get("kind") != EXPORT_KIND:
            raise ExportDirError(
                f"{path / EXPORT_MANIFEST} is not an nxm-deploy export manifest (kind {body.get('kind')!r})"
            )
        run = body.get("source_run")
        if not isinstance(run, dict) or "task" not in run:
            raise ExportDirError(f"{path / EXPORT_MANIFEST} has no source_run section; export the run again")
        run_dir = Path(run["path"]) if run.get("path") else None
        if run_dir is not None and not RunManifest.is_run_dir(run_dir):
            run_dir = None
        return cls(path, body, RunFacts.from_json(run, path / EXPORT_MANIFEST), run_dir)

    @staticmethod
    def is_export_dir(path: str | os.PathLike[str]) -> bool:
        return (Path(path) / EXPORT_MANIFEST).is_file()

    def section(self, name: str) -> dict[str, Any]:
        value = self.body.get(name)
        return dict(value) if isinstance(value, dict) else {}

    @property
    def tensorrt(self) -> dict[str, Any]:
        return self.section("tensorrt")

    @property
    def onnx_path(self) -> Path:
        return contained(self.path, self.section("onnx").get("file") or "model.onnx", "onnx.file")

    @property
    def engine_path(self) -> Path:
        return contained(self.path, self.tensorrt.get("engine") or "model.engine", "tensorrt.engine")

    @property
    def max_seq_len(self) -> int | None:
        value = self.section("tokenizer").get("max_seq_len")
        if value is None:
            return self.source.max_seq_len
        where = f"{self.path / EXPORT_MANIFEST}: tokenizer.max_seq_len"
        return positive_int(value, where, ExportDirError)

    @property
    def position_limit(self) -> int | None:
        """The longest sequence the model takes (its position embeddings), as the export recorded it
        (``tokenizer.position_limit``; None in exports written before it was recorded)."""
        where = f"{self.path / EXPORT_MANIFEST}: tokenizer.position_limit"
        return positive_int(self.section("tokenizer").get("position_limit"), where, ExportDirError)

    @property
    def exported_pattern(self) -> nm.Pattern | None:
        """The pattern the export's own N:M check proved (``sparsity.pattern``), None when dense."""
        text = self.section("sparsity").get("pattern")
        return nm.parse_pattern(text) if text else None
