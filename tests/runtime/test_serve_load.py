"""benchmarks/serve_load.py, briefly, against a real ``nxm-deploy serve`` on a tiny export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import import_script

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.triton
def test_serve_load_runs_clean(tritonserver, rte_export, glue_dir, tmp_path, capsys):
    serve_load = import_script(REPO / "benchmarks" / "serve_load.py")
    out = tmp_path / "load.json"
    report = serve_load.main(
        [str(rte_export), "--seconds", "1", "--callers", "1,3", "--rows", "24", "--data-dir", str(glue_dir),
         "--out", str(out)]
    )  # fmt: skip
    assert json.loads(out.read_text()) == report
    assert report["task"] == "RTE" and report["rows"] == 24
    for protocol in ("http", "grpc"):
        for n in ("1", "3"):
            r = report["served"][protocol][n]
            assert r["errors"] == 0 and r["mismatches"] == 0 and r["requests"] > 0, r
            assert r["rows_per_s"] > 0 and 0 < r["share_of_batched"]
            lat = r["latency_ms"]
            assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert report["in_process"]["3"]["one_thread_batched"]["rows"] % 3 == 0
    assert "served grpc 3 callers" in capsys.readouterr().out
