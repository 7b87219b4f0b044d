"""The repository that ``export --triton-repo --triton-backend python`` writes, loaded by the real
``tritonserver`` binary of nvidia-pytriton (one server for the module, on 127.0.0.1 with free ports,
always stopped): raw text through the ensemble (tokenize -> model -> labels) and token ids through
the model itself (``TritonRequests``' contract) answer as the ``Predictor`` does. The ONNX Runtime and
TensorRT backends are not in that binary: their ``config.pbtxt`` stay checked by schema
(test_triton.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from .conftest import ROWS
from .test_serve import assert_same, text_inputs

pb = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="needs tritonclient[grpc]")


@pytest.fixture(scope="module")
def text_repo(tmp_path_factory, rte_export):
    from nxm_deploy.runtime.triton import TritonOptions
    from nxm_deploy.runtime.triton_text import write_text_repo

    repo = tmp_path_factory.mktemp("triton-text") / "repo"
    return write_text_repo(rte_export, repo, TritonOptions(name="rte", max_batch_size=8), backend="python")


@pytest.fixture(scope="module")
def server(tritonserver, text_repo, tmp_path_factory):
    from nxm_deploy.serve.process import Endpoints, TritonProcess, free_port

    endpoints = Endpoints("127.0.0.1", free_port(), free_port())
    work = tmp_path_factory.mktemp("tritonserver")
    with TritonProcess(tritonserver, text_repo.model.path.parent, endpoints, work) as process:
        process.wait_ready(180)
        yield process
    assert not process.alive()


def test_every_config_follows_the_schema(text_repo):
    from google.protobuf import text_format

    repo = text_repo.model.path.parent
    assert sorted(p.name for p in repo.iterdir()) == ["rte", "rte_labels", "rte_text", "rte_tokenize"]
    configs = {
        p.parent.name: text_format.Parse(p.read_text(), pb.ModelConfig()) for p in repo.glob("*/config.pbtxt")
    }
    assert configs["rte"].backend == "python" and configs["rte"].platform == ""
    assert (repo / "rte" / "1" / "model.py").is_file() and (repo / "rte" / "1" / "model.onnx").is_file()
    assert (repo / "rte_tokenize" / "tokenizer.json").is_file()
    ensemble = configs["rte_text"]
    assert ensemble.platform == "ensemble"
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == ["rte_tokenize", "rte", "rte_labels"]
    assert [i.name for i in ensemble.input] == ["text", "text_pair"]
    assert [o.name for o in ensemble.output] == ["label", "scores", "truncated"]
    for path in repo.rglob("*"):  # every file inside the repository
        assert path.resolve().is_relative_to(repo.resolve())


@pytest.mark.triton
def test_the_ensemble_takes_text_and_answers_as_the_predictor(server, dev_rows, rte_predictor):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    expected = rte_predictor.predict(dev_rows)
    http = httpclient.InferenceServerClient(server.endpoints.http_url)
    for i in range(0, ROWS, 8):
        assert_same(http.infer("rte_text", text_inputs(httpclient, dev_rows[i : i + 8])), expected[i : i + 8])

    def one(i: int):  # single rows from 8 callers over gRPC
        client = grpcclient.InferenceServerClient(server.endpoints.grpc_url)
        return client.infer("rte_text", text_inputs(grpcclient, dev_rows[i : i + 1]))

    with ThreadPoolExecutor(8) as pool:
        for i, result in enumerate(pool.map(one, range(ROWS))):
            assert_same(result, expected[i : i + 1])


@pytest.mark.triton
def test_the_model_takes_token_ids_by_the_request_contract(server, text_repo, dev_rows, rte_predictor):
    import tritonclient.http as httpclient

    from nxm_deploy.runtime.triton import TritonRequests

    requests = TritonRequests.from_model_dir(text_repo.model.path)
    client = httpclient.InferenceServerClient(server.endpoints.http_url)
    rows = dev_rows[:40]
    plan = requests.encode(rows)
    outputs = []
    for batch in plan.batches:
        inputs = []
        for name, array in batch.feed.items():
            tensor = httpclient.InferInput(name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs.append(client.infer("rte", inputs).as_numpy("logits"))
    got = requests.decode(plan, outputs)
    for g, p in zip(got, rte_predictor.predict(rows), strict=True):
        assert g.label == p.label and g.truncated == p.truncated
        np.testing.assert_allclose(list(g.scores.values()), list(p.scores.values()), atol=1e-5)


@pytest.mark.triton
def test_bad_text_gets_an_error_and_the_ensemble_goes_on(server, dev_rows, rte_predictor):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(server.endpoints.http_url)
    good, expected = dev_rows[:2], rte_predictor.predict(dev_rows[:2])
    for text in (b"\xff\xfe not UTF-8", b"a" * (1 << 20)):
        inputs = []
        for name in ("text", "text_pair"):
            tensor = httpclient.InferInput(name, [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[text]], dtype=np.object_))
            inputs.append(tensor)
        with pytest.raises(InferenceServerException):
            client.infer("rte_text", inputs)
        assert_same(client.infer("rte_text", text_inputs(httpclient, good)), expected)
    with pytest.raises(InferenceServerException):
        client.infer("rte_text", text_inputs(httpclient, good)[:1])  # text_pair missing
