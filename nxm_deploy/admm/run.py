"""``train()``: one run from a pretrained model (or --init-from a run) to a run directory.

    nxm-deploy train --model MODEL --task RTE --method admm --out runs/rte-admm

Phases come from the method's plan; each phase is one ``Trainer.train()`` with a fresh optimizer
(so Adam's moments never carry a pruned weight's history across a phase switch) and its own
learning-rate schedule. The run directory holds, at its top level, only ``save_pretrained`` output
(safetensors), the tokenizer, ``nxm.json`` and ``train_log.jsonl``; Trainer checkpoints live under
``checkpoints/`` (see :mod:`nxm_deploy.admm.checkpoints`).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from nxm_deploy import nm, origin
from nxm_deploy.admm.callbacks import LogCallback, PlaceCallback, StateCheckpointCallback
from nxm_deploy.admm.checkpoints import (
    checkpoints_root,
    discard_after,
    is_complete,
    load_weights,
    loading,
    mark_complete,
    newest_complete,
    plan_run_dir,
    prepare_run_dir,
    publish_run_dir,
    staging_dir,
    step_of,
)
from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.admm.dist import backend, barrier, init_distributed, rank, world_size
from nxm_deploy.admm.hardware import (
    check_hardware,
    device_facts,
    metrics_function,
    tensorboard_callback,
    training_kwargs,
)
from nxm_deploy.admm.inputs import TaskData, load_rows, load_student, load_task_data, load_teacher
from nxm_deploy.admm.phases import phase_callbacks, phase_optimizer, start_phase
from nxm_deploy.admm.predictions import PREDICTIONS_FILE, write_predictions
from nxm_deploy.admm.prune.reconstruct import hard_prune
from nxm_deploy.admm.registry import Budget, Phase, get_method
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.admm.trainer import NxmTrainer
from nxm_deploy.admm.trainlog import LOG_NAME, TrainLog
from nxm_deploy.admm.validate import check_before_loading
from nxm_deploy.errors import InternalError, UserError
from nxm_deploy.manifest import Provenance, RunFacts, RunManifest
from nxm_deploy.origin import dist_version
from nxm_deploy.outputs import os_error_reason

log = logging.getLogger("nxm_deploy.train")


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, float]
    manifest: RunManifest


# ---- phases ---------------------------------------------------------------------------------


def _training_args(cfg: TrainConfig, phase: Phase, phase_dir: Path) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(phase_dir),
        num_train_epochs=phase.epochs,
        learning_rate=cfg.lr,
        per_device_eval_batch_size=cfg.eval_batch_size,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=3,
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=not cfg.progress,
        ddp_find_unused_parameters=False,
        **training_kwargs(cfg, world_size()),  # precision, batch split, eval, workers, device
    )


def _evaluate(trainer: NxmTrainer, data: TaskData, keep: dict[str, Any]) -> dict[str, float]:
    """The dev metrics; ``keep`` receives each split's (outputs, labels) for predictions.tsv."""
    from nxm_deploy.data import compute_metrics

    metrics: dict[str, float] = {}
    keep.clear()
    for split_name, ds in data.dev.items():
        out = trainer.predict(ds)
        keep[split_name] = (out.predictions, out.label_ids)
        values = compute_metrics(data.task, out.predictions, out.label_ids)
        prefix = "" if len(data.dev) == 1 else f"{split_name}/"
        metrics.update({f"{prefix}{k}": float(v) for k, v in values.items()})
    return metrics


@dataclass
class _Run:
    """Everything the phases of one run share (what a phase hook sees of it:
    :class:`~nxm_deploy.admm.phases.RunContext`)."""

    cfg: TrainConfig
    sparse: bool
    task: Any
    model: nn.Module
    tokenizer: Any
    teacher: nn.Module | None
    data: TaskData
    sparsity: SparsityState
    trainlog: TrainLog
    root: Path
    predictions: dict[str, Any] = field(default_factory=dict)  # the last evaluation's, by dev split

    @property
    def options(self) -> Any:
        """The chosen method's options."""
        return self.cfg.options

    def trainer(self, phase: Phase, index: int, callbacks: list[Any]) -> NxmTrainer:
        phase_dir = self.root / phase.dirname(index)
        if self.cfg.report_to == "tensorboard" and rank() == 0:
            callbacks = [*callbacks, tensorboard_callback(self.root.parent, phase.dirname(index))]
        dev = self.data.dev
        return NxmTrainer(
            model=self.model,
            args=_training_args(self.cfg, phase, phase_dir),
            train_dataset=self.data.train,
            eval_dataset=next(iter(dev.values())) if len(dev) == 1 else dev,
            compute_metrics=metrics_function(self.task),
            processing_class=self.tokenizer,
            callbacks=callbacks,
            sparsity=self.sparsity if self.sparse else None,
            regression=self.task.is_regression,
            teacher=self.teacher,
            kd_alpha=self.cfg.kd_alpha,
            kd_temperature=self.cfg.kd_temperature,
            phase_dir=phase_dir,
            watch_projected=self.sparse and self.cfg.eval_steps > 0,
            optimizer_cls=phase_optimizer(phase, self),
        )


def _run_phase(run: _Run, phase: Phase, i: int, n_phases: int) -> dict[str, Any]:
    """Train one phase (resuming it where possible), evaluate, and save its final state."""
    cfg, sparsity, trainlog = run.cfg, run.sparsity, run.trainlog
    phase_dir = run.root / phase.dirname(i)
    final = phase_dir / "final"
    head = {"phase": i, "kind": phase.kind, "epochs": phase.epochs}
    if cfg.resume and is_complete(final):
        with loading(final):
            load_weights(run.model, final)
            meta = sparsity.load(final)
        log.info("phase %d/%d (%s) already complete; skipped", i + 1, n_phases, phase.kind)
        return {**head, **meta.get("end", {})}
    ckpt = newest_complete(phase_dir) if cfg.resume else None
    if cfg.resume and rank() == 0:
        discard_after(phase_dir, ckpt)
    barrier()
    if ckpt is not None:
        begin = functools.partial(sparsity.load, ckpt)  # where the weights live: see PlaceCallback
        trainlog.truncate_after(i, step_of(ckpt))
        log.info("phase %d/%d (%s): resuming from %s", i + 1, n_phases, phase.kind, ckpt)
    else:
        if cfg.resume:
            trainlog.truncate_after(i, -1)  # a kill after phase_start, before the first checkpoint
        begin = functools.partial(start_phase, phase, run)
        trainlog.write({"phase": i, "phase_kind": phase.kind, "step": 0, "event": "phase_start",
                        "epochs": phase.epochs, "masked": phase.kind == "masked"})  # fmt: skip
        log.info("phase %d/%d: %s for %g epochs", i + 1, n_phases, phase.kind, phase.epochs)
    callbacks: list[Any] = [
        PlaceCallback(sparsity, begin, run.teacher),
        LogCallback(trainlog, i, phase.kind),
        StateCheckpointCallback(sparsity, {"phase": i, "phase_kind": phase.kind}),
        *phase_callbacks(phase, run, i),
    ]
    trainer = run.trainer(phase, i, callbacks)
    with loading(ckpt):
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    metrics = _evaluate(trainer, run.data, run.predictions)
    end: dict[str, Any] = {"metrics": metrics, "steps": trainer.state.global_step, **sparsity.phase_facts()}
    trainlog.write({"phase": i, "phase_kind": phase.kind, "step": trainer.state.global_step,
                    "event": "phase_end", **end})  # fmt: skip
    log.info("phase %d/%d (%s) done: %s", i + 1, n_phases, phase.kind, _fmt(metrics))
    if rank() == 0:
        final.mkdir(parents=True, exist_ok=True)
        run.model.save_pretrained(final)
        sparsity.save(final, {"phase": i, "phase_kind": phase.kind, "end": end})
        mark_complete(final)
    barrier()
    return {**head, **end}


def train(cfg: TrainConfig) -> RunResult:
    """Run every phase of ``cfg.method`` and write the run directory; returns its metrics.

    A full disk, a quota or a read-only place is one line saying where the run is staged; it
    continues with ``--resume`` once there is room."""
    try:
        return _train(cfg)
    except (OSError, SafetensorError) as exc:
        reason = os_error_reason(exc)
        if reason is None:
            raise
        raise UserError.naming(
            "cannot write {stage}: {reason}; free space (or fix permissions) and continue with {0}",
            "resume",
            stage=staging_dir(Path(cfg.out)),
            reason=reason,
        ) from exc


def _train(cfg: TrainConfig) -> RunResult:
    from transformers import set_seed

    from nxm_deploy.models import select_layers

    t0 = time.time()
    origin.source_revision()  # cached now: the source the run starts from, not one committed while it trains
    init_distributed()
    check_hardware(cfg, world_size())
    method = get_method(cfg.method)
    pattern = nm.parse_pattern(cfg.pattern)
    if cfg.teacher is not None and not method.sparse:
        raise UserError.naming(
            "{0} distils into a sparse method; the dense method takes no teacher", "teacher"
        )
    stage = plan_run_dir(cfg, cfg.out)  # before any work: --out, --resume, --overwrite
    rows = load_rows(cfg)  # own data is read (and refused) before the model loads
    task = rows.task
    run_dir = Path(cfg.out)
    check_before_loading(cfg, task)  # paths, sequence length, teacher (data: load_rows above)
    set_seed(cfg.seed)  # the fresh classifier head is drawn from this seed
    model, tokenizer, init = load_student(cfg, rows)
    init_epochs = init.epochs_total if init else 0.0
    phases = method.plan(Budget(cfg.epochs, init_epochs), cfg.options)
    layers = select_layers(model, pattern, cfg.include, cfg.exclude) if method.sparse else []
    teacher = load_teacher(cfg.teacher, rows) if cfg.teacher else None
    data = load_task_data(cfg, tokenizer, rows)
    prepare_run_dir(cfg, stage)
    sparsity = SparsityState(model, layers, pattern)
    trainlog = TrainLog(stage / LOG_NAME, enabled=rank() == 0)
    run = _Run(cfg, method.sparse, task, model, tokenizer, teacher, data, sparsity, trainlog,
               checkpoints_root(stage))  # fmt: skip
    log.info(
        "%s on %s: %s; %d train rows, %d selected layers, %s",
        cfg.method, task.name, " + ".join(f"{p.kind} {p.epochs:g} ep" for p in phases),
        len(data.train), len(layers), f"pattern {pattern}" if method.sparse else "dense",
    )  # fmt: skip
    phase_results = [_run_phase(run, phase, i, len(phases)) for i, phase in enumerate(phases)]
    metrics = phase_results[-1]["metrics"] if phase_results else {}
    if method.sparse and not sparsity.masked:  # admm for the whole budget, or training-free oneshot
        hard_prune(sparsity, model, data.train, cfg)
        trainer = run.trainer((phases or [Phase("masked", 0)])[-1], len(phases) - 1, [])
        metrics = _evaluate(trainer, data, run.predictions)
        phase_results.append({"phase": len(phases), "kind": "hard_prune", "epochs": 0, "metrics": metrics})
    if method.sparse:
        bad = [(n, r) for n, r in run.sparsity.check() if not r.ok]
        if bad:
            n, r = bad[0]
            raise InternalError(
                f"after training, layer {n} breaks {pattern}: {r.bad_groups} of {r.groups} groups, first at "
                f"{list(r.first_bad or ())}; nothing was saved as sparse (this is a bug: please report it)"
            )
    manifest = _manifest(cfg, method.name, task, pattern if method.sparse else None, layers, phases,
                         phase_results, metrics, data.info, init, time.time() - t0)  # fmt: skip
    prune = {"solver": cfg.prune_solver, **(sparsity.prune_report or {})}
    manifest = replace(
        manifest,
        facts=replace(manifest.facts, dataset=rows.dataset),  # own data's record; None for GLUE
        prune=prune if method.sparse else None,  # with --prune-solver admm: per-layer errors
    )
    if not run.predictions and phases:  # every phase was complete before this --resume
        _evaluate(run.trainer(phases[-1], len(phases) - 1, []), data, run.predictions)
    if rank() == 0:
        write_predictions(stage / PREDICTIONS_FILE, task.is_regression, run.predictions)
        model.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
        manifest.write(stage)
        publish_run_dir(stage, run_dir, cfg.keep_checkpoints)
    barrier()
    return RunResult(run_dir, metrics, replace(manifest, path=run_dir))


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def _start(path: str, init: RunManifest) -> dict[str, Any]:
    """What a run continued: the start run's directory, its epochs, and which run was there then
    (its ``created`` time and dev metrics: a run trained again at the same path is another start)."""
    return {"run": path, "epochs": init.epochs_total, "created": init.provenance.created,
            "metrics": dict(init.metrics)}  # fmt: skip


def _manifest(
    cfg: TrainConfig,
    method: str,
    task: Any,
    pattern: nm.Pattern | None,
    layers: list[str],
    phases: list[Phase],
    phase_metrics: list[dict[str, Any]],
    metrics: dict[str, float],
    data_info: dict[str, Any],
    init: RunManifest | None,
    wall: float,
) -> RunManifest:
    init_epochs = init.epochs_total if init else 0.0
    facts = RunFacts(
        task=task.name,
        method=method,
        pattern=pattern,
        layers=tuple(layers),
        base_model=init.facts.base_model if init else cfg.model,
        max_seq_len=cfg.max_seq_len,
        num_labels=task.num_labels,
        labels=tuple(task.labels),
        is_regression=task.is_regression,
    )
    return RunManifest(
        facts,
        Provenance.here(),
        metrics=metrics,
        main_metric=task.main_metric,
        epochs_total=init_epochs + sum(p.epochs for p in phases),
        phases=tuple(phase_metrics),
        init_from=_start(cfg.init_from, init) if init else None,
        teacher=cfg.teacher,
        hyperparameters=cfg.to_json(),
        data=data_info,
        world_size=world_size(),
        process_group_backend=backend(),
        **device_facts(),
        wall_time_s=round(wall, 1),
        torch_version=torch.__version__,
        transformers_version=dist_version("transformers"),
    )


__all__ = ["RunResult", "TrainConfig", "train"]
