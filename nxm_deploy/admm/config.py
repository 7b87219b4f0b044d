"""The configuration of one training run: the options every method shares, strict, saved beside the
outputs, plus the chosen method's own options (``options``: its class in the registry).

Defaults target BERT-base on GLUE (the paper's setting); each says why. ``TrainConfig`` also takes a
method's options flat (``TrainConfig(..., method="admm", rho=1.0)``, as the command line passes
them): the method's options class checks them, and another method's options are refused in one
line. Messages name the parameters (``rho_max``); the CLI prints the flags (``--rho-max``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from nxm_deploy.admm import registry
from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import OptionError

MIXED_PRECISIONS = ("no", "fp16", "bf16")
PRUNE_SOLVERS = ("magnitude", "admm", "sparsegpt", "wanda")  # all but magnitude use calibration rows
# options of the hard prune, which every sparse method has and the dense one does not
PRUNE_OPTIONS = ("prune_solver", "calibration_rows")
REPORT_TO = ("none", "tensorboard")


@dataclass(frozen=True, init=False)
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
    # The hard prune (every sparse method's, once). "magnitude": keep the N largest |w| of each M.
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
    # How often to checkpoint and log: neither changes what is trained, so a run resumes with others
    save_steps: int = field(default=200, compare=False)
    logging_steps: int = field(default=20, compare=False)
    # Hardware. "bf16"/"fp16": Trainer's autocast (weights and the method's state stay fp32);
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
    options: Any = None  # the chosen method's options (its class in the registry); None: its defaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The fields by name (``task`` and ``out`` also by position), and any method's options flat."""
        shared = dataclasses.fields(self)
        kwargs.update(zip([f.name for f in shared], args, strict=False))
        for f in shared:
            if f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.default is not dataclasses.MISSING:
                value = f.default
            else:
                raise TypeError(f"TrainConfig() missing required argument: {f.name!r}")
            object.__setattr__(self, f.name, value)
        object.__setattr__(self, "options", _method_options(self.method, self.options, kwargs))
        self.__post_init__()

    def __post_init__(self) -> None:
        _refuse_infinite((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        positive = ("epochs", "lr", "batch_size", "max_seq_len", "kd_temperature", "save_steps",
                    "logging_steps", "eval_batch_size", "grad_accum", "calibration_rows")  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise OptionError("{0} must be positive, got {value}", name, value=getattr(self, name))
        for name, choices in (("mixed_precision", MIXED_PRECISIONS), ("report_to", REPORT_TO),
                              ("prune_solver", PRUNE_SOLVERS)):  # fmt: skip
            value = getattr(self, name)
            if value not in choices:
                raise OptionError("{0} must be one of {choices}, got {value!r}", name,
                                  choices=", ".join(choices), value=value)  # fmt: skip
        for name in ("eval_steps", "dataloader_workers"):
            if getattr(self, name) < 0:
                raise OptionError("{0} must be 0 or more, got {value}", name, value=getattr(self, name))
        if not 0 <= self.kd_alpha <= 1:
            raise OptionError("{0} must be within [0, 1], got {value}", "kd_alpha", value=self.kd_alpha)
        if not 0 <= self.warmup_ratio < 1:
            raise OptionError(
                "{0} must be within [0, 1), got {value}", "warmup_ratio", value=self.warmup_ratio
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise OptionError("{0} must be positive, got {value}", name, value=value)
        if (self.task is None) == (self.data is None):
            raise OptionError(
                "pass {0} (a GLUE task) or {1} (your own data), not both or neither", "task", "data"
            )
        if self.model is None and self.init_from is None:
            raise OptionError("pass {0} (a hub id or a local directory) or {1} RUN_DIR", "model", "init_from")
        if self.model is not None and self.init_from is not None:
            raise OptionError("pass {0} or {1}, not both: {1}'s run names its model", "model", "init_from")
        if self.resume and self.overwrite:
            raise OptionError("pass {0} or {1}, not both", "resume", "overwrite")
        self._refuse_ignored()
        check = getattr(self.options, "check", None)
        if check is not None:
            check(self)  # the method's checks that need the shared options

    def _refuse_ignored(self) -> None:
        """Options that only some runs read are refused elsewhere: they would be silently ignored."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        changed = [n for n in PRUNE_OPTIONS if getattr(self, n) != defaults[n]]
        if changed and not registry.get_method(self.method).sparse:
            raise OptionError(_listed(changed) + " only apply to sparse methods, not {method}; drop them",
                              *changed, method=self.method)  # fmt: skip
        if self.calibration_rows != defaults["calibration_rows"] and self.prune_solver == "magnitude":
            raise OptionError("{0} only applies to {1} admm, sparsegpt or wanda; drop it or pass one of them",
                              "calibration_rows", "prune_solver")  # fmt: skip
        changed = [n for n in ("kd_alpha", "kd_temperature") if getattr(self, n) != defaults[n]]
        if changed and self.teacher is None:
            n = len(changed)
            text = f" set the distillation from {{{n}}}: pass {{{n}}} or drop them"
            raise OptionError(_listed(changed) + text, *changed, "teacher")

    def to_json(self) -> dict[str, Any]:
        """Every option, flat, as nxm.json's ``hyperparameters`` records them: the shared ones and
        each registered method's (the chosen method's values, the others' defaults)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "options"}
        d["data"] = dataclasses.asdict(self.data) if self.data is not None else None
        d["include"] = list(self.include)
        d["exclude"] = list(self.exclude)
        return {**d, **option_defaults(), **self.method_options()}

    def method_options(self) -> dict[str, Any]:
        """The chosen method's options, flat (none for a method without options)."""
        return dataclasses.asdict(self.options) if self.options is not None else {}

    def comparable(self) -> dict[str, Any]:
        """The options that must match for a resume (not resume/overwrite/progress): the shared ones
        and the chosen method's."""
        skip = _not_compared() | set(option_defaults())
        return {**{k: v for k, v in self.to_json().items() if k not in skip}, **self.method_options()}

    def differs_from(self, saved: dict[str, Any]) -> list[str]:
        """The options in which this run differs from ``saved`` (an earlier :meth:`comparable`); an
        option missing on one side counts as its default (so a method added since, or the options
        of another method that older runs saved, make no difference)."""
        now, defaults = self.comparable(), option_defaults()
        keys = (set(saved) | set(now)) - _not_compared()  # a run staged before an option stopped counting
        return sorted(k for k in keys if saved.get(k, defaults.get(k)) != now.get(k, defaults.get(k)))


def _not_compared() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig) if not f.compare}


def option_defaults() -> dict[str, Any]:
    """Every registered method's options with their defaults, flat."""
    return {f.name: f.default for _, f in registry.option_fields()}


def _listed(params: list[str]) -> str:
    return ", ".join(f"{{{i}}}" for i in range(len(params)))


def _refuse_infinite(values: Any) -> None:
    for name, value in values:  # every float option: inf and nan are refused up front
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError("{0} must be a finite number, got {value}", name, value=value)


def _method_options(method: str, options: Any, flat: dict[str, Any]) -> Any:
    """The options of ``method``: ``options`` as given, or its class built from ``flat`` (each
    method's values checked by its class); another method's option, changed, is refused."""
    owners = {f.name: m.name for m, f in registry.option_fields()}
    unknown = sorted(set(flat) - set(owners))
    if unknown:
        raise TypeError(f"TrainConfig() got an unexpected keyword argument {unknown[0]!r}")
    _refuse_infinite(flat.items())
    chosen = registry.get_method(method)
    given: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        given.setdefault(owners[name], {})[name] = value
    built = {m.name: m.options(**given[m.name]) for m in registry.methods() if m.name in given and m.options}
    for m in registry.methods():
        if m.name == method or m.name not in built:
            continue
        default = m.options()
        changed = [
            f.name
            for f in dataclasses.fields(default)
            if getattr(built[m.name], f.name) != getattr(default, f.name)
        ]
        if changed:
            n = len(changed)
            text = f" only apply to {{{n}}} {{owner}}, not {{current}}; drop them"
            raise OptionError(_listed(changed) + text, *changed, "method", owner=m.name, current=method)
    if options is not None:
        if chosen.options is None or not isinstance(options, chosen.options):
            raise TypeError(
                f"method {method!r} takes options of {chosen.options}, got {type(options).__name__}"
            )
        if method in given:
            raise TypeError(f"pass the options of {method!r} as options= or flat, not both")
        return options
    if chosen.options is None:
        return None
    return built.get(method) or chosen.options()
