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


def load_task_data(cfg: TrainConfig, tokenizer: Any) -> TaskData:
    from nxm_deploy.data import get_task, load_split, resolve_data_dir

    task = get_task(cfg.task)
    data_dir = resolve_data_dir(cfg.data_dir)
    train = load_split(task, task.train_split, data_dir)
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
    for split_name in task.dev_splits:
        split = load_split(task, split_name, data_dir)
        n = len(split) if cfg.max_eval_samples is None else min(cfg.max_eval_samples, len(split))
        db = split.texts_b[:n] if split.texts_b is not None else None
        dev[split_name] = encode(tokenizer, split.texts_a[:n], db, split.labels[:n], cfg.max_seq_len)
        info["dev"][split_name] = {"source": split.source, "rows": n, "rows_in_file": len(split)}
    return TaskData(task, encode(tokenizer, a, b, y, cfg.max_seq_len), dev, info)


def load_teacher(teacher_dir: str, task_name: str, num_labels: int) -> nn.Module:
    from nxm_deploy.data import get_task
    from nxm_deploy.models import load_model

    facts = RunManifest.read(teacher_dir, "--teacher run").facts
    if get_task(str(facts.task)).name != task_name:
        raise UserError(
            f"teacher {teacher_dir} was trained on {facts.task}, not {task_name}; "
            "pass a dense run of the same task"
        )
    teacher, _ = load_model(teacher_dir)
    if teacher.config.num_labels != num_labels:
        raise UserError(
            f"teacher {teacher_dir} has {teacher.config.num_labels} labels, the task has {num_labels}"
        )
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def load_student(cfg: TrainConfig, task: Any) -> tuple[nn.Module, Any, RunManifest | None]:
    from nxm_deploy.data import get_task
    from nxm_deploy.models import load_model

    if cfg.init_from is not None:
        init = RunManifest.read(cfg.init_from, "--init-from run")
        if get_task(str(init.facts.task)).name != task.name:
            raise UserError(
                f"--init-from run {cfg.init_from} was trained on {init.facts.task}, not {task.name}"
            )
        if init.facts.pattern is not None:
            raise UserError(
                f"--init-from run {cfg.init_from} is sparse ({init.facts.pattern}); pass a dense run"
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
