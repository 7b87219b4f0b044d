"""Shared fixtures: tiny random BERT-family models built from configs, the shipped MiniLM, and the
GLUE directory (``$GLUE_DIR`` or ``../shared/data/glue``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


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
