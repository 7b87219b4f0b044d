"""``export.json``, the manifest of an export directory (written by ``export``), and its sections.

    export = ExportManifest.read("exports/rte-admm")
    export.source.layers, export.onnx_path, export.run_dir, export.tokenizer.files

The structural sections are typed (``source_run``, ``run_check``, ``onnx``, ``tokenizer``,
``tensorrt``); ``hf_config``, ``sparsity``, ``parity`` and ``quantization`` are the reports of the
checks, kept as JSON. Every error reading it is one :class:`~nxm_deploy.errors.ExportDirError` line
naming the file and the field. Schema 1 (no ``schema`` key, no ``quantization``) still loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nxm_deploy import nm
from nxm_deploy.errors import ExportDirError, InternalError, PatternError, UserError
from nxm_deploy.io import read_json, write_json_atomic
from nxm_deploy.manifest.fields import (
    EXPORT_KIND,
    EXPORT_MANIFEST,
    PROVENANCE_KEYS,
    RUN_KIND,
    RUN_MANIFEST,
    Fields,
    Provenance,
    check_header,
)
from nxm_deploy.manifest.run import RunFacts, RunManifest
from nxm_deploy.outputs import contained

__all__ = ["EXPORT_SCHEMA", "ExportManifest", "OnnxSection", "OnnxTensor", "SourceRun", "TensorrtSection",
           "TokenizerSection"]  # fmt: skip

EXPORT_SCHEMA = 2  # 2: "schema", "quantization", onnx.precision, parity.of (INT8 exports)


@dataclass(frozen=True)
class SourceRun:
    """``source_run``: the run's directory (absolute, as it was at export time) and its facts."""

    path: str | None
    facts: RunFacts
    kind: str | None = None
    tool_version: str | None = None

    @classmethod
    def of(cls, run: RunManifest) -> SourceRun:
        """The ``source_run`` section of an export made from ``run``."""
        where = str(run.path.resolve()) if run.path is not None else None
        return cls(where, run.facts, RUN_KIND, run.provenance.tool_version)

    @classmethod
    def from_json(cls, body: Fields | dict[str, Any], where: str = EXPORT_MANIFEST) -> SourceRun:
        fields = Fields.of(body, where, ExportDirError)
        if "task" not in fields.body:
            raise fields.error(f"{fields.name('task')} is missing; export the run again")
        return cls(fields.text("path"), RunFacts.from_json(fields, fields.where), fields.text("kind"),
                   fields.text("tool_version"))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        facts = self.facts.to_json()
        facts.pop("sparse")
        return {"path": self.path, "kind": self.kind, "tool_version": self.tool_version, **facts}


@dataclass(frozen=True)
class OnnxTensor:
    """An input or output of the graph: ``shape`` names its symbolic dimensions (``"batch"``)."""

    name: str
    dtype: str | None = None
    shape: tuple[int | str | None, ...] | None = None

    @classmethod
    def from_json(cls, body: Fields | dict[str, Any], where: str = EXPORT_MANIFEST) -> OnnxTensor:
        fields = Fields.of(body, where, ExportDirError)
        name = fields.text("name")
        if not name:
            raise fields.error(f"{fields.name('name')} is missing; export the run again")
        shape = fields.body.get("shape")
        if shape is not None and not isinstance(shape, list):
            raise fields.bad("shape", "a list of dimensions")
        return cls(name, fields.text("dtype"), None if shape is None else tuple(shape))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
        }


@dataclass(frozen=True)
class OnnxSection:
    """``onnx``: the graph's file and how it was made; its inputs and outputs."""

    file: str = "model.onnx"
    precision: str | None = None  # fp32, int8, int8-dynamic (None: schema 1, fp32)
    inputs: tuple[OnnxTensor, ...] = ()
    outputs: tuple[OnnxTensor, ...] = ()
    external_data: tuple[str, ...] = ()
    opset: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # exporter, versions, bytes, dynamic_axes...

    @classmethod
    def from_json(cls, body: Fields | dict[str, Any], where: str = EXPORT_MANIFEST) -> OnnxSection:
        fields = Fields.of(body, where, ExportDirError)

        def tensors(key: str) -> tuple[OnnxTensor, ...]:
            fields.objects(key)  # a list of objects, or one line
            where, error, prefix = fields.where, fields.error, fields.prefix
            return tuple(OnnxTensor.from_json(Fields(e, where, error, f"{prefix}{key}[{i}]."))
                         for i, e in enumerate(fields.body.get(key) or ()))  # fmt: skip

        return cls(
            file=fields.text("file") or "model.onnx",
            precision=fields.text("precision"),
            inputs=tensors("inputs"),
            outputs=tensors("outputs"),
            external_data=fields.texts("external_data"),
            opset=fields.count("opset"),
            extra=fields.rest("file", "precision", "inputs", "outputs", "external_data", "opset"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "precision": self.precision,
            "external_data": list(self.external_data),
            "opset": self.opset,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            **self.extra,
        }


@dataclass(frozen=True)
class TokenizerSection:
    """``tokenizer``: its class, input names and files (beside the model), the longest input it is
    truncated to and the model's own limit (``position_limit``; None in older exports)."""

    class_name: str | None = None
    model_input_names: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    max_seq_len: int | None = None
    position_limit: int | None = None

    @classmethod
    def from_json(cls, body: Fields | dict[str, Any], where: str = EXPORT_MANIFEST) -> TokenizerSection:
        fields = Fields.of(body, where, ExportDirError)
        return cls(fields.text("class"), fields.texts("model_input_names"), fields.texts("files"),
                   fields.count("max_seq_len"), fields.count("position_limit"))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"class": self.class_name, "model_input_names": list(self.model_input_names),
                "files": list(self.files), "max_seq_len": self.max_seq_len,
                "position_limit": self.position_limit}  # fmt: skip


@dataclass(frozen=True)
class TensorrtSection:
    """``tensorrt``: whether an engine was asked for and built, why not, its build script; ``extra``
    holds the build's evidence (profile, sparse layers, engine precision...: docs/export.md)."""

    built: bool = False
    requested: bool = False
    reason: str | None = None
    precision: str | None = None  # asked for
    note: str | None = None  # the warning of an fp32 engine
    build_script: str | None = None
    engine: str | None = None  # when built
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Fields | dict[str, Any], where: str = EXPORT_MANIFEST) -> TensorrtSection:
        fields = Fields.of(body, where, ExportDirError)
        typed = ("built", "requested", "reason", "precision", "note", "build_script", "engine")
        return cls(bool(fields.flag("built")), bool(fields.flag("requested")), fields.text("reason"),
                   fields.text("precision"), fields.text("note"), fields.text("build_script"),
                   fields.text("engine"), fields.rest(*typed))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        body = {"built": self.built, "requested": self.requested, "reason": self.reason}
        body.update(precision=self.precision, note=self.note, build_script=self.build_script)
        if self.engine is not None:
            body["engine"] = self.engine
        return {**body, **self.extra}


@dataclass(frozen=True)
class ExportManifest:
    """``export.json``; ``source`` are the facts of the run it came from, ``run_dir`` that run's
    directory when it is still there, ``path`` the export directory (None until written)."""

    source_run: SourceRun
    onnx: OnnxSection
    tokenizer: TokenizerSection
    tensorrt: TensorrtSection
    provenance: Provenance = field(default_factory=Provenance)
    schema: int = EXPORT_SCHEMA
    run_check: dict[str, Any] = field(default_factory=dict)  # pattern, expect_sparse, tensors, ok
    hf_config: dict[str, Any] | None = None
    sparsity: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    files: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    run_dir: Path | None = None

    @classmethod
    def from_json(cls, body: Any, where: str | os.PathLike[str], path: Path | None = None) -> ExportManifest:
        """Parse and check ``body``; every error is one ExportDirError line naming ``where``."""
        fields = Fields(body, str(where), ExportDirError)
        schema = check_header(fields, EXPORT_KIND, EXPORT_SCHEMA, need_kind=True)
        run = fields.body.get("source_run")
        if not isinstance(run, dict) or "task" not in run:
            raise ExportDirError(f"{where} has no source_run section; export the run again")
        source = SourceRun.from_json(fields.section("source_run"))
        run_dir = Path(source.path) if source.path else None
        if run_dir is not None and not RunManifest.is_run_dir(run_dir):
            run_dir = None
        return cls(
            source_run=source,
            onnx=OnnxSection.from_json(fields.section("onnx")),
            tokenizer=TokenizerSection.from_json(fields.section("tokenizer")),
            tensorrt=TensorrtSection.from_json(fields.section("tensorrt")),
            provenance=Provenance.from_json(fields),
            schema=schema,
            run_check=fields.mapping("run_check") or {},
            hf_config=fields.mapping("hf_config"),
            sparsity=fields.mapping("sparsity") or {},
            parity=fields.mapping("parity") or {},
            quantization=fields.mapping("quantization"),
            files=fields.texts("files"),
            extra=fields.rest(
                "kind",
                "schema",
                *PROVENANCE_KEYS,
                "source_run",
                "onnx",
                "tokenizer",
                "tensorrt",
                "run_check",
                "hf_config",
                "sparsity",
                "parity",
                "quantization",
                "files",
            ),
            path=path,
            run_dir=run_dir,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": EXPORT_KIND,
            "schema": self.schema,
            **self.provenance.to_json(),
            "source_run": self.source_run.to_json(),
            "run_check": self.run_check,
            "onnx": self.onnx.to_json(),
            "tokenizer": self.tokenizer.to_json(),
            "hf_config": self.hf_config,
            "sparsity": self.sparsity,
            "parity": self.parity,
            "quantization": self.quantization,
            "tensorrt": self.tensorrt.to_json(),
            "files": list(self.files),
            **self.extra,
        }

    def write(self, export_dir: str | os.PathLike[str]) -> ExportManifest:
        """Write ``export_dir/export.json`` (atomically); the manifest with its ``path`` set."""
        write_json_atomic(Path(export_dir) / EXPORT_MANIFEST, self.to_json())
        return replace(self, path=Path(export_dir))

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
        return cls.from_json(body, path / EXPORT_MANIFEST, path)

    @staticmethod
    def is_export_dir(path: str | os.PathLike[str]) -> bool:
        return (Path(path) / EXPORT_MANIFEST).is_file()

    @property
    def source(self) -> RunFacts:
        return self.source_run.facts

    def _dir(self) -> Path:
        if self.path is None:
            raise InternalError("an ExportManifest without its directory has no model paths")
        return self.path

    @property
    def onnx_path(self) -> Path:
        return contained(self._dir(), self.onnx.file, "onnx.file")

    @property
    def engine_path(self) -> Path:
        return contained(self._dir(), self.tensorrt.engine or "model.engine", "tensorrt.engine")

    @property
    def max_seq_len(self) -> int | None:
        return self.tokenizer.max_seq_len or self.source.max_seq_len

    @property
    def position_limit(self) -> int | None:
        """The longest sequence the model takes (its position embeddings), as the export recorded it
        (``tokenizer.position_limit``; None in exports written before it was recorded)."""
        return self.tokenizer.position_limit

    @property
    def exported_pattern(self) -> nm.Pattern | None:
        """The pattern the export's own N:M check proved (``sparsity.pattern``), None when dense."""
        text = self.sparsity.get("pattern")
        try:
            return nm.parse_pattern(text) if text else None
        except PatternError as exc:
            raise ExportDirError(f"{self.path}/{EXPORT_MANIFEST}: sparsity.pattern: {exc}") from exc
