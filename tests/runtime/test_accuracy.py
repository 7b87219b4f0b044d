"""The Predictor's predictions over a full dev set score the same metric as the ONNX model run
directly over it: on a tiny export over real RTE dev text, and (slow) on the shipped MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from nxm_deploy.data import compute_metrics, load_split
from nxm_deploy.runtime import Predictor

from .conftest import MAX_SEQ_LEN, DirectOnnx, export_of


def _same_metric(export_dir, glue_dir, max_length: int) -> dict:
    dev = load_split("RTE", "dev", glue_dir)
    predictor = Predictor.from_export(export_dir, max_batch=32)
    predictions = predictor.predict(list(zip(dev.texts_a, dev.texts_b, strict=True)))
    direct = DirectOnnx(export_dir, max_length).logits(dev.texts_a, dev.texts_b)  # (N, 2), one row at a time
    ours = compute_metrics("RTE", [p.label_id for p in predictions], dev.labels)
    theirs = compute_metrics("RTE", direct, dev.labels)
    assert ours == theirs
    margin = np.abs(direct[:, 0] - direct[:, 1]) > 1e-4
    np.testing.assert_array_equal(
        np.asarray([p.label_id for p in predictions])[margin], direct.argmax(1)[margin]
    )
    assert len(predictions) == len(dev.labels) == 277
    return ours


def test_full_rte_dev_set_tiny_export(rte_export, glue_dir):
    _same_metric(rte_export, glue_dir, MAX_SEQ_LEN)


@pytest.mark.slow
def test_full_rte_dev_set_minilm(minilm_dir, tmp_path, glue_dir):
    import torch

    from nxm_deploy.models import load_model

    from .conftest import write_run_dir

    torch.manual_seed(0)  # a new classifier head
    model, _ = load_model(minilm_dir, num_labels=2)
    run = write_run_dir(tmp_path / "run", model, minilm_dir, sparse=True)
    metrics = _same_metric(export_of(run, tmp_path / "export", glue_dir), glue_dir, 128)
    print(f"MiniLM 2:4 (random head) RTE dev accuracy through the Predictor: {metrics['accuracy']:.4f}")
