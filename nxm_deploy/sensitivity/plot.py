"""The plot of a sensitivity report (matplotlib's Agg renderer through a ``Figure``: no pyplot state).

Left: the drop of each layer pruned alone, bars grouped by block (one colour per kind). Right: the
drop of each kind pruned in every block at once, and of the kept layers together after the exclude
list, with the budget as a dashed line.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

__all__ = ["draw"]

_DPI = 110


def draw(report: dict[str, Any]) -> Figure:
    layers, kinds = report["layers"], report["kinds"]
    labels = [k["label"] for k in kinds]
    blocks = sorted({r["block"] for r in layers})
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(blocks) + 0.3 * len(layers) / max(1, len(blocks))) + 4.0,
                          4.0), dpi=_DPI, layout="constrained")  # fmt: skip
    left, right = fig.subplots(1, 2, width_ratios=[3, 1.3])
    width = 0.8 / max(1, len(kinds))
    colors = [f"C{i % 10}" for i in range(len(kinds))]
    for i, kind in enumerate(kinds):
        rows = [r for r in layers if r["kind"] == kind["kind"]]
        xs = [blocks.index(r["block"]) + (i - (len(kinds) - 1) / 2) * width for r in rows]
        left.bar(xs, [r["drop"] for r in rows], width=width, color=colors[i], label=kind["label"])
    left.set_xticks(range(len(blocks)), [str(b) for b in blocks])
    left.set_xlabel("encoder block")
    left.set_ylabel(f"{report['metric']} drop (points)")
    left.set_title(f"one layer {report['pattern']} at a time ({report['rows']['rows']} training rows)")
    left.axhline(0, color="black", linewidth=0.6)
    left.legend(fontsize="small", ncols=min(3, max(1, len(kinds))))
    names = [*labels, f"kept N:M ({len(layers) - len(report['exclude'])})"]
    values = [k["drop"] for k in kinds] + [report["combined_drop"]]
    right.bar(range(len(names)), values, color=[*colors, "#555555"])
    right.set_xticks(range(len(names)), names, rotation=45, ha="right")
    right.axhline(report["budget"], color="black", linestyle="--", linewidth=1, label="budget")
    right.axhline(0, color="black", linewidth=0.6)
    right.set_title("every block at once")
    right.legend(fontsize="small")
    return fig
