"""benchmarks/determinism.py on a tiny BERT: training twice at one thread gives the same weights
hash, the probe is kept with the machine that made it, and a later probe says which earlier ones it
matches (a changed hash is reported as differing, with the machine it came from)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import determinism
import pytest
import torch

from nxm_deploy import origin

pytestmark = pytest.mark.slow


def test_the_probe_gives_the_same_weights_twice_and_compares_with_earlier_machines(
    tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(determinism.SETTINGS, "max_train_samples", 64)
    monkeypatch.setitem(determinism.SETTINGS, "max_seq_len", 32)
    out = tmp_path / "determinism.json"
    common = ["--model", str(tiny_bert_dir), "--data-dir", str(glue_dir), "--out-json", str(out),
              "--work", str(tmp_path / "work")]  # fmt: skip
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    assert determinism.main([*common, "--runs", "2"]) == 0
    assert (torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")) == (threads, env)  # put back
    first = json.loads(out.read_text())["probes"][0]
    assert first["same_within"] and len(first["weights_sha256"]) == 2 and first["earlier"] == []
    machine = first["provenance"]["machine"]
    assert machine["torch_threads"] == 1 and machine["cpu_id"] == origin.cpu_id() and machine["cpu_isa"]

    kept = json.loads(out.read_text())  # an earlier probe, on another machine, that gave other weights
    other = {**first, "weights_sha256": ["0" * 64], "date": "2026-01-01T00:00:00+00:00"}
    other["provenance"] = {**first["provenance"], "machine": {**machine, "cpu_id": "family 25 model 17"}}
    kept["probes"].append(other)
    out.write_text(json.dumps(kept))
    assert determinism.main([*common, "--runs", "1"]) == 0
    last = json.loads(out.read_text())["probes"][-1]
    assert last["weights_sha256"] == first["weights_sha256"][:1]  # the same weights come back
    assert [(e["date"], e["same"], e["cpu_id"]) for e in last["earlier"]] == [
        (first["date"], True, origin.cpu_id()), (other["date"], False, "family 25 model 17")]  # fmt: skip


def test_a_folder_that_is_no_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        determinism.main(["--model", str(tmp_path / "nothing"), "--out-json", str(tmp_path / "d.json")])
    assert "not a model folder" in str(e.value) and not (tmp_path / "d.json").exists()


def test_a_kept_file_that_is_no_probes_record_is_one_line_before_any_training(tmp_path: Path) -> None:
    for text in ("{not json", '{"runs": []}'):
        bad = tmp_path / "determinism.json"
        bad.write_text(text)
        with pytest.raises(SystemExit) as e:
            determinism.main(["--out-json", str(bad), "--work", str(tmp_path / "work")])
        assert f"--out-json {bad}" in str(e.value) and bad.read_text() == text  # left as it was
        assert not (tmp_path / "work").exists()  # nothing trained
