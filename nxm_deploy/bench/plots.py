"""PNG plots of a report (matplotlib's Agg renderer, through ``Figure`` objects: no pyplot state).

    write_plots(report, out_dir)   # latency.png, accuracy.png, sparsity.png

- ``latency.png``: one panel per sequence length; median latency (ms; log scale when the values span
  a decade) against batch size for both models, with a bar from the median up to p90.
- ``accuracy.png``: each metric of the task for both models, as bars, values written on top.
- ``sparsity.png``: density per encoder layer of the sparse model (the dense model's as a line) and
  the pattern's density N/M as a dashed line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = ["PLOT_FILES", "write_plots"]

PLOT_FILES = ("latency.png", "accuracy.png", "sparsity.png")
_COLORS = {"dense": "#4C72B0", "sparse": "#DD8452"}
_DPI = 110


def _log_label(value: float, _pos: int) -> str:
    """Plain numbers on a log axis, at 1, 2 and 5 times a power of ten only (no 1e-1 notation)."""
    if value <= 0:
        return ""
    lead = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if lead in (1, 2, 5) else ""


def _latency(report: dict[str, Any], path: Path) -> None:
    shapes = report["latency"]["shapes"]
    seq_lens = sorted({s["seq_len"] for s in shapes})
    fig = Figure(figsize=(4.2 * len(seq_lens), 3.6), layout="constrained")
    axes = fig.subplots(1, len(seq_lens), squeeze=False)[0]
    for ax, seq in zip(axes, seq_lens, strict=True):
        rows = sorted((s for s in shapes if s["seq_len"] == seq), key=lambda s: s["batch"])
        batches = [s["batch"] for s in rows]
        for role in ("dense", "sparse"):
            med = [s[role]["median_ms"] for s in rows]
            up = [s[role]["p90_ms"] - s[role]["median_ms"] for s in rows]
            ax.errorbar(
                batches,
                med,
                yerr=[[0.0] * len(med), up],
                marker="o",
                capsize=3,
                label=role,
                color=_COLORS[role],
            )
        ax.set_xscale("log", base=2)
        values = [s[role][k] for s in rows for role in ("dense", "sparse") for k in ("median_ms", "p90_ms")]
        if max(values) > 10 * min(values):  # latencies spanning a decade or more: log scale
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(_log_label))
            ax.yaxis.set_minor_formatter(FuncFormatter(_log_label))
            ax.tick_params(axis="y", which="minor", labelsize=7)
        else:
            ax.set_ylim(bottom=0)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel("latency, ms (median; bar to p90)")
        ax.set_title(f"sequence length {seq}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{report['task']}: latency on {report['backend']['name']} ({report['backend']['device']})")
    fig.savefig(path, dpi=_DPI)


def _accuracy(report: dict[str, Any], path: Path) -> None:
    acc = report["accuracy"]
    names = list(acc["dense"]["metrics"])
    fig = Figure(figsize=(2.2 + 1.8 * len(names), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.38
    for k, role in enumerate(("dense", "sparse")):
        xs = [i + (k - 0.5) * width for i in range(len(names))]
        values = [acc[role]["metrics"][n] for n in names]
        bars = ax.bar(xs, values, width, label=role, color=_COLORS[role])
        ax.bar_label(bars, labels=[f"{v:.4f}" for v in values], fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("dev metric")
    low = min(0.0, *(acc[r]["metrics"][n] for r in ("dense", "sparse") for n in names))
    ax.set_ylim(low, 1.2)
    ax.legend(loc="upper left", ncols=2)
    ax.set_title(f"{report['task']} dev ({acc['examples']} rows) on {report['backend']['name']}")
    fig.savefig(path, dpi=_DPI)


def _short(layer: str) -> str:
    """``bert.encoder.layer.3.attention.self.query`` -> ``3.attention.self.query``."""
    parts = layer.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[i:])
    return layer


def _sparsity(report: dict[str, Any], path: Path) -> None:
    section = report["sparsity"]
    rows = section["layers"]
    fig = Figure(figsize=(max(6.0, 0.22 * len(rows) + 2.0), 4.4), layout="constrained")
    ax = fig.subplots()
    xs = list(range(len(rows)))
    colors = [_COLORS["sparse"] if r["holds_pattern"] else "#C44E52" for r in rows]
    ax.bar(xs, [r["density"] for r in rows], color=colors, label=f"sparse (red: breaks {section['pattern']})")
    dense = [r["dense_density"] for r in rows]
    if any(d is not None for d in dense):
        ax.plot(
            xs,
            [d if d is not None else float("nan") for d in dense],
            "_",
            ms=10,
            mew=2,
            color=_COLORS["dense"],
            label="dense",
        )
    ax.axhline(
        section["pattern_density"],
        ls="--",
        color="black",
        lw=1,
        label=f"{section['pattern']} = {section['pattern_density']:.2f}",
    )
    ax.set_xticks(xs, [_short(r["layer"]) for r in rows], rotation=90, fontsize=7)
    ax.set_ylim(0, 1.3)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_ylabel("density (nonzero fraction)")
    ax.set_title("density per encoder layer")
    ax.legend(loc="upper right", ncols=3, fontsize=8)
    fig.savefig(path, dpi=_DPI)


def _models(report: dict[str, Any], path: Path) -> None:
    """``--also``: median latency per shape of every model (bars), and the dev metric of each."""
    entries = report["also"]
    acc = report["accuracy"]
    shapes = [(s["batch"], s["seq_len"]) for s in report["latency"]["shapes"]]
    series = {"dense": [s["dense"]["median_ms"] for s in report["latency"]["shapes"]],
              "sparse": [s["sparse"]["median_ms"] for s in report["latency"]["shapes"]]}  # fmt: skip
    for e in entries:
        by_shape = {(s["batch"], s["seq_len"]): s["model"]["median_ms"] for s in e["latency"]["shapes"]}
        series[e["name"]] = [by_shape.get(k, float("nan")) for k in shapes]
    metric = {"dense": acc["dense"]["main"], "sparse": acc["sparse"]["main"]}
    metric.update({e["name"]: e["accuracy"]["main"] for e in entries})
    fig = Figure(figsize=(5.0 + 1.2 * len(series), 4.0), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[max(2, len(shapes)), 1.6])
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(shapes))]
        left.bar(xs, values, width, label=name)
    left.set_xticks(range(len(shapes)), [f"{b}x{q}" for b, q in shapes])
    left.set_xlabel("batch x sequence")
    left.set_ylabel("median latency, ms")
    left.set_title(f"latency on {report['backend']['name']}")
    left.legend(fontsize=8)
    bars = right.bar(range(len(metric)), list(metric.values()), color="#4C72B0")
    right.bar_label(bars, labels=[f"{v:.3f}" for v in metric.values()], fontsize=7)
    right.set_xticks(range(len(metric)), list(metric), rotation=45, ha="right", fontsize=8)
    right.set_ylim(min(0.0, *metric.values()), 1.1)
    right.set_title(f"dev {acc['main_metric']}")
    fig.savefig(path, dpi=_DPI)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the three PNGs into ``out_dir`` (and ``models.png`` with ``--also``); returns their names."""
    _latency(report, out_dir / "latency.png")
    _accuracy(report, out_dir / "accuracy.png")
    _sparsity(report, out_dir / "sparsity.png")
    if report.get("also"):
        _models(report, out_dir / "models.png")
        return [*PLOT_FILES, "models.png"]
    return list(PLOT_FILES)
