"""Shared fixtures: tiny random BERT-family models built from configs, the shipped MiniLM, and the
GLUE directory (``$GLUE_DIR`` or ``../shared/data/glue``)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from nxm_deploy import nm
from nxm_deploy.models import select_layers

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def import_script(path: Path) -> ModuleType:
    """Import one of the repo's scripts (benchmarks/, scripts/) as a module named after its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def glue_root() -> Path | None:
    env = os.environ.get("GLUE_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "glue"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    root = glue_root()
    if root is None:
        pytest.skip("no GLUE directory: set GLUE_DIR or provide ../shared/data/glue")
    return root


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from nxm_deploy.models import minilm_path

    return minilm_path()


def tiny_config(arch: str = "bert", num_labels: int = 2, **overrides: object):
    """A small random config of a BERT-family architecture (hidden 32, 2 blocks)."""
    from transformers import AutoConfig

    common = dict(vocab_size=30522, num_labels=num_labels)
    if arch == "distilbert":
        kw = dict(dim=32, hidden_dim=64, n_layers=2, n_heads=4, max_position_embeddings=128)
    else:
        kw = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
        )
        if arch == "electra":
            kw["embedding_size"] = 32
        if arch == "roberta":
            kw["max_position_embeddings"] = 130
            kw["pad_token_id"] = 1
    kw.update(common)
    kw.update(overrides)
    return AutoConfig.for_model(arch, **kw)


def make_tiny_model(arch: str = "bert", num_labels: int = 2, seed: int = 0, **overrides: object):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(tiny_config(arch, num_labels, **overrides))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A saved tiny random BERT with the MiniLM (uncased WordPiece) tokenizer."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-bert")
    make_tiny_model("bert").save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(out)
    return out


def write_run_dir(
    out: Path,
    model: torch.nn.Module,
    tokenizer_dir: Path,
    sparse: bool,
    max_seq_len: int = 128,
    method: str | None = None,
    task: str = "RTE",
) -> Path:
    """Save ``model`` as a run directory with a hand-written ``nxm.json``; with ``sparse``, make every
    encoder linear 2:4 first (``nm.project`` along the input axis)."""
    layers: list[str] = []
    if sparse:
        layers = select_layers(model, "2:4")
        modules = dict(model.named_modules())
        with torch.no_grad():
            for name in layers:
                w = modules[name].weight
                w.copy_(nm.project(w, "2:4", axis=1))  # nn.Linear [out, in]: groups along in
    model.save_pretrained(out)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    manifest = {
        "kind": "nxm-deploy/run",
        "tool_version": "0.1.0",
        "base_model": "tiny-random-bert",
        "task": task,
        "method": method or ("admm" if sparse else "dense"),
        "pattern": "2:4" if sparse else None,
        "layers": layers,
        "metrics": {"accuracy": 0.5},
        "num_labels": 2,
        "max_seq_len": max_seq_len,
    }
    (out / "nxm.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out


def record_training_rows(run_dir: Path, glue_dir: Path, limit: int = 64) -> Path:
    """Add to a hand-written run's ``nxm.json`` what ``train`` records about its training rows (the
    fixed subset of ``limit`` rows of the task's train file and their sha256), as INT8 calibration needs."""
    from nxm_deploy.data import get_task, load_split
    from nxm_deploy.data.encode import rows_fingerprint, subset_indices

    path = run_dir / "nxm.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    task = get_task(manifest["task"])
    split = load_split(task, task.train_split, glue_dir)
    idx = subset_indices(len(split), limit)
    b = [split.texts_b[i] for i in idx] if split.texts_b is not None else None
    sha = rows_fingerprint([split.texts_a[i] for i in idx], b, [split.labels[i] for i in idx])
    manifest["hyperparameters"] = {"max_train_samples": limit}
    manifest["data"] = {"source": split.source, "train_rows": len(idx), "train_sha256": sha}
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return run_dir
