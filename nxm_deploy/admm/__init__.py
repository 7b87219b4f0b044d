"""``train()``: fine-tune with ADMM towards N:M, and the methods it is measured against.

    from nxm_deploy.admm import TrainConfig, train
    result = train(TrainConfig(model=MODEL, task="RTE", method="admm", out="runs/rte-admm"))

- ``config``: ``TrainConfig``, every option with its default and why (the CLI reads them there);
- ``registry`` and ``methods/``: one file per method (dense, oneshot, asp, admm, srste), registered;
- ``run``: the phases of a method, the run directory, ``nxm.json``; ``phases``: each kind's start
  and callbacks; ``srste``: SR-STE's learned masks and STEP's frozen-variance AdamW;
- ``inputs``: task rows, student and teacher; ``state``: Z, U, masks and rho of the selected layers;
- ``trainer`` (Hugging Face ``Trainer`` with the ADMM penalty and distillation), ``callbacks``,
  ``checkpoints``, ``staging`` (where a run is built; ``resumable``, torch-free: whether ``--resume``
  can continue it), ``trainlog`` (``train_log.jsonl``), ``dist`` (torchrun).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.admm.config import TrainConfig
    from nxm_deploy.admm.run import RunResult, train
    from nxm_deploy.admm.staging import resumable

__all__ = ["RunResult", "TrainConfig", "resumable", "train"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RunResult": "nxm_deploy.admm.run",
        "TrainConfig": "nxm_deploy.admm.config",
        "resumable": "nxm_deploy.admm.staging",
        "train": "nxm_deploy.admm.run",
    },
)
