"""Process-group helpers for runs under ``torchrun`` (a single process needs none of them)."""

from __future__ import annotations

import os

import torch


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed() -> None:
    """Under torchrun, join the process group now (gloo on CPU, NCCL on GPUs), so that the
    checks and writes before Trainer starts can synchronise."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState()


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def shutdown() -> None:
    """Leave the process group before the process exits (NCCL warns of leaked resources, and a
    process can abort at exit, when it is left up). The library's ``train`` keeps it up for
    whatever the caller runs next; the command line calls this when its command ends."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def backend() -> str | None:
    """The process group's backends by device (``cpu:gloo``, ``cuda:nccl``, ...), or None in a single
    process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return str(torch.distributed.get_backend_config())
    return None
