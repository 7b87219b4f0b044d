"""``SensitivityConfig``: which run to analyse on which rows, and the budget (the CLI reads its
defaults here). Importing it loads neither torch nor transformers, so ``--help`` stays fast."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.data.own import DataOptions
from nxm_deploy.errors import UserError

__all__ = ["ROWS_FROM", "SensitivityConfig"]

ROWS_FROM = ("auto", "unseen", "train")


@dataclass(frozen=True)
class SensitivityConfig:
    """``run_dir``: a dense run written by ``train``. ``task=None`` and ``data=None``: the rows of the
    task (or own data) the run records. ``rows`` training rows (never dev: the dev set scores what is
    chosen here) are drawn with ``seed``, from the rows the run did not train on where it left some out
    (``rows_from``); the metric is the task's main metric in points (0-100).
    ``budget``: the largest drop in points that the exclude list may leave, all kept layers N:M at
    once. ``include``/``exclude``: globs over layer names, as ``train`` takes them."""

    run_dir: str | os.PathLike[str]
    out: str | os.PathLike[str]
    task: str | None = None
    data_dir: str | Path | None = None
    data: DataOptions | None = None
    # 1000 rows put one row at 0.1 points of accuracy: fine enough to rank layers, one pass is cheap.
    rows: int = 1000
    seed: int = 0
    # "unseen": training rows the run did not train on (it trained on a subset); "train": any training
    # row (in-sample when the run trained on all of them); "auto": unseen where the run left any out.
    rows_from: str = "auto"
    pattern: str = "2:4"
    budget: float = 1.0  # points of the main metric
    batch_size: int = 32
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        if isinstance(self.rows, bool) or not isinstance(self.rows, int) or self.rows < 1:
            raise UserError.naming("{0} must be a positive integer, got {value}", "rows", value=self.rows)
        if not isinstance(self.budget, (int, float)) or not 0 <= self.budget < float("inf"):
            raise UserError.naming(
                "{0} must be a number of points, 0 or more, got {value}", "budget", value=self.budget
            )
        if self.batch_size < 1:
            raise UserError.naming(
                "{0} must be a positive integer, got {value}", "batch_size", value=self.batch_size
            )
        if self.rows_from not in ROWS_FROM:
            raise UserError.naming(
                "{0} must be one of {choices}, got {value!r}", "rows_from",
                choices=", ".join(ROWS_FROM), value=self.rows_from,
            )  # fmt: skip
        if self.task is not None and self.data is not None:
            raise UserError.naming("pass {0} or {1}, not both", "task", "data")
        from nxm_deploy import nm

        nm.parse_pattern(self.pattern)  # a one-line PatternError before any work

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["run_dir"], d["out"] = str(self.run_dir), str(self.out)
        d["data_dir"] = str(self.data_dir) if self.data_dir is not None else None
        d["data"] = self.data.to_json() if self.data is not None else None
        d["include"], d["exclude"] = list(self.include), list(self.exclude)
        return d
