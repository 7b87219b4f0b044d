"""Parity rows of a run on its own data: the validation rows it recorded, or those of ``--data``;
built-in sentences (pairs when the data had pairs) when the recorded file is gone."""

from __future__ import annotations

import json
from pathlib import Path

from nxm_deploy.cli.group import cli_flag
from nxm_deploy.data.own import DataOptions, load_own
from nxm_deploy.export.parity import own_sentences


def write(path: Path, n: int = 20) -> Path:
    rows = [{"q": f"question {i}", "a": f"answer {i}", "label": ["no", "yes"][i % 2]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_recorded_data_then_given_data_then_built_ins(tmp_path: Path) -> None:
    opts = DataOptions(str(write(tmp_path / "qa.jsonl")), text_column="q", text_pair_column="a")
    record = load_own(opts).record
    recorded = own_sentences(record)
    assert recorded is not None and recorded.fallback_reason is None
    assert recorded.texts_b is not None and len(recorded.texts_a) == 2  # 10% of 20 rows
    given = own_sentences(record, DataOptions(str(write(tmp_path / "more.jsonl", 80)), text_column="q",
                                              text_pair_column="a"))  # fmt: skip
    assert given is not None and len(given.texts_a) == 8 and "more.jsonl" in given.source
    (tmp_path / "qa.jsonl").unlink()
    gone = own_sentences(record)
    assert gone is not None and gone.source == "built-in sentences" and gone.texts_b is not None
    assert "does not exist" in str(gone.fallback_reason)
    # export.json records the library's words; export's CLI warns with the flag (ExportResult.parity_fallback)
    assert str(gone.fallback_reason).startswith(f"source {tmp_path / 'qa.jsonl'} does not exist")
    assert gone.fallback is not None and gone.fallback.worded(cli_flag).startswith("--data ")
    assert own_sentences(None) is None  # a GLUE run: the GLUE path chooses
