"""Parity of ONNX Runtime against PyTorch: real dev sentences, the built-in fallback, and one
ParityError that lists every failing case when the ONNX weights are corrupted."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from nxm_deploy.export.parity import (
    FP32_TOLERANCE,
    ParityError,
    Tolerance,
    compare,
    parity_sentences,
    seq_grid,
)
from nxm_deploy.models import load_model

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


@pytest.fixture(scope="module")
def model_and_tokenizer(sparse_run):
    model, tokenizer = load_model(sparse_run)
    return model.eval(), tokenizer


@pytest.fixture
def corrupted_onnx(sparse_export, tmp_path) -> Path:
    """The export's model.onnx with the classifier weight negated."""
    model = onnx.load(str(sparse_export / "model.onnx"))
    t = next(t for t in model.graph.initializer if t.name == "classifier.weight")
    t.CopyFrom(onnx.numpy_helper.from_array(-onnx.numpy_helper.to_array(t), t.name))
    path = tmp_path / "corrupted.onnx"
    onnx.save(model, str(path))
    return path


def test_parity_passes_on_dev_sentences(model_and_tokenizer, sparse_export, glue_dir):
    model, tok = model_and_tokenizer
    sentences = parity_sentences("RTE", glue_dir)
    report = compare(model, sparse_export / "model.onnx", tok, sentences, INPUTS, (1, 4), (16, 128))
    assert report.ok and len(report.cases) == 4
    assert report.max_abs_diff <= FP32_TOLERANCE.atol
    assert {(c.batch, c.seq, c.shape) for c in report.cases} == {
        (1, 16, (1, 2)),
        (1, 128, (1, 2)),
        (4, 16, (4, 2)),
        (4, 128, (4, 2)),
    }


def test_corrupted_weights_give_one_error_listing_every_failing_case(
    model_and_tokenizer, corrupted_onnx, glue_dir
):
    model, tok = model_and_tokenizer
    report = compare(model, corrupted_onnx, tok, parity_sentences("RTE", glue_dir), INPUTS)
    assert not report.ok and len(report.failures) == 9  # 3 batch sizes x 3 sequence lengths
    with pytest.raises(ParityError) as err:
        report.raise_for_failures()
    assert err.value.failures == report.failures
    msg = str(err.value)
    assert "differs from PyTorch in 9 case(s)" in msg
    for batch in (1, 4, 16):
        for seq in (16, 64, 128):
            assert f"batch {batch} x seq {seq}, output logits: max abs diff" in msg


def test_outputs_without_a_tolerance_are_failures(model_and_tokenizer, sparse_export):
    model, tok = model_and_tokenizer
    report = compare(
        model,
        sparse_export / "model.onnx",
        tok,
        parity_sentences(None, None),
        INPUTS,
        (1,),
        (16,),
        tolerances={"pooled": Tolerance(1e-4, 1e-3)},
    )
    assert report.failures == ["output logits: no tolerance given for it"]
    with pytest.raises(ParityError):
        report.raise_for_failures()


def test_sentences_come_from_the_task_dev_split(glue_dir):
    rte = parity_sentences("RTE", glue_dir)
    assert len(rte.texts_a) == 16 and rte.texts_b is not None and rte.fallback_reason is None
    assert rte.source.endswith("RTE/dev.tsv")
    sst = parity_sentences("SST-2", glue_dir, n=4)
    assert len(sst.texts_a) == 4 and sst.texts_b is None
    a, b = sst.take(6)  # cycles when asked for more
    assert a[4:] == a[:2] and b is None


def test_sentences_fall_back_to_built_ins_and_say_why(tmp_path):
    missing = parity_sentences("RTE", tmp_path / "no-glue")
    assert missing.source == "built-in sentences" and missing.texts_b is not None
    assert "does not exist" in missing.fallback_reason
    assert parity_sentences(None, None).fallback_reason == "the run manifest names no task"
    unknown = parity_sentences("not-a-task", None)
    assert unknown.texts_b is None and unknown.fallback_reason


def test_seq_grid_is_capped_by_max_seq_len():
    assert seq_grid(128) == [16, 64, 128]
    assert seq_grid(100) == [16, 64, 100]
    assert seq_grid(32) == [16, 32]
    assert seq_grid(8) == [8]


def test_tolerance_rule_is_explicit():
    assert FP32_TOLERANCE == Tolerance(atol=1e-4, rtol=1e-3)
    assert "atol + rtol * |torch|" in FP32_TOLERANCE.to_json()["rule"]
