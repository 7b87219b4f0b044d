"""nxm-deploy: N:M (2:4) sparse fine-tuning of BERT-family encoders with ADMM, export to ONNX and
TensorRT with the pattern proven at every step, and latency/accuracy reports against dense.

    from nxm_deploy import nm, Predictor, TrainConfig, ExportConfig, BenchConfig, train

One verb per subpackage, as ``torch.export.export``: ``nxm_deploy.admm.train``,
``nxm_deploy.export.export``, ``nxm_deploy.check.check``, ``nxm_deploy.bench.bench``,
``nxm_deploy.sensitivity.sensitivity``. The names
here are imported on first use, so ``import nxm_deploy`` (and ``nxm-deploy --help``) stays light.
``export``, ``check`` and ``bench`` are the subpackages' own names, so their functions are reached
through the subpackage: ``from nxm_deploy.export import export``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports
from nxm_deploy.version import __version__

if TYPE_CHECKING:
    from nxm_deploy import nm
    from nxm_deploy.admm import TrainConfig, train
    from nxm_deploy.bench import BenchConfig
    from nxm_deploy.export import ExportConfig
    from nxm_deploy.runtime import Predictor

__all__ = ["BenchConfig", "ExportConfig", "Predictor", "TrainConfig", "__version__", "nm", "train"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "nm": ("nxm_deploy.nm", ""),
        "Predictor": "nxm_deploy.runtime.predictor",
        "TrainConfig": "nxm_deploy.admm.config",
        "train": "nxm_deploy.admm.run",
        "ExportConfig": "nxm_deploy.export.config",
        "BenchConfig": "nxm_deploy.bench.config",
    },
)
