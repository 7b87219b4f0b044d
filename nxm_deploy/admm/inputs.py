"""What a run starts from: the task's rows (tokenized), the student model and the teacher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.data.encode import EncodedDataset, encode, rows_fingerprint, subset_indices
from nxm_deploy.errors import UserError
from nxm_deploy.manifest import RunManifest


@dataclass
class TaskData:
    task: Any  # nxm_deploy.data.GlueTask
    train: EncodedDataset
    dev: dict[str, EncodedDataset]  # split name -> rows
    info: dict[str, Any]


@dataclass(frozen=True)
class TaskRows:
    """The rows of a run before tokenizing: a GLUE task's, or the user's own (``dataset``: what
    nxm.json records about them; None for GLUE)."""

    task: Any  # nxm_deploy.data.GlueTask
    train: Any  # nxm_deploy.data.TaskSplit
    dev: dict[str, Any]  # split name -> TaskSplit
    dataset: dict[str, Any] | None


def load_rows(cfg: TrainConfig) -> TaskRows:
    """The train and dev rows of ``cfg.task`` (GLUE) or ``cfg.data`` (own data)."""
    from nxm_deploy.data import get_task, load_split, resolve_data_dir

    if cfg.data is not None:
        from nxm_deploy.data.own import load_own

        own = load_own(cfg.data)
        return TaskRows(own.task, own.train, {"dev": own.dev}, own.record)
    task = get_task(str(cfg.task))
    data_dir = resolve_data_dir(cfg.data_dir)
    dev = {name: load_split(task, name, data_dir) for name in task.dev_splits}
    return TaskRows(task, load_split(task, task.train_split, data_dir), dev, None)


def load_task_data(cfg: TrainConfig, tokenizer: Any, rows: TaskRows) -> TaskData:
    train = rows.train
    idx = subset_indices(len(train), cfg.max_train_samples)
    a = [train.texts_a[i] for i in idx]
    b = [train.texts_b[i] for i in idx] if train.texts_b is not None else None
    y = [train.labels[i] for i in idx]
    info: dict[str, Any] = {
        "source": train.source,
        "train_rows": len(idx),
        "train_rows_in_file": len(train),
        "train_subset": "all" if len(idx) == len(train) else f"fixed random subset (seed 0) of {len(idx)}",
        "train_sha256": rows_fingerprint(a, b, y),
        "dev": {},
    }
    dev: dict[str, EncodedDataset] = {}
    for split_name, split in rows.dev.items():
        n = len(split) if cfg.max_eval_samples is None else min(cfg.max_eval_samples, len(split))
        db = split.texts_b[:n] if split.texts_b is not None else None
        dev[split_name] = encode(tokenizer, split.texts_a[:n], db, split.labels[:n], cfg.max_seq_len)
        info["dev"][split_name] = {"source": split.source, "rows": n, "rows_in_file": len(split)}
    return TaskData(rows.task, encode(tokenizer, a, b, y, cfg.max_seq_len), dev, info)


def check_same_task(run: RunManifest, role: str, rows: TaskRows) -> None:
    """A ``teacher`` or ``init_from`` run (``role``, the parameter) must come from the same GLUE task,
    or the same own data (label map and rows)."""
    from nxm_deploy.data import get_task
    from nxm_deploy.data.own import same_data_problem

    if rows.dataset is not None:
        why = same_data_problem(run.dataset, rows.dataset)
        if why:
            raise UserError.naming(
                "{0} run {path} does not match {1} {source}: {why}",
                role,
                "data",
                path=run.path,
                source=rows.dataset["source"],
                why=why,
            )
        return
    recorded = str(run.facts.task)
    same = not run.dataset
    if same:
        try:
            same = get_task(recorded).name == rows.task.name
        except UserError:
            same = False
    if not same:
        hint = "; pass a dense run of the same task" if role == "teacher" else ""
        raise UserError.naming(
            "{0} run {path} was trained on {recorded}, not {task}{hint}",
            role,
            path=run.path,
            recorded=recorded,
            task=rows.task.name,
            hint=hint,
        )


def load_teacher(teacher_dir: str, rows: TaskRows) -> nn.Module:
    from nxm_deploy.models import load_model

    check_same_task(RunManifest.read(teacher_dir, "teacher run"), "teacher", rows)
    teacher, _ = load_model(teacher_dir)
    num_labels = rows.task.num_labels
    if teacher.config.num_labels != num_labels:
        raise UserError(
            f"teacher {teacher_dir} has {teacher.config.num_labels} labels, the task has {num_labels}"
        )
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def load_student(cfg: TrainConfig, rows: TaskRows) -> tuple[nn.Module, Any, RunManifest | None]:
    from nxm_deploy.models import load_model

    task = rows.task
    if cfg.init_from is not None:
        init = RunManifest.read(cfg.init_from, "run to start from")
        check_same_task(init, "init_from", rows)
        if init.facts.pattern is not None:
            raise UserError.naming(
                "{0} run {path} is sparse ({pattern}); pass a dense run",
                "init_from",
                path=cfg.init_from,
                pattern=init.facts.pattern,
            )
        model, tok = load_model(cfg.init_from)
        return model, tok, init
    id2label = dict(enumerate(task.labels)) if task.labels else None
    model, tok = load_model(
        cfg.model,  # type: ignore[arg-type]
        num_labels=task.num_labels,
        problem_type="regression" if task.is_regression else "single_label_classification",
        id2label=id2label,
        ignore_mismatched_sizes=True,
    )
    return model, tok, None
