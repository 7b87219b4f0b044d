"""The machine a bench ran on (with its GPUs), and the versions of the libraries that did the work
(:mod:`nxm_deploy.origin`, which every manifest's provenance uses too)."""

from __future__ import annotations

import os
import platform
from typing import Any

from nxm_deploy import origin
from nxm_deploy.origin import cpu_model, library_versions

__all__ = ["cpu_model", "library_versions", "machine_info"]


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
        "memory_gib": origin.memory_gib(),
        "gpus": _gpus(),
        "threads_requested": threads,
        "os": platform.platform(),
        "python": platform.python_version(),
    }
