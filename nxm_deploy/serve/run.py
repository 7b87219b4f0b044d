"""``serve()``: a real Triton Inference Server in front of an export directory, until stopped.

    serve(ServeConfig("exports/rte-admm", http_port=8000, grpc_port=8001))   # blocks; SIGINT stops it

Steps: check everything that can be checked before starting (the export and its model file, the
backend, the ports, the binary), write a one-model repository into a temporary folder
(``repo.write_serve_repo``), start ``tritonserver`` (``process.TritonProcess``), wait for it to load
and warm up the model, send one request of our own through HTTP, then serve until SIGINT or SIGTERM
(or ``stop`` is set), and stop the server (Triton drains in-flight requests for a few seconds).
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nxm_deploy.runtime.exportdir import ExportDir
from nxm_deploy.runtime.session import require_tensorrt
from nxm_deploy.serve.config import ServeConfig
from nxm_deploy.serve.process import (
    EXIT_TIMEOUT_S,
    Endpoints,
    ServeError,
    TritonProcess,
    check_port_free,
    find_tritonserver,
)
from nxm_deploy.serve.repo import write_serve_repo

__all__ = ["check_serve", "serve"]


def _model_name(config: ServeConfig, export: ExportDir) -> str:
    from nxm_deploy.runtime.triton import model_name_for

    return config.name or model_name_for(export.path)


def check_serve(config: ServeConfig) -> ExportDir:
    """Everything that can fail before the server starts, each as one line: the export and its model
    file for the backend, TensorRT or the ONNX Runtime provider, the binary, the ports."""
    export = ExportDir.read(config.export_dir)
    if config.backend == "trt":
        require_tensorrt()
    export.model_file(config.backend)
    if config.ort_provider != "cpu":
        from nxm_deploy.runtime.ort_providers import ort_providers

        ort_providers(config.ort_provider)
    find_tritonserver()
    check_port_free(config.host, config.http_port, "http_port")
    check_port_free(config.host, config.grpc_port, "grpc_port")
    if config.metrics_port is not None:
        check_port_free(config.host, config.metrics_port, "metrics_port")
    return export


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (in the main thread; elsewhere the caller sets it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in before:
        signal.signal(s, lambda *_: stop.set())
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _probe(endpoints: Endpoints, name: str, export: ExportDir) -> dict[str, Any]:
    """One request of our own through HTTP: the server answers text with a label."""
    text = "A first request, to check the server end to end."
    inputs = [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": [text]}]
    if export.facts.is_pair:
        inputs.append({"name": "text_pair", "shape": [1, 1], "datatype": "BYTES", "data": [text]})
    request = urllib.request.Request(
        f"http://{endpoints.http_url}/v2/models/{name}/infer",
        data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return {o["name"]: o["data"] for o in json.loads(r.read())["outputs"]}


def serve(
    config: ServeConfig,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve ``config.export_dir`` until SIGINT/SIGTERM (or ``stop``); progress lines to ``progress``.
    Raises a one-line :class:`~nxm_deploy.errors.UserError` for anything wrong before start-up,
    :class:`ServeError` when the server fails to load the model or dies."""
    say = progress or (lambda _msg: None)
    stop = stop or threading.Event()
    export = check_serve(config)
    binary = find_tritonserver()
    name = _model_name(config, export)
    endpoints = Endpoints(config.host, config.http_port, config.grpc_port, config.metrics_port)
    with tempfile.TemporaryDirectory(prefix="nxm-serve-") as work, _stop_on_signals(stop):
        repo = Path(work) / "repo"
        write_serve_repo(repo, name, export, config)
        facts = export.facts
        say(
            f"loading {export.path} as model '{name}' into Triton Inference Server (nvidia-pytriton "
            f"{binary.version}): backend {config.backend}, {config.instances} instance(s), max batch "
            f"{config.max_batch_size}, queue delay {config.max_queue_delay_us} us, "
            f"max_seq_len {facts.max_seq_len}"
        )
        started = time.monotonic()
        with TritonProcess(binary, repo, endpoints, Path(work)) as server:
            say("warming up (each instance opens its Predictor and runs a first batch)")
            while not server.ready():
                if stop.is_set():
                    say("stopped before the model was ready")
                    return
                if not server.alive() or time.monotonic() - started > config.ready_timeout_s:
                    server.wait_ready(0)  # raises ServeError with the log's reason
                time.sleep(0.2)
            answer = _probe(endpoints, name, export)
            shown = answer.get("label") or answer.get("value")
            say(f"ready in {time.monotonic() - started:.1f} s; a first request answered {shown}")
            say(
                f"serving on http://{endpoints.http_url} (KServe v2 HTTP) and {endpoints.grpc_url} (gRPC): "
                f"POST /v2/models/{name}/infer; GET /v2/health/ready; Ctrl-C stops"
            )
            while not stop.wait(0.5):
                if not server.alive():
                    raise ServeError(f"tritonserver exited while serving: {server.log_problem()}")
            say("stopping (in-flight requests get a few seconds)")
            code = server.stop()
            why = server.log_problem() if code else ""
        if "Exit timeout expired" in why:  # idle keep-alive clients hold the HTTP service open
            why = f"; clients still held connections after {EXIT_TIMEOUT_S} s, so Triton closed them"
        elif why:
            why = f": {why}"
        say(f"stopped (tritonserver exit code {code}{why})")
