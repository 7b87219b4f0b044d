"""``ServeConfig``: what ``nxm-deploy serve`` takes; the command line fills it in."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from nxm_deploy.errors import UserError
from nxm_deploy.runtime.backends import EXPORT_BACKENDS, ORT_PROVIDERS

__all__ = ["DEFAULT_MAX_TEXT_BYTES", "ServeConfig"]

DEFAULT_MAX_TEXT_BYTES = 65536
BACKENDS = EXPORT_BACKENDS


@dataclass(frozen=True)
class ServeConfig:
    """``export_dir``: written by ``nxm-deploy export``. ``backend``/``ort_provider``/``threads``: as
    ``Predictor.from_export`` takes them. ``max_batch_size``/``max_queue_delay_us``: Triton's dynamic
    batching (rows per merged batch; how long the first request waits for others). ``instances``:
    model instances (each its own process with its own ``Predictor``). ``name``: the model's name
    (default: from the export directory's name). ``http_port``/``grpc_port``: KServe v2 endpoints;
    ``metrics_port``: Prometheus metrics (None: off). ``max_text_bytes``: longer texts are refused."""

    export_dir: str | os.PathLike[str]
    backend: str = "ort"
    ort_provider: str = "cpu"
    threads: int | None = None
    max_batch_size: int = 32
    max_queue_delay_us: int = 2000
    instances: int = 1
    name: str | None = None
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int | None = None
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    ready_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError.naming(
                "{0} {value!r}: choose one of {choices}",
                "backend",
                value=self.backend,
                choices=", ".join(BACKENDS),
            )
        if self.ort_provider not in ORT_PROVIDERS:
            raise UserError.naming(
                "{0} {value!r}: choose one of {choices}",
                "ort_provider",
                value=self.ort_provider,
                choices=", ".join(ORT_PROVIDERS),
            )
        if self.ort_provider != "cpu" and self.backend != "ort":
            raise UserError.naming(
                "{0} {provider} applies to {1} ort, not {backend}",
                "ort_provider",
                "backend",
                provider=self.ort_provider,
                backend=self.backend,
            )
        for param, value, low in (
            ("max_batch_size", self.max_batch_size, 1),
            ("max_queue_delay_us", self.max_queue_delay_us, 0),
            ("instances", self.instances, 1),
            ("max_text_bytes", self.max_text_bytes, 16),
            ("threads", self.threads if self.threads is not None else 1, 1),
        ):
            if value < low:
                raise UserError.naming("{0} must be at least {low}, got {value}", param, low=low, value=value)
        ports = [("http_port", self.http_port), ("grpc_port", self.grpc_port)]
        ports += [("metrics_port", self.metrics_port)] if self.metrics_port is not None else []
        for param, port in ports:
            if not 1 <= port <= 65535:
                raise UserError.naming("{0} {port} is not a port (1 to 65535)", param, port=port)
        if len({p for _, p in ports}) < len(ports):
            listed = ", ".join(f"{{{i}}} {p}" for i, (_, p) in enumerate(ports))
            raise UserError.naming("the ports must differ: " + listed, *(n for n, _ in ports))
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", self.name):
            raise UserError(
                f"invalid model name {self.name!r}: use letters, digits, '_', '-' and '.' (not first)"
            )
