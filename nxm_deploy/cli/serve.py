"""``nxm-deploy serve EXPORT_DIR``: the options of :class:`~nxm_deploy.serve.config.ServeConfig`."""

from __future__ import annotations

import click

from nxm_deploy.cli.group import cli
from nxm_deploy.cli.options import default
from nxm_deploy.serve.config import BACKENDS, ORT_PROVIDERS, ServeConfig


@cli.command()
@click.argument("export_dir", type=click.Path(path_type=str))
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="ort",
    show_default=True,
    help="ort: model.onnx on ONNX Runtime; trt: model.engine through TensorRT (GPU).",
)
@click.option(
    "--ort-provider",
    type=click.Choice(ORT_PROVIDERS),
    default="cpu",
    show_default=True,
    help="--backend ort: ONNX Runtime's provider (cuda, tensorrt: onnxruntime-gpu).",
)
@click.option(
    "--threads", type=int, default=None, help="ONNX Runtime intra-op threads per instance [one per core]."
)
@click.option(
    "--max-batch-size",
    type=int,
    default=default(ServeConfig, "max_batch_size"),
    show_default=True,
    help="Triton's dynamic batching: the most rows in one merged batch.",
)
@click.option(
    "--max-queue-delay-us",
    type=int,
    default=default(ServeConfig, "max_queue_delay_us"),
    show_default=True,
    help="Triton's dynamic batching: how long a request waits for others.",
)
@click.option(
    "--instances",
    type=int,
    default=1,
    show_default=True,
    help="Model instances (each a process with its own Predictor).",
)
@click.option("--name", default=None, help="Model name in the URL [from the export directory's name].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--http-port", type=int, default=8000, show_default=True, help="KServe v2 HTTP port.")
@click.option("--grpc-port", type=int, default=8001, show_default=True, help="KServe v2 gRPC port.")
@click.option("--metrics-port", type=int, default=None, help="Prometheus metrics port [metrics off].")
@click.option(
    "--max-text-bytes",
    type=int,
    default=default(ServeConfig, "max_text_bytes"),
    show_default=True,
    help="Longer texts get an error response.",
)
def serve(export_dir: str, **options: object) -> None:
    """Serve EXPORT_DIR (written by export) with a real Triton Inference Server: raw text in.

    The export's own tokenizer and max_seq_len run in the server. KServe v2 over HTTP and gRPC:
    POST /v2/models/NAME/infer with input "text" (BYTES, one text per row; and "text_pair" for a
    pair task) gives "label", "scores" (one per label; "value" for a regression task) and
    "truncated". Needs the 'serve' extra (nvidia-pytriton, which ships tritonserver). SIGINT or
    SIGTERM stops it. See docs/serving.md.

    Exit codes: 0 stopped cleanly; 1 a missing export, a port in use, a model that failed to load;
    2 usage error; 3 --backend trt or a GPU provider where TensorRT or a GPU is missing.
    """
    from nxm_deploy.serve.run import serve as run_serve

    config = ServeConfig(export_dir, **options)  # type: ignore[arg-type]
    run_serve(config, progress=lambda msg: click.echo(f"[serve] {msg}", err=True))
