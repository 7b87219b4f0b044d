"""The ONNX N:M check on small graphs built with ``onnx.helper``: which axis, through which ops,
mapped to which PyTorch layer, and which weights the default selection takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from nxm_deploy import nm
from nxm_deploy.check.onnx import check_onnx, load_onnx, require_sparse_layers, weights_from_model
from nxm_deploy.errors import ExportError, UserError
from nxm_deploy.models import LayerRule

RNG = np.random.default_rng(0)


def sparse(shape: Sequence[int], axis: int) -> np.ndarray:
    """Random float32 of ``shape`` that holds 2:4 along ``axis`` and (almost surely) no other."""
    w = torch.from_numpy(RNG.standard_normal(shape).astype(np.float32))
    return nm.project(w, "2:4", axis=axis).numpy()


def save(tmp_path: Path, nodes: list, inits: list, rank: int = 2) -> Path:
    """A graph with float input ``x`` and output ``y``, both of symbolic shape and rank ``rank``."""
    dims = [f"d{i}" for i in range(rank)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def init(name: str, a: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(a, name)


def only_row(path: Path, **kw):
    report = check_onnx(path, rule=LayerRule(include=("*",)), **kw)
    assert len(report.rows) == 1, report.rows
    return report.rows[0]


def test_matmul_weight_groups_run_along_axis_0(tmp_path):
    w = sparse((16, 8), axis=0)  # [K, N]
    path = save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [init("w", w)])
    row = only_row(path)
    assert (row.name, row.axis, row.ok, row.shape) == ("w", 0, True, (16, 8))


def test_matmul_weight_sparse_along_the_wrong_axis_fails(tmp_path):
    w = sparse((16, 8), axis=1)  # 2:4 along N, not along K
    path = save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [init("w", w)])
    row = only_row(path)
    assert row.axis == 0 and not row.ok and row.first_bad is not None


@pytest.mark.parametrize(("trans_b", "axis"), [(1, 1), (0, 0)])
def test_gemm_axis_follows_transB(tmp_path, trans_b, axis):
    w = sparse((8, 16) if trans_b else (16, 8), axis=axis)
    node = helper.make_node("Gemm", ["x", "w"], ["y"], transB=trans_b)
    row = only_row(save(tmp_path, [node], [init("w", w)]))
    assert row.axis == axis and row.ok


def test_transpose_2d_maps_the_axis_back(tmp_path):
    w = sparse((8, 16), axis=1)  # stored [N, K]; Transpose makes it [K, N] for MatMul
    nodes = [
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["y"]),
    ]
    row = only_row(save(tmp_path, nodes, [init("w", w)]))
    assert (row.name, row.axis, row.ok) == ("w", 1, True)


def test_transpose_without_perm_reverses_axes(tmp_path):
    w = sparse((8, 16), axis=1)
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]), helper.make_node("MatMul", ["x", "wt"], ["y"])]
    assert only_row(save(tmp_path, nodes, [init("w", w)])).axis == 1


def test_transpose_3d_uses_perm_of_the_consumer_axis(tmp_path):
    # Stored S [K=8, N=4, batch=4]; Transpose(perm=[2, 0, 1]) gives B [batch, K, N] for a batched
    # MatMul, which reduces over B's axis -2 (K). Axis a of the output is axis perm[a] of the input,
    # so the groups run along S's axis perm[1] = 0. Polygraphy's rule, perm.index(1) = 2, would
    # check axis 2, along which S is not 2:4.
    s = sparse((8, 4, 4), axis=0)
    assert not nm.check(torch.from_numpy(s), "2:4", axis=[2, 0, 1].index(1)).ok
    nodes = [
        helper.make_node("Transpose", ["s"], ["b"], perm=[2, 0, 1]),
        helper.make_node("MatMul", ["x", "b"], ["y"]),
    ]
    row = only_row(save(tmp_path, nodes, [init("s", s)], rank=3))
    assert (row.name, row.axis, row.ok) == ("s", 0, True)


def test_two_transposes_compose(tmp_path):
    # S [N=4, batch=2, K=8] -perm [1,0,2]-> [batch, N, K] -perm [0,2,1]-> [batch, K, N]: K is S's axis 2.
    s = sparse((4, 2, 8), axis=2)
    nodes = [
        helper.make_node("Transpose", ["s"], ["t1"], perm=[1, 0, 2]),
        helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "t2"], ["y"]),
    ]
    assert only_row(save(tmp_path, nodes, [init("s", s)], rank=3)).axis == 2


def test_cast_and_dequantize_linear_are_followed(tmp_path):
    w16 = sparse((16, 8), axis=0).astype(np.float16)
    q = np.clip(np.round(sparse((8, 16), axis=1) * 20), -127, 127).astype(np.int8)  # zeros stay zeros
    nodes = [
        helper.make_node("Cast", ["w16"], ["w32"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["x", "w32"], ["h"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        helper.make_node("Transpose", ["dq"], ["dqt"], perm=[1, 0]),
        helper.make_node("MatMul", ["h", "dqt"], ["y"]),
    ]
    inits = [
        init("w16", w16),
        init("q", q),
        init("scale", np.array(0.05, dtype=np.float32)),
        init("zero", np.array(0, dtype=np.int8)),
    ]
    rows = {r.name: r for r in check_onnx(save(tmp_path, nodes, inits), rule=LayerRule(include=("*",))).rows}
    assert set(rows) == {"w16", "q"}
    assert (rows["w16"].axis, rows["w16"].ok) == (0, True)
    assert (rows["q"].axis, rows["q"].ok, rows["q"].shape) == (1, True, (8, 16))


def test_bfloat16_weight_is_checked_exactly(tmp_path):
    import ml_dtypes

    w = sparse((16, 8), axis=0).astype(ml_dtypes.bfloat16)
    nodes = [
        helper.make_node("Cast", ["w"], ["w32"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["x", "w32"], ["y"]),
    ]
    row = only_row(save(tmp_path, nodes, [init("w", w)]))
    assert (row.axis, row.ok, row.density) == (0, True, 0.5)


def test_constant_node_weight(tmp_path):
    w = sparse((16, 8), axis=0)
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(w, "c")),
        helper.make_node("MatMul", ["x", "c"], ["y"]),
    ]
    row = only_row(save(tmp_path, nodes, []))
    assert (row.name, row.axis, row.ok) == ("c", 0, True)


def test_activations_and_vectors_are_not_weights(tmp_path):
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "xt"], ["h"]),  # activation @ activation
        helper.make_node("MatMul", ["h", "v"], ["y"]),  # 1-D weight: no K axis to group
    ]
    report = check_onnx(
        save(tmp_path, nodes, [init("v", np.ones(8, np.float32))]), rule=LayerRule(include=("*",))
    )
    assert report.rows == [] and not report.ok


def test_axis_that_does_not_divide_by_m_is_skipped(tmp_path):
    w = np.ones((10, 8), np.float32)  # K = 10
    path = save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [init("w", w)])
    assert check_onnx(path, rule=LayerRule(include=("*",))).rows == []


def _bert_like(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Two encoder weights (one named by metadata, one by a TorchScript-style node name) and a
    classifier Gemm named by its initializer; values as PyTorch [out, in] weights."""
    q = sparse((16, 16), axis=1)  # nn.Linear [out, in], 2:4 along in
    o = sparse((16, 16), axis=1)
    cls = RNG.standard_normal((2, 16)).astype(np.float32)
    mm0 = helper.make_node("MatMul", ["x", "val_7"], ["h0"], name="node_linear")
    entry = mm0.metadata_props.add()
    entry.key = "pkg.torch.onnx.name_scopes"
    entry.value = "['', 'bert', 'bert.encoder.layer.0.attention.self.query', 'linear']"
    mm1 = helper.make_node(
        "MatMul", ["h0", "onnx::MatMul_9"], ["h1"], name="/bert/encoder/layer.1/output/dense/MatMul"
    )
    gemm = helper.make_node("Gemm", ["h1", "classifier.weight"], ["y"], transB=1)
    inits = [init("val_7", q.T.copy()), init("onnx::MatMul_9", o.T.copy()), init("classifier.weight", cls)]
    reference = {
        "bert.encoder.layer.0.attention.self.query": q,
        "bert.encoder.layer.1.output.dense": o,
        "classifier": cls,
    }
    return save(tmp_path, [mm0, mm1, gemm], inits), reference


def test_layers_are_mapped_from_metadata_node_names_and_initializer_names(tmp_path):
    path, _ = _bert_like(tmp_path)
    rows = {r.name: r for r in check_onnx(path, rule=LayerRule(include=("*",))).rows}
    assert rows["val_7"].layer == "bert.encoder.layer.0.attention.self.query"
    assert rows["onnx::MatMul_9"].layer == "bert.encoder.layer.1.output.dense"
    assert rows["classifier.weight"].layer == "classifier"
    assert rows["classifier.weight"].axis == 1 and rows["val_7"].axis == 0


def test_default_selection_is_the_encoder_blocks(tmp_path):
    path, _ = _bert_like(tmp_path)
    report = check_onnx(path)
    assert [r.name for r in report.rows] == ["val_7", "onnx::MatMul_9"]
    assert report.ok


def test_include_and_exclude_match_tensor_or_layer_names(tmp_path):
    path, _ = _bert_like(tmp_path)
    assert [r.name for r in check_onnx(path, rule=LayerRule(include=("classifier*",))).rows] == [
        "classifier.weight"
    ]
    assert [r.name for r in check_onnx(path, rule=LayerRule(include=("val_*",))).rows] == ["val_7"]
    assert [r.name for r in check_onnx(path, rule=LayerRule(exclude=("*.output.*",))).rows] == ["val_7"]


def test_value_mapping_finds_renamed_and_transposed_weights(tmp_path):
    q = sparse((16, 16), axis=1)
    k = sparse((16, 16), axis=1)
    nodes = [helper.make_node("MatMul", ["x", "a"], ["h"]), helper.make_node("MatMul", ["h", "b"], ["y"])]
    path = save(tmp_path, nodes, [init("a", q.T.copy()), init("b", k.T.copy())])
    layers = {"enc.layer.0.q": torch.from_numpy(q), "enc.layer.0.k": torch.from_numpy(k)}
    model = load_onnx(path)
    assert [w.layer for w in weights_from_model(model)] == [None, None]
    assert [w.layer for w in weights_from_model(model, layers)] == ["enc.layer.0.q", "enc.layer.0.k"]
    report = check_onnx(path, reference=layers)
    assert [(r.name, r.layer) for r in report.rows] == [("a", "enc.layer.0.q"), ("b", "enc.layer.0.k")]


def test_require_sparse_layers_names_every_missing_or_dense_layer(tmp_path):
    path, reference = _bert_like(tmp_path)
    layers = list(reference)[:2]
    report = require_sparse_layers(path, layers, "2:4", reference)
    assert {r.layer for r in report.rows} == set(layers)  # default selection: the encoder weights
    with pytest.raises(ExportError) as err:
        require_sparse_layers(path, [*layers, "classifier", "bert.pooler.dense"], "2:4", reference)
    msg = str(err.value)
    assert "2 layer(s)" in msg
    assert "classifier: ONNX tensor classifier.weight [2, 16] breaks 2:4 along axis 1" in msg
    assert "bert.pooler.dense: no MatMul/Gemm weight" in msg


def test_unreadable_onnx_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    with pytest.raises(UserError, match="not a readable ONNX model"):
        check_onnx(bad)
    with pytest.raises(UserError, match="does not exist"):
        check_onnx(tmp_path / "missing.onnx")
