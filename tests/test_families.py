"""Every registered encoder family, with its own kind of tokenizer trained here on GLUE text
(WordPiece, byte-level BPE, Unigram) and its own pair template: train (oneshot and admm) -> export
(the admm run) -> check -> parity -> Predictor. A registered family without a case here fails."""

from __future__ import annotations

import fnmatch
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from nxm_deploy.cli import cli
from nxm_deploy.data import load_split
from nxm_deploy.families import FAMILIES, family_of
from nxm_deploy.models import UnregisteredFamilyWarning, select_layers
from nxm_deploy.runtime import Predictor

BERT_SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                 "mask_token": "[MASK]"}  # fmt: skip
ROBERTA_SPECIALS = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>",
                    "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}  # fmt: skip
HIDDEN = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
VOCAB = 400


@dataclass(frozen=True)
class Case:
    arch: str  # config.model_type
    algorithm: str  # wordpiece | bpe | unigram
    style: str  # bert: [CLS] A [SEP] B [SEP] with token types; roberta: <s> A </s></s> B </s>
    config: dict[str, Any] = field(default_factory=dict)
    token_types: bool = True


CASES: dict[str, Case] = {
    "BERT": Case("bert", "wordpiece", "bert"),
    "RoBERTa": Case("roberta", "bpe", "roberta", {"pad_token_id": 1, "max_position_embeddings": 66},
                    token_types=False),
    "XLM-RoBERTa": Case("xlm-roberta", "unigram", "roberta",
                        {"pad_token_id": 1, "max_position_embeddings": 66}, token_types=False),
    "DistilBERT": Case("distilbert", "wordpiece", "bert",
                       {"dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 4}, token_types=False),
    "ALBERT": Case("albert", "unigram", "bert", {"embedding_size": 16, "pad_token_id": 0}),
    "ELECTRA": Case("electra", "wordpiece", "bert", {"embedding_size": 16}),
    "DeBERTa-v2/v3": Case("deberta-v2", "unigram", "bert",
                          {"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "share_att_key": False,
                           "position_buckets": 16, "max_relative_positions": 32, "type_vocab_size": 2}),
    "ModernBERT": Case("modernbert", "bpe", "bert",
                       {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3, "cls_token_id": 2,
                        "sep_token_id": 3, "global_attn_every_n_layers": 2, "local_attention": 16},
                       token_types=False),
    "MPNet": Case("mpnet", "wordpiece", "roberta", {"pad_token_id": 1, "max_position_embeddings": 66},
                  token_types=False),
}  # fmt: skip


def test_every_registered_family_has_a_case() -> None:
    assert {f.name for f in FAMILIES} == set(CASES), "a registered family needs a case in CASES"
    for name, case in CASES.items():
        assert family_of(type("C", (), {"model_type": case.arch})()).name == name


# ---- a tokenizer of the family's kind, trained on GLUE text ----------------------------------------


def train_tokenizer(case: Case, corpus: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = BERT_SPECIALS if case.style == "bert" else ROBERTA_SPECIALS
    order = list(dict.fromkeys(specials.values()))  # bert: [PAD]=0 ...; roberta: <s>=0, <pad>=1, </s>=2
    if case.algorithm == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=specials["unk_token"]))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=order)
    elif case.algorithm == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=order, initial_alphabet=alphabet)
    else:
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=VOCAB, special_tokens=order,
                                          unk_token=specials["unk_token"])  # fmt: skip
    tok.train_from_iterator(corpus, trainer)
    cls, sep = specials["cls_token"], specials["sep_token"]
    ids = [(t, tok.token_to_id(t)) for t in (cls, sep)]
    if case.style == "bert":
        pair = f"{cls} $A {sep} $B:1 {sep}:1"
    else:
        pair = f"{cls} $A {sep} {sep} $B {sep}"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=pair, special_tokens=ids
    )
    inputs = (
        ["input_ids", "token_type_ids", "attention_mask"]
        if case.token_types
        else ["input_ids", "attention_mask"]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64, model_input_names=inputs,
                                   **specials)  # fmt: skip


@pytest.fixture(scope="module")
def corpus(glue_dir: Path) -> list[str]:
    rows = []
    for task in ("rte", "sst2"):
        split = load_split(task, "train", glue_dir).select(600)
        rows += split.texts_a + (split.texts_b or [])
    return rows


def make_model_dir(case: Case, corpus: list[str], out: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    tokenizer = train_tokenizer(case, corpus)
    kw = {} if case.arch == "distilbert" else dict(HIDDEN)
    kw.update(max_position_embeddings=64, vocab_size=len(tokenizer), num_labels=2)
    kw.update(case.config)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(case.arch, **kw))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ---- the chain -------------------------------------------------------------------------------------


def run_cli(*args: Any) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TensorRT shape warnings: these tiny layers are not its size
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def train(model: Path, glue: Path, method: str, out: Path) -> dict[str, Any]:
    result = run_cli("train", "--model", model, "--task", "rte", "--data-dir", glue, "--method", method,
                     "--out", out, "--epochs", "1", "--max-train-samples", "24", "--max-eval-samples", "8",
                     "--batch-size", "8", "--max-seq-len", "32", "--lr", "1e-3",
                     *(("--admm-interval", "1") if method == "admm" else ()), "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "nxm.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_family_chain(name: str, corpus: list[str], glue_dir: Path, tmp_path: Path) -> None:
    case, family = CASES[name], next(f for f in FAMILIES if f.name == name)
    model_dir = make_model_dir(case, corpus, tmp_path / "model")
    oneshot = train(model_dir, glue_dir, "oneshot", tmp_path / "oneshot")
    admm = train(model_dir, glue_dir, "admm", tmp_path / "admm")
    assert oneshot["layers"] == admm["layers"] and admm["layers"]
    dense_kept = [n for n in admm["layers"] for g in family.dense if fnmatch.fnmatchcase(n, g)]
    assert not dense_kept, f"{name}: {dense_kept} should stay dense"

    # the run's tokenizer keeps the family's pair template
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "admm")
    tokens = tok.convert_ids_to_tokens(tok("a cat", "a dog")["input_ids"])
    specials = BERT_SPECIALS if case.style == "bert" else ROBERTA_SPECIALS
    cls, sep = specials["cls_token"], specials["sep_token"]
    assert tokens[0] == cls and tokens[-1] == sep and tokens.count(sep) == (2 if case.style == "bert" else 3)

    result = run_cli("export", tmp_path / "admm", "--out", tmp_path / "export", "--data-dir", glue_dir)
    assert result.exit_code == 0, result.output
    export = json.loads((tmp_path / "export" / "export.json").read_text())
    inputs = [i["name"] for i in export["onnx"]["inputs"]]
    expected = [n for n in family.onnx_inputs if n in tok.model_input_names]
    assert sorted(inputs) == sorted(expected)
    assert export["sparsity"]["sparse_layers"] == admm["layers"] and export["sparsity"]["ok"]
    assert export["parity"]["inputs"]["pairs"] and export["parity"]["inputs"]["fallback_reason"] is None
    assert all(c["ok"] for c in export["parity"]["cases"])

    for path in (tmp_path / "admm", tmp_path / "export"):
        checked = run_cli("check", path)
        assert checked.exit_code == 0, checked.output

    predictor = Predictor.from_export(tmp_path / "export")
    [p] = predictor.predict([("A man is sleeping.", "Nobody sleeps.")])
    assert predictor.labels == ("entailment", "not_entailment") and p.label in predictor.labels


def test_family_defaults_leave_the_named_layers_dense(corpus: list[str], tmp_path: Path) -> None:
    """DeBERTa's position projections, ALBERT's embedding mapping and ELECTRA's embedding projection
    exist in these models and are left out by default; --include still reaches them."""
    from transformers import AutoModelForSequenceClassification

    for name, dense in (("DeBERTa-v2/v3", "pos_key_proj"), ("ALBERT", "embedding_hidden_mapping_in"),
                        ("ELECTRA", "embeddings_project")):  # fmt: skip
        model = AutoModelForSequenceClassification.from_pretrained(
            make_model_dir(CASES[name], corpus[:200], tmp_path / name.replace("/", "-"))
        )
        assert any(dense in n for n, _ in model.named_modules())
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnregisteredFamilyWarning)
            layers = select_layers(model)
        assert layers and not any(dense in n for n in layers)
        assert any(dense in n for n in select_layers(model, include=[f"*{dense}"]))


def test_unregistered_family_trains_with_the_generic_rule_and_one_warning(
    corpus: list[str], glue_dir: Path, tmp_path: Path
) -> None:
    from nxm_deploy.admm import TrainConfig, train

    case = Case("camembert", "bpe", "roberta", {"pad_token_id": 1, "max_position_embeddings": 66}, False)
    model_dir = make_model_dir(case, corpus[:300], tmp_path / "model")
    cfg = TrainConfig(task="rte", out=str(tmp_path / "run"), method="oneshot", model=str(model_dir),
                      data_dir=str(glue_dir), epochs=1.0, max_train_samples=16, max_eval_samples=8,
                      batch_size=8, max_seq_len=32, progress=False)  # fmt: skip
    with pytest.warns(UnregisteredFamilyWarning) as record:
        result = train(cfg)
    mine = [w for w in record if issubclass(w.category, UnregisteredFamilyWarning)]
    assert len(mine) == 1
    layers = result.manifest.facts.layers
    assert len(layers) == 12 and all(n in str(mine[0].message) for n in layers)
    assert "'camembert'" in str(mine[0].message)
