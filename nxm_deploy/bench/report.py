"""``report.md``, the page a person reads, rendered from the ``report.json`` dictionary; and the
report directory itself (``report.json``, ``report.md``, plots), written through ``staged_dir``.

The schema of ``report.json`` is documented in docs/bench.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from nxm_deploy.bench.plots import write_plots
from nxm_deploy.io import write_json_atomic, write_text_atomic
from nxm_deploy.manifest import REPORT_MANIFEST, ReportManifest
from nxm_deploy.outputs import staged_dir

__all__ = ["REPORT_MD", "render_markdown", "write_report_dir"]

REPORT_MD = "report.md"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _verdict(report: dict[str, Any]) -> str:
    """One sentence on the measured ratio; it never claims more than the numbers."""
    s = report["latency"]["summary"]
    lo, hi, gm = s["ratio"]["min"], s["ratio"]["max"], s["ratio"]["geomean"]
    span = f"{lo:.3f}" if abs(hi - lo) < 5e-4 else f"{lo:.3f} to {hi:.3f}"
    faster, slower = s["sparse_faster_significant"], s["sparse_slower_significant"]
    return (
        f"Measured sparse/dense median-latency ratio: {span} over {s['shapes']} shapes "
        f"(geometric mean {gm:.3f}; below 1.0 means the sparse model was faster). By a sign test over "
        f"the timed pairs (p < {s['alpha']}), the sparse model was faster on {faster} and slower on "
        f"{slower} of {s['shapes']} shapes."
    )


def _summary(report: dict[str, Any]) -> list[str]:
    b, m, acc = report["backend"], report["models"], report["accuracy"]
    main = acc["main_metric"]
    lines = [
        f"# Sparse vs dense: {report['task']} on {b['name']}",
        "",
        f"- Dense: `{m['dense']['path']}` (method {m['dense']['method']})",
        f"- Sparse: `{m['sparse']['path']}` (method {m['sparse']['method']}, "
        f"pattern {m['sparse']['pattern']}, {m['sparse']['sparse_layers']} sparse layers)",
        f"- Runtime: {b['runtime']} {b['version'] or ''} on {b['device']}, {b['precision']}"
        + f", threads: {b.get('threads') or b.get('threads_requested') or 'runtime default'}",
        f"- {_verdict(report)}",
        f"- Dev {main}: dense {acc['dense']['main']:.4f}, sparse {acc['sparse']['main']:.4f} "
        f"(difference {acc['main_difference']:+.4f}) over all {acc['examples']} dev rows.",
        "",
    ]
    for note in report["notes"]:
        lines += [f"> **Note.** {note}", ""]
    return lines


def _latency(report: dict[str, Any]) -> list[str]:
    lat = report["latency"]
    rows = []
    for s in lat["shapes"]:
        d, sp, pr = s["dense"], s["sparse"], s["paired_ratio"]
        rows.append(
            [
                str(s["batch"]),
                str(s["seq_len"]),
                _ms(d["median_ms"]),
                _ms(d["p90_ms"]),
                _ms(d["p99_ms"]),
                _ms(sp["median_ms"]),
                _ms(sp["p90_ms"]),
                _ms(sp["p99_ms"]),
                f"{s['ratio']:.3f}",
                f"{pr['p25']:.3f}-{pr['p75']:.3f}",
                f"{s['sign_test']['p_value']:.3g}",
                f"{d['throughput_seq_per_s']:.1f}",
                f"{sp['throughput_seq_per_s']:.1f}",
                str(d["n"]),
            ]
        )
    header = [
        "batch", "seq", "dense median ms", "dense p90", "dense p99", "sparse median ms", "sparse p90",
        "sparse p99", "ratio", "paired ratio IQR", "sign test p", "dense seq/s", "sparse seq/s", "pairs",
    ]  # fmt: skip
    plan = lat["method"]["plan"]
    return [
        "## Latency",
        "",
        *_table(header, rows),
        "",
        f"ratio = sparse median / dense median. Per shape: {plan['warmup']} warm-up calls of each "
        f"model, then at least {plan['repeats']} timed pairs and {plan['min_time_s']} s "
        f"(at most {plan['max_time_s']} s, at least {plan['min_pairs']} pairs), dense and "
        "sparse back to back with the order alternating every pair. The paired ratio IQR is the middle half "
        "of the per-pair ratios sparse/dense; the sign test p is the chance of pairs at least this lopsided "
        "if neither model were faster (p >= 0.05: no measured difference). Inputs: "
        f"{lat['method']['inputs']}.",
        "",
        "![latency](latency.png)",
        "",
    ]


def _accuracy(report: dict[str, Any]) -> list[str]:
    acc = report["accuracy"]
    names = list(acc["dense"]["metrics"])
    lengths = sorted(set(acc["max_seq_len"].values()))
    max_len = (
        str(lengths[0])
        if len(lengths) == 1
        else " and ".join(f"{r} {v}" for r, v in acc["max_seq_len"].items())
    )
    rows = [[role] + [f"{acc[role]['metrics'][n]:.4f}" for n in names] for role in ("dense", "sparse")]
    rows.append(["sparse - dense"] + [f"{acc['difference'][n]:+.4f}" for n in names])
    lines = [
        "## Accuracy",
        "",
        f"{report['task']} {acc['split']} ({acc['source']}), all {acc['examples']} rows, through the same "
        f"runtime; batches of {acc['batch_size']} padded to their longest row, truncated to "
        f"{max_len} tokens (the runs' max_seq_len).",
        "",
        *_table(["model", *names], rows),
        "",
    ]
    if acc.get("agreement") is not None:
        lines += [f"The two models predict the same class on {100 * acc['agreement']:.2f}% of the rows.", ""]
    recorded = {r: report["models"][r].get("run_metrics") for r in ("dense", "sparse")}
    if any(recorded.values()):
        parts = [f"{r}: {_fmt_metrics(v)}" for r, v in recorded.items() if v]
        lines += [f"As `train` recorded them on its own dev evaluation: {'; '.join(parts)}.", ""]
    return [*lines, "![accuracy](accuracy.png)", ""]


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))


def _sparsity(report: dict[str, Any]) -> list[str]:
    sp = report["sparsity"]
    s = sp["summary"]
    rows = [
        [
            r["layer"],
            "x".join(map(str, r["shape"])),
            f"{r['dense_density']:.3f}" if r["dense_density"] is not None else "-",
            f"{r['density']:.3f}",
            "yes" if r["holds_pattern"] else "no",
        ]
        for r in sp["layers"]
    ]
    density = f"{s['encoder_density']:.3f}" if s["encoder_density"] is not None else "-"
    return [
        "## Sparsity per layer",
        "",
        f"Checked in `{sp['source']}` (groups of {sp['pattern'].split(':')[1]} along each weight's reduction "
        f"axis): {s['holding_pattern']} of {s['layers']} encoder weights hold {sp['pattern']} "
        f"({s['selected']} selected by the run); encoder density {density}.",
        "",
        *_table(
            ["layer", "shape", "dense density", "sparse density", f"holds {sp['pattern']}"], rows, "lrrrl"
        ),
        "",
        "![sparsity](sparsity.png)",
        "",
    ]


def _also(report: dict[str, Any]) -> list[str]:
    """The ``--also`` models against the dense one: accuracy, agreement, latency per shape."""
    entries = report.get("also") or []
    if not entries:
        return []
    main = report["accuracy"]["main_metric"]
    dense_main = report["accuracy"]["dense"]["main"]
    shapes = [(s["batch"], s["seq_len"]) for s in entries[0]["latency"]["shapes"]]
    header = ["model", "export", "pattern", "quantization", main, "vs dense", "same class as dense"]
    header += [f"{b}x{q} ms (ratio)" for b, q in shapes]
    dense_ms = {(s["batch"], s["seq_len"]): s["dense"]["median_ms"] for s in report["latency"]["shapes"]}
    dense_path = f"`{report['models']['dense']['path']}`"
    rows = [["dense (--dense)", dense_path, "-", "-", f"{dense_main:.4f}", "-", "-"]
            + [_ms(dense_ms[k]) for k in shapes]]  # fmt: skip
    for e in entries:
        a, m = e["accuracy"], e["model"]
        agree = a["agreement_with_dense"]
        cells = [f"{_ms(s['model']['median_ms'])} ({s['ratio']:.3f})" for s in e["latency"]["shapes"]]
        quant = str(m.get("quantization") or "fp32")
        rows.append([e["name"], f"`{m['path']}`", str(m["pattern"] or "-"), quant,
                     f"{a['main']:.4f}", f"{a['main_difference']:+.4f}",
                     f"{100 * agree:.2f}%" if agree is not None else "-", *cells])  # fmt: skip
    return [
        "## More models against the dense one (--also)",
        "",
        *_table(header, rows, "lllllrr" + "r" * len(shapes)),
        "",
        "Each model is scored over the same dev rows through the same runtime, and timed against the dense "
        "model in alternating pairs (the dense medians above come from the --dense/--sparse pairs); "
        "ratio = model median / dense median from its own pairs, below 1.0 is faster. Same class as "
        "dense: the fraction of dev rows on which it predicts the dense model's class.",
        "",
        "![models](models.png)",
        "",
    ]


def _machine(report: dict[str, Any]) -> list[str]:
    m, v, b = report["machine"], report["versions"], report["backend"]
    rows = [
        ["CPU", str(m["cpu"])],
        ["cores (logical / usable)", f"{m['logical_cores']} / {m['usable_cores']}"],
        ["memory", f"{m['memory_gib']} GiB" if m["memory_gib"] else "-"],
        ["GPU", ", ".join(m["gpus"]) or "none"],
        ["threads", str(b.get("threads") or "runtime default")],
        ["OS", str(m["os"])],
        ["Python", str(m["python"])],
    ]
    rows += [[name, str(ver or "not installed")] for name, ver in v.items()]
    return ["## Machine", "", *_table(["", ""], rows, "ll"), ""]


def render_markdown(report: dict[str, Any]) -> str:
    lines = [*_summary(report), *_latency(report), *_accuracy(report), *_also(report), *_sparsity(report)]
    lines += _machine(report)
    lines += [
        f"Made by nxm-deploy {report['tool_version']} on {report['created']}: `{' '.join(report['command'])}`"
    ]
    return "\n".join(lines) + "\n"


def write_report_dir(manifest: ReportManifest, out: Path, overwrite: bool) -> ReportManifest:
    """Write ``report.json``, ``report.md`` and the plots into ``out`` (built aside, renamed in);
    returns the manifest with its ``files``."""
    with staged_dir(out, overwrite=overwrite) as tmp:
        files = write_plots(manifest.to_json(), tmp)
        manifest = replace(manifest, files=tuple(sorted([REPORT_MANIFEST, REPORT_MD, *files])))
        report = manifest.to_json()
        write_text_atomic(tmp / REPORT_MD, render_markdown(report))
        write_json_atomic(tmp / REPORT_MANIFEST, report)
    return manifest
