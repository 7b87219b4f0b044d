"""``train_log.jsonl``: one JSON object per line: Trainer's logs, ADMM residuals, phase events.

Every record carries ``phase`` (index), ``phase_kind`` and ``step`` (the optimizer step within the
phase). A resumed run first drops the records past the checkpoint it resumes from, so the log has
neither gaps nor duplicates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nxm_deploy.io import now_iso, write_text_atomic

LOG_NAME = "train_log.jsonl"


class TrainLog:
    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": now_iso(), **record}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]

    def truncate_after(self, phase: int, step: int) -> None:
        """Keep records of earlier phases and of ``phase`` up to ``step``; drop the rest, and the
        phase's end records (Trainer's summary, ``phase_end``), which a resumed phase writes again.
        ``step`` -1 drops the whole phase (it starts again, ``phase_start`` included)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            p, s = int(rec.get("phase", -1)), int(rec.get("step", 0))
            ends = rec.get("event") == "phase_end" or "train_runtime" in rec
            if p < phase or (p == phase and s <= step and not ends):
                keep.append(line)
        write_text_atomic(self.path, "".join(f"{line}\n" for line in keep))
