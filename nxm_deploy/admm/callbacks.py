"""Trainer callbacks: masks, ADMM updates, the JSONL log and checkpointed N:M state.

The hooks are Trainer's own (no monkey-patched optimizer):

* ``on_train_begin``: after Trainer (accelerate, DDP) placed the model, start the phase (Z <- project(W)
  or the hard prune) or load the resumed checkpoint's Z, U and masks, on the weights' device, and move
  the teacher there;
* ``on_pre_optimizer_step``: in masked phases, zero the gradients of pruned weights;
* ``on_optimizer_step``: in masked phases, re-apply the masks (weight decay and Adam cannot revive
  a pruned weight);
* ``on_step_end``: every ``admm_interval`` optimizer steps, the Z/U update and the rho step;
* ``on_save``: after Trainer wrote a checkpoint, save Z, U, masks and rho into it, then the marker;
* SR-STE (``SrsteCallback``): the decay of the pruned weights (before or after the optimizer step),
  the mask recomputed every ``--mask-interval`` steps, and STEP's switch (freeze Adam's variance,
  start learning the mask) at ``--switch-fraction`` of the phase's steps.

Under ``--mixed-precision fp16`` the loss scaler skips an optimizer step whose gradients overflowed;
the masking, the decoupled step and the Z/U update skip it too (an update due at a skipped step
happens at the next applied one). Which steps were skipped comes from the scaler itself
(:class:`~nxm_deploy.admm.hardware.StepSkips`, registered before these callbacks), since accelerate
cannot tell with a fused optimizer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from nxm_deploy.admm.checkpoints import mark_complete
from nxm_deploy.admm.hardware import StepSkips, model_device
from nxm_deploy.admm.penalty import AdmmSchedule, AdmmState
from nxm_deploy.admm.srste import SrsteState
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.admm.trainlog import TrainLog
from nxm_deploy.errors import InternalError


class PlaceCallback(TrainerCallback):
    """Runs ``begin`` (start the phase, or load a checkpoint's N:M state) once the model is where it
    trains, then moves Z, U, masks and the teacher to the weights' device."""

    def __init__(self, sparsity: SparsityState, begin: Callable[[], None] | None = None,
                 teacher: nn.Module | None = None) -> None:  # fmt: skip
        self.sparsity = sparsity
        self.begin = begin
        self.teacher = teacher

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if self.begin is not None:
            self.begin()
            self.begin = None
        self.sparsity.place()
        if self.teacher is not None:
            self.teacher.to(model_device(kwargs["model"]))


class MaskCallback(TrainerCallback):
    def __init__(self, sparsity: SparsityState, skips: StepSkips) -> None:
        self.sparsity = sparsity
        self.skips = skips

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState,
                              control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        self.sparsity.mask_grads()  # once per optimizer step, after every micro-batch's backward

    def on_optimizer_step(self, args: TrainingArguments, state: TrainerState,
                          control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if not self.skips.skipped:
            self.sparsity.apply_masks()


class AdmmCallback(TrainerCallback):
    """The decoupled penalty step after each optimizer step, and the Z/U update every ``interval``."""

    def __init__(self, admm: AdmmState, schedule: AdmmSchedule, interval: int, log: TrainLog,
                 phase: int, skips: StepSkips, decoupled: bool = False) -> None:  # fmt: skip
        self.admm = admm
        self.skips = skips
        self.schedule = schedule
        self.interval = interval
        self.log = log
        self.phase = phase
        self.decoupled = decoupled

    def on_optimizer_step(self, args: TrainingArguments, state: TrainerState,
                          control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        optimizer = kwargs["optimizer"]
        if self.decoupled and not self.skips.skipped:
            self.admm.decoupled_step(float(optimizer.param_groups[0]["lr"]))

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        due = state.global_step % self.interval == 0
        s = self.admm
        if self.skips.skipped:
            s.pending = s.pending or due  # saved with Z and U, so a resumed run does it too
            return
        if not (due or s.pending):
            return
        s.pending = False
        r = s.update(self.schedule)
        record = {
            "phase": self.phase,
            "phase_kind": "admm",
            "step": state.global_step,
            "event": "admm_update",
            "update": s.updates,
            "rho": r.rho,
            "next_rho": s.rho,
            "primal_residual": r.primal,
            "dual_residual": r.dual,
        }
        device = next(iter(s.weights.values())).device
        digests = _gather_digests(s.digest(), device)
        if digests is not None:
            record["zu_digest_per_rank"] = digests
            if any(d != digests[0] for d in digests):
                raise InternalError(
                    f"ADMM state diverged between processes at step {state.global_step}: {digests}"
                )
        self.log.write(record)


class SrsteCallback(TrainerCallback):
    """SR-STE's decay and mask updates; with ``switch`` (a fraction of the phase's optimizer steps),
    STEP's switch from the dense warm-up to mask learning with Adam's variance frozen."""

    def __init__(self, srste: SrsteState, log: TrainLog, phase: int, switch: float | None,
                 skips: StepSkips) -> None:  # fmt: skip
        self.srste = srste
        self.skips = skips
        self.log = log
        self.phase = phase
        self.switch = switch
        self.switch_at: int | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if self.switch is not None:
            self.switch_at = max(1, round(self.switch * state.max_steps))

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState,
                              control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if self.srste.active and not self.srste.decoupled:
            self.srste.decay_grads()  # after clipping (and fp16's unscaling), once per optimizer step

    def on_optimizer_step(self, args: TrainingArguments, state: TrainerState,
                          control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        optimizer = kwargs["optimizer"]
        if self.srste.active and self.srste.decoupled and not self.skips.skipped:
            self.srste.decoupled_decay(float(optimizer.param_groups[0]["lr"]))

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        s = self.srste
        if not s.active and state.global_step == self.switch_at:
            optimizer = kwargs["optimizer"]  # accelerate's wrapper around FrozenVarianceAdamW
            s.switch_step = getattr(optimizer, "optimizer", optimizer).freeze_variance()
            s.begin()
            self.log.write({"phase": self.phase, "phase_kind": "srste", "step": state.global_step,
                            "event": "variance_frozen"})  # fmt: skip
        elif s.active and state.global_step % s.interval == 0:
            s.recompute()


def _gather_digests(digest: list[float], device: Any = "cpu") -> list[list[float]] | None:
    """Every rank's Z/U digest, under torch.distributed; None in a single process. The collective
    runs on ``device``, the weights' device: NCCL (every CUDA launch) has no CPU collectives."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    local = torch.tensor(digest, dtype=torch.float64, device=device)
    out = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(out, local)
    return [t.tolist() for t in out]


class LogCallback(TrainerCallback):
    """Copies Trainer's log records (loss, learning rate, ...) into train_log.jsonl."""

    def __init__(self, log: TrainLog, phase: int, kind: str) -> None:
        self.log = log
        self.phase = phase
        self.kind = kind

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        if logs:
            self.log.write({"phase": self.phase, "phase_kind": self.kind, "step": state.global_step, **logs})


class StateCheckpointCallback(TrainerCallback):
    """Saves the N:M state into each Trainer checkpoint, then marks the checkpoint complete."""

    def __init__(self, sparsity: SparsityState, extra: dict[str, object]) -> None:
        self.sparsity = sparsity
        self.extra = extra

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:  # fmt: skip
        if not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.sparsity.save(ckpt, {**self.extra, "step": state.global_step})
        mark_complete(ckpt)
