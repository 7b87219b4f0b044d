"""``NxmTrainer``: Hugging Face ``Trainer`` with the task loss, optional distillation and the terms
the method's state adds (ADMM's penalty in the loss) computed in ``compute_loss``.

The loss returned is a per-batch mean (``loss_is_scaled_for_ga = False``) and is never rescaled by
the number of processes: under DDP the gradients are averaged over ranks, so the task term becomes
the mean over the global batch and the penalty (identical on every rank) keeps its weight. One and
two processes therefore produce the same gradient for the same global batch. Under
``--grad-accum N`` Trainer divides each micro-batch's loss by N, so the accumulated gradient is that
of the mean over the global batch, with the penalty's weight unchanged.

With ``--eval-steps``, ``evaluate`` logs the dev metric (``eval_<metric>``) and, for a sparse method
before its masks are fixed, the metric of the weights projected to N:M (``eval_nm_<metric>``), for
watching only: the weights are restored and nothing is selected by it.

On a GPU a micro-batch costs no host synchronisation of ours: the loss parts stay on the device and
are read when Trainer logs, and whether the loss is finite is read once per optimizer step, before
the step (:meth:`NxmTrainer.check_finite`), so a non-finite loss never reaches the weights. The
teacher runs under the same autocast as the student.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainerCallback

from nxm_deploy.admm.checkpoints import newest_complete
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.errors import UserError


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""


class NxmTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        sparsity: SparsityState | None = None,
        regression: bool = False,
        teacher: nn.Module | None = None,
        kd_alpha: float = 0.5,
        kd_temperature: float = 2.0,
        phase_dir: Path | None = None,
        watch_projected: bool = False,
        optimizer_cls: type | None = None,
        **kwargs: Any,
    ) -> None:
        if optimizer_cls is not None:  # the phase kind's (STEP: AdamW whose variance is frozen)
            _, opt_kwargs = Trainer.get_optimizer_cls_and_kwargs(kwargs["args"])
            kwargs["optimizer_cls_and_kwargs"] = (optimizer_cls, opt_kwargs)
        super().__init__(*args, **kwargs)
        self.loss_is_scaled_for_ga = False  # our loss is a per-batch mean
        self.sparsity = sparsity
        self.regression = regression
        self.teacher = teacher
        self.kd_alpha = kd_alpha
        self.kd_temperature = kd_temperature
        self.phase_dir = phase_dir
        self.watch_projected = watch_projected
        self._parts: dict[str, torch.Tensor] = {}  # the last micro-batch's loss parts, on the device
        self._pending: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []  # this optimizer step's
        self.add_callback(_FiniteLossCheck(self))

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:  # fmt: skip
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        target = self.eval_dataset if eval_dataset is None else eval_dataset
        s = self.sparsity
        leaf = not isinstance(target, dict)  # Trainer calls evaluate again per named dev split
        if (
            self.watch_projected
            and leaf
            and s is not None
            and not s.masked
            and metric_key_prefix.startswith("eval")
        ):
            with s.projected():
                prefix = "eval_nm" + metric_key_prefix[len("eval") :]
                metrics.update(super().evaluate(eval_dataset, ignore_keys, prefix))
        return metrics

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        """Forward and backward inside the method state's ``forward()`` (SR-STE: the masked weights,
        whose gradients reach the dense ones)."""
        method = self.sparsity.method if self.sparsity is not None else None
        if method is None:
            return super().training_step(model, inputs, num_items_in_batch)
        with method.forward():
            return super().training_step(model, inputs, num_items_in_batch)

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return F.mse_loss(logits.squeeze(-1).float(), labels.float())
        return F.cross_entropy(logits.float(), labels.long())

    def kd_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Soft-target loss: KL(teacher || student) at temperature T, times T^2 (Hinton et al.);
        for regression, the squared error to the teacher's prediction."""
        if self.regression:
            return F.mse_loss(logits.squeeze(-1).float(), teacher_logits.squeeze(-1).float())
        t = self.kd_temperature
        return F.kl_div(
            F.log_softmax(logits.float() / t, dim=-1),
            F.log_softmax(teacher_logits.float() / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits
        task = self.task_loss(logits, labels)
        loss = task
        parts = {"task_loss": task.detach()}  # on the device: read when logging, not per micro-batch
        if model.training and self.teacher is not None:
            with torch.no_grad(), self.accelerator.autocast():  # the student's autocast (bf16/fp16)
                teacher_logits = self.teacher(**inputs).logits
            kd = self.kd_loss(logits, teacher_logits)
            loss = (1 - self.kd_alpha) * task + self.kd_alpha * kd
            parts["kd_loss"] = kd.detach()
        method = self.sparsity.method if self.sparsity is not None else None
        if model.training and method is not None:
            for name, term in method.loss_terms().items():  # ADMM's penalty, unless decoupled
                loss = loss + term
                parts[name] = term.detach()
        if model.training:
            self._pending.append((loss.detach(), parts))
        self._parts = parts
        return (loss, outputs) if return_outputs else loss

    def check_finite(self) -> None:
        """Stop with one line if a micro-batch of this optimizer step had a non-finite loss; called
        before the optimizer step, so its gradients are never applied. One host sync per step."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        losses = torch.stack([loss.float() for loss, _ in pending])
        finite = torch.isfinite(losses)
        if bool(finite.all()):
            return
        loss, parts = pending[int((~finite).nonzero()[0])]
        good = newest_complete(self.phase_dir) if self.phase_dir is not None else None
        raise NonFiniteLossError.naming(
            "the training loss became {loss} at step {step} ({parts}); training stopped. "
            + (
                "No checkpoint of this phase was saved yet; lower {0} (or {1}) and start again."
                if good is None
                else "Last good checkpoint: {good}; lower {0} (or {1}) and continue with {2}."
            ),
            "lr",
            "rho",
            "resume",
            loss=float(loss),
            step=self.state.global_step + 1,
            parts=", ".join(f"{k}={float(v):.4g}" for k, v in parts.items()),
            good=good,
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the loss parts and the method state's own record (ADMM: rho and the last residuals;
        SR-STE: the fraction of mask entries flipped since mask learning began) to every log."""
        if "loss" in logs:
            logs.update({k: float(v) for k, v in self._parts.items()})
            method = self.sparsity.method if self.sparsity is not None else None
            if method is not None:
                logs.update(method.log())
        super().log(logs, start_time)


class _FiniteLossCheck(TrainerCallback):
    """Runs :meth:`NxmTrainer.check_finite` before each optimizer step."""

    def __init__(self, trainer: NxmTrainer) -> None:
        self.trainer = trainer

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer.check_finite()
