"""Whether TensorRT and an NVIDIA GPU are here: one sentence on what is missing, or None.

Imports only the standard library at import time (``tensorrt`` and ``torch`` inside the functions),
so the export, bench and runtime code can ask before they touch either.
"""

from __future__ import annotations

__all__ = ["gpu_name", "gpu_unavailable_reason", "trt_unavailable_reason", "trt_version"]


def gpu_unavailable_reason() -> str | None:
    """``None`` when a CUDA GPU is visible; else one sentence on why not."""
    return _gpu_problem()


def trt_unavailable_reason() -> str | None:
    """``None`` when ``tensorrt`` imports and a CUDA GPU is visible; else one sentence on what is missing."""
    trt_problem = _tensorrt_problem()
    gpu_problem = _gpu_problem()
    if trt_problem and gpu_problem:
        return f"{trt_problem}, and {gpu_problem}."
    if trt_problem or gpu_problem:
        return f"{trt_problem or gpu_problem}."
    return None


def trt_version() -> str | None:
    """The installed TensorRT's version string, or None when it does not import."""
    try:
        import tensorrt
    except (ImportError, OSError):
        return None
    return str(tensorrt.__version__)


def gpu_name() -> str:
    """``"NVIDIA H100 80GB HBM3 (sm_90)"``: the first CUDA device and its compute capability."""
    import torch

    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    return f"{name} (sm_{major}{minor})"


def _tensorrt_problem() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return (
            "TensorRT is not installed (the `tensorrt` Python package comes from NVIDIA's own package "
            "index; install it on a machine with an NVIDIA GPU)"
        )
    except OSError as exc:  # the wheel is there but its CUDA libraries are not
        return f"TensorRT is installed but its libraries fail to load ({exc})"
    return None


def _gpu_problem() -> str | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the project
        return "no NVIDIA GPU could be detected (torch is not installed)"
    if not torch.cuda.is_available():
        return "no NVIDIA GPU is visible (torch.cuda.is_available() is False)"
    return None
