"""``export()``: a run directory to ONNX (and TensorRT) with the N:M pattern proven at each step.

    from nxm_deploy.export import ExportConfig, export
    result = export(ExportConfig(run_dir="runs/rte-admm", out="exports/rte-admm"))

- ``pipeline``: run dir -> export dir, the steps in order;
- ``onnx``: ``torch.onnx.export`` with dynamic batch/sequence, input/output description;
- ``parity``: ONNX Runtime against PyTorch on real sentences, every failure in one ParityError;
- ``trt``: TensorRT engines with sparse weights, ``build_engine.sh``, the evidence of sparse kernels.

The N:M check on the ONNX graph is ``nxm_deploy.check.onnx``; the Triton writer is
``nxm_deploy.runtime.triton``. onnx, onnxruntime and tensorrt are imported inside the functions
that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.export.config import ExportConfig
    from nxm_deploy.export.pipeline import ExportResult, export

__all__ = ["ExportConfig", "ExportResult", "export"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ExportConfig": "nxm_deploy.export.config",
        "ExportResult": "nxm_deploy.export.pipeline",
        "export": "nxm_deploy.export.pipeline",
    },
)
