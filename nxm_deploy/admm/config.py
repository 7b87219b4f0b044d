"""The configuration of one training run: every option, strict, saved beside the outputs.

Defaults target BERT-base on GLUE (the paper's setting); each says why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import UserError

ADMM_PENALTIES = ("loss", "decoupled")
# options that only one method reads (the others refuse them rather than ignore them)
METHOD_OPTIONS = {
    "admm": ("rho", "rho_max", "rho_growth", "admm_interval", "admm_penalty", "admm_epochs"),
    "asp": ("dense_epochs",),
    "srste": (
        "srste_decay",
        "srste_decay_mode",
        "mask_interval",
        "masked_epochs",
        "freeze_variance",
        "switch_fraction",
    ),
}
SRSTE_DECAY_MODES = ("grad", "decoupled")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
PRUNE_SOLVERS = ("magnitude", "admm", "sparsegpt", "wanda")  # all but magnitude use calibration rows
# options of the hard prune, which every sparse method has and the dense one does not
PRUNE_OPTIONS = ("prune_solver", "calibration_rows")
REPORT_TO = ("none", "tensorboard")


@dataclass(frozen=True)
class TrainConfig:
    task: str | None  # a GLUE task; None with ``data``
    out: str
    method: str = "admm"
    model: str | None = None  # hub id or local dir; None with --init-from
    data_dir: str | None = None
    pattern: str = "2:4"
    # Budget: total epochs from the pretrained weights (the usual 3 for BERT-base on GLUE).
    epochs: float = 3.0
    # 2e-5 with batch 32 is the standard BERT-base GLUE fine-tuning point (Devlin et al.).
    lr: float = 2e-5
    batch_size: int = 32  # global batch, split over processes under torchrun
    max_seq_len: int = 128  # covers nearly all GLUE pairs; the standard BERT setting
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    seed: int = 42
    warmup_ratio: float = 0.1  # 10% linear warm-up in each phase (the schedule restarts per phase)
    weight_decay: float = 0.01
    eval_batch_size: int = 64
    # ADMM. rho sets how hard W is pulled towards its N:M projection relative to the task loss;
    # it grows by rho_growth per Z/U update (every admm_interval optimizer steps) up to rho_max, which
    # closes the gap before the hard prune; the interval amortises the projection and gives W time to
    # move between updates.
    # Where the penalty acts. "decoupled" (the default): like AdamW's weight decay, after each
    # optimizer step W <- W - lr_t * rho * (W - Z + U), outside Adam's per-weight scaling. This is
    # the form that converges: on held-out SST-2 training rows (benchmarks/admm_tuning.py) it brings
    # the primal residual ||W - Z|| / ||W|| to 0.04 at the prune, where the penalty in the loss stays
    # near 0.5 (Adam moves a weight about one lr per step whatever the penalty's size).
    # "loss": rho/2 ||W - Z + U||^2 in the loss, as the paper (the first study's schedule).
    admm_penalty: str = "decoupled"
    # None: rho per penalty form. Decoupled, rho is a pull per unit of learning rate, so the
    # default is 0.01 / lr (each step at the peak lr pulls W 1% of the way to Z - U; 100 at lr
    # 1e-4, the held-out choice), and rho_max 100 x rho. In the loss: rho 1e-4 (the held-out best
    # of the first edition), rho_max 1.
    rho: float | None = None
    rho_max: float | None = None
    rho_growth: float = 1.3
    admm_interval: int = 32
    admm_epochs: float | None = None  # default: two thirds of the budget
    dense_epochs: float | None = None  # asp: default half of the budget
    # SR-STE (Zhou et al. 2021). The forward pass uses the top-N-of-M mask of the dense weights,
    # recomputed every mask_interval optimizer steps (1: every step, the paper's setting); the pruned
    # weights decay by srste_decay (the paper's lambda_W = 2e-4). "grad": lambda * (1 - mask) * W is
    # added to the gradient, as the paper writes it (for SGD), and goes through Adam with it, rescaled
    # per weight like the task gradient. "decoupled": after
    # each optimizer step W <- W - lr_t * lambda * (1 - mask) * W, like AdamW's weight decay (lambda is
    # a shrink per unit of learning rate: at lr 1e-4, lambda 100 shrinks a pruned weight 1% per step).
    # "grad" is the default: the paper's form, not yet compared with "decoupled" on held-out data
    # (benchmarks/admm_tuning.py chooses).
    srste_decay: float = 2e-4
    srste_decay_mode: str = "grad"
    mask_interval: int = 1
    # The fixed-mask phase after the hard prune. Default: one third of the budget, as admm's masked
    # phase, so the two learned-mask methods get the same fine-tuning after their prune.
    masked_epochs: float | None = None
    # STEP (Lu et al. 2023): a dense warm-up inside the SR-STE phase, then Adam's second moment is
    # frozen and used as a fixed preconditioner while the mask is learned. The switch is at a fixed
    # fraction of the phase's optimizer steps (STEP's AutoSwitch rule is not implemented): a quarter
    # comes well after the 10% learning-rate warm-up, lets Adam's variance average over a quarter of
    # the phase (about a thousand steps on SST-2), and leaves three quarters to learn the mask.
    freeze_variance: bool = False
    switch_fraction: float = 0.25
    # The hard prune (oneshot, asp, the end of admm). "magnitude": keep the N largest |w| of each M.
    # "admm": layer-wise reconstruction (Boza 2024) on the inputs of calibration_rows training rows
    # (at most 128 tokens each): 512 rows hold tens of thousands of tokens, enough for a Gram
    # matrix of every layer of a BERT-base-sized model at a minute or so of CPU time for MiniLM.
    prune_solver: str = "magnitude"
    calibration_rows: int = 512
    # Distillation from a dense run of the same task: alpha weighs the soft-target loss; T=2 softens
    # the teacher's distribution enough to carry "dark knowledge" without flattening it.
    teacher: str | None = None
    kd_alpha: float = 0.5
    kd_temperature: float = 2.0
    init_from: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    save_steps: int = 200
    logging_steps: int = 20
    # Hardware. "bf16"/"fp16": Trainer's autocast (weights, Z, U and the ADMM penalty stay fp32);
    # fp16 needs a GPU (its loss scaler skips a step that overflowed; so do the ADMM update, the
    # decoupled step and the masking). grad_accum: micro-batches per optimizer step; --batch-size
    # stays the global batch. eval_steps: dev metric every N optimizer steps (0: at phase ends only).
    mixed_precision: str = "no"
    grad_accum: int = 1
    eval_steps: int = field(default=0, compare=False)
    report_to: str = field(default="none", compare=False)
    dataloader_workers: int = field(default=0, compare=False)
    keep_checkpoints: bool = field(default=False, compare=False)
    resume: bool = field(default=False, compare=False)
    overwrite: bool = field(default=False, compare=False)
    progress: bool = field(default=True, compare=False)
    data: DataOptions | None = None  # own data (--data and its options) instead of a GLUE task

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # every float option: inf and nan are refused up front
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")
        positive = {
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "max_seq_len": self.max_seq_len,
            "rho": 1.0 if self.rho is None else self.rho,  # None: the default of --admm-penalty
            "rho_max": 1.0 if self.rho_max is None else self.rho_max,
            "admm_interval": self.admm_interval,
            "kd_temperature": self.kd_temperature,
            "save_steps": self.save_steps,
            "logging_steps": self.logging_steps,
            "eval_batch_size": self.eval_batch_size,
            "grad_accum": self.grad_accum,
            "calibration_rows": self.calibration_rows,
            "mask_interval": self.mask_interval,
        }
        for name, value in positive.items():
            if not value > 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.rho_growth < 1:
            raise UserError(f"--rho-growth must be at least 1, got {self.rho_growth}")
        if self.srste_decay < 0:
            raise UserError(f"--srste-decay must be 0 or more, got {self.srste_decay}")
        if self.masked_epochs is not None and self.masked_epochs < 0:
            raise UserError(f"--masked-epochs must be 0 or more, got {self.masked_epochs}")
        if not 0 < self.switch_fraction < 1:
            raise UserError(f"--switch-fraction must be within (0, 1), got {self.switch_fraction}")
        if self.admm_penalty not in ADMM_PENALTIES:
            raise UserError(
                f"--admm-penalty must be one of {', '.join(ADMM_PENALTIES)}, got {self.admm_penalty!r}"
            )
        for name, choices in (("mixed_precision", MIXED_PRECISIONS), ("report_to", REPORT_TO),
                              ("prune_solver", PRUNE_SOLVERS),
                              ("srste_decay_mode", SRSTE_DECAY_MODES)):  # fmt: skip
            value = getattr(self, name)
            if value not in choices:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        for name in ("eval_steps", "dataloader_workers"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.kd_alpha <= 1:
            raise UserError(f"--kd-alpha must be within [0, 1], got {self.kd_alpha}")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"--warmup-ratio must be within [0, 1), got {self.warmup_ratio}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if (self.task is None) == (self.data is None):
            raise UserError("pass --task (a GLUE task) or --data (your own data), not both or neither")
        if self.model is None and self.init_from is None:
            raise UserError("pass --model (a hub id or a local directory) or --init-from RUN_DIR")
        if self.model is not None and self.init_from is not None:
            raise UserError("pass --model or --init-from, not both: --init-from's run names its model")
        if self.resume and self.overwrite:
            raise UserError("pass --resume or --overwrite, not both")
        self._refuse_ignored()
        if self.admm_rho_max() < self.admm_rho():
            raise UserError(f"--rho-max {self.admm_rho_max():g} is below --rho {self.admm_rho():g}")

    def _refuse_ignored(self) -> None:
        """Options that only some methods read are refused elsewhere: they would be silently ignored."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        readers = {name: method for method, names in METHOD_OPTIONS.items() for name in names}
        for name, method in readers.items():
            if self.method != method and getattr(self, name) != defaults[name]:
                changed = [f"--{n.replace('_', '-')}" for n in METHOD_OPTIONS[method]
                           if getattr(self, n) != defaults[n]]  # fmt: skip
                raise UserError(
                    f"{', '.join(changed)} only apply to --method {method}, not {self.method}; drop them"
                )
        changed = [f"--{n.replace('_', '-')}" for n in PRUNE_OPTIONS if getattr(self, n) != defaults[n]]
        if changed and self.method == "dense":
            raise UserError(f"{', '.join(changed)} only apply to sparse methods, not dense; drop them")
        if self.switch_fraction != defaults["switch_fraction"] and not self.freeze_variance:
            raise UserError("--switch-fraction only applies with --freeze-variance; drop it or pass that")
        if self.calibration_rows != defaults["calibration_rows"] and self.prune_solver == "magnitude":
            raise UserError(
                "--calibration-rows only applies to --prune-solver admm, sparsegpt or wanda; "
                "drop it or pass one of them"
            )
        changed = [f"--{n.replace('_', '-')}" for n in ("kd_alpha", "kd_temperature")
                   if getattr(self, n) != defaults[n]]  # fmt: skip
        if changed and self.teacher is None:
            raise UserError(
                f"{', '.join(changed)} set the distillation from --teacher: pass --teacher or drop them"
            )

    def admm_rho(self) -> float:
        """The initial rho: --rho, or the default of --admm-penalty (see the field's comment)."""
        if self.rho is not None:
            return self.rho
        return 0.01 / self.lr if self.admm_penalty == "decoupled" else 1e-4

    def admm_rho_max(self) -> float:
        if self.rho_max is not None:
            return self.rho_max
        return 100 * self.admm_rho() if self.admm_penalty == "decoupled" else 1.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["include"] = list(self.include)
        d["exclude"] = list(self.exclude)
        return d

    def comparable(self) -> dict[str, Any]:
        """The fields that must match for a resume (not resume/overwrite/progress)."""
        skip = {f.name for f in dataclasses.fields(self) if not f.compare}
        return {k: v for k, v in self.to_json().items() if k not in skip}
