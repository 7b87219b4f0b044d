"""``nxm-deploy serve`` against the real ``tritonserver`` binary of nvidia-pytriton: one server per
module (the CLI in a child process, on 127.0.0.1 with free ports, always stopped), queried with
``tritonclient`` over HTTP and gRPC, answers compared with the ``Predictor`` on 200 RTE dev rows.
Where the binary cannot run here the server tests skip with the reason; the checks made before
anything starts run everywhere."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nxm_deploy.cli import cli

from .conftest import ROWS


@dataclass
class Served:
    proc: subprocess.Popen
    http: str
    grpc: str
    log: Path
    name: str = "rte"


def start_serve(export: Path, log: Path, *options: object) -> tuple[subprocess.Popen, str, str]:
    from nxm_deploy.serve.process import free_port

    http, grpc = free_port(), free_port()
    args = [sys.executable, "-m", "nxm_deploy", "serve", str(export), "--http-port", str(http),
            "--grpc-port", str(grpc), *map(str, options)]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "serving on" in text:
            return proc, f"127.0.0.1:{http}", f"127.0.0.1:{grpc}"
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop(proc)
    pytest.fail(f"serve did not start:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[int, float]:
    start = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode, time.monotonic() - start


@pytest.fixture(scope="module")
def served(tritonserver, rte_export, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc, http, grpc = start_serve(rte_export, log, "--max-batch-size", 8, "--max-queue-delay-us", 1000)
    try:
        yield Served(proc, http, grpc, log)
    finally:
        stop(proc)


def text_inputs(module, rows, datatype: str = "BYTES"):
    inputs = []
    for name, column in (("text", [a for a, _ in rows]), ("text_pair", [b for _, b in rows])):
        array = np.array([[t.encode()] for t in column], dtype=np.object_)
        tensor = module.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def assert_same(result, predictions):
    labels = [x.decode() for x in result.as_numpy("label").reshape(-1)]
    assert labels == [p.label for p in predictions]
    expected = np.array([[p.scores[k] for k in ("entailment", "not_entailment")] for p in predictions])
    np.testing.assert_allclose(result.as_numpy("scores"), expected, atol=1e-5, rtol=0)
    assert result.as_numpy("truncated").reshape(-1).tolist() == [p.truncated for p in predictions]


@pytest.mark.triton
def test_health_readiness_and_metadata(served):
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{served.name}/ready"):
        with urllib.request.urlopen(f"http://{served.http}{path}", timeout=10) as r:
            assert r.status == 200
    import tritonclient.grpc as grpcclient

    meta = grpcclient.InferenceServerClient(served.grpc).get_model_metadata(served.name, as_json=True)
    assert [i["name"] for i in meta["inputs"]] == ["text", "text_pair"]
    assert [o["name"] for o in meta["outputs"]] == ["label", "scores", "truncated"]
    log = served.log.read_text()
    assert "warming up" in log and "a first request answered" in log


@pytest.mark.triton
def test_http_and_grpc_answer_as_the_predictor_on_dev_rows(served, dev_rows, rte_predictor):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    expected = rte_predictor.predict(dev_rows)
    assert any(p.truncated for p in expected)  # long rows are cut to max_seq_len in the server too
    http = httpclient.InferenceServerClient(served.http)
    for i in range(0, ROWS, 8):  # batches over HTTP
        assert_same(
            http.infer(served.name, text_inputs(httpclient, dev_rows[i : i + 8])), expected[i : i + 8]
        )
    grpc = grpcclient.InferenceServerClient(served.grpc)
    for i in range(0, ROWS, 5):  # batches over gRPC
        assert_same(
            grpc.infer(served.name, text_inputs(grpcclient, dev_rows[i : i + 5])), expected[i : i + 5]
        )

    def one(i: int):  # single rows from 8 callers at once: Triton merges them (dynamic batching)
        client = grpcclient.InferenceServerClient(served.grpc)
        return client.infer(served.name, text_inputs(grpcclient, dev_rows[i : i + 1]))

    with ThreadPoolExecutor(8) as pool:
        for i, result in enumerate(pool.map(one, range(ROWS))):
            assert_same(result, expected[i : i + 1])


@pytest.mark.triton
def test_bad_requests_get_an_error_and_the_server_goes_on(served, dev_rows, rte_predictor):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(served.http)
    good = dev_rows[:2]
    expected = rte_predictor.predict(good)

    def raw(name: str, values: list[bytes], datatype: str = "BYTES", shape: list[int] | None = None):
        array = np.array([[v] for v in values], dtype=np.object_).reshape(shape or [len(values), 1])
        tensor = httpclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        return tensor

    ints = httpclient.InferInput("text", [1, 1], "INT64")
    ints.set_data_from_numpy(np.array([[7]], dtype=np.int64))
    bad = {
        "missing input": [raw("text", [b"only the first sentence"])],
        "wrong datatype": [ints, raw("text_pair", [b"x"])],
        "empty batch": [raw("text", [], shape=[0, 1]), raw("text_pair", [], shape=[0, 1])],
        "1 MB string": [raw("text", [b"a" * (1 << 20)]), raw("text_pair", [b"x"])],
        "not UTF-8": [raw("text", [b"\xff\xfe bad"]), raw("text_pair", [b"x"])],
    }
    for what, inputs in bad.items():
        with pytest.raises(InferenceServerException) as info:
            client.infer(served.name, inputs)
        assert str(info.value), what
        assert_same(client.infer(served.name, text_inputs(httpclient, good)), expected)  # still answers
    assert "not UTF-8" in str(_error(client, served.name, bad["not UTF-8"]))
    assert "limit is 65536" in str(_error(client, served.name, bad["1 MB string"]))

    # a bad request merged with good ones fails alone
    def send(inputs):
        try:
            return httpclient.InferenceServerClient(served.http).infer(served.name, inputs)
        except InferenceServerException as exc:
            return exc

    batch = [text_inputs(httpclient, good)] * 6 + [bad["not UTF-8"]]
    with ThreadPoolExecutor(len(batch)) as pool:
        results = list(pool.map(send, batch))
    assert isinstance(results[-1], InferenceServerException)
    for result in results[:-1]:
        assert_same(result, expected)


def _error(client, name, inputs):
    from tritonclient.utils import InferenceServerException

    try:
        client.infer(name, inputs)
    except InferenceServerException as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.triton
def test_sigterm_stops_it_within_seconds(served):
    """Last in the module: the fixture's server is stopped here."""
    code, seconds = stop(served.proc, signal.SIGTERM)
    print(f"stopped in {seconds:.1f} s")
    assert code == 0 and seconds < 10, served.log.read_text()
    assert "[serve] stopped (tritonserver exit code" in served.log.read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{served.http}/v2/health/live", timeout=2)


# ---- refused before anything starts (no server needed) -----------------------------------------


def run_cli(*args: object):
    return CliRunner().invoke(cli, ["serve", *map(str, args)])


def test_missing_export_is_one_line(tmp_path):
    result = run_cli(tmp_path / "nope")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: export directory {tmp_path / 'nope'} does not exist"
    ]


def test_port_in_use_is_one_line(tritonserver, rte_export):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli(rte_export, "--http-port", port, "--grpc-port", port + 1 if port < 65535 else 1)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: --http-port {port}: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--instances", 0), 1, "--instances must be at least 1, got 0"),
        (("--max-batch-size", 0), 1, "--max-batch-size must be at least 1, got 0"),
        (("--http-port", 9000, "--grpc-port", 9000), 1, "the ports must differ"),
        (("--backend", "onnx"), 2, "Invalid value for '--backend'"),
        (("--backend", "trt", "--ort-provider", "cuda"), 1, "applies to --backend ort"),
    ],
)
def test_bad_options(rte_export, args, code, message):
    result = run_cli(rte_export, *args)
    assert result.exit_code == code
    assert message in result.output


def test_trt_backend_needs_a_gpu(rte_export):
    from nxm_deploy.runtime.availability import trt_unavailable_reason

    if trt_unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are here")
    result = run_cli(rte_export, "--backend", "trt")
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1
