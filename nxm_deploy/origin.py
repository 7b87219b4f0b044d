"""Where an output came from, beyond the command line: the tool's source revision (git commit and
whether the tree was dirty), the versions of the libraries that did the work, and the machine.
Standard library only (versions from package metadata, so nothing heavy is imported)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = [
    "cpu_id",
    "cpu_isa",
    "cpu_model",
    "dist_version",
    "library_versions",
    "machine",
    "memory_gib",
    "source_revision",
    "torch_threads",
]

_TENSORRT_DISTS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")
_SOURCE = Path(__file__).resolve().parent  # the nxm_deploy package's own folder


def dist_version(name: str) -> str | None:
    """The installed version of distribution ``name``; None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Installed versions (None: not installed) of the libraries the tool's work goes through."""
    from nxm_deploy.version import __version__

    return {
        "nxm_deploy": __version__,
        "torch": dist_version("torch"),
        "transformers": dist_version("transformers"),
        "tokenizers": dist_version("tokenizers"),
        "accelerate": dist_version("accelerate"),
        "onnx": dist_version("onnx"),
        "onnxruntime": dist_version("onnxruntime") or dist_version("onnxruntime-gpu"),
        "numpy": dist_version("numpy"),
        "tensorrt": next((v for v in map(dist_version, _TENSORRT_DISTS) if v), None),
    }


@cache
def source_revision() -> dict[str, Any]:
    """``{"commit": SHA, "dirty": bool}`` of the git checkout the tool runs from (an editable install
    or a clone), or ``{"commit": None, "dirty": None}`` for an installed wheel or where git is absent.
    ``dirty``: the package's own folder had changes not committed (untracked files included; results
    or docs written beside it do not count). Read once per process (a run calls it as it starts)."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True,
                                  timeout=10, check=False)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--", ".")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def _cpuinfo(cpuinfo: Path) -> dict[str, str]:
    """The first processor's ``key: value`` lines of /proc/cpuinfo ({} where it cannot be read)."""
    facts: dict[str, str] = {}
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return facts
    for line in text.splitlines():
        if not line.strip() and facts:
            break  # the first processor's block ends
        key, sep, value = line.partition(":")
        if sep:
            facts.setdefault(key.strip(), value.strip())
    return facts


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` of /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    return _cpuinfo(cpuinfo).get("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_id(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """``"family F model M stepping S"`` of the first CPU in /proc/cpuinfo (None elsewhere). A cloud
    VM's model name ("AMD EPYC") does not tell two generations apart, and two generations may run
    other kernels (another instruction set), so a CPU result is only comparable on the same one."""
    facts = _cpuinfo(cpuinfo)
    parts = [(k, facts.get(k)) for k in ("cpu family", "model", "stepping")]
    if not all(v for _, v in parts):
        return None
    return " ".join(f"{k.removeprefix('cpu ')} {v}" for k, v in parts)


def cpu_isa() -> str | None:
    """The instruction set PyTorch's CPU kernels dispatch to here (``"AVX512"``, ``"AVX2"``, ...;
    None where torch is not loaded, so nothing heavy is imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def memory_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def torch_threads() -> int | None:
    """PyTorch's intra-op thread count in this process (None where torch is not loaded, so nothing
    heavy is imported). A CPU result depends on it: another count sums in another order."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def machine() -> dict[str, Any]:
    """CPU model (and its family/model/stepping, and the instruction set PyTorch uses on it), logical
    cores, memory, OS and PyTorch's thread count (the GPU, where one is used, is in the output's own
    facts: ``device``/``gpu`` of a run, ``machine.gpus`` of a report)."""
    return {"cpu": cpu_model(), "cpu_id": cpu_id(), "cpu_isa": cpu_isa(),
            "logical_cores": os.cpu_count(), "memory_gib": memory_gib(), "os": platform.platform(),
            "torch_threads": torch_threads()}  # fmt: skip
