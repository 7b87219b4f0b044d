"""The rows of a run that an INT8 export reads: where they are, and the calibration rows drawn from them.

    data = run_data(RunManifest.read("runs/sst2-admm"), data_dir=None)   # task, dev split, train on demand
    rows = calibration_rows(run, data_dir=None, n=512, seed=0, rows=data)

Calibration rows: the run's training rows exactly as ``train`` used them (the same file, the same
fixed subset), proven by the sha256 ``nxm.json`` recorded (``data.train_sha256``), then ``n`` of them
drawn with ``seed``; never dev rows, which score the result. Where they are read (``run_data``): a run
on its own data reads the data it recorded (``dataset``: file, columns, options; or export's
``data``), a GLUE run ``data_dir``, else the folder of the training file it recorded
(``data.source``) while that exists, else ``$GLUE_DIR`` or the hub. A run whose training rows cannot
be read, or whose file now holds other rows, is refused in one line saying which option to pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.errors import DataError, Phrase
from nxm_deploy.export.quantize import CalibrationRows, QuantizeError
from nxm_deploy.manifest import RunManifest

__all__ = ["RunData", "calibration_rows", "run_data"]


@dataclass(frozen=True)
class RunData:
    """Where a run's rows are read from for an INT8 export: its task and dev split (what agreement
    scores), and how to read its training split (what calibration draws from). ``hint`` says which
    parameter to pass when the rows cannot be read."""

    task: Any  # nxm_deploy.data.GlueTask
    dev: Any  # nxm_deploy.data.TaskSplit
    hint: Phrase
    own_train: Any = None  # own data: its TaskSplit of training rows (GLUE: read on demand)
    root: str | Path | None = None  # GLUE: the data directory (None: $GLUE_DIR, else the hub)

    def train(self) -> Any:
        from nxm_deploy.data import load_split

        if self.own_train is not None:
            return self.own_train
        return load_split(self.task, self.task.train_split, self.root)


def _glue_root(run: RunManifest, data_dir: str | Path | None) -> tuple[str | Path | None, Phrase]:
    """The GLUE root to read a run's rows from: ``data_dir``, else the root of the training file the
    run recorded (``data.source``, ``ROOT/TASK/train.tsv``) while it exists, else the default
    (``$GLUE_DIR``, else the hub); and what to pass when the rows are not there."""
    if data_dir is not None:
        return data_dir, Phrase(
            "pass {0} with the GLUE root the run trained on, not {dir}", "data_dir", dir=data_dir
        )
    source = str(run.data.get("source") or "")
    recorded = Path(source) if source and not source.startswith("hub:") else None
    if recorded is not None and recorded.is_file():
        return recorded.parent.parent, Phrase("pass {0} with the GLUE root the run trained on", "data_dir")
    if recorded is not None:
        gone = "the run read them from {file}, which is gone: pass {0} with its GLUE root"
        return None, Phrase(gone, "data_dir", file=recorded)
    return None, Phrase("pass {0} with the GLUE root the run trained on", "data_dir")


def run_data(run: RunManifest, data_dir: str | Path | None, data: Any = None) -> RunData:
    """The run's task and rows: its own data (``data``, export's ``data``, else the ``dataset`` it
    recorded) or its GLUE task (:func:`_glue_root`); one :class:`QuantizeError` line when they cannot
    be read."""
    from nxm_deploy.data import get_task, load_split
    from nxm_deploy.data.own import load_own, recorded_options

    where = f"cannot quantize {run.path} to INT8 on its training rows and score it on its dev rows"
    dataset = run.dataset
    if dataset:
        hint = Phrase(
            "pass {0} (and the data options train was given) with the data the run trained on", "data"
        )
        try:
            own = load_own(data if data is not None else recorded_options(dataset))
        except DataError as exc:
            raise _gone(where, exc, hint) from exc
        if own.record["labels"] != dataset.get("labels"):
            raise QuantizeError.naming(
                "{where}: {source} has labels {labels}, the run {run}; {hint}",
                where=where,
                source=own.record["source"],
                labels=own.record["labels"],
                run=dataset.get("labels"),
                hint=hint,
            )
        return RunData(own.task, own.dev, hint, own_train=own.train)
    if not run.facts.task:
        raise QuantizeError(f"{where}: its nxm.json records no task")
    task = get_task(run.facts.task)
    root, hint = _glue_root(run, data_dir)
    try:
        dev = load_split(task, "dev", root)
    except DataError as exc:
        raise _gone(where, exc, hint) from exc
    return RunData(task, dev, hint, root=root)


def _gone(where: str, exc: DataError, hint: Phrase) -> QuantizeError:
    """The rows cannot be read: ``exc`` and ``hint`` each in the form the message is written in."""
    return QuantizeError.naming("{where}: they are gone ({error}); {hint}", where=where, error=exc, hint=hint)


def calibration_rows(
    run: RunManifest, data_dir: str | Path | None, n: int, seed: int, rows: RunData | None = None
) -> CalibrationRows:
    """``n`` rows (all when fewer) of the run's training rows, drawn with ``seed`` (module docstring);
    ``rows``: the run's :func:`run_data`, read here when not given."""
    from nxm_deploy.data.encode import rows_fingerprint, subset_indices, trained_indices

    recorded = run.data.get("train_sha256")
    where = f"cannot calibrate INT8 on the training rows of {run.path}"
    if not recorded or not run.facts.task:
        raise QuantizeError(f"{where}: its nxm.json records no training rows (data.train_sha256)")
    rows = rows or run_data(run, data_dir)
    try:
        split = rows.train()
    except DataError as exc:
        raise _gone(where, exc, rows.hint) from exc
    idx = trained_indices(split, run.hyperparameters.get("max_train_samples"), recorded)
    if idx is None:
        raise QuantizeError.naming(
            "{where}: they are gone: {source} no longer holds the rows the run trained on (sha256 "
            "differs from nxm.json's {sha}); {hint}",
            where=where,
            source=split.source,
            sha=recorded[:12],
            hint=rows.hint,
        )
    pick = [idx[i] for i in subset_indices(len(idx), n, seed)]
    pa = [split.texts_a[i] for i in pick]
    pb = [split.texts_b[i] for i in pick] if split.texts_b is not None else None
    digest = rows_fingerprint(pa, pb, [split.labels[i] for i in pick])
    return CalibrationRows(pa, pb, split.source, digest, recorded, len(idx), seed)
