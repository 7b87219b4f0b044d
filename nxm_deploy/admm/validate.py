"""What ``train`` checks before it loads a model: the model's and runs' paths, the sequence length
against the model's position limit and its special tokens, and the teacher (a dense run of the same
task that tokenizes text as the student does). Each problem is one line; nothing has been loaded
or written yet."""

from __future__ import annotations

from typing import Any

from nxm_deploy.admm.config import TrainConfig
from nxm_deploy.errors import UserError
from nxm_deploy.manifest import RunManifest


def check_before_loading(cfg: TrainConfig, task: Any) -> None:
    """Raise a :class:`UserError` for any input of ``cfg`` that would fail later, before any work."""
    from nxm_deploy.models import load_config, load_tokenizer, position_limit

    source = cfg.model
    if cfg.init_from is not None:
        init = RunManifest.read(cfg.init_from, "run to start from")
        if init.facts.pattern is not None:
            raise UserError.naming(
                "{0} run {path} is sparse ({pattern}); pass a dense run",
                "init_from",
                path=cfg.init_from,
                pattern=init.facts.pattern,
            )
        source = cfg.init_from
    config = load_config(source)  # type: ignore[arg-type]
    tokenizer = load_tokenizer(source)  # type: ignore[arg-type]
    limit = position_limit(config, tokenizer)
    if cfg.max_seq_len > limit:
        raise UserError.naming(
            "{0} {value} is above the model's position limit {limit}; pass {limit} or less",
            "max_seq_len",
            value=cfg.max_seq_len,
            limit=limit,
        )
    pair = task.is_pair
    shortest = tokenizer.num_special_tokens_to_add(pair=pair) + (2 if pair else 1)
    if cfg.max_seq_len < shortest:
        raise UserError.naming(
            "{0} {value} cannot hold the special tokens and any text of {what}; pass at least {shortest}",
            "max_seq_len",
            value=cfg.max_seq_len,
            what="a sentence pair" if pair else "a sentence",
            shortest=shortest,
        )
    if cfg.teacher is not None:
        _check_teacher(cfg.teacher, tokenizer, task)


def _check_teacher(teacher_dir: str, student_tokenizer: Any, task: Any) -> None:
    """The teacher must be dense, have the task's outputs and read the same token ids as the student."""
    from nxm_deploy.models import load_config, load_tokenizer

    facts = RunManifest.read(teacher_dir, "teacher run").facts
    if facts.pattern is not None:
        raise UserError.naming(
            "{0} {path} is a sparse run ({pattern}); distil from a dense run of the task",
            "teacher",
            path=teacher_dir,
            pattern=facts.pattern,
        )
    outputs = load_config(teacher_dir).num_labels
    if outputs != task.num_labels:
        raise UserError(f"teacher {teacher_dir} has {outputs} labels, the task has {task.num_labels}")
    theirs = load_tokenizer(teacher_dir)
    same_vocab = theirs.get_vocab() == student_tokenizer.get_vocab()
    same_special = _special(theirs) == _special(student_tokenizer)
    if not (same_vocab and same_special):
        what = "vocabulary" if not same_vocab else "special tokens"
        raise UserError.naming(
            "{0} {path} tokenizes differently from the student (its {what} differ), so its logits would "
            "be computed on other token ids; distil from a run of the same base model",
            "teacher",
            path=teacher_dir,
            what=what,
        )


def _special(tokenizer: Any) -> dict[str, Any]:
    names = ("cls", "sep", "pad", "unk", "mask", "bos", "eos")
    return {name: getattr(tokenizer, f"{name}_token_id", None) for name in names}
