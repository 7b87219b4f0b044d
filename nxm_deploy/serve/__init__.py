"""``serve()``: a real Triton Inference Server (the ``tritonserver`` binary of ``nvidia-pytriton``,
extra ``serve``) in front of an export directory, raw text in over KServe v2 HTTP and gRPC.
See docs/serving.md.

    from nxm_deploy.serve import ServeConfig, serve
    serve(ServeConfig("exports/rte-admm", http_port=8000, grpc_port=8001))   # until SIGINT/SIGTERM

- ``config``: ``ServeConfig``; ``run``: ``serve`` and ``check_serve``; ``repo``: the one-model
  repository; ``text_model``: the Python-backend model Triton runs; ``process``: the binary, its
  environment, the child process and its ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.serve.config import ServeConfig
    from nxm_deploy.serve.run import serve

__all__ = ["ServeConfig", "serve"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"ServeConfig": "nxm_deploy.serve.config", "serve": "nxm_deploy.serve.run"}
)
