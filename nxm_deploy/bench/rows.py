"""The dev rows a bench scores: a GLUE task's (``--task``), or own data's validation rows
(``--data``, else the data both runs recorded in ``nxm.json``), with the label map checked.

    task, dev = bench_rows(cfg, {"dense": dense_source, "sparse": sparse_source})
"""

from __future__ import annotations

from typing import Any

from nxm_deploy.bench.config import BenchConfig
from nxm_deploy.bench.sources import ModelSource, check_roles
from nxm_deploy.errors import UserError
from nxm_deploy.manifest import RunManifest

__all__ = ["bench_rows", "recorded_dataset"]


def recorded_dataset(source: ModelSource) -> dict[str, Any] | None:
    """The ``dataset`` section the model's run recorded (None: a GLUE run)."""
    if source.export is not None:
        dataset = source.export.source.dataset
        if dataset or source.run_dir is None:
            return dataset or None
    path = source.run_dir or source.path
    return RunManifest.read(path).dataset or None


def bench_rows(cfg: BenchConfig, models: dict[str, ModelSource]) -> tuple[Any, Any]:
    """(task, dev split) for ``cfg``; refuses models of another task or another label map."""
    from nxm_deploy.data import get_task, load_split

    if cfg.data is None and cfg.task is not None:
        task = get_task(cfg.task)
        check_roles(models["dense"], models["sparse"], task.name)
        return task, load_split(task, "dev", cfg.data_dir)
    from nxm_deploy.data.own import DataOptions, load_own

    recorded = {role: recorded_dataset(src) for role, src in models.items()}
    options = cfg.data
    if options is None:
        if not recorded["sparse"]:
            raise UserError.naming(
                "pass {0} (the GLUE task both models were trained on) or {1}", "task", "data"
            )
        options = DataOptions.from_json(recorded["sparse"]["options"])
    own = load_own(options)
    for role, src in models.items():
        labels = (recorded[role] or {}).get("labels")
        if recorded[role] is None or labels != own.record["labels"]:
            was = f"labels {labels}" if recorded[role] else f"GLUE task {src.facts.task}"
            raise UserError.naming(
                "{label} was trained with {was}, but {source} has labels {labels}; bench models trained "
                "on this data",
                label=src.label,
                was=was,
                source=options.source,
                labels=own.record["labels"],
            )
    check_roles(models["dense"], models["sparse"], None)
    return own.task, own.dev
