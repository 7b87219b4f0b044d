"""What a study's report is made of: markdown table rows, the study's own section of docs/RESULTS.md
between its begin and end markers, and figures (matplotlib, headless).

A study rebuilds its section from its result files alone (``--report-only`` or its like), so the
section is replaced whole and the rest of the document is kept byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nxm_deploy.io import write_text_atomic


def row(cells: Iterable[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def rule(left: int, right: int) -> str:
    """A table's alignment row: ``left`` left-aligned columns, then ``right`` right-aligned ones."""
    return "|" + "---|" * left + "---:|" * right


def splice(text: str, block: str, begin: str, end: str, before: str | None = None) -> str:
    """``text`` with ``block`` (which starts with ``begin`` and ends with ``end``) in place of the
    section between the markers; without one, ``block`` goes before the line that starts with
    ``before`` when there is one, else at the end."""
    if begin in text:
        return text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    if before is not None and f"\n{before}" in text:
        i = text.index(f"\n{before}") + 1
        return text[:i] + block + "\n\n" + text[i:]
    return text.rstrip() + "\n\n" + block + "\n"


def write_section(doc: Path, block: str, begin: str, end: str, before: str | None = None) -> None:
    """:func:`splice` ``block`` into ``doc`` (a new document when there is none), atomically."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Results\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(doc, splice(text, block, begin, end, before))


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (imported only when a study draws)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (its folder made when missing) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
