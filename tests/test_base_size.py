"""benchmarks/base_size.py's report: per task against dense_long, its targets met, missed or not yet
measured, INT8 read from int8.py's figures, and the doc section; on result files in the shapes the
harness writes (the base-size runs themselves take hours and are not part of the suite)."""

from __future__ import annotations

import json
from pathlib import Path

import base_size_report as bsr
import pytest


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _int8(sparse_fp32: float, sparse_int8: float, speedups: tuple[float, float]) -> dict:
    lat = [{"batch": b, "seq_len": 128, "speedup": s} for b, s in zip((1, 8), speedups, strict=True)]
    int8 = {"dev": sparse_int8, "agreement_with_dense": 0.97, "latency": lat}
    fp32 = {"dev": sparse_fp32, "agreement_with_dense": 0.98, "latency": lat}
    return {"models": {"sparse-fp32": fp32, "sparse-int8": int8}}


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(bsr, "RESULTS", tmp_path)
    monkeypatch.setattr(bsr, "CHAIN", tmp_path / "base_size")
    monkeypatch.setattr(bsr, "JSON_OUT", tmp_path / "base_size.json")
    monkeypatch.setattr(bsr, "DOC", tmp_path / "RESULTS.md")
    (tmp_path / "RESULTS.md").write_text("# Results\n\nkept text\n")
    values = {"dense": 90.0, "dense_long": 91.0, "asp": 90.5, "chosen": 90.2, "free_magnitude": 80.0,
              "free_wanda": 85.0, "free_sparsegpt": 88.0, "free_admm": 88.5}  # fmt: skip
    for m, v in values.items():
        proto = "P1" if m == "dense" else "P2"
        name = "asp_admm_prune" if m == "chosen" else m
        _write(
            tmp_path / "base_size" / proto / "SST-2" / f"{name}-seed1.json",
            {"value": v, "peak_rss_mib": 4000.0},
        )
    chain = {"int8": _int8(0.902, 0.899, (2.1, 1.7)), "peak_memory_mib": {"export_sparse_mib": 3000.0}}
    _write(tmp_path / "base_size" / "chain-SST-2.json", chain)
    _write(tmp_path / "int8.json", _int8(0.84, 0.84, (1.9, 1.8)))  # MiniLM's, for the comparison
    return tmp_path


def test_targets_are_judged_against_dense_long_and_missing_runs_stay_unmeasured(results: Path) -> None:
    t = bsr.task_report("SST-2", "asp_admm_prune")
    assert t["pct_of_dense_long"]["chosen"] == pytest.approx(99.12, abs=0.01)
    assert t["differences"] == {"chosen_minus_asp": -0.3, "free_admm_minus_free_sparsegpt": 0.5}
    assert t["int8"]["speedup_vs_fp32_dense"] == {"1x128": 2.1, "8x128": 1.7}
    assert t["int8"]["vs_own_fp32_points"] == pytest.approx(-0.3)
    assert t["int8"]["minilm_speedup_vs_fp32_dense"] == {"1x128": 1.9, "8x128": 1.8}
    assert t["int8"]["bigger_favours_int8"] is False  # 1.7x at 8x128 against MiniLM's 1.8x
    assert set(t["int8"]["exports"]) == {"sparse-fp32", "sparse-int8"}
    tg = bsr.targets({"SST-2": t, "MRPC": bsr.task_report("MRPC", "asp_admm_prune")})
    assert tg["chosen_vs_dense_long"]["per_task"] == {"SST-2": True, "MRPC": None}
    assert tg["chosen_minus_asp"]["per_task"]["SST-2"] is False  # a missed target stays missed
    assert tg["free_admm_minus_free_sparsegpt"]["per_task"]["SST-2"] is True
    assert tg["int8_speedup_vs_fp32_dense"]["per_task"]["SST-2"] is False  # 8x128 below 1.8
    assert tg["int8_vs_own_fp32"]["per_task"]["SST-2"] is True
    assert all(v["met"] is None for v in tg.values())  # MRPC has not run: nothing is decided overall


def test_a_comparison_across_different_p1_starts_is_marked_provisional(results: Path) -> None:
    # dense_long continued a retrained P1 dense (another thread count gave other weights): its
    # comparison with the chosen run, which continued the recorded one, is not like for like.
    p2 = results / "base_size" / "P2" / "SST-2"
    for name, start in (("dense_long", 88.11), ("asp", 89.01), ("asp_admm_prune", 89.01)):
        data = json.loads((p2 / f"{name}-seed1.json").read_text())
        _write(p2 / f"{name}-seed1.json", {**data, "start_value": start})
    dense = results / "base_size" / "P1" / "SST-2" / "dense-seed1.json"
    rerun = {"value": 88.11, "date": "2026-12-07T18:17:04+00:00", "torch_threads": 2}
    again = {"value": 89.01, "date": "2026-12-09T00:00:00+00:00", "torch_threads": 1,
             "cpu_id": "family 26 model 2"}  # fmt: skip
    _write(dense, {**json.loads(dense.read_text()), "reruns": [rerun, again]})
    t = bsr.task_report("SST-2", "asp_admm_prune")
    assert t["starts"] == {"dense_long": 88.11, "asp": 89.01, "chosen": 89.01}
    tg = bsr.targets({"SST-2": t})
    assert tg["chosen_vs_dense_long"]["different_start"] == ["SST-2"]
    assert tg["chosen_minus_asp"]["different_start"] == []
    doc = bsr._doc({"commands": [], "model": "m", "tasks": {"SST-2": t}, "targets": tg})
    assert "SST-2: met (provisional: different P1 starts: chosen 89.01, dense_long 88.11)" in doc
    assert (
        "retrained: 88.11 on 2026-12-07 (2 threads); 89.01 on 2026-12-09 (1 thread, CPU family 26 model 2)"
        in doc
    )


def test_report_writes_its_json_and_only_its_own_doc_section(results: Path, monkeypatch) -> None:
    import glue_study_setup

    monkeypatch.setattr(glue_study_setup, "chosen_of", lambda protocol: "asp_admm_prune")
    data = bsr.report()
    assert json.loads((results / "base_size.json").read_text())["targets"] == data["targets"]
    doc = (results / "RESULTS.md").read_text()
    assert doc.startswith("# Results\n\nkept text\n") and doc.count(bsr.BEGIN) == 1
    assert "**missed**" not in doc  # overall verdicts wait for MRPC
    assert "| chosen recipe (3 dense + 3 masked) | 90.20 (99.1%) | - |" in doc
    assert "speed-up 1x128 2.10x, 8x128 1.70x; dev 89.90 against its own fp32 90.20 (-0.30 points)" in doc
    assert "Do the bigger matrices favour INT8? no" in doc
    assert "| sparse-int8 | 89.90 | 97.00% | 2.10x | 1.70x |" in doc
    bsr.report()  # rebuilt in place, not appended
    assert (results / "RESULTS.md").read_text().count(bsr.BEGIN) == 1


@pytest.fixture
def chain_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_bert_dir: Path, glue_dir: Path):
    """base_size.py's chain on two tiny RTE runs (dense and 2:4), its work and results under tmp."""
    import base_size
    from conftest import make_tiny_model, record_training_rows, write_run_dir

    monkeypatch.setattr(bsr, "CHAIN", tmp_path / "results")
    monkeypatch.setattr(base_size, "WORK", tmp_path / "work")
    runs = {}
    for role, sparse in (("dense", False), ("chosen", True)):
        out = tmp_path / "runs" / role
        write_run_dir(out, make_tiny_model("bert"), tiny_bert_dir, sparse=sparse, max_seq_len=32)
        runs[role] = record_training_rows(out, glue_dir, limit=32)
    return base_size, runs["dense"], runs["chosen"], str(glue_dir)


@pytest.mark.slow
def test_the_chain_resumes_from_the_step_it_stopped_in_with_its_figures(chain_world, monkeypatch) -> None:
    """A chain stopped after its last subprocess (as a crash in assembling the result did at base
    size, after an hour of exports and bench) continues without running any step again and with the
    peak memory each step measured; a chosen run trained again at the same path starts it afresh."""
    base_size, dense, chosen, glue = chain_world
    first = base_size.chain("RTE", dense, chosen, glue)
    int8 = first["int8"]["models"]
    assert set(int8) == {f"{r}-{m}" for r in ("dense", "sparse") for m in ("fp32", "int8", "int8-dynamic")}
    assert first["predictor"]["rows"] == 277
    assert first["predictor"]["main"] == pytest.approx(int8["sparse-fp32"]["dev"], abs=1e-9)  # its own
    assert set(first["peak_memory_mib"]) == {"export_dense_mib", "export_sparse_mib", "int8_and_bench_mib"}
    assert all(v > 0 for v in first["peak_memory_mib"].values())

    base_size.chain_path("RTE").unlink()  # stopped before the result was written

    def no_step(cmd, log, what):
        raise AssertionError(f"{what} ran again")

    monkeypatch.setattr(base_size, "_must", no_step)
    again = base_size.chain("RTE", dense, chosen, glue)
    assert again["peak_memory_mib"] == first["peak_memory_mib"]
    assert again["int8"] == first["int8"]
    manifest = chosen / "nxm.json"
    manifest.write_text(manifest.read_text() + "\n")  # the chosen run, trained again
    with pytest.raises(AssertionError, match="ran again"):
        base_size.chain("RTE", dense, chosen, glue)
    assert not (base_size.WORK / "RTE" / "chain" / "int8").exists()  # the old run's exports are gone
