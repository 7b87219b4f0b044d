"""nxm_deploy.export.trt: shapes, the trtexec script, the log and inspector parsers, the FP16 ONNX helper,
and (marked ``trt``) a real engine build that runs only where TensorRT and an NVIDIA GPU are present."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nxm_deploy.errors import EXIT_NEEDS_GPU, ExportError, TensorRTUnavailableError, UserError
from nxm_deploy.export import trt
from nxm_deploy.runtime.availability import trt_unavailable_reason

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]

# ------------------------------------------------------------------------------------------------
# Recorded text. Formats follow public sources:
# - The two "(Sparsity)" INFO lines: TensorRT developer guide, "Structured Sparsity" (its example:
#   "(Sparsity) Layers eligible for sparse math: conv1, conv2, conv3" / "(Sparsity) TRT inference plan
#   picked sparse implementation for layers: conv2, conv3"), and trtexec logs quoted in NVIDIA/TensorRT
#   issues #2169, #4054, #4056 ("[date] [I] [TRT] (Sparsity) ...", fused layers joined with " + ",
#   an empty list when no sparse kernel was picked).
# - Layer names: the torch ONNX exporter's "/bert/encoder/layer.0/.../MatMul" node names; Myelin
#   "{ForeignNode[...]}" names as TensorRT 10 prints them.
# The log below is synthesised in those formats for a 2-block BERT; it is not a captured run.

TRTEXEC_LOG = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v101300] [b35] # trtexec --onnx=model.onnx \
--saveEngine=model.engine --sparsity=enable --fp16 --verbose
[10/14/2025-09:12:01] [I] === Build Options ===
[10/14/2025-09:12:01] [I] Sparsity: Enabled
[10/14/2025-09:12:03] [V] [TRT] Parsing node: /bert/encoder/layer.0/attention/self/query/MatMul [MatMul]
[10/14/2025-09:12:44] [I] [TRT] Detected 3 inputs and 1 output network tensors.
[10/14/2025-09:12:44] [I] [TRT] Total Host Persistent Memory: 415792 bytes
[10/14/2025-09:12:44] [I] [TRT] (Sparsity) Layers eligible for sparse math: \
/bert/encoder/layer.0/attention/self/query/MatMul + /bert/encoder/layer.0/attention/self/query/Add, \
/bert/encoder/layer.0/intermediate/dense/MatMul, /bert/encoder/layer.0/output/dense/MatMul, \
/bert/encoder/layer.1/intermediate/dense/MatMul, /bert/encoder/layer.1/output/dense/MatMul
[10/14/2025-09:12:44] [I] [TRT] (Sparsity) TRT inference plan picked sparse implementation for layers: \
/bert/encoder/layer.0/intermediate/dense/MatMul, /bert/encoder/layer.1/intermediate/dense/MatMul
[10/14/2025-09:12:44] [I] [TRT] [MemUsageChange] TensorRT-managed allocation in building engine: \
CPU +0, GPU +44, now: CPU 0, GPU 44 (MiB)
[10/14/2025-09:12:45] [I] Engine built in 43.9 sec.
"""

# Our own ILogger writes "[I] [TRT] msg" lines; the developer guide's example, in that form.
OWN_LOGGER_LOG = """\
[V] [TRT] Timing Runner: conv2 (CaskConvolution)
[I] [TRT] (Sparsity) Layers eligible for sparse math: conv1, conv2, conv3
[I] [TRT] (Sparsity) TRT inference plan picked sparse implementation for layers: conv2, conv3
"""

# As in the logs quoted in NVIDIA/TensorRT #2169 and pytorch/TensorRT #1340: nothing picked.
NOTHING_PICKED_LOG = """\
[07/19/2022-11:58:20] [I] [TRT] (Sparsity) Layers eligible for sparse math: MatMul_51, MatMul_69, Gemm_725
[07/19/2022-11:58:20] [I] [TRT] (Sparsity) TRT inference plan picked sparse implementation for layers:
"""

# Inspector JSON, ProfilingVerbosity.DETAILED. Fields as in the TensorRT developer guide's "Engine
# Inspector" example (Name, LayerType, Inputs/Outputs with Name/Location/Dimensions/Format/Datatype,
# ParameterType, TacticName, TacticValue, StreamId, Metadata; "Bindings" at the top in TensorRT 10).
# Kernel names are the public xmma names: sm80_xmma_sparse_gemm_..._sptensor16x8x32 for sparse and
# sm80_xmma_gemm_..._tensor16x8x16 for dense. Synthesised in that schema, not captured.
INSPECTOR_TRT10 = json.dumps(
    {
        "Layers": [
            {
                "Name": "/bert/encoder/layer.0/intermediate/dense/MatMul",
                "LayerType": "CaskGemmMatrixMultiply",
                "Inputs": [
                    {
                        "Name": "/bert/encoder/layer.0/attention/output/LayerNorm/Add_1_output_0",
                        "Location": "Device",
                        "Dimensions": [-1, -1, 384],
                        "Format/Datatype": "Row major linear FP16 format",
                    }
                ],
                "Outputs": [
                    {
                        "Name": "/bert/encoder/layer.0/intermediate/dense/MatMul_output_0",
                        "Location": "Device",
                        "Dimensions": [-1, -1, 1536],
                        "Format/Datatype": "Row major linear FP16 format",
                    }
                ],
                "ParameterType": "Matrix Multiply",
                "TacticName": "sm80_xmma_sparse_gemm_f16f16_f16f32_f32_nt_n_tilesize128x128x64_stage3_"
                "warpsize2x2x1_sptensor16x8x32",
                "TacticValue": "0x6a4d5ed1e1b7a0c2",
                "StreamId": 0,
                "Metadata": "[ONNX Layer: /bert/encoder/layer.0/intermediate/dense/MatMul]",
            },
            {
                "Name": "/bert/encoder/layer.0/output/dense/MatMul",
                "LayerType": "CaskGemmMatrixMultiply",
                "Inputs": [],
                "Outputs": [{"Name": "o", "Format/Datatype": "Row major linear FP16 format"}],
                "ParameterType": "Matrix Multiply",
                "TacticName": "sm80_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x32_stage4_"
                "warpsize2x2x1_tensor16x8x16",
                "TacticValue": "0x1b2f0a9c3d4e5f60",
                "StreamId": 0,
                "Metadata": "",
            },
            {
                "Name": "{ForeignNode[/bert/encoder/layer.0/attention/self/MatMul.../Softmax]}",
                "LayerType": "Myelin",
                "Inputs": [],
                "Outputs": [{"Name": "ctx", "Format/Datatype": "Row major linear FP16 format"}],
                "TacticValue": "0x0000000000000000",
                "StreamId": 0,
                "Metadata": "",
            },
        ],
        "Bindings": ["input_ids", "attention_mask", "logits"],
    }
)

# TensorRT 11 schema: "I/O Tensors" replaces "Bindings", and tensors carry "Format" and "DataType"
# separately (TensorRT migration guide, "Migrating IEngineInspector Usage from TensorRT 10.x to 11.x").
INSPECTOR_TRT11 = json.dumps(
    {
        "Layers": [
            {
                "Name": "/bert/encoder/layer.1/intermediate/dense/MatMul",
                "LayerType": "CaskGemmMatrixMultiply",
                "Inputs": [
                    {"Name": "x", "Format": "Row major linear FP16 format (kLINEAR)", "DataType": "Half"}
                ],
                "Outputs": [
                    {"Name": "y", "Format": "Row major linear FP16 format (kLINEAR)", "DataType": "Half"}
                ],
                "TacticName": "sm90_xmma_sparse_gemm_f16f16_f16f32_f32_nt_n_tilesize128x256x64_"
                "sptensor16x8x32",
                "TacticValue": "0x7f00aa11bb22cc33",
            }
        ],
        "I/O Tensors": [
            {"Name": "input_ids", "IOMode": "Input", "DataType": "Int64", "Dimensions": [-1, -1]},
        ],
    }
)


# ------------------------------------------------------------------------------------------------
# Shapes


def test_parse_shape_reads_batch_by_sequence():
    assert trt.parse_shape("8x128") == (8, 128)
    assert trt.parse_shape(" 1 X 8 ") == (1, 8)


@pytest.mark.parametrize("text", ["8", "8x", "x128", "8x128x2", "0x128", "8x0", "-1x8", "ax8", ""])
def test_parse_shape_rejects_bad_text_in_one_line(text):
    with pytest.raises(ExportError) as err:
        trt.parse_shape(text)
    assert isinstance(err.value, UserError)
    assert "\n" not in str(err.value) and "for example 8x128" in str(err.value)


def test_the_default_profile_is_the_one_the_export_guide_states():
    """docs/export.md names the default ``--min/--opt/--max-shape``; a changed default must change it."""
    text = " ".join((Path(__file__).parents[2] / "docs" / "export.md").read_text(encoding="utf-8").split())
    stated = re.search(r"--max-shape`, default (\d+x\d+), (\d+x\d+), (\d+x\d+)", text)
    assert stated, "docs/export.md no longer states the default profile"
    assert trt.ShapeProfile.parse(*stated.groups()) == trt.DEFAULT_PROFILE


def test_profile_parse_and_validation():
    assert trt.ShapeProfile.parse("1x16", "4x64", "4x64").max == (4, 64)
    with pytest.raises(ExportError, match="min <= opt <= max"):
        trt.ShapeProfile.parse("1x8", "8x128", "4x512")  # batch opt > max
    with pytest.raises(ExportError, match="min <= opt <= max"):
        trt.ShapeProfile((1, 256), (8, 128), (32, 512))  # sequence min > opt
    with pytest.raises(ExportError, match="positive integers"):
        trt.ShapeProfile((0, 8), (8, 128), (32, 512))


def test_trt_major():
    assert trt.trt_major("10.13.0.35") == 10
    assert trt.trt_major("11.4.1") == 11
    assert trt.trt_major(None) is None and trt.trt_major("") is None


# ------------------------------------------------------------------------------------------------
# build_engine.sh


def _script_args(path: Path) -> list[str]:
    """trtexec's arguments from a build script: the continued command line, shell-split."""
    text = path.read_text()
    command = text[text.index('"${TRTEXEC:-trtexec}"') :].split(" 2>&1 | tee")[0]
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "${TRTEXEC:-trtexec}" and args[-1] == "$@"
    return args[1:-1]


def _flag_values(args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) if "=" in a else (a, "") for a in args)


def _write(tmp_path: Path, precision: str, version: str | None, **kw) -> list[str]:
    spec = trt.EngineSpec("model.onnx", "model.engine", INPUTS, trt.DEFAULT_PROFILE, precision, **kw)
    path = trt.write_build_script(tmp_path, spec, version)
    assert path == tmp_path / "build_engine.sh"
    return _script_args(path)


def test_build_script_is_executable_bash_that_runs_from_its_directory(tmp_path):
    spec = trt.EngineSpec("model.onnx", "model.engine", INPUTS, trt.DEFAULT_PROFILE, "fp32")
    path = trt.write_build_script(tmp_path, spec, "10.13.0")
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert 'cd "$(dirname "${BASH_SOURCE[0]}")"' in text
    assert os.access(path, os.X_OK) and path.stat().st_mode & 0o777 == 0o755
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


def test_build_script_shapes_cover_every_input_in_all_three_flags(tmp_path):
    flags = _flag_values(_write(tmp_path, "fp32", "10.13.0"))
    assert flags["--onnx"] == "model.onnx" and flags["--saveEngine"] == "model.engine"
    assert flags["--sparsity"] == "enable"
    expected = {"--minShapes": "1x8", "--optShapes": "8x128", "--maxShapes": "32x512"}
    for flag, shape in expected.items():
        pairs = dict(item.split(":") for item in flags[flag].split(","))
        assert pairs == {name: shape for name in INPUTS}, flag
    assert flags["--profilingVerbosity"] == "detailed"
    assert flags["--exportLayerInfo"] == "layers.json"
    assert "--verbose" in flags


@pytest.mark.parametrize(
    ("precision", "version", "onnx", "fp16_flag", "typed_flag"),
    [
        ("fp32", "10.13.0", "model.onnx", False, False),
        ("fp32", "11.4.1", "model.onnx", False, False),
        ("fp32", None, "model.onnx", False, False),
        ("fp16", "10.13.0", "model.onnx", True, False),  # weak typing: the FP32 ONNX with --fp16
        ("fp16", "11.4.1", "model_fp16.onnx", False, False),  # --fp16 removed in 11: the FP16 ONNX
        ("fp16", None, "model_fp16.onnx", False, True),  # unknown: FP16 ONNX, strongly typed (10 and 11)
    ],
)
def test_build_script_precision_flags_follow_tensorrt_version(
    tmp_path, precision, version, onnx, fp16_flag, typed_flag
):
    flags = _flag_values(_write(tmp_path, precision, version))
    assert flags["--onnx"] == onnx
    assert ("--fp16" in flags) is fp16_flag
    assert ("--stronglyTyped" in flags) is typed_flag
    assert not {"--int8", "--best", "--bf16"} & set(flags)


def test_build_script_quotes_odd_input_names_and_named_fp16_file(tmp_path):
    args = _write(tmp_path, "fp16", "11.0", fp16_onnx="weights fp16.onnx")
    assert "--onnx=weights fp16.onnx" in args
    spec = trt.EngineSpec("m.onnx", "m.engine", ["ids;rm"], trt.DEFAULT_PROFILE, "fp32")
    path = trt.write_build_script(tmp_path, spec, None)
    assert "--minShapes=ids;rm:1x8" in _script_args(path)


def test_build_script_rejects_unknown_precision_and_no_inputs(tmp_path):
    with pytest.raises(ExportError, match="unknown precision 'int4'"):
        trt.write_build_script(
            tmp_path, trt.EngineSpec("m.onnx", "m.engine", INPUTS, trt.DEFAULT_PROFILE, "int4"), None
        )
    with pytest.raises(ExportError, match="no model inputs"):
        trt.write_build_script(
            tmp_path, trt.EngineSpec("m.onnx", "m.engine", [], trt.DEFAULT_PROFILE, "fp32"), None
        )
    assert not (tmp_path / "build_engine.sh").exists()


@pytest.mark.parametrize(
    ("precision", "inputs", "message"),
    [
        ("int4", INPUTS, "unknown precision 'int4': choose one of fp32, fp16"),
        ("fp16", (), "no model inputs given for the TensorRT shape profile"),
    ],
)
def test_engine_spec_refuses_unknown_precision_and_no_inputs_in_one_line(precision, inputs, message):
    with pytest.raises(ExportError) as err:
        trt.EngineSpec("m.onnx", "m.engine", inputs, trt.DEFAULT_PROFILE, precision)
    assert str(err.value) == message and "\n" not in str(err.value)


def test_fp16_onnx_name():
    assert trt.fp16_onnx_name("model.onnx") == "model_fp16.onnx"
    assert trt.fp16_onnx_name("sub/encoder.onnx") == os.path.join("sub", "encoder_fp16.onnx")


# ------------------------------------------------------------------------------------------------
# Builder log


def test_parse_builder_log_trtexec_output():
    got = trt.parse_builder_log(TRTEXEC_LOG)
    assert got["sparsity_reported"] is True
    assert got["eligible_layers"] == [
        "/bert/encoder/layer.0/attention/self/query/MatMul + /bert/encoder/layer.0/attention/self/query/Add",
        "/bert/encoder/layer.0/intermediate/dense/MatMul",
        "/bert/encoder/layer.0/output/dense/MatMul",
        "/bert/encoder/layer.1/intermediate/dense/MatMul",
        "/bert/encoder/layer.1/output/dense/MatMul",
    ]
    assert got["sparse_layers"] == [
        "/bert/encoder/layer.0/intermediate/dense/MatMul",
        "/bert/encoder/layer.1/intermediate/dense/MatMul",
    ]


def test_parse_builder_log_own_logger_format_and_developer_guide_example():
    got = trt.parse_builder_log(OWN_LOGGER_LOG)
    assert got["eligible_layers"] == ["conv1", "conv2", "conv3"]
    assert got["sparse_layers"] == ["conv2", "conv3"]


def test_parse_builder_log_nothing_picked():
    got = trt.parse_builder_log(NOTHING_PICKED_LOG)
    assert got == {
        "eligible_layers": ["MatMul_51", "MatMul_69", "Gemm_725"],
        "sparse_layers": [],
        "sparsity_reported": True,
    }


def test_parse_builder_log_without_sparsity_report():
    got = trt.parse_builder_log("[I] [TRT] Loaded engine size: 44 MiB\n")
    assert got == {"eligible_layers": [], "sparse_layers": [], "sparsity_reported": False}


def test_parse_builder_log_keeps_bracketed_names_whole_and_last_build_wins():
    first = "[I] [TRT] (Sparsity) Layers eligible for sparse math: old\n"
    last = (
        "[I] [TRT] (Sparsity) Layers eligible for sparse math: {ForeignNode[/a/MatMul, /b/MatMul]}, Gemm_3\n"
    )
    got = trt.parse_builder_log(first + last)
    assert got["eligible_layers"] == ["{ForeignNode[/a/MatMul, /b/MatMul]}", "Gemm_3"]


# ------------------------------------------------------------------------------------------------
# Inspector JSON


def test_parse_inspector_json_trt10_schema():
    layers = trt.parse_inspector_json(INSPECTOR_TRT10)
    assert [layer["name"] for layer in layers][:2] == [
        "/bert/encoder/layer.0/intermediate/dense/MatMul",
        "/bert/encoder/layer.0/output/dense/MatMul",
    ]
    assert [layer["sparse"] for layer in layers] == [True, False, False]
    assert layers[0]["type"] == "CaskGemmMatrixMultiply"
    assert layers[0]["precision"] == "Half"
    assert layers[2]["type"] == "Myelin" and layers[2]["tactic"] == "0x0000000000000000"


def test_parse_inspector_json_trt11_schema():
    (layer,) = trt.parse_inspector_json(INSPECTOR_TRT11)
    assert layer["sparse"] is True and layer["precision"] == "Half"


def test_parse_inspector_json_names_only_and_single_layer():
    names_only = json.dumps(
        {"Layers": ["Reformatting CopyNode for Input Tensor 0", "MatMul_3"], "Bindings": []}
    )
    layers = trt.parse_inspector_json(names_only)
    assert [(layer["name"], layer["sparse"], layer["tactic"]) for layer in layers] == [
        ("Reformatting CopyNode for Input Tensor 0", False, ""),
        ("MatMul_3", False, ""),
    ]
    single = json.dumps({"Name": "fc", "LayerType": "CaskGemmMatrixMultiply", "TacticName": "x_sparse_gemm"})
    assert trt.parse_inspector_json(single)[0]["sparse"] is True


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        ("Row major linear FP32 format", "Float"),
        ("Thirty-two wide channel vectorized row major Int8 format.", "Int8"),
        ("Row major linear BF16 format", "BFloat16"),
        ("Row major linear Int64 format", "Int64"),
    ],
)
def test_parse_inspector_json_trt10_format_text_to_dtype(fmt, dtype):
    layer = {"Name": "l", "Outputs": [{"Name": "o", "Format/Datatype": fmt}]}
    assert trt.parse_inspector_json(json.dumps(layer))[0]["precision"] == dtype


def test_parse_inspector_json_bad_text_is_one_line_error():
    with pytest.raises(ExportError, match="not valid JSON"):
        trt.parse_inspector_json("{not json")
    with pytest.raises(ExportError, match="JSON object or list"):
        trt.parse_inspector_json("3")


@pytest.mark.parametrize(
    ("tactic", "sparse"),
    [
        (
            "sm80_xmma_sparse_gemm_f16f16_f16f32_f32_nt_n_tilesize128x128x64_stage3_warpsize2x2x1_sptensor16x8x32",
            True,
        ),
        ("sm86_xmma_fprop_sparse_conv_interleaved_i8i8_i8i32_f32_nchw_vect_c_32", True),
        ("cutlass3x_sm90_sptensorop_s64x128x32spgemm_f16_f16_f32_void_f16_128x128x64_1x1x1", True),
        (
            "sm80_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x32_stage4_warpsize2x2x1_tensor16x8x16",
            False,
        ),
        ("ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn", False),
        (
            "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x256x64_warpgroupsize1x1x1_execute_segment_k_off",
            False,
        ),
        ("0x0000000000000000", False),
        ("", False),
    ],
)
def test_is_sparse_tactic(tactic, sparse):
    assert trt.is_sparse_tactic(tactic) is sparse


# ------------------------------------------------------------------------------------------------
# Availability and import weight


def test_trt_unavailable_reason_is_one_sentence_here():
    reason = trt_unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present on this machine")
    assert reason.endswith(".") and "\n" not in reason
    assert "TensorRT is not installed" in reason or "no NVIDIA GPU" in reason


def test_build_engine_without_tensorrt_exits_with_code_3(tmp_path):
    reason = trt_unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present on this machine")
    with pytest.raises(TensorRTUnavailableError) as err:
        trt.build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", INPUTS, trt.DEFAULT_PROFILE, "fp16")
    assert err.value.exit_code == EXIT_NEEDS_GPU == 3
    assert isinstance(err.value, ExportError) and reason in str(err.value)
    assert not (tmp_path / "m.engine").exists()


def test_build_engine_rejects_unknown_precision_first(tmp_path):
    with pytest.raises(ExportError, match="unknown precision"):
        trt.build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", INPUTS, trt.DEFAULT_PROFILE, "int4")


def test_module_imports_no_heavy_dependency():
    code = (
        "import sys, nxm_deploy.export.trt\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# FP16 ONNX


def _tiny_encoder_onnx(path: Path, vocab: int = 50, hidden: int = 16) -> None:
    """Gather -> mask multiply -> LayerNorm -> MatMul + Add -> Softmax: the op mix of a BERT block."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    weights = {
        "emb": rng.standard_normal((vocab, hidden)),
        "ln_scale": np.ones(hidden),
        "ln_bias": np.zeros(hidden),
        "w": rng.standard_normal((hidden, hidden)) * 0.1,
        "b": np.zeros(hidden),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "axes"))
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axes"], ["mask_3d"]),
        helper.make_node("Mul", ["embedded", "mask_3d"], ["masked"]),
        helper.make_node(
            "LayerNormalization", ["masked", "ln_scale", "ln_bias"], ["normed"], axis=-1, epsilon=1e-12
        ),
        helper.make_node("MatMul", ["normed", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["hidden"]),
        helper.make_node("Softmax", ["hidden"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", "seq", hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))


def test_to_fp16_onnx_keeps_io_types_layernorm_fp32_and_matches_fp32(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    src, dst = tmp_path / "model.onnx", tmp_path / "model_fp16.onnx"
    _tiny_encoder_onnx(src)
    assert trt.to_fp16_onnx(src, dst) == dst

    model = onnx.load(str(dst))
    onnx.checker.check_model(model)  # includes topological order, which TensorRT's parser needs
    io_types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}
    assert io_types == {
        "input_ids": onnx.TensorProto.INT64,
        "attention_mask": onnx.TensorProto.INT64,
        "probs": onnx.TensorProto.FLOAT,
    }
    init_types = {i.name: i.data_type for i in model.graph.initializer}
    assert init_types["emb"] == init_types["w"] == onnx.TensorProto.FLOAT16
    assert init_types["ln_scale"] == init_types["ln_bias"] == onnx.TensorProto.FLOAT  # LayerNorm stays FP32
    assert trt.onnx_has_fp16_weights(dst) and not trt.onnx_has_fp16_weights(src)

    rng = np.random.default_rng(1)
    feeds = {"input_ids": rng.integers(0, 50, (2, 5)), "attention_mask": np.ones((2, 5), np.int64)}
    feeds["attention_mask"][1, 3:] = 0
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-3, rtol=2e-2)  # fp16 weights and activations


def test_to_fp16_onnx_missing_source_is_user_error(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(ExportError, match="not found"):
        trt.to_fp16_onnx(tmp_path / "absent.onnx", tmp_path / "out.onnx")


# ------------------------------------------------------------------------------------------------
# TensorRT (real builds only; skipped with the reason where TensorRT or a GPU is missing)


@pytest.fixture
def needs_trt():
    reason = trt_unavailable_reason()
    if reason:
        pytest.skip(reason)


def _two_four_onnx(path: Path, vocab: int = 100, hidden: int = 256, out: int = 512) -> None:
    """input_ids -> Gather -> MatMul with a 2:4 weight [K, N] (groups along K, axis 0 for MatMul B)."""
    import torch
    from onnx import TensorProto, helper, numpy_helper, save

    from nxm_deploy import nm

    rng = np.random.default_rng(0)
    w = nm.project(torch.from_numpy(rng.standard_normal((hidden, out)).astype(np.float32)), "2:4", axis=0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((vocab, hidden)).astype(np.float32), "emb"),
        numpy_helper.from_array(w.numpy(), "w"),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
        helper.make_node("MatMul", ["e", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two_four",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what TensorRT 10's parser reads for certain
    save(model, str(path))


@pytest.mark.trt
def test_build_engine_real_tensorrt(needs_trt, tmp_path):
    import tensorrt

    onnx_path = tmp_path / "model.onnx"
    _two_four_onnx(onnx_path)
    precision = "fp16"
    if trt.trt_major(tensorrt.__version__) >= 11:
        onnx_path = trt.to_fp16_onnx(onnx_path, tmp_path / "model_fp16.onnx")
    profile = trt.ShapeProfile.parse("1x8", "8x128", "16x256")
    section = trt.build_engine(onnx_path, tmp_path / "model.engine", ["input_ids"], profile, precision)
    assert section["sparse_weights_flag"] is True
    assert section["sparsity_reported"] is True, "TensorRT printed no (Sparsity) report"
    assert section["engine_bytes"] == (tmp_path / "model.engine").stat().st_size > 0
    assert (tmp_path / section["build_log"]).read_text().count("(Sparsity)") >= 1
    assert section["layer_count"] == len(
        trt.parse_inspector_json((tmp_path / section["layer_info"]).read_text())
    )
    assert section["profile"] == {"inputs": ["input_ids"], "min": [1, 8], "opt": [8, 128], "max": [16, 256]}
    assert set(section["sparse_layers"]) <= set(section["eligible_layers"])


@pytest.mark.trt
def test_build_engine_input_name_mismatch_is_user_error(needs_trt, tmp_path):
    onnx_path = tmp_path / "model.onnx"
    _two_four_onnx(onnx_path)
    with pytest.raises(ExportError, match="input names do not match"):
        trt.build_engine(
            onnx_path, tmp_path / "m.engine", ["input_ids", "token_type_ids"], trt.DEFAULT_PROFILE, "fp32"
        )


# ---- which precision an engine really has ------------------------------------------------------


def test_engine_precision_defaults_to_fp16_with_engine_trt(tmp_path):
    """TensorRT runs 2:4 kernels only in reduced precision: `--engine trt` builds fp16 unless told
    otherwise; the ONNX-only export and the INT8 export keep fp32 as the asked-for engine precision."""
    from nxm_deploy.export import ExportConfig

    run, out = tmp_path / "run", tmp_path / "out"
    assert ExportConfig(run_dir=run, out=out, engine="trt").precision == "fp16"
    assert ExportConfig(run_dir=run, out=out).precision == "fp32"
    assert ExportConfig(run_dir=run, out=out, engine="trt", precision="fp32").precision == "fp32"
    assert ExportConfig(run_dir=run, out=out, engine="trt", quantize="int8").precision == "fp32"
    with pytest.raises(ExportError, match=r"^precision fp16 set the TensorRT engine; add engine trt"):
        ExportConfig(run_dir=run, out=out, precision="fp16")


@pytest.mark.parametrize(
    ("types", "precision"),
    [
        (["Half"] * 5 + ["Float"] * 2, "fp16"),
        (["Int8", "Half", "Float"], "int8"),
        (["Float", "Float"], "fp32"),
        (["BFloat16", "Float"], "bf16"),
        ([None, None], "unknown"),
    ],
)
def test_observed_precision_comes_from_the_layers_not_the_flag(types, precision):
    layers = [{"name": f"l{i}", "precision": t} for i, t in enumerate(types)]
    seen = trt.observed_precision(layers)
    assert seen["precision"] == precision
    assert sum(seen["layer_types"].values()) == sum(t is not None for t in types)


def test_observed_precision_of_an_inspector_document():
    """TensorRT 10's "Format/Datatype" text and 11's "DataType" both count."""
    doc = {"Layers": [
        {"Name": "gemm", "LayerType": "MatrixMultiply", "TacticName": "sm80_xmma_sparse_gemm_f16f16",
         "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP16 format"}]},
        {"Name": "norm", "LayerType": "Normalization", "Outputs": [{"Name": "z", "DataType": "Float"}]},
    ]}  # fmt: skip
    seen = trt.observed_precision(trt.parse_inspector_json(json.dumps(doc)))
    assert seen == {"precision": "fp16", "layer_types": {"Half": 1, "Float": 1}}


def test_cached_engine_precision_without_engines_or_tensorrt_says_why(tmp_path):
    from nxm_deploy.runtime.trt_engines import cached_engine_precision

    assert (
        cached_engine_precision(tmp_path) == "unknown (no TensorRT engine in the provider's cache folder yet)"
    )
    (tmp_path / "TensorrtExecutionProvider_TRTKernel_graph_main_1_1_sm90.engine").write_bytes(b"\0" * 16)
    if trt_unavailable_reason() is not None and "not installed" in trt_unavailable_reason():
        assert cached_engine_precision(tmp_path) == (
            "unknown (the tensorrt package is needed to read the provider's engines)"
        )
