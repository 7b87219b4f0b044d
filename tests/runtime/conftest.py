"""Fixtures for the runtime tests: tiny random BERT runs (the export tests' ``write_run_dir``), exported
with the real pipeline once per session: an RTE (sentence-pair) classifier and an STS-B (regression)
model; plus cheap variants made by copying an export and editing its ``export.json``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_run_dir

MAX_SEQ_LEN = 64  # short, so that truncation is easy to reach
ROWS = 200  # real RTE dev rows that the served answers are compared on
FAST_PARITY = {"batches": (2,), "seq_lens": (16,)}


def export_of(run: Path, out: Path, glue_dir: Path) -> Path:
    from nxm_deploy.export import ExportConfig, export

    return export(ExportConfig(run_dir=run, out=out, data_dir=glue_dir, **FAST_PARITY)).out


@pytest.fixture(scope="session")
def rte_run(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    from conftest import make_tiny_model

    out = tmp_path_factory.mktemp("rt-run-rte")
    return write_run_dir(
        out, make_tiny_model("bert", seed=3), minilm_dir, sparse=True, max_seq_len=MAX_SEQ_LEN
    )


@pytest.fixture(scope="session")
def rte_export(tmp_path_factory: pytest.TempPathFactory, rte_run: Path, glue_dir: Path) -> Path:
    return export_of(rte_run, tmp_path_factory.mktemp("rt-exports") / "rte", glue_dir)


@pytest.fixture(scope="session")
def stsb_export(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, glue_dir: Path) -> Path:
    """A one-output (regression) model on STS-B."""
    from conftest import make_tiny_model

    run = write_run_dir(
        tmp_path_factory.mktemp("rt-run-stsb"),
        make_tiny_model("bert", num_labels=1, seed=4),
        minilm_dir,
        sparse=False,
        max_seq_len=MAX_SEQ_LEN,
    )
    manifest = json.loads((run / "nxm.json").read_text())
    manifest.update(task="STS-B", num_labels=1)
    (run / "nxm.json").write_text(json.dumps(manifest))
    return export_of(run, tmp_path_factory.mktemp("rt-exports") / "stsb", glue_dir)


@pytest.fixture(scope="session")
def rte_predictor(rte_export: Path):
    from nxm_deploy.runtime import Predictor

    return Predictor.from_export(rte_export, max_batch=8)


@pytest.fixture(scope="session")
def tritonserver():
    """The real ``tritonserver`` binary (nvidia-pytriton, extra ``serve``); a skip with the reason
    where it cannot run here."""
    from nxm_deploy.serve.process import ServeUnavailableError, probe_tritonserver

    try:
        return probe_tritonserver()
    except ServeUnavailableError as exc:
        pytest.skip(f"the real Triton server cannot run here: {exc}")


@pytest.fixture(scope="session")
def dev_rows(glue_dir: Path) -> list[tuple[str, str]]:
    from nxm_deploy.data import load_split

    dev = load_split("RTE", "dev", glue_dir)
    return list(zip(dev.texts_a[:ROWS], dev.texts_b[:ROWS], strict=True))


@pytest.fixture
def edited_export(tmp_path: Path, rte_export: Path) -> Callable[..., Path]:
    """``edited_export(task="SST-2")``: a copy of the RTE export whose ``source_run`` says otherwise
    (the graph takes any tokens, so it serves as a single-sentence model too)."""

    def make(**source_run: object) -> Path:
        out = Path(shutil.copytree(rte_export, tmp_path / f"edited-{len(list(tmp_path.iterdir()))}"))
        manifest = json.loads((out / "export.json").read_text())
        manifest["source_run"].update(source_run)
        (out / "export.json").write_text(json.dumps(manifest))
        return out

    return make


class DirectOnnx:
    """The reference path, independent of the runtime package: the export's tokenizer and an ONNX
    Runtime session over its model.onnx, one row at a time, unpadded, truncated to ``max_length``."""

    def __init__(self, export_dir: Path, max_length: int = MAX_SEQ_LEN) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.session = ort.InferenceSession(
            str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = AutoTokenizer.from_pretrained(export_dir)
        self.max_length = max_length

    def logits(self, texts_a: list[str], texts_b: list[str] | None = None):
        """float32 (N, outputs)."""
        import numpy as np

        rows = []
        for i, a in enumerate(texts_a):
            b = None if texts_b is None else texts_b[i]
            enc = self.tokenizer(a, b, truncation=True, max_length=self.max_length, return_tensors="np")
            feed = {n: enc[n].astype(np.int64) for n in self.names}
            rows.append(self.session.run(["logits"], feed)[0][0])
        return np.stack(rows)
