"""``nxm.json``, the manifest of a run directory (written by ``train``), and :class:`RunFacts`, what a
run says about its model: the same keys in ``nxm.json`` and in ``export.json``'s ``source_run``.

    run = RunManifest.read("runs/rte-admm")
    run.facts.pattern        # nm.Pattern(2, 4), parsed once; None: dense
    run.metrics, run.hyperparameters, run.dataset

Schema 2 writes the tool version once (``tool_version``); schema 1 also wrote ``nxm_deploy_version``,
which is read as the same value and not written again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nxm_deploy import nm
from nxm_deploy.errors import PatternError, UserError
from nxm_deploy.io import read_json, write_json_atomic
from nxm_deploy.manifest.fields import (
    PROVENANCE_KEYS,
    RUN_KIND,
    RUN_MANIFEST,
    Fields,
    Provenance,
    check_header,
)

__all__ = ["RUN_SCHEMA", "RunFacts", "RunManifest"]

RUN_SCHEMA = 2  # 2: the tool version only as tool_version (schema 1 also wrote nxm_deploy_version)
_FACT_KEYS = ("base_model", "task", "method", "pattern", "sparse", "layers", "num_labels", "labels",
              "is_regression", "max_seq_len", "dataset")  # fmt: skip


@dataclass(frozen=True)
class RunFacts:
    """What a run says about its model. ``pattern`` is None for a dense run; ``layers`` are the
    layers made sparse (none for a dense run); ``dataset`` is own data's record (None for GLUE)."""

    task: str | None
    method: str | None
    pattern: nm.Pattern | None
    layers: tuple[str, ...]
    base_model: str | None
    max_seq_len: int | None
    num_labels: int | None
    labels: tuple[str, ...] | None = None
    is_regression: bool | None = None
    dataset: dict[str, Any] | None = None

    @classmethod
    def from_json(
        cls, body: dict[str, Any], where: str | os.PathLike[str], error: type[UserError] = UserError
    ) -> RunFacts:
        """Parse ``body`` (``nxm.json``, or ``export.json``'s ``source_run``); ``where`` names it in
        the one-line error for a field that does not parse."""
        fields = body if isinstance(body, Fields) else Fields(body, str(where), error)
        try:
            text = fields.text("pattern")
            pattern = nm.parse_pattern(text) if text else None
        except PatternError as exc:
            raise fields.error(f"{fields.name('pattern')}: {exc}") from exc
        layers = fields.texts("layers") if pattern else ()
        labels = fields.body.get("labels")
        if labels is not None and not isinstance(labels, list):
            raise fields.bad("labels", "a list of label names")
        return cls(
            task=fields.text("task"),
            method=fields.text("method"),
            pattern=pattern,
            layers=layers,
            base_model=fields.text("base_model"),
            max_seq_len=fields.count("max_seq_len"),
            num_labels=fields.count("num_labels"),
            labels=None if labels is None else tuple(str(n) for n in labels),
            is_regression=fields.flag("is_regression"),
            dataset=fields.mapping("dataset"),
        )

    @property
    def sparse(self) -> bool:
        return self.pattern is not None

    def to_json(self) -> dict[str, Any]:
        """The keys in ``nxm.json``'s order (``sparse`` follows from ``pattern``)."""
        return {
            "base_model": self.base_model,
            "task": self.task,
            "method": self.method,
            "pattern": str(self.pattern) if self.pattern else None,
            "sparse": self.sparse,
            "layers": list(self.layers),
            "num_labels": self.num_labels,
            "labels": None if self.labels is None else list(self.labels),
            "is_regression": self.is_regression,
            "max_seq_len": self.max_seq_len,
            "dataset": self.dataset,
        }


@dataclass(frozen=True)
class RunManifest:
    """``nxm.json``: typed where the tool reads it; ``metrics``, ``phases``, ``hyperparameters``,
    ``data``, ``prune`` and ``dataset`` are open-ended sections kept as JSON, ``extra`` keeps keys
    this version does not know. ``path`` is the run directory (None until the run is written)."""

    facts: RunFacts
    provenance: Provenance = field(default_factory=Provenance)
    schema: int = RUN_SCHEMA
    metrics: dict[str, float] = field(default_factory=dict)
    main_metric: str | None = None
    epochs_total: float = 0.0
    phases: tuple[dict[str, Any], ...] = ()
    init_from: dict[str, Any] | None = None  # {"run": RUN_DIR, "epochs": its epochs}
    teacher: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # source, rows, train_sha256
    world_size: int | None = None
    process_group_backend: str | None = None
    device: str | None = None
    gpu: str | None = None
    wall_time_s: float | None = None
    torch_version: str | None = None
    transformers_version: str | None = None
    prune: dict[str, Any] | None = None  # the hard prune's solver and its per-layer errors
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def from_json(cls, body: Any, where: str | os.PathLike[str], path: Path | None = None) -> RunManifest:
        """Parse and check ``body``; ``where`` (the file) is named in every one-line error."""
        fields = Fields(body, str(where))
        schema = check_header(fields, RUN_KIND, RUN_SCHEMA)
        return cls(
            facts=RunFacts.from_json(fields, where),
            provenance=Provenance.from_json(fields),
            schema=schema,
            metrics=fields.mapping("metrics") or {},
            main_metric=fields.text("main_metric"),
            epochs_total=fields.number("epochs_total") or 0.0,
            phases=fields.objects("phases"),
            init_from=fields.mapping("init_from"),
            teacher=fields.text("teacher"),
            hyperparameters=fields.mapping("hyperparameters") or {},
            data=fields.mapping("data") or {},
            world_size=fields.count("world_size"),
            process_group_backend=fields.text("process_group_backend"),
            device=fields.text("device"),
            gpu=fields.text("gpu"),
            wall_time_s=fields.number("wall_time_s"),
            torch_version=fields.text("torch_version"),
            transformers_version=fields.text("transformers_version"),
            prune=fields.mapping("prune"),
            extra=fields.rest(*_TYPED),
            path=path,
        )

    def to_json(self) -> dict[str, Any]:
        facts = self.facts.to_json()
        dataset = facts.pop("dataset")
        return {
            "kind": RUN_KIND,
            "schema": self.schema,
            **self.provenance.to_json(),
            **facts,
            "metrics": self.metrics,
            "main_metric": self.main_metric,
            "epochs_total": self.epochs_total,
            "phases": list(self.phases),
            "init_from": self.init_from,
            "teacher": self.teacher,
            "hyperparameters": self.hyperparameters,
            "data": self.data,
            "world_size": self.world_size,
            "process_group_backend": self.process_group_backend,
            "device": self.device,
            "gpu": self.gpu,
            "wall_time_s": self.wall_time_s,
            "torch_version": self.torch_version,
            "transformers_version": self.transformers_version,
            "prune": self.prune,
            "dataset": dataset,
            **self.extra,
        }

    def write(self, run_dir: str | os.PathLike[str]) -> RunManifest:
        """Write ``run_dir/nxm.json`` (atomically); the manifest with its ``path`` set."""
        write_json_atomic(Path(run_dir) / RUN_MANIFEST, self.to_json())
        return replace(self, path=Path(run_dir))

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
        return cls.from_json(body, path / RUN_MANIFEST, path)

    @staticmethod
    def is_run_dir(path: str | os.PathLike[str]) -> bool:
        return (Path(path) / RUN_MANIFEST).is_file()

    @property
    def body(self) -> dict[str, Any]:
        """The manifest as JSON (what ``to_json`` gives)."""
        return self.to_json()

    @property
    def dataset(self) -> dict[str, Any] | None:
        return self.facts.dataset


_TYPED = ("kind", "schema", *PROVENANCE_KEYS, "nxm_deploy_version", *_FACT_KEYS, "metrics", "main_metric",
          "epochs_total", "phases", "init_from", "teacher", "hyperparameters", "data", "world_size",
          "process_group_backend", "device", "gpu", "wall_time_s", "torch_version",
          "transformers_version", "prune")  # fmt: skip
