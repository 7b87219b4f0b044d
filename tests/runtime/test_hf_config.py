"""Every export directory carries ``config.json``: what the Hugging Face stack (optimum's
``ORTModelForSequenceClassification``, ``transformers.pipeline``) reads to open it. Here: the files
and fields it reads are there and agree with ``export.json`` and the ``Predictor``; the full optimum
check, in its own venv, is ``benchmarks/optimum_check.py``."""

from __future__ import annotations

import json

import numpy as np

from .test_predictor import PAIRS


def test_export_has_the_files_optimum_reads(rte_export):
    from transformers import AutoConfig, AutoTokenizer

    manifest = json.loads((rte_export / "export.json").read_text())
    body = json.loads((rte_export / "config.json").read_text())
    assert body["model_type"] == "bert"
    assert body["id2label"] == {"0": "entailment", "1": "not_entailment"}
    assert body["label2id"] == {"entailment": 0, "not_entailment": 1}
    assert manifest["hf_config"]["id2label"] == body["id2label"]
    assert manifest["hf_config"]["file"] == "config.json" and "config.json" in manifest["files"]
    # optimum's default file name, and the tokenizer the pipeline loads from the same folder
    assert manifest["onnx"]["file"] == "model.onnx" and (rte_export / "model.onnx").is_file()
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(manifest["tokenizer"]["files"])
    config = AutoConfig.from_pretrained(rte_export)
    assert config.num_labels == manifest["onnx"]["outputs"][0]["shape"][1] == 2
    assert AutoTokenizer.from_pretrained(rte_export).model_max_length >= manifest["tokenizer"]["max_seq_len"]


def test_config_labels_name_the_predictors_classes(rte_export, rte_predictor):
    """What a pipeline over the export does (tokenize, run model.onnx, argmax, id2label) names the
    same label as the Predictor."""
    import onnxruntime as ort
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(rte_export)
    tokenizer = AutoTokenizer.from_pretrained(rte_export)
    session = ort.InferenceSession(str(rte_export / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert tuple(config.id2label[i] for i in range(config.num_labels)) == rte_predictor.labels
    for (a, b), p in zip(PAIRS, rte_predictor.predict(PAIRS), strict=True):
        enc = tokenizer(a, b, truncation=True, max_length=rte_predictor.max_seq_len, return_tensors="np")
        logits = session.run(None, {n: enc[n].astype(np.int64) for n in names})[0][0]
        assert config.id2label[int(logits.argmax())] == p.label


def test_regression_config(stsb_export):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(stsb_export)
    assert (config.problem_type, config.num_labels) == ("regression", 1)
    manifest = json.loads((stsb_export / "export.json").read_text())
    assert manifest["hf_config"]["problem_type"] == "regression"
    assert manifest["hf_config"]["id2label"] == {}
