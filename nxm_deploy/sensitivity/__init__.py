"""``sensitivity()``: how much a dense run's metric drops when one layer, or one kind of layer, is
made N:M by magnitude; a ranking; the ``--exclude`` list that keeps the drop under a budget.

    from nxm_deploy.sensitivity import SensitivityConfig, sensitivity
    result = sensitivity(SensitivityConfig(run_dir="runs/rte-dense", out="reports/rte-sensitivity.json"))
    result.report["exclude"], result.report["combined_drop"]

Modules: ``config`` (the options and their defaults); ``rows`` (the seeded subset of training rows,
the metric in points); ``layers`` (the candidate layers, their kinds and FLOPs, pruning and
restoring weights); ``output`` (the ``--out`` file and its plot); ``run`` (the measurements, the
greedy exclude list, the report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.sensitivity.config import SensitivityConfig
    from nxm_deploy.sensitivity.run import SensitivityResult, sensitivity

__all__ = ["SensitivityConfig", "SensitivityResult", "sensitivity"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SensitivityConfig": "nxm_deploy.sensitivity.config",
        "SensitivityResult": "nxm_deploy.sensitivity.run",
        "sensitivity": "nxm_deploy.sensitivity.run",
    },
)
