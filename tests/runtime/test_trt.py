"""The TensorRT backend on a real engine: same answers as ONNX Runtime, from several threads.
Needs TensorRT and an NVIDIA GPU; skipped (with the reason) elsewhere."""

from __future__ import annotations

import threading

import pytest

from nxm_deploy.runtime import Predictor
from nxm_deploy.runtime.availability import trt_unavailable_reason

from .test_predictor import LONG, PAIRS

pytestmark = [
    pytest.mark.trt,
    pytest.mark.skipif(trt_unavailable_reason() is not None, reason=f"{trt_unavailable_reason()}"),
]


@pytest.fixture(scope="module")
def trt_export(tmp_path_factory, rte_run, glue_dir):
    from nxm_deploy.export import ExportConfig, export

    out = tmp_path_factory.mktemp("rt-trt") / "rte-trt"
    return export(
        ExportConfig(run_dir=rte_run, out=out, engine="trt", data_dir=glue_dir, batches=(2,), seq_lens=(16,))
    ).out


def test_trt_matches_ort(trt_export):
    trt = Predictor.from_export(trt_export, backend="trt")
    ort = Predictor.from_export(trt_export, backend="ort")
    assert trt.info()["backend"] == "trt"
    inputs = [*PAIRS, LONG]
    for t, o in zip(trt.predict(inputs), ort.predict(inputs), strict=True):
        assert (t.label, t.truncated) == (o.label, o.truncated)
        assert t.scores == pytest.approx(o.scores, abs=1e-3)


def test_trt_threads(trt_export):
    trt = Predictor.from_export(trt_export, backend="trt", max_batch=2)
    expected = trt.predict(PAIRS)
    failures: list[BaseException] = []
    results: list[list] = []

    def work() -> None:
        try:
            for _ in range(20):
                results.append(trt.predict(PAIRS))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == [] and len(results) == 80
    for got in results:
        assert [g.label for g in got] == [e.label for e in expected]
        for g, e in zip(got, expected, strict=True):
            assert g.scores == pytest.approx(e.scores, abs=1e-5)
