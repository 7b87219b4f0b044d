"""Model loading and the choice of layers to sparsify (nxm_deploy/models.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import make_tiny_model

from nxm_deploy.errors import ModelError, PatternError
from nxm_deploy.models import TensorRTShapeWarning, load_model, select_layers

EXPECTED_BLOCK_LINEARS = {
    "bert": ["attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "intermediate.dense", "output.dense"],
    "roberta": ["attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense"],
    "electra": ["attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense"],
    "distilbert": ["attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                   "ffn.lin1", "ffn.lin2"],
}  # fmt: skip
PREFIX = {
    "bert": "bert.encoder.layer",
    "roberta": "roberta.encoder.layer",
    "electra": "electra.encoder.layer",
    "distilbert": "distilbert.transformer.layer",
}


@pytest.mark.parametrize("arch", sorted(EXPECTED_BLOCK_LINEARS))
def test_default_selection_is_every_encoder_block_linear(arch: str) -> None:
    model = make_tiny_model(arch)
    names = select_layers(model, "2:4")
    expected = [f"{PREFIX[arch]}.{i}.{s}" for i in range(2) for s in EXPECTED_BLOCK_LINEARS[arch]]
    assert names == expected
    assert not any(k in n for n in names for k in ("embeddings", "pooler", "classifier"))


def test_include_and_exclude_globs() -> None:
    model = make_tiny_model("bert")
    ffn = select_layers(model, include=["*.intermediate.dense", "*.output.dense"], exclude=["*attention*"])
    assert ffn == [
        f"bert.encoder.layer.{i}.{s}" for i in range(2) for s in ("intermediate.dense", "output.dense")
    ]
    no_qk = select_layers(model, exclude=["*.query", "*.key"])
    assert len(no_qk) == 8 and not any(n.endswith((".query", ".key")) for n in no_qk)
    # include may name a layer outside the blocks, when the user asks for it explicitly (the tiny
    # classifier's 2 outputs are no shape for sparse tensor cores, and the warning names it)
    with pytest.warns(TensorRTShapeWarning, match="classifier"):
        assert select_layers(model, include=["classifier"]) == ["classifier"]


def test_nothing_selected_is_an_error() -> None:
    with pytest.raises(ModelError, match="no layers selected"):
        select_layers(make_tiny_model("bert"), include=["*.nothing"])


def test_pattern_that_does_not_fit_a_layer() -> None:
    model = make_tiny_model("bert", hidden_size=36, num_attention_heads=4, intermediate_size=64)
    with pytest.raises(
        PatternError, match=r"does not fit layer bert\.encoder\.layer\.0\.attention\.self\.query"
    ):
        select_layers(model, "2:8")


def test_tensorrt_shape_warning_once_listing_names() -> None:
    model = make_tiny_model("bert", hidden_size=36, num_attention_heads=4, intermediate_size=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = select_layers(model, "2:4")
    trt = [w for w in caught if issubclass(w.category, TensorRTShapeWarning)]
    assert len(trt) == 1
    msg = str(trt[0].message)
    # 36 is neither a multiple of 8 (out) nor of 16 (in): every layer is listed
    assert all(n in msg for n in names)


def test_no_warning_for_tensorrt_friendly_shapes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TensorRTShapeWarning)
        select_layers(make_tiny_model("bert"), "2:4")


@pytest.mark.slow
def test_shipped_minilm_loads_with_36_encoder_linears(minilm_dir: Path) -> None:
    model, tok = load_model(minilm_dir, num_labels=3)
    names = select_layers(model, "2:4")
    assert len(names) == 36
    assert sum(model.get_submodule(n).weight.numel() for n in names) == 10_616_832
    assert model.config.num_labels == 3
    assert tok("a test", "pair")["input_ids"][0] == tok.cls_token_id


def test_missing_local_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_directory_without_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(tmp_path)


def test_unreachable_hub_id_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"cannot load model 'nxm-deploy-test/does-not-exist'.*hub"):
        load_model("nxm-deploy-test/does-not-exist")


def test_saved_tiny_model_round_trip(tiny_bert_dir: Path) -> None:
    model, tok = load_model(tiny_bert_dir)
    assert model.config.num_labels == 2
    assert "input_ids" in tok("hello world")
