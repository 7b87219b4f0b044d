"""Predictor over real tiny exports: the same answers as ONNX Runtime run directly and as PyTorch,
labels from the task, truncation flags, regression output."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nxm_deploy.runtime import Prediction, Predictor

from .conftest import MAX_SEQ_LEN, DirectOnnx

PAIRS = [
    ("A man is playing a guitar.", "A person plays music."),
    ("The cat sat on the mat.", "No animal is on the mat."),
    ("Paris is the capital of France.", "France's capital is Paris."),
    ("Stocks fell sharply on Monday after the report.", "Markets rose."),
    ("She bought three apples.", "She bought fruit."),
    ("", "An empty first sentence."),
]
LONG = ("word " * 300, "another " * 50)


def test_pairs_match_onnx_runtime_run_directly(rte_predictor, rte_export):
    inputs = [*PAIRS, LONG]
    predictions = rte_predictor.predict(inputs)
    direct = DirectOnnx(rte_export).logits([a for a, _ in inputs], [b for _, b in inputs])
    logits, truncated = rte_predictor.logits(inputs)
    np.testing.assert_allclose(logits, direct, atol=1e-5, rtol=0)
    probs = np.exp(direct - direct.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for p, row in zip(predictions, probs, strict=True):
        assert isinstance(p, Prediction)
        assert list(p.scores) == ["entailment", "not_entailment"]  # RTE's label order
        assert p.scores == pytest.approx(dict(zip(p.scores, row.tolist(), strict=True)), abs=1e-5)
        assert math.isclose(sum(p.scores.values()), 1.0, abs_tol=1e-9)
        assert p.label == max(p.scores, key=p.scores.get) and p.label_id == rte_predictor.labels.index(
            p.label
        )
        assert p.value is None
    assert truncated == [False] * len(PAIRS) + [True]
    assert [p.truncated for p in predictions] == truncated


def test_argmax_matches_pytorch(rte_predictor, rte_run):
    import torch

    from nxm_deploy.models import load_model

    model, tokenizer = load_model(rte_run)
    model.eval()
    enc = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch_logits = model(**enc).logits.numpy()  # (N, 2)
    logits, _ = rte_predictor.logits(PAIRS)
    np.testing.assert_allclose(logits, torch_logits, atol=1e-4, rtol=0)
    clear = np.abs(torch_logits[:, 0] - torch_logits[:, 1]) > 1e-4  # rows with a clear winner
    assert clear.sum() >= len(PAIRS) - 1
    got = np.asarray([p.label_id for p in rte_predictor.predict(PAIRS)])
    np.testing.assert_array_equal(got[clear], torch_logits.argmax(1)[clear])


def test_answer_does_not_depend_on_batching(rte_export):
    one = Predictor.from_export(rte_export, max_batch=1).logits(PAIRS)[0]
    many = Predictor.from_export(rte_export, max_batch=32).logits(PAIRS)[0]
    np.testing.assert_allclose(one, many, atol=1e-5, rtol=0)


def test_facts_come_from_the_export(rte_predictor):
    assert rte_predictor.task == "RTE"
    assert rte_predictor.labels == ("entailment", "not_entailment")
    assert rte_predictor.is_pair is True and rte_predictor.is_regression is False
    assert rte_predictor.max_seq_len == MAX_SEQ_LEN and rte_predictor.max_batch == 8
    info = rte_predictor.info()
    assert (
        info["backend"] == "ort" and info["pattern"] == "2:4" and info["labels"] == list(rte_predictor.labels)
    )
    assert rte_predictor.predict_one(*PAIRS[0]) == rte_predictor.predict(PAIRS[:1])[0]
    assert rte_predictor.predict_one(*PAIRS[0]).to_json().keys() == {
        "label",
        "label_id",
        "scores",
        "value",
        "truncated",
    }


def test_truncation_flag_at_the_limit(edited_export):
    """A single sentence of n words takes n + 2 tokens ([CLS] ... [SEP])."""
    predictor = Predictor.from_export(edited_export(task="SST-2"))
    fits, cut = "a " * (MAX_SEQ_LEN - 2), "a " * (MAX_SEQ_LEN - 1)
    encoded = predictor.encode([fits, cut, "short"])
    assert encoded.truncated == [False, True, False]
    assert [len(ids) for ids in encoded.features["input_ids"]] == [MAX_SEQ_LEN, MAX_SEQ_LEN, 3]
    assert [p.truncated for p in predictor.predict([fits, cut, "short"])] == [False, True, False]


def test_long_pair_is_cut_like_the_tokenizer_cuts_it(rte_predictor, rte_export):
    encoded = rte_predictor.encode([LONG])
    direct = DirectOnnx(rte_export).tokenizer(*LONG, truncation=True, max_length=MAX_SEQ_LEN)
    assert encoded.features["input_ids"][0] == direct["input_ids"]
    assert encoded.truncated == [True]


def test_regression_gives_the_value(stsb_export):
    predictor = Predictor.from_export(stsb_export)
    assert predictor.is_regression and predictor.labels == () and predictor.task == "STS-B"
    predictions = predictor.predict(PAIRS)
    direct = DirectOnnx(stsb_export).logits([a for a, _ in PAIRS], [b for _, b in PAIRS])  # (N, 1)
    for p, v in zip(predictions, direct[:, 0], strict=True):
        assert p.label is None and p.label_id is None and p.scores == {}
        assert p.value == pytest.approx(float(v), abs=1e-5)
        assert p.truncated is False


def test_unknown_task_uses_the_run_config_labels(edited_export, tmp_path):
    import json

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"id2label": {"0": "no", "1": "yes"}}))
    predictor = Predictor.from_export(edited_export(task="my-task", path=str(run)))
    assert predictor.task == "my-task" and predictor.is_pair is None  # either kind is accepted
    assert predictor.labels == ("no", "yes")
    assert len(predictor.predict(["one sentence"])) == 1 and len(predictor.predict([("a", "b")])) == 1
    gone = Predictor.from_export(edited_export(task=None, path=str(tmp_path / "gone")))
    assert gone.task is None and gone.labels == ("LABEL_0", "LABEL_1")
