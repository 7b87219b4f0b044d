"""INT8 exports of a tiny 2:4 run: static Q/DQ calibrated on the run's training rows, the N:M check
through DequantizeLinear in both weight forms (an INT8 initializer; a float one behind Q -> DQ), the
agreement with PyTorch on the real RTE dev rows, int8-dynamic, and the refusals (one line each)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import record_training_rows
from onnx import helper, numpy_helper

from nxm_deploy.check.onnx import check_onnx, require_sparse_layers
from nxm_deploy.cli import cli
from nxm_deploy.errors import ExportError
from nxm_deploy.export import ExportConfig, export, quantize
from nxm_deploy.models import LayerRule

from .conftest import QUERY0
from .test_polygraphy import polygraphy_verdicts

CALIBRATION_ROWS = 32


@pytest.fixture(scope="session")
def int8_run(tmp_path_factory: pytest.TempPathFactory, sparse_run: Path, glue_dir: Path) -> Path:
    run = Path(shutil.copytree(sparse_run, tmp_path_factory.mktemp("int8") / "run"))
    return record_training_rows(run, glue_dir, limit=64)


@pytest.fixture(scope="session")
def int8_export(tmp_path_factory: pytest.TempPathFactory, int8_run: Path, glue_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("int8-exports") / "int8"
    config = ExportConfig(run_dir=int8_run, out=out, data_dir=glue_dir, quantize="int8",
                          calibration_rows=CALIBRATION_ROWS, batches=(2,), seq_lens=(16,))  # fmt: skip
    export(config)
    return out


def manifest_of(export_dir: Path) -> dict:
    return json.loads((export_dir / "export.json").read_text(encoding="utf-8"))


def weight_dequantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    inits = {t.name: t for t in model.graph.initializer}
    int8 = {n for n, t in inits.items() if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2}
    return [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8]


def test_int8_manifest_records_quantizer_calibration_and_agreement(int8_export, int8_run):
    m = manifest_of(int8_export)
    run = json.loads((int8_run / "nxm.json").read_text())
    assert m["schema"] == 2 and m["onnx"]["precision"] == "int8"
    q = m["quantization"]
    assert q["mode"] == "int8" and q["function"] == "onnxruntime.quantization.quantize_static"
    assert q["format"] == "QDQ" and q["onnxruntime_version"]
    axes = {"MatMul": 1, "Gemm": "0 (B is [N, K], transB=1)"}
    assert q["weights"] == {"type": "int8", "symmetric": True, "per_channel": True, "per_channel_axis": axes}
    assert q["activations"]["type"] == "int8" and q["activations"]["symmetric"]
    assert q["extra_options"]["QDQOpTypePerChannelSupportToAxis"] == {"MatMul": 1}
    cal = q["calibration"]
    assert cal["split"] == "train" and cal["rows"] == CALIBRATION_ROWS and cal["of_train_rows"] == 64
    assert cal["run_train_sha256"] == run["data"]["train_sha256"] and len(cal["sha256"]) == 64
    assert cal["sha256"] != cal["run_train_sha256"]  # a subset, drawn with the seed
    agree = q["agreement"]
    assert agree["rows"] == 277 and agree["source"].endswith("dev.tsv")  # the whole RTE dev split
    assert agree["agreement"] >= 0.99 and agree["ok"]
    assert set(agree["metrics"]["onnx"]) == {"accuracy"} and 0 <= agree["main"]["onnx"] <= 1
    assert 0 < agree["logits"]["max_abs_diff"] < 0.5  # INT8 moves the logits, but not much
    assert m["parity"]["ok"] and "before quantization" in m["parity"]["of"]
    assert q["smoothquant"]["alpha"] == quantize.DEFAULT_SMOOTH_ALPHA and q["smoothquant"]["tensors"] == 10
    assert q["graph"]["activation_products_left_fp32"] == 4
    assert m["tensorrt"]["precision"] == "int8"
    assert "--stronglyTyped" in (int8_export / "build_engine.sh").read_text()
    assert not any(".fp32-" in f for f in m["files"])  # the FP32 intermediate is gone


def test_int8_graph_is_symmetric_per_output_channel(int8_export):
    model = onnx.load(str(int8_export / "model.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consumers = {i: n for n in model.graph.node for i in n.input}
    dqs = weight_dequantizers(model)
    matmul = [n for n in dqs if consumers[n.output[0]].op_type == "MatMul"]
    assert len(matmul) == 12  # every encoder linear
    for node in matmul:
        w, scale, zp = (inits[name] for name in node.input)
        axis = next(a.i for a in node.attribute if a.name == "axis")
        assert axis == 1 and scale.shape == (w.shape[1],)  # one scale per output column N of [K, N]
        assert zp.dtype == np.int8 and not zp.any()  # symmetric
    activations = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert activations and all(not inits[n.input[2]].any() for n in activations)


@pytest.fixture(scope="session")
def int8_export_unsmoothed(tmp_path_factory: pytest.TempPathFactory, int8_run: Path, glue_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("int8-exports") / "int8-unsmoothed"
    config = ExportConfig(run_dir=int8_run, out=out, data_dir=glue_dir, quantize="int8", smooth_alpha=0.0,
                          calibration_rows=CALIBRATION_ROWS, batches=(2,), seq_lens=(16,))  # fmt: skip
    export(config)
    return out


@pytest.mark.parametrize("which", ["smoothed", "unsmoothed"])
def test_int8_quantizes_only_weight_products_and_onnxruntime_runs_them_in_int8(
    which, int8_export, int8_export_unsmoothed
):
    """Only the inputs of MatMul/Gemm with INT8 weights are quantized, each through a Q -> DQ pair of its
    own; the attention products and the residual stream stay FP32; and ONNX Runtime's optimized graph
    runs every weight product as an integer kernel (a float MatMul over dequantized weights would be
    slower than FP32). Without SmoothQuant the quantizer's pairs sit on the LayerNorm outputs themselves,
    which residual Adds read too: those reads get the FP32 tensor back."""
    import onnxruntime as ort

    export_dir = int8_export if which == "smoothed" else int8_export_unsmoothed
    graph = manifest_of(export_dir)["quantization"]["graph"]
    if which == "unsmoothed":
        assert manifest_of(export_dir)["quantization"]["smoothquant"] is None
        # the quantizer's pair on each layer's second LayerNorm output is read by the FFN input and by
        # the residual Add; the Add gets the FP32 tensor back (one per layer)
        assert graph["float_reads_restored"] == 2
    model = onnx.load(str(export_dir / "model.onnx"))
    by_output = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    weight_dq = {n.output[0] for n in weight_dequantizers(model)}
    products = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in weight_dq]
    assert len(products) == 14  # 12 encoder linears, the pooler and the classifier
    quantized = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert len(quantized) == len(products)  # one pair per product: Q, K and V each have their own
    for q in quantized:
        (dq,) = readers[q.output[0]]
        assert dq.op_type == "DequantizeLinear"
        (reader,) = readers[dq.output[0]]
        assert reader in products and reader.input[0] == dq.output[0]
    attention = [n for n in model.graph.node if n.op_type == "MatMul" and n not in products]
    assert len(attention) == 4  # scores and weighted sum, 2 layers
    for n in attention:
        assert all(by_output[i].op_type != "DequantizeLinear" for i in n.input if i in by_output)

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(export_dir.parent / f"optimized-{which}.onnx")
    ort.InferenceSession(str(export_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath)
    ops = [n.op_type for n in optimized.graph.node]
    integer = sum(ops.count(op) for op in ("MatMulIntegerToFloat", "QLinearMatMul", "QGemm", "MatMulInteger"))
    assert integer == 14, sorted(set(ops))
    produced = {o: n.op_type for n in optimized.graph.node for o in n.output}
    float_products = [n for n in optimized.graph.node if n.op_type in ("MatMul", "Gemm", "FusedMatMul")]
    assert all(produced.get(i) != "DequantizeLinear" for n in float_products for i in n.input)


def test_smoothquant_keeps_the_fp32_function_and_the_zeros(sparse_export):
    """SmoothQuant moves each input channel's scale into the weight rows: the FP32 outputs stay the same,
    every weight keeps its zeros (its N:M pattern), and only the products read the scaled inputs."""
    import onnxruntime as ort

    from nxm_deploy.export.smooth import smooth_onnx

    path = sparse_export / "model.onnx"
    model = onnx.load(str(path))
    before = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    rng = np.random.default_rng(0)
    names = [i.name for i in model.graph.input]
    feeds = [{n: (rng.integers(5, 90, (2, 16)) if n == "input_ids" else np.ones((2, 16), np.int64)
                  if n == "attention_mask" else np.zeros((2, 16), np.int64)).astype(np.int64)
              for n in names} for _ in range(4)]  # fmt: skip
    stats = smooth_onnx(model, feeds, alpha=0.95)
    # per layer one input for Q, K and V together, attention out, FFN in, FFN out; pooler; classifier
    assert stats["alpha"] == 0.95 and stats["tensors"] == 2 * 4 + 2
    after = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    changed = [n for n in before if before[n].ndim == 2 and not np.array_equal(before[n], after[n])]
    assert len(changed) == 14
    for name in changed:
        assert np.array_equal(before[name] == 0, after[name] == 0)
    muls = [n for n in model.graph.node if n.op_type == "Mul" and n.name.endswith("_smooth_mul")]
    readers = [r for m in muls for r in model.graph.node if m.output[0] in r.input]
    assert len(muls) == 10 and all(r.op_type in ("MatMul", "Gemm") for r in readers) and len(readers) == 14
    a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in feeds:
        np.testing.assert_allclose(b.run(None, feed)[0], a.run(None, feed)[0], rtol=1e-4, atol=1e-4)


def test_int8_holds_the_pattern_and_maps_to_layers_without_the_run(int8_export, int8_run):
    report = check_onnx(int8_export / "model.onnx", "2:4")
    run = json.loads((int8_run / "nxm.json").read_text())
    assert report.ok and {r.layer for r in report.rows} == set(run["layers"])
    assert all(r.density == 0.5 for r in report.rows)
    section = manifest_of(int8_export)["sparsity"]
    assert section["ok"] and all(t["ok"] for t in section["tensors"] if t["expected_sparse"])


def _break(model: onnx.ModelProto, name: str, values: np.ndarray) -> None:
    for t in model.graph.initializer:
        if t.name == name:
            t.CopyFrom(numpy_helper.from_array(values.astype(numpy_helper.to_array(t).dtype), name))


def test_a_broken_int8_weight_is_caught(int8_export, int8_run, tmp_path):
    model = onnx.load(str(int8_export / "model.onnx"))
    name = next(r.name for r in check_onnx(int8_export / "model.onnx").rows if r.layer == QUERY0)
    w = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name)
    _break(model, name, np.where(w == 0, 7, w))  # every pruned weight now nonzero
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    rows = {r.layer: r for r in check_onnx(path).rows}
    assert not rows[QUERY0].ok and rows[QUERY0].density == 1.0
    assert sum(not r.ok for r in rows.values()) == 1
    layers = json.loads((int8_run / "nxm.json").read_text())["layers"]
    with pytest.raises(ExportError, match=QUERY0.replace(".", r"\.")):
        require_sparse_layers(path, layers, "2:4", {})


def test_values_equal_to_the_zero_point_count_as_zeros(int8_export, tmp_path):
    model = onnx.load(str(int8_export / "model.onnx"))
    name = next(r.name for r in check_onnx(int8_export / "model.onnx").rows if r.layer == QUERY0)
    dq = next(n for n in weight_dequantizers(model) if n.input[0] == name)
    w = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == dq.input[0])
    _break(model, dq.input[0], np.where(w == 0, 3, w))  # "zeros" stored as 3 ...
    _break(model, dq.input[2], np.full(w.shape[1], 3))  # ... with zero point 3: still 2:4
    onnx.save(model, str(tmp_path / "zp3.onnx"))
    row = next(r for r in check_onnx(tmp_path / "zp3.onnx").rows if r.name == dq.input[0])
    assert row.ok and row.density <= 0.5
    _break(model, dq.input[2], np.full(w.shape[1], 5))  # zero point 5: none of them is a zero
    onnx.save(model, str(tmp_path / "zp5.onnx"))
    row = next(r for r in check_onnx(tmp_path / "zp5.onnx").rows if r.name == dq.input[0])
    assert not row.ok


def to_float_qdq(model: onnx.ModelProto) -> dict[str, str]:
    """Rewrite every INT8 weight initializer -> DequantizeLinear as float initializer -> QuantizeLinear ->
    DequantizeLinear (the other form a Q/DQ ONNX takes); return int8 name -> float name."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    renamed = {}
    for dq in weight_dequantizers(model):
        q_name, scale, zp = dq.input
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        shape = [-1, 1] if axis == 0 else [1, -1]  # per output channel: N of MatMul [K, N], Gemm [N, K]
        zero, step = inits[zp].astype(np.float32).reshape(shape), inits[scale].reshape(shape)
        w = (inits[q_name].astype(np.float32) - zero) * step
        float_name = q_name.removesuffix("_quantized") + "_float"
        model.graph.initializer.append(numpy_helper.from_array(w.astype(np.float32), float_name))
        q = helper.make_node("QuantizeLinear", [float_name, scale, zp], [f"{float_name}_q"], axis=axis)
        model.graph.node.insert(0, q)
        dq.input[0] = f"{float_name}_q"
        renamed[q_name] = float_name
    kept = [t for t in model.graph.initializer if t.name not in renamed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return renamed


def test_float_weights_behind_q_dq_are_checked_and_polygraphy_agrees(int8_export, tmp_path):
    model = onnx.load(str(int8_export / "model.onnx"))
    renamed = to_float_qdq(model)
    path = tmp_path / "qdq-float.onnx"
    onnx.save(model, str(path))
    all_rows = {r.name: r for r in check_onnx(path, "2:4", rule=LayerRule(include=("*",))).rows}
    assert set(renamed.values()) <= set(all_rows)
    ours = {n: r.ok for n, r in all_rows.items() if n in renamed.values()}
    assert sum(ours.values()) == 12  # the encoder weights; pooler and classifier are dense
    theirs = polygraphy_verdicts(path)
    assert {n: theirs[n] for n in ours} == ours
    # a broken float weight is caught as well
    query = next(r.name for r in check_onnx(path).rows if r.layer == QUERY0)
    w = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == query)
    _break(model, query, np.where(w == 0, np.abs(w).max(), w))
    onnx.save(model, str(tmp_path / "qdq-broken.onnx"))
    rows = {r.layer: r for r in check_onnx(tmp_path / "qdq-broken.onnx").rows}
    assert not rows[QUERY0].ok and sum(not r.ok for r in rows.values()) == 1
    assert polygraphy_verdicts(tmp_path / "qdq-broken.onnx")[query] is False


def test_export_fails_when_quantization_loses_the_pattern(int8_run, glue_dir, tmp_path, monkeypatch):
    real = quantize.quantize_onnx

    def quantize_then_damage(fp32, out, *args):
        section = real(fp32, out, *args)
        model = onnx.load(str(out))
        matmul_b = {n.input[1] for n in model.graph.node if n.op_type == "MatMul"}
        dq = next(n for n in weight_dequantizers(model) if n.output[0] in matmul_b)
        w = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == dq.input[0])
        _break(model, dq.input[0], np.where(w == 0, 1, w))
        onnx.save(model, str(out))
        return section

    monkeypatch.setattr(quantize, "quantize_onnx", quantize_then_damage)
    out = tmp_path / "lost"
    config = ExportConfig(run_dir=int8_run, out=out, data_dir=glue_dir, quantize="int8",
                          calibration_rows=8, batches=(2,), seq_lens=(16,))  # fmt: skip
    with pytest.raises(ExportError, match="not 2:4 in the ONNX graph"):
        export(config)
    assert not out.exists()


def test_int8_dynamic_export(int8_run, glue_dir, tmp_path):
    out = tmp_path / "dynamic"
    export(ExportConfig(run_dir=int8_run, out=out, data_dir=glue_dir, quantize="int8-dynamic",
                        batches=(2,), seq_lens=(16,)))  # fmt: skip
    m = manifest_of(out)
    q = m["quantization"]
    assert q["mode"] == "int8-dynamic" and q["calibration"] is None
    assert q["function"] == "onnxruntime.quantization.quantize_dynamic"
    assert q["agreement"]["agreement"] >= 0.99 and m["tensorrt"]["build_script"] is None
    assert not (out / "build_engine.sh").exists()
    report = check_onnx(out / "model.onnx")  # MatMulInteger, mapped to its layer through its metadata
    assert report.ok and len(report.rows) == 12
    assert {r.layer for r in report.rows} == set(json.loads((int8_run / "nxm.json").read_text())["layers"])


def _one_error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 1, result.output
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_refused_when_the_training_rows_are_gone(int8_run, glue_dir, tmp_path):
    run = Path(shutil.copytree(int8_run, tmp_path / "run"))
    body = json.loads((run / "nxm.json").read_text())
    body["data"]["train_sha256"] = "0" * 64  # the file now holds other rows than the run trained on
    (run / "nxm.json").write_text(json.dumps(body))
    runner = CliRunner()
    args = ["export", str(run), "--out", str(tmp_path / "x"), "--quantize", "int8", "--data-dir"]
    line = _one_error_line(runner.invoke(cli, [*args, str(glue_dir)]))
    assert "training rows" in line and "gone" in line
    (tmp_path / "glue-without-task").mkdir()  # a data directory that no longer holds the task's files
    line = _one_error_line(runner.invoke(cli, [*args, str(tmp_path / "glue-without-task")]))
    assert "training rows" in line and "gone" in line and "glue-without-task" in line
    line = _one_error_line(runner.invoke(cli, [*args, str(tmp_path / "no-such-glue")]))
    assert "GLUE data directory" in line and "no-such-glue" in line and "does not exist" in line
    assert not (tmp_path / "x").exists()


def test_refused_unknown_calibration_method_and_dynamic_for_tensorrt(int8_run, tmp_path):
    runner = CliRunner()
    base = ["export", str(int8_run), "--out", str(tmp_path / "x")]
    line = _one_error_line(runner.invoke(cli, [*base, "--quantize", "int8", "--calibration-method", "kl"]))
    assert "unknown calibration method 'kl'" in line and "minmax, entropy, percentile" in line
    line = _one_error_line(runner.invoke(cli, [*base, "--quantize", "int8", "--smooth-alpha", "1"]))
    assert "--smooth-alpha" in line and "got 1.0" in line
    line = _one_error_line(runner.invoke(cli, [*base, "--quantize", "int8-dynamic", "--engine", "trt"]))
    assert "int8-dynamic" in line and "TensorRT" in line
    assert not (tmp_path / "x").exists()


def test_predictor_and_triton_serve_the_int8_export(int8_export, sparse_export, tmp_path):
    from nxm_deploy.runtime import Predictor
    from nxm_deploy.runtime.triton import TritonOptions, write_triton_repo

    pairs = [("A man is sleeping.", "Nobody sleeps."), ("The cat sat on the mat.", "A cat is sitting.")]
    int8 = Predictor.from_export(int8_export).predict(pairs)
    fp32 = Predictor.from_export(sparse_export).predict(pairs)  # the same run in FP32
    assert [p.label for p in int8] == [p.label for p in fp32]
    for a, b in zip(int8, fp32, strict=True):
        assert set(a.scores) == set(b.scores) and abs(sum(a.scores.values()) - 1) < 1e-5
    model = write_triton_repo(int8_export, tmp_path / "repo", TritonOptions(name="int8", max_batch_size=8))
    assert model.platform == "onnxruntime_onnx"
    served = model.path / "1" / "model.onnx"
    assert served.read_bytes() == (int8_export / "model.onnx").read_bytes()
    assert check_onnx(served).ok
