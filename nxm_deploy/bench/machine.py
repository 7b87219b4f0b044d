"""The machine a bench ran on, and the versions of the libraries that did the work."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "library_versions", "machine_info"]

_TENSORRT_DISTS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` of /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        out.append(f"{torch.cuda.get_device_name(i)} (sm_{major}{minor})")
    return out


def machine_info(threads: int | None) -> dict[str, Any]:
    """CPU model, cores (logical, and usable by this process), memory, GPUs, OS; ``threads`` as asked."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "threads_requested": threads,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Installed versions (None: not installed) of the libraries a bench touches."""
    from nxm_deploy.version import __version__

    tensorrt = next((v for v in map(_dist_version, _TENSORRT_DISTS) if v), None)
    return {
        "nxm_deploy": __version__,
        "onnxruntime": _dist_version("onnxruntime") or _dist_version("onnxruntime-gpu"),
        "onnx": _dist_version("onnx"),
        "torch": _dist_version("torch"),
        "transformers": _dist_version("transformers"),
        "tokenizers": _dist_version("tokenizers"),
        "numpy": _dist_version("numpy"),
        "tensorrt": tensorrt,
    }
