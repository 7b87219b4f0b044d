"""The ``tritonserver`` binary that ``nvidia-pytriton`` ships (extra ``serve``), run as a child process.

    binary = find_tritonserver()                  # ServeUnavailableError where it cannot run here
    with TritonProcess(binary, repo, Endpoints("127.0.0.1", 8000, 8001), workdir) as server:
        server.wait_ready(timeout=120)            # /v2/health/ready answers 200
        ...                                        # stopped (SIGINT, then SIGKILL) on exit

The wheel carries the server, its Python backend (``backends/python``) and one Python backend stub
per Python version (``python_backend_stubs/3.X``). A backend directory is assembled in ``workdir``
from the backend and the stub of the running Python, as the wheel's own launcher does. Two facts of
the environment the server needs:

- the stub links the shared ``libpython`` of its Python version, so where the running interpreter
  is not the system one (pyenv, conda, a built Python) its ``LIBDIR`` goes first on
  ``LD_LIBRARY_PATH``; otherwise the stub may load another ``libpython3.X`` and the model fails to
  load (an ``AttributeError`` inside ``multiprocessing``);
- the embedded interpreter finds its prefix from ``python3`` on ``PATH``, so the running
  interpreter's folder goes first on ``PATH``: the stub then sees this virtual environment's
  packages (nxm_deploy, onnxruntime, transformers).

The child asks the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a
killed parent never leaves a server running.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from nxm_deploy.errors import UserError

__all__ = [
    "Endpoints",
    "ServeError",
    "ServeUnavailableError",
    "TritonBinary",
    "TritonProcess",
    "check_port_free",
    "find_tritonserver",
    "free_port",
    "probe_tritonserver",
    "server_env",
]

EXIT_TIMEOUT_S = 3  # Triton waits this long for open client connections and in-flight requests at shutdown


class ServeError(UserError):
    """The server could not start or serve (a port in use, a model that failed to load)."""


class ServeUnavailableError(ServeError):
    """The ``tritonserver`` binary cannot run here (package missing, platform, Python version)."""


@dataclass(frozen=True)
class TritonBinary:
    server: Path  # bin/tritonserver
    python_backend: Path  # backends/python (libtriton_python.so, triton_python_backend_utils.py)
    stub: Path  # triton_python_backend_stub of the running Python version
    libs: Path  # the wheel's bundled shared libraries
    version: str  # nvidia-pytriton's version


def find_tritonserver() -> TritonBinary:
    """The binary of the installed ``nvidia-pytriton``; :class:`ServeUnavailableError` saying why not."""
    if not sys.platform.startswith("linux"):
        raise ServeUnavailableError(
            f"the tritonserver binary of nvidia-pytriton runs on Linux only, not {sys.platform}"
        )
    try:
        from importlib.metadata import version

        import pytriton
    except ImportError as exc:
        raise ServeUnavailableError(
            f"serving needs the 'serve' extra (nvidia-pytriton): pip install 'nxm-deploy[serve]' ({exc})"
        ) from exc
    root = Path(pytriton.__file__).parent / "tritonserver"
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    binary = TritonBinary(
        root / "bin" / "tritonserver",
        root / "backends" / "python",
        root / "python_backend_stubs" / py / "triton_python_backend_stub",
        root.parent.parent / "nvidia_pytriton.libs",
        version("nvidia-pytriton"),
    )
    if not binary.server.is_file() or not (binary.python_backend / "libtriton_python.so").is_file():
        raise ServeUnavailableError(f"nvidia-pytriton {binary.version} has no tritonserver binary in {root}")
    if not binary.stub.is_file():
        raise ServeUnavailableError(
            f"nvidia-pytriton {binary.version} has no Python backend stub for Python {py} "
            f"(it ships {', '.join(sorted(p.name for p in (root / 'python_backend_stubs').iterdir()))})"
        )
    return binary


def probe_tritonserver(binary: TritonBinary | None = None) -> TritonBinary:
    """The binary, after checking that it executes here (``tritonserver --help`` prints its usage):
    :class:`ServeUnavailableError` with the loader's reason (a missing shared library, an old glibc)."""
    binary = binary or find_tritonserver()
    try:
        out = subprocess.run(
            [str(binary.server), "--help"], env=server_env(binary), capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServeUnavailableError(f"{binary.server} cannot run here: {exc}") from exc
    text = (out.stdout + out.stderr).strip()
    if "Usage: tritonserver" not in text:
        last = text.splitlines()[-1] if text else f"exit code {out.returncode}, no output"
        raise ServeUnavailableError(f"{binary.server} cannot run here: {last}")
    return binary


def server_env(binary: TritonBinary) -> dict[str, str]:
    """The server's environment: this interpreter first on ``PATH``, its ``libpython`` first on
    ``LD_LIBRARY_PATH`` (see the module docstring), then the wheel's libraries."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    libs = [p for p in (libdir, str(binary.libs), env.get("LD_LIBRARY_PATH", "")) if p]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port_free(host: str, port: int, param: str) -> None:
    """One-line :class:`ServeError` naming ``param`` (``http_port``) when ``host:port`` cannot be
    listened on (in use, a bad host)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ServeError.naming(
                "{0} {port}: cannot listen on {host}:{port} ({why})",
                param,
                port=port,
                host=host,
                why=exc.strerror or exc,
            ) from exc


@dataclass(frozen=True)
class Endpoints:
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int | None = None  # None: metrics off

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class TritonProcess:
    """One ``tritonserver`` over ``repo``, its log in ``workdir/tritonserver.log``."""

    def __init__(self, binary: TritonBinary, repo: Path, endpoints: Endpoints, workdir: Path) -> None:
        self.binary, self.repo, self.endpoints, self.workdir = binary, Path(repo), endpoints, Path(workdir)
        self.log_path = self.workdir / "tritonserver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        e = self.endpoints
        args = [
            str(self.binary.server),
            f"--model-repository={self.repo.resolve()}",
            f"--backend-directory={self.workdir / 'backends'}",
            f"--http-address={e.host}", f"--http-port={e.http_port}",
            f"--grpc-address={e.host}", f"--grpc-port={e.grpc_port}",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
            "--strict-readiness=true",
        ]  # fmt: skip
        if e.metrics_port is None:
            return [*args, "--allow-metrics=false"]
        return [*args, f"--metrics-address={e.host}", f"--metrics-port={e.metrics_port}"]

    def start(self) -> None:
        backends = self.workdir / "backends" / "python"
        if not backends.is_dir():
            shutil.copytree(self.binary.python_backend, backends)
            shutil.copy2(self.binary.stub, backends / "triton_python_backend_stub")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), env=server_env(self.binary), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        url = f"http://{self.endpoints.http_url}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_problem(self) -> str:
        """The lines of the server's log that say why it stopped or failed to load a model."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no log"
        keys = ("failed to load", "error:", "Error", "Unable to", "cannot open", "not found")
        lines = [ln.strip() for ln in text.splitlines() if any(k in ln for k in keys)]
        lines = [ln for ln in lines if "CudaDriverHelper" not in ln and "pinned memory" not in ln]
        return " | ".join(lines[-3:]) or (text.strip().splitlines() or ["empty log"])[-1]

    def wait_ready(self, timeout: float) -> None:
        """Until ``/v2/health/ready`` answers; :class:`ServeError` with the log's reason when the
        server exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise ServeError(f"tritonserver exited ({code}) before it was ready: {self.log_problem()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise ServeError(f"tritonserver was not ready after {timeout:.0f} s: {self.log_problem()}")

    def stop(self, timeout: float = EXIT_TIMEOUT_S + 4) -> int | None:
        """SIGINT (Triton drains in-flight requests for ``EXIT_TIMEOUT_S``), SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> TritonProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self.stop()
