"""``bench --also NAME=EXPORT_DIR``: an INT8 export of the sparse run added to the report, measured
against the dense model (latency pairs, accuracy, agreement with the dense predictions), and the
refusals of a malformed --also."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import record_training_rows

from nxm_deploy.bench import BenchConfig, bench
from nxm_deploy.cli import cli
from nxm_deploy.errors import UserError

from .conftest import FAST, TASK, Pair, fast_plan


@pytest.fixture(scope="module")
def int8_sparse(tmp_path_factory: pytest.TempPathFactory, bench_pair: Pair, glue_dir: Path) -> Path:
    from nxm_deploy.export import ExportConfig, export

    root = tmp_path_factory.mktemp("also")
    run = record_training_rows(Path(shutil.copytree(bench_pair.sparse_run, root / "run")), glue_dir, 32)
    config = ExportConfig(run_dir=run, out=root / "int8", data_dir=glue_dir, quantize="int8",
                          calibration_rows=16, batches=(2,), seq_lens=(16,))  # fmt: skip
    return export(config).out


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, bench_pair: Pair, int8_sparse: Path, glue_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("also-report") / "report"
    pair = dict(dense=bench_pair.dense_export, sparse=bench_pair.sparse_export, task=TASK, data_dir=glue_dir)
    bench(BenchConfig(**pair, out=out, plan=fast_plan(), also=(f"int8-2:4={int8_sparse}",), **FAST))
    return out


def test_also_entry_is_measured_against_dense(report_dir: Path, int8_sparse: Path):
    report = json.loads((report_dir / "report.json").read_text())
    (entry,) = report["also"]
    assert entry["name"] == "int8-2:4"
    assert entry["model"]["path"] == str(int8_sparse.resolve())
    assert entry["model"]["quantization"] == "int8" and entry["model"]["pattern"] == "2:4"
    assert entry["weights"]["holding_pattern"] == entry["weights"]["layers"] == 12
    acc = entry["accuracy"]
    dense = report["accuracy"]["dense"]
    assert acc["main_difference"] == pytest.approx(acc["main"] - dense["main"])
    assert 0.0 <= acc["agreement_with_dense"] <= 1.0
    shapes = {(s["batch"], s["seq_len"]) for s in entry["latency"]["shapes"]}
    assert shapes == {(b, s) for b in FAST["batch_sizes"] for s in FAST["seq_lens"]}
    for s in entry["latency"]["shapes"]:
        assert s["ratio"] == pytest.approx(s["model"]["median_ms"] / s["dense"]["median_ms"])
        assert s["dense"]["n"] == s["model"]["n"] >= 3  # timed in pairs
    ratios = [s["ratio"] for s in entry["latency"]["shapes"]]
    assert entry["latency"]["summary"]["ratio"]["geomean"] == pytest.approx(np.exp(np.mean(np.log(ratios))))


def test_also_in_report_md_and_plot(report_dir: Path):
    names = {p.name for p in report_dir.iterdir()}
    assert "models.png" in names and (report_dir / "models.png").read_bytes()[:4] == b"\x89PNG"
    md = (report_dir / "report.md").read_text()
    assert "## More models against the dense one (--also)" in md
    row = next(line for line in md.splitlines() if line.startswith("| int8-2:4 "))
    assert "| 2:4 | int8 |" in row and row.count("(") == len(FAST["batch_sizes"]) * len(FAST["seq_lens"])


@pytest.mark.parametrize(
    ("also", "library", "message"),
    [
        ("int8", "^also takes NAME=EXPORT_DIR", "--also takes NAME=EXPORT_DIR"),
        (
            "dense=x",
            "^also name 'dense'",
            "--also name 'dense': use letters, digits and _.:+- (not 'dense' or 'sparse')",
        ),
    ],
)
def test_malformed_also_is_one_line(also, library, message, bench_pair: Pair, tmp_path):
    """The library names its parameter (``also``), the command line its flag (``--also``)."""
    with pytest.raises(UserError, match=library):
        BenchConfig(dense="d", sparse="s", task=TASK, out="o", also=(also,))
    result = CliRunner().invoke(cli, ["bench", "--dense", str(bench_pair.dense_export), "--sparse",
                                      str(bench_pair.sparse_export), "--task", TASK, "--out",
                                      str(tmp_path / "r"), "--also", also])  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.output


def test_also_of_another_task_is_refused(bench_pair: Pair, tmp_path, glue_dir):
    other = Path(shutil.copytree(bench_pair.sparse_export, tmp_path / "other"))
    body = json.loads((other / "export.json").read_text())
    body["source_run"]["task"] = "SST-2"
    (other / "export.json").write_text(json.dumps(body))
    pair = dict(dense=bench_pair.dense_export, sparse=bench_pair.sparse_export, task=TASK, data_dir=glue_dir)
    with pytest.raises(UserError, match=r"^also other .* was trained on SST-2, not RTE"):
        bench(BenchConfig(**pair, out=tmp_path / "r", also=(f"other={other}",), **FAST))
