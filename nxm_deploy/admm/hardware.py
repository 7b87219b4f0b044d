"""Where and how a run computes: device checks, mixed precision, batch split, evaluation during
training, the metrics logger and the data-loader workers, as ``TrainingArguments``.

    nxm-deploy train ... --mixed-precision bf16 --grad-accum 4 --eval-steps 200 --report-to tensorboard

``--batch-size`` is the global batch: each optimizer step sees that many rows, split over the
processes (``torchrun``/``accelerate launch``) and the ``--grad-accum`` micro-batches, so the
per-device batch is ``batch / (processes x grad_accum)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.errors import GpuNeededError, UserError

TENSORBOARD_DIR = "tensorboard"  # RUN_DIR/tensorboard/phase-K-KIND/ with --report-to tensorboard


def check_precision(mixed_precision: str, cuda: bool | None = None) -> None:
    """Refuse, in one line, a precision this machine cannot train in."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if mixed_precision == "fp16" and not cuda:
        raise GpuNeededError.naming(
            "{0} fp16 needs a CUDA GPU (its loss scaler runs there); on CPU use bf16 or no", "mixed_precision"
        )
    if mixed_precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise UserError.naming(
            "{0} bf16: {gpu} has no bf16 support; use fp16 or no",
            "mixed_precision",
            gpu=torch.cuda.get_device_name(0),
        )


def check_hardware(cfg: TrainConfig, processes: int) -> None:
    """Everything about the hardware options that can fail, checked before any work starts."""
    check_precision(cfg.mixed_precision)
    per_device_batch(cfg, processes)
    if cfg.report_to == "tensorboard":
        _summary_writer()


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError.naming(
            "{0} tensorboard needs the tensorboard package: pip install 'nxm-deploy[tensorboard]'",
            "report_to",
        ) from None
    return SummaryWriter


def per_device_batch(cfg: TrainConfig, processes: int) -> int:
    """``--batch-size`` split over ``processes`` and ``--grad-accum`` micro-batches."""
    share = processes * cfg.grad_accum
    if cfg.batch_size % share:
        raise UserError.naming(
            "{0} {batch} does not divide over {processes} process(es) x {1} {accum}; "
            "pass a multiple of {share}",
            "batch_size",
            "grad_accum",
            batch=cfg.batch_size,
            processes=processes,
            accum=cfg.grad_accum,
            share=share,
        )
    return cfg.batch_size // share


def training_kwargs(cfg: TrainConfig, processes: int) -> dict[str, Any]:
    """The ``TrainingArguments`` that follow from the hardware options (and ``processes``)."""
    check_precision(cfg.mixed_precision)
    cuda = torch.cuda.is_available()
    # One process on several GPUs would be nn.DataParallel, which multiplies the per-device batch
    # by the GPU count: count those GPUs as processes so the global batch stays --batch-size.
    replicas = max(1, torch.cuda.device_count()) if cuda and processes == 1 else 1
    return {
        "per_device_train_batch_size": per_device_batch(cfg, processes * replicas),
        "gradient_accumulation_steps": cfg.grad_accum,
        "fp16": cfg.mixed_precision == "fp16",
        "bf16": cfg.mixed_precision == "bf16",
        "eval_strategy": "steps" if cfg.eval_steps else "no",
        "eval_steps": cfg.eval_steps or None,
        "dataloader_num_workers": cfg.dataloader_workers,
        "dataloader_persistent_workers": False,
        "use_cpu": not cuda,
        "dataloader_pin_memory": cuda,
    }


def tensorboard_callback(run_dir: Path, phase_dirname: str) -> Any:
    """Trainer's TensorBoard logger writing to ``RUN_DIR/tensorboard/<phase>`` (one line when the
    ``tensorboard`` extra is not installed)."""
    from transformers.integrations import TensorBoardCallback

    writer = _summary_writer()
    return TensorBoardCallback(writer(log_dir=str(run_dir / TENSORBOARD_DIR / phase_dirname)))


def metrics_function(task: Any) -> Any:
    """``compute_metrics`` for Trainer's evaluation: the task's official metrics from the logits."""
    from nxm_deploy.data import compute_metrics

    def compute(prediction: Any) -> dict[str, float]:
        values = compute_metrics(task, prediction.predictions, prediction.label_ids)
        return {k: float(v) for k, v in values.items()}

    return compute


class StepSkips(TrainerCallback):
    """Whether the optimizer step that just ran was skipped by fp16's loss scaler, read from the
    scaler itself: its scale drops (times its backoff factor) exactly when it found inf/NaN
    gradients and skipped the step.

    accelerate's ``step_was_skipped`` cannot say so for a fused optimizer (transformers' default,
    ``adamw_torch_fused``, on current torch): GradScaler then always calls ``optimizer.step`` (the
    fused kernel skips the update on the device), so accelerate sees a step taken every time. Register
    this callback before the ones that ask :attr:`skipped` (they run in list order); it reads the
    scale once per optimizer step, and only when a scaler is enabled (fp16).
    """

    def __init__(self) -> None:
        self.skipped = False
        self._scale_before: float | None = None

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._scale_before = _scale(kwargs.get("optimizer"))

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        optimizer = kwargs.get("optimizer")
        after = _scale(optimizer)
        if after is not None and self._scale_before is not None:
            self.skipped = after < self._scale_before
        else:  # no enabled scaler: a step is never skipped (accelerate's word, for any other wrapper)
            self.skipped = bool(getattr(optimizer, "step_was_skipped", False))
        self._scale_before = None


def _scale(optimizer: Any) -> float | None:
    """The loss scale of accelerate's optimizer wrapper (its ``scaler``), or None without one."""
    scaler = getattr(optimizer, "scaler", None)
    if scaler is None or not scaler.is_enabled():
        return None
    return float(scaler.get_scale())


def device_facts() -> dict[str, Any]:
    """Where this process trains, for ``nxm.json``: ``device`` (cuda or cpu) and the GPU's name."""
    if not torch.cuda.is_available():
        return {"device": "cpu", "gpu": None}
    return {"device": "cuda", "gpu": torch.cuda.get_device_name(torch.cuda.current_device())}


def model_device(model: torch.nn.Module) -> torch.device:
    return next(iter(model.parameters())).device
