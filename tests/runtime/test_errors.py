"""Bad input and bad directories: one-line UserErrors that say what to do."""

from __future__ import annotations

import shutil

import pytest

from nxm_deploy.errors import UserError
from nxm_deploy.runtime import BackendUnavailableError, ExportDirError, PredictInputError, Predictor


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert isinstance(exc.value, UserError) and "\n" not in message and message
    return message


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([], "empty list"),
        ("a sentence", "single string"),
        (["one", "two"], "takes sentence pairs"),
        ([("a", "b"), "c"], "mix single sentences and pairs"),
        ([("a", "b", "c")], "input 0 is a tuple of 3"),
        ([("a", 3)], "expected a str or a (str, str) pair"),
        ([None], "input 0 is a NoneType"),
        (42, "got a int"),
    ],
)
def test_bad_input_to_a_pair_task(rte_predictor, inputs, words):
    with pytest.raises(PredictInputError) as exc:
        rte_predictor.predict(inputs)
    assert words in _one_line(exc)


def test_pairs_to_a_single_sentence_task(edited_export):
    predictor = Predictor.from_export(edited_export(task="SST-2"))
    with pytest.raises(PredictInputError) as exc:
        predictor.predict([("a", "b")])
    assert "SST-2 takes single sentences" in _one_line(exc)
    assert isinstance(exc.value, ValueError)  # a web service can map it to HTTP 400
    assert predictor.predict(["fine"])[0].label in ("negative", "positive")


def test_export_without_a_model(tmp_path, rte_export):
    broken = shutil.copytree(rte_export, tmp_path / "broken")
    (broken / "model.onnx").unlink()
    with pytest.raises(ExportDirError) as exc:
        Predictor.from_export(broken)
    assert "has no model.onnx" in _one_line(exc)


def test_not_an_export_directory(tmp_path, rte_run):
    with pytest.raises(ExportDirError) as exc:
        Predictor.from_export(tmp_path)
    assert "is not an export directory (no export.json)" in _one_line(exc)
    with pytest.raises(ExportDirError) as exc:
        Predictor.from_export(rte_run)
    assert "is a run directory" in _one_line(exc) and "nxm-deploy export" in str(exc.value)
    with pytest.raises(ExportDirError) as exc:
        Predictor.from_export(tmp_path / "missing")
    assert "does not exist" in _one_line(exc)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportDirError) as exc:
        Predictor.from_export(tmp_path / "file")
    assert "is not a directory" in _one_line(exc)


def test_manifest_that_contradicts_its_model(edited_export):
    with pytest.raises(ExportDirError) as exc:
        Predictor.from_export(edited_export(task="MNLI"))  # 3 labels; the model has 2 outputs
    assert "2 outputs but task MNLI has 3" in _one_line(exc)


def test_bad_options(rte_export):
    with pytest.raises(PredictInputError) as exc:
        Predictor.from_export(rte_export, backend="onnx")
    assert "unknown backend 'onnx'" in _one_line(exc)
    with pytest.raises(PredictInputError) as exc:
        Predictor.from_export(rte_export, max_batch=0)
    assert "max_batch" in _one_line(exc)


def test_trt_backend_without_tensorrt_or_gpu(rte_export):
    from nxm_deploy.runtime.availability import trt_unavailable_reason

    reason = trt_unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present here: tests/runtime/test_trt.py covers the backend")
    with pytest.raises(BackendUnavailableError) as exc:
        Predictor.from_export(rte_export, backend="trt")
    assert _one_line(exc) == f"backend 'trt' cannot run here: {reason}"
