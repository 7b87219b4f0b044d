"""The hub loader, offline: no network here, so what is checked is the failure a user sees without
one (a one-line DataError that says what to do) and that ``datasets`` is imported only when needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Value

from nxm_deploy.data import get_task, load_split
from nxm_deploy.data.hub import hub_source, split_from_dataset
from nxm_deploy.errors import DataError

SCRIPT = """
import sys
from nxm_deploy.data import load_split
from nxm_deploy.errors import DataError
print("datasets imported early:", "datasets" in sys.modules)
try:
    load_split("RTE", "dev")
except DataError as e:
    print("DataError:", e)
"""


def test_offline_hub_is_a_clean_data_error(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}
    # An empty cache, so nothing can come from an earlier download.
    env.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert out[0] == "datasets imported early: False"
    assert len(out) == 2, out
    msg = out[1]
    assert msg.startswith(
        "DataError: cannot load GLUE RTE dev from the Hugging Face hub (nyu-mll/glue, rte/validation)"
    )
    assert msg.endswith("pass data_dir DIR (a directory in the GLUE TSV layout) or set $GLUE_DIR")


def test_hub_sources():
    assert hub_source(get_task("stsb"), "dev") == "hub:nyu-mll/glue/stsb/validation"
    assert hub_source(get_task("MNLI"), "dev_mismatched") == "hub:nyu-mll/glue/mnli/validation_mismatched"
    assert hub_source(get_task("sst2"), "train") == "hub:nyu-mll/glue/sst2/train"


def _hub_like(path: Path, text_cols: list[int], label_col: int, features: dict):
    """A real ``datasets.Dataset`` with the hub's features, built from a GLUE TSV file read naively."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()[1:]
    rows = [line.split("\t") for line in lines]
    names = list(features)
    label = features["label"]
    columns = {names[i]: [r[c] for r in rows] for i, c in enumerate(text_cols)}
    raw = [r[label_col] for r in rows]
    columns["label"] = (
        [label.str2int(v) for v in raw] if hasattr(label, "str2int") else [float(v) for v in raw]
    )
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def test_hub_rows_match_tsv_rows(glue_dir: Path):
    """The hub's ClassLabel names (RTE) and float32 scores (STS-B) give the same rows as the TSV."""
    rte = _hub_like(
        glue_dir / "RTE" / "dev.tsv",
        [1, 2],
        3,
        {
            "sentence1": Value("string"),
            "sentence2": Value("string"),
            "label": ClassLabel(names=["entailment", "not_entailment"]),
        },
    )
    stsb = _hub_like(
        glue_dir / "STS-B" / "dev.tsv",
        [7, 8],
        9,
        {"sentence1": Value("string"), "sentence2": Value("string"), "label": Value("float32")},
    )
    for name, ds in (("RTE", rte), ("STS-B", stsb)):
        task = get_task(name)
        from_hub = split_from_dataset(task, "dev", ds, hub_source(task, "dev"))
        from_tsv = load_split(task, "dev", data_dir=glue_dir)
        assert from_hub.labels == from_tsv.labels
        assert from_hub.fingerprint() == from_tsv.fingerprint()
    # The hub side really holds float32 values that differ from the TSV's decimals (3.8 -> 3.7999999...).
    assert any(v != round(v, 3) for v in stsb["label"])


def test_hub_dataset_without_the_expected_columns():
    ds = datasets.Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"], "label": [0]})
    with pytest.raises(DataError, match="no column premise, hypothesis"):
        split_from_dataset(get_task("MNLI"), "dev_matched", ds, "hub:x")
    ds = datasets.Dataset.from_dict({"sentence": ["a"], "label": [-1]})
    with pytest.raises(DataError, match=r"label -1 is not a class id of SST-2 \(0..1\)"):
        split_from_dataset(get_task("SST-2"), "dev", ds, "hub:x")
