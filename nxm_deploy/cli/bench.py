"""``nxm-deploy bench``: the options of :class:`~nxm_deploy.bench.config.BenchConfig` and its
:class:`~nxm_deploy.bench.latency.TimingPlan`, with their defaults."""

from __future__ import annotations

from typing import Any

import click

from nxm_deploy.bench.config import BACKENDS, ORT_PROVIDERS, BenchConfig
from nxm_deploy.bench.latency import TimingPlan
from nxm_deploy.cli.group import cli, setup_logging
from nxm_deploy.cli.options import FINITE_FLOAT, data_dir_option, data_options, default, own_data


def _sizes(name: str) -> str:
    return ",".join(map(str, default(BenchConfig, name)))


def echo_report(r: dict[str, Any]) -> None:
    """The report's headline: latency ratios, the accuracy difference, the notes."""
    ratio = r["latency"]["summary"]["ratio"]
    acc = r["accuracy"]
    click.echo(
        f"  latency: sparse/dense median ratio {ratio['min']:.3f} to {ratio['max']:.3f} "
        f"(geometric mean {ratio['geomean']:.3f}) over {r['latency']['summary']['shapes']} shapes"
    )
    click.echo(
        f"  {acc['main_metric']}: dense {acc['dense']['main']:.4f}, sparse {acc['sparse']['main']:.4f} "
        f"({acc['main_difference']:+.4f}) on {acc['examples']} dev rows"
    )
    for entry in r.get("also", []):
        a, lat = entry["accuracy"], entry["latency"]["summary"]["ratio"]
        agree = (
            f", same class as dense on {100 * a['agreement_with_dense']:.2f}%"
            if a["agreement_with_dense"] is not None
            else ""
        )
        click.echo(
            f"  {entry['name']}: {acc['main_metric']} {a['main']:.4f} ({a['main_difference']:+.4f} vs dense"
            f"{agree}); latency/dense {lat['min']:.3f} to {lat['max']:.3f}"
        )
    for note in r["notes"]:
        click.echo(f"  note: {note}")


@cli.command()
@click.option(
    "--dense", required=True, type=click.Path(path_type=str), help="Dense model's export directory."
)
@click.option(
    "--sparse", required=True, type=click.Path(path_type=str), help="Sparse model's export directory."
)
@click.option(
    "--task", default=None, help="GLUE task both models were trained on (own data: --data, or none)."
)
@data_dir_option()
@data_options
@click.option("--out", required=True, type=click.Path(path_type=str), help="Report directory to write.")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=default(BenchConfig, "backend"),
    show_default=True,
    help="ort: ONNX Runtime (--ort-provider); trt: the exports' TensorRT engines; torch: the runs in PyTorch "
    "(--dense/--sparse may then be run directories).",
)
@click.option(
    "--ort-provider",
    type=click.Choice(ORT_PROVIDERS),
    default=default(BenchConfig, "ort_provider"),
    show_default=True,
    help="--backend ort: ONNX Runtime's provider; cuda and tensorrt need onnxruntime-gpu (README).",
)
@click.option(
    "--batch-sizes", default=_sizes("batch_sizes"), show_default=True, help="Comma-separated batch sizes."
)
@click.option(
    "--seq-lens", default=_sizes("seq_lens"), show_default=True, help="Comma-separated sequence lengths."
)
@click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op (and PyTorch) threads.")
@click.option(
    "--warmup", type=int, default=default(TimingPlan, "warmup"), show_default=True,
    help="Untimed calls per model and shape.",
)  # fmt: skip
@click.option(
    "--repeats", type=int, default=default(TimingPlan, "repeats"), show_default=True,
    help="Timed pairs per shape, at least.",
)  # fmt: skip
@click.option(
    "--min-time", type=FINITE_FLOAT, default=default(TimingPlan, "min_time_s"), show_default=True,
    help="Timed seconds per shape, at least.",
)  # fmt: skip
@click.option(
    "--max-time", type=FINITE_FLOAT, default=default(TimingPlan, "max_time_s"), show_default=True,
    help="Stop a shape after these seconds.",
)  # fmt: skip
@click.option(
    "--eval-batch-size", type=int, default=default(BenchConfig, "eval_batch_size"), show_default=True,
    help="Batch size of the dev pass.",
)  # fmt: skip
@click.option(
    "--also",
    multiple=True,
    metavar="NAME=EXPORT_DIR",
    help="Another model for the same report, measured against --dense (latency, accuracy, agreement "
    "with the dense model's predictions); repeatable, e.g. --also int8-2:4=exports/sst2-admm-int8.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out, once the new one is complete.")
def bench(**opts: Any) -> None:
    """Latency and dev accuracy of a sparse export against a dense one, on the same runtime.

    Times every --batch-sizes x --seq-lens shape on real dev text padded or truncated to it, the two
    models interleaved; scores the full dev set through the same runtime; checks the sparse model's
    pattern per layer; writes report.json, report.md and PNG plots to --out (docs/bench.md). Each
    --also NAME=EXPORT_DIR adds a model to the report, timed and scored against --dense.

    Exit codes: 0 done; 1 a mistake in the input (mismatched tasks or tokenizers, a dense model
    given as --sparse, missing data); 2 usage error; 3 --backend trt where TensorRT or an NVIDIA
    GPU is missing, or an --ort-provider that this ONNX Runtime lacks.
    """
    from nxm_deploy.bench.run import bench as run_bench

    setup_logging()
    opts["data"] = own_data(opts)
    plan = TimingPlan(opts.pop("warmup"), opts.pop("repeats"), opts.pop("min_time"), opts.pop("max_time"))
    result = run_bench(BenchConfig(plan=plan, **opts))
    click.echo(f"report written to {result.out}")
    echo_report(result.report)
