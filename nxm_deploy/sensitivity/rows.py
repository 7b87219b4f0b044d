"""The rows a sensitivity analysis scores: a fixed seeded subset of the TRAINING rows of the run's
task (or own data), never dev rows; and the metric on them, in points.

    task, rows = training_rows(cfg, run)        # GlueTask, Rows (texts, labels, where from)
    batches = encode_rows(tokenizer, rows, ["input_ids", "attention_mask"], max_seq_len=128, batch_size=32)
    points = score(model, task, batches, rows.labels)   # the task's main metric x 100
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nxm_deploy.data.encode import rows_fingerprint, subset_indices, trained_indices
from nxm_deploy.errors import UserError
from nxm_deploy.manifest import RunManifest
from nxm_deploy.sensitivity.config import SensitivityConfig

__all__ = ["Batch", "Rows", "encode_rows", "score", "training_rows"]

log = logging.getLogger("nxm_deploy.sensitivity")


@dataclass(frozen=True)
class Rows:
    """``texts_a`` (and ``texts_b``) with their labels; ``of`` rows were in the training split."""

    texts_a: list[str]
    texts_b: list[str] | None
    labels: list[Any]
    source: str
    of: int
    seed: int
    unseen: bool = False  # drawn from training rows the run did not train on

    def to_json(self) -> dict[str, Any]:
        return {
            "split": "train",
            "source": self.source,
            "rows": len(self.texts_a),
            "of_train_rows": self.of,
            "seed": self.seed,
            "rows_from": "unseen" if self.unseen else "train",
            "in_sample": not self.unseen,
            "sha256": rows_fingerprint(self.texts_a, self.texts_b, self.labels),
        }


def _task_and_train(cfg: SensitivityConfig, run: RunManifest) -> tuple[Any, Any]:
    """(task, its training split): ``task``/``data``, else what the run recorded."""
    from nxm_deploy.data import get_task, load_split
    from nxm_deploy.data.own import DataOptions, load_own

    recorded = run.dataset or None
    options = cfg.data
    if options is None and cfg.task is None and recorded:
        options = DataOptions.from_json(recorded.get("options") or {"source": recorded["source"]})
    if options is not None:
        own = load_own(options)
        if recorded is None or recorded.get("labels") != own.record["labels"]:
            was = f"labels {recorded.get('labels')}" if recorded else f"the GLUE task {run.facts.task}"
            raise UserError(
                f"run {run.path} was trained with {was}, but {options.source} has labels "
                f"{own.record['labels']}; pass the data the run was trained on"
            )
        return own.task, own.train
    if recorded:
        raise UserError.naming(
            "run {run} was trained on {source}, not a GLUE task; drop {0}",
            "task",
            run=run.path,
            source=recorded.get("source"),
        )
    if cfg.task is None and not run.facts.task:
        raise UserError.naming("run {run} records no task; pass {0} or {1}", "task", "data", run=run.path)
    task = get_task(cfg.task or str(run.facts.task))
    if run.facts.task and get_task(str(run.facts.task)).name != task.name:
        raise UserError(f"run {run.path} was trained on {run.facts.task}, not {task.name}; pass its task")
    if cfg.task is None:
        log.info("task %s (the run's own)", task.name)
    return task, load_split(task, task.train_split, cfg.data_dir)


def training_rows(cfg: SensitivityConfig, run: RunManifest) -> tuple[Any, Rows]:
    """The task and ``cfg.rows`` of its training rows (all when fewer), drawn with ``cfg.seed`` from
    the rows the run did not train on (``cfg.rows_from``: "unseen", or "auto" where the run trained on
    a subset) or from every training row ("train", or "auto" where the run trained on all)."""
    task, train = _task_and_train(cfg, run)
    if len(train) == 0:
        raise UserError(f"{train.source} holds no training rows")
    pool = list(range(len(train)))
    if cfg.rows_from != "train":
        # the rows the run trained on (train's own draw, proven by the sha256 it recorded): the rest
        # are out of sample; without that proof nothing is known to be unseen
        recorded = run.data.get("train_sha256")
        limit = run.hyperparameters.get("max_train_samples")
        trained = trained_indices(train, limit, recorded) if recorded else None
        seen = set(trained) if trained is not None else set(pool)
        unseen = [i for i in pool if i not in seen]
        if unseen:
            pool = unseen
        elif cfg.rows_from == "unseen":
            why = (
                "trained on all of them"
                if trained is not None
                else "records no training rows that match them"
            )
            raise UserError(
                f"run {run.path} {why} ({len(train)} training rows of {train.source}), so none is known "
                "to be unseen; score on training rows (in sample) instead"
            )
    idx = [pool[i] for i in subset_indices(len(pool), cfg.rows, cfg.seed)]
    if len(idx) < cfg.rows:
        log.info("%d rows asked; %d are there to draw from, all used", cfg.rows, len(idx))
    where = "unseen" if len(pool) < len(train) else "(in-sample)"
    log.info("scoring on %d %s training rows", len(idx), where)
    a = [train.texts_a[i] for i in idx]
    b = [train.texts_b[i] for i in idx] if train.texts_b is not None else None
    labels = [train.labels[i] for i in idx]
    return task, Rows(a, b, labels, train.source, len(train), cfg.seed, len(pool) < len(train))


Batch = dict[str, Any]  # tokenizer outputs as tensors [B, T], padded per batch


def encode_rows(
    tokenizer: Any, rows: Rows, names: list[str], max_seq_len: int, batch_size: int
) -> list[Batch]:
    """``rows`` tokenized (truncated to ``max_seq_len``; the inputs ``names`` the model takes), sorted
    by length and padded per batch, so short rows cost little; each batch keeps the rows' indices
    (``"index"``) to put the logits back in order."""
    enc = tokenizer(rows.texts_a, rows.texts_b, truncation=True, max_length=max_seq_len)
    order = sorted(range(len(rows.texts_a)), key=lambda i: len(enc["input_ids"][i]))
    batches = []
    for start in range(0, len(order), batch_size):
        part = order[start : start + batch_size]
        feats = [{k: enc[k][i] for k in names if k in enc} for i in part]
        batch = dict(tokenizer.pad(feats, return_tensors="pt"))
        batch["index"] = part
        batches.append(batch)
    return batches


def score(model: Any, task: Any, batches: list[Batch], labels: list[Any]) -> float:
    """The task's main metric on ``batches`` (the model in eval mode, no gradients), in points."""
    import numpy as np
    import torch

    from nxm_deploy.data import compute_metrics, main_metric_value

    logits: list[np.ndarray] = [np.empty(0)] * len(labels)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for batch in batches:
            feed = {k: v.to(device) for k, v in batch.items() if k != "index"}
            out = model(**feed).logits.float().cpu().numpy()  # [B, C]
            for i, row in zip(batch["index"], out, strict=True):
                logits[i] = row
    metrics = compute_metrics(task, np.stack(logits), np.asarray(labels))
    return 100.0 * main_metric_value(task, metrics)
