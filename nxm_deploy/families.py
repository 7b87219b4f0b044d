"""The encoder families this tool supports and tests: which linears are made N:M by default and why,
which inputs their ONNX graph takes, and the kind of tokenizer they come with.

    family = family_of(model.config)        # FAMILIES entry, or None for an unregistered family
    family.dense                            # globs left dense on top of the encoder-block rule

Every family's default selection is the one rule of :mod:`nxm_deploy.models` (every ``nn.Linear``
inside a numbered encoder block) minus ``dense``. A model whose family is not here still trains when
that rule finds its linears; ``select_layers`` then warns once, naming them. ``tests/test_families.py``
runs train -> export -> check -> parity -> Predictor for each family with its own kind of tokenizer,
and fails when a family here has no such test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FAMILIES", "Family", "family_of"]

_BERT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_NO_TOKEN_TYPES = ("input_ids", "attention_mask")


@dataclass(frozen=True)
class Family:
    """One encoder family. ``model_types``: ``config.model_type`` values. ``selected``: the linears
    made sparse by default; ``dense``: globs of block linears kept dense, ``why`` says why.
    ``onnx_inputs``: the most the ONNX graph takes (a tokenizer that gives fewer gives fewer)."""

    name: str
    model_types: tuple[str, ...]
    tokenizer: str
    onnx_inputs: tuple[str, ...]
    selected: str
    dense: tuple[str, ...] = ()
    why: str = ""


FAMILIES: tuple[Family, ...] = (
    Family(
        "BERT", ("bert",), "WordPiece", _BERT_INPUTS,
        "query, key, value, attention output, FFN in and out of every block",
        why="embeddings, pooler and classifier stay dense (outside the blocks)",
    ),
    Family(
        "RoBERTa", ("roberta",), "byte-level BPE", _NO_TOKEN_TYPES,
        "as BERT", why="one token type: the graph takes no token_type_ids",
    ),
    Family(
        "XLM-RoBERTa", ("xlm-roberta",), "Unigram (SentencePiece)", _NO_TOKEN_TYPES,
        "as BERT", why="RoBERTa's blocks; one token type: no token_type_ids",
    ),
    Family(
        "DistilBERT", ("distilbert",), "WordPiece", _NO_TOKEN_TYPES,
        "q_lin, k_lin, v_lin, out_lin, ffn.lin1, ffn.lin2 of every block",
        why="no token type embeddings; pre_classifier and classifier stay dense",
    ),
    Family(
        "ALBERT", ("albert",), "Unigram (SentencePiece)", _BERT_INPUTS,
        "the shared layer's query, key, value, dense, ffn, ffn_output (one set of weights, used by "
        "every block)",
        dense=("*.embedding_hidden_mapping_in",),
        why="one 2:4 mask serves all blocks, since they share the weights; embedding_hidden_mapping_in "
        "(embedding size to hidden size) acts on the embeddings and stays dense",
    ),
    Family(
        "ELECTRA", ("electra",), "WordPiece", _BERT_INPUTS,
        "as BERT", dense=("*.embeddings_project",),
        why="embeddings_project (embedding size to hidden size) acts on the embeddings and stays dense",
    ),
    Family(
        "DeBERTa-v2/v3", ("deberta-v2",), "Unigram (SentencePiece)", _BERT_INPUTS,
        "query_proj, key_proj, value_proj, attention output, FFN in and out",
        dense=("*.pos_key_proj", "*.pos_query_proj"),
        why="the position projections (share_att_key=False) act on the constant relative-position "
        "embeddings, not on the tokens: the exported graph computes them from constants and no "
        "MatMul weight in it maps to them, so a 2:4 pattern there could neither be proven nor run "
        "sparse (export refused such runs)",
    ),
    Family(
        "ModernBERT", ("modernbert",), "byte-level BPE", _NO_TOKEN_TYPES,
        "the fused Wqkv, Wo, the GLU's fused Wi and Wo of every layer",
        why="Wqkv and Wi are one GEMM each (q, k, v; gate and up), made 2:4 whole along their input; "
        "no token type embeddings",
    ),
    Family(
        "MPNet", ("mpnet",), "WordPiece", _NO_TOKEN_TYPES,
        "q, k, v, o, FFN in and out of every block",
        why="no token types; the relative attention bias is an embedding and stays dense",
    ),
)  # fmt: skip

_BY_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def family_of(model_or_config: Any) -> Family | None:
    """The registered family of a model (or its config), by ``config.model_type``; None if none."""
    config = getattr(model_or_config, "config", model_or_config)
    return _BY_TYPE.get(str(getattr(config, "model_type", "")))
