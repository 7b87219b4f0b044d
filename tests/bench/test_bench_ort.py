"""One real bench on ONNX Runtime (tiny exports, tiny shapes, real RTE dev text): the report directory,
its numbers checked against their definitions and against an independent ONNX Runtime pass."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from nxm_deploy.bench import BenchConfig, bench
from nxm_deploy.manifest import ReportManifest
from nxm_deploy.runtime.ort_session import ORT_CPU_NOTE

from .conftest import FAST, TASK, Pair, fast_plan

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, bench_pair: Pair, glue_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("reports") / "ort"
    bench(
        BenchConfig(
            dense=bench_pair.dense_export,
            sparse=bench_pair.sparse_export,
            task=TASK,
            out=out,
            data_dir=glue_dir,
            plan=fast_plan(),
            **FAST,
        )
    )
    return out


@pytest.fixture(scope="module")
def report(report_dir: Path) -> dict:
    return json.loads((report_dir / "report.json").read_text())


def test_report_files_exist_and_parse(report_dir: Path, report: dict):
    names = {p.name for p in report_dir.iterdir()}
    files = {"report.json", "report.md", "latency.png", "accuracy.png", "sparsity.png"}
    assert names == files | {".nxm-files.json"}  # and the list of what --overwrite may delete
    assert sorted(report["files"]) == sorted(files)
    assert report["kind"] == "nxm-deploy/report" and report["schema"] == 1
    assert report["task"] == "RTE"
    typed = ReportManifest.read(report_dir / "report.json")  # the typed reader keeps every key
    assert typed.to_json() == report and typed.task == "RTE" and typed.provenance.tool_version
    assert not list(report_dir.parent.glob(".*partial"))  # built aside, renamed into place


def test_every_shape_for_both_models(report: dict):
    shapes = {(s["batch"], s["seq_len"]) for s in report["latency"]["shapes"]}
    assert shapes == {(b, s) for b in FAST["batch_sizes"] for s in FAST["seq_lens"]}
    for s in report["latency"]["shapes"]:
        for role in ("dense", "sparse"):
            stats = s[role]
            assert stats["n"] >= 3
            assert (
                0
                < stats["min_ms"]
                <= stats["median_ms"]
                <= stats["p90_ms"]
                <= stats["p99_ms"]
                <= stats["max_ms"]
            )
            assert stats["throughput_seq_per_s"] == pytest.approx(s["batch"] / (stats["median_ms"] / 1e3))
        assert s["dense"]["n"] == s["sparse"]["n"]  # timed in pairs
        assert s["ratio"] == pytest.approx(s["sparse"]["median_ms"] / s["dense"]["median_ms"])
        assert 0 < s["real_token_fraction"] <= 1
        assert 0 <= s["sign_test"]["p_value"] <= 1
    ratios = [s["ratio"] for s in report["latency"]["shapes"]]
    assert report["latency"]["summary"]["ratio"]["min"] == pytest.approx(min(ratios))


def _independent_logits(export_dir: Path, glue_dir: Path, max_len: int) -> np.ndarray:
    """One dev row at a time, unpadded, through a fresh default ONNX Runtime session."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from nxm_deploy.data import load_split

    dev = load_split(TASK, "dev", glue_dir)
    tok = AutoTokenizer.from_pretrained(export_dir)
    session = ort.InferenceSession(str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    rows = []
    for a, b in zip(dev.texts_a, dev.texts_b, strict=True):
        enc = tok(a, b, truncation=True, max_length=max_len, return_tensors="np")
        rows.append(session.run(["logits"], {n: enc[n].astype(np.int64) for n in names})[0][0])
    return np.stack(rows)


def test_accuracy_equals_an_independent_pass(report: dict, bench_pair: Pair, glue_dir: Path):
    from nxm_deploy.data import compute_metrics, load_split

    acc = report["accuracy"]
    dev = load_split(TASK, "dev", glue_dir)
    assert acc["examples"] == len(dev) == 277  # the full RTE dev set
    assert acc["max_seq_len"] == {"dense": 64, "sparse": 64}  # the runs' max_seq_len
    for role, export in (("dense", bench_pair.dense_export), ("sparse", bench_pair.sparse_export)):
        logits = _independent_logits(export, glue_dir, acc["max_seq_len"][role])
        margin = np.abs(logits[:, 0] - logits[:, 1])
        assert margin.min() > 1e-4, "near-ties would make the comparison depend on float rounding"
        expected = compute_metrics(TASK, logits, dev.labels)
        assert acc[role]["metrics"] == pytest.approx(expected, abs=0)
        assert acc[role]["main"] == expected["accuracy"]
    assert acc["difference"]["accuracy"] == pytest.approx(
        acc["sparse"]["metrics"]["accuracy"] - acc["dense"]["metrics"]["accuracy"]
    )
    assert 0.0 <= acc["agreement"] <= 1.0


def test_cpu_note_says_no_sparse_kernels(report: dict, report_dir: Path):
    assert report["backend"]["name"] == "ort"
    assert report["backend"]["sparse_kernels"] is False
    assert ORT_CPU_NOTE in report["notes"]
    md = (report_dir / "report.md").read_text()
    assert "ONNX Runtime on CPU has no sparse kernels" in md
    assert "expect a ratio near 1.0" in md


def test_markdown_has_the_tables(report_dir: Path, report: dict):
    md = (report_dir / "report.md").read_text()
    for heading in ("## Latency", "## Accuracy", "## Sparsity per layer", "## Machine"):
        assert heading in md
    for s in report["latency"]["shapes"]:
        assert f"| {s['batch']} | {s['seq_len']} | " in md
    assert report["machine"]["cpu"] in md


def test_sparsity_per_layer(report: dict, bench_pair: Pair):
    sp = report["sparsity"]
    assert sp["pattern"] == "2:4"
    by_layer = {row["layer"]: row for row in sp["layers"]}
    assert set(bench_pair.layers) <= set(by_layer)
    for name in bench_pair.layers:
        row = by_layer[name]
        assert row["holds_pattern"] and row["selected"]
        assert row["density"] == pytest.approx(0.5)
        assert row["dense_density"] == pytest.approx(1.0)
    assert sp["summary"]["holding_pattern"] == len(bench_pair.layers)
    assert sp["summary"]["encoder_density"] == pytest.approx(0.5)


def test_machine_and_versions(report: dict):
    m, v = report["machine"], report["versions"]
    assert m["cpu"] and m["logical_cores"] >= 1 and m["usable_cores"] >= 1
    assert isinstance(m["gpus"], list)
    assert v["onnxruntime"] and v["torch"]
    assert "tensorrt" in v


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", ["latency.png", "accuracy.png", "sparsity.png"])
def test_plots_are_valid_pngs(report_dir: Path, name: str):
    import matplotlib.image

    width, height = _png_size(report_dir / name)
    assert width > 100 and height > 100
    pixels = matplotlib.image.imread(report_dir / name)  # decodes the whole file
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0  # not a blank canvas
