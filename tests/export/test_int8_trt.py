"""The TensorRT-free parts of the INT8 engine build: the strongly typed network flag on TensorRT 10 and 11,
and build_engine.sh's trtexec command (``--stronglyTyped``, no precision flag)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nxm_deploy.errors import ExportError
from nxm_deploy.export import trt
from nxm_deploy.export.trt.build import network_flags

PROFILE = trt.ShapeProfile.parse("1x8", "8x128", "32x512")
INPUTS = ("input_ids", "attention_mask")


def fake_tensorrt(with_flag: bool = True) -> SimpleNamespace:
    """The one attribute network_flags reads, as the tensorrt module spells it (an int-like enum member)."""
    flags = SimpleNamespace(STRONGLY_TYPED=1) if with_flag else SimpleNamespace()
    return SimpleNamespace(NetworkDefinitionCreationFlag=flags)


@pytest.mark.parametrize(
    ("precision", "major", "expected"),
    [("int8", 10, 1 << 1), ("int8", 11, 0), ("fp32", 10, 0), ("fp16", 10, 0)],
)
def test_int8_networks_are_strongly_typed_on_tensorrt_10(precision, major, expected):
    assert network_flags(fake_tensorrt(), precision, major) == expected


def test_no_flag_where_tensorrt_has_none():
    assert network_flags(fake_tensorrt(with_flag=False), "int8", 10) == 0


@pytest.mark.parametrize(("version", "strongly"), [(None, True), ("10.13.0", True), ("11.2.1", False)])
def test_trtexec_builds_the_qdq_onnx_strongly_typed(version, strongly):
    spec = trt.EngineSpec("model.onnx", "model.engine", INPUTS, PROFILE, "int8")
    args = trt.trtexec_command(spec, version)
    assert "--onnx=model.onnx" in args and "--sparsity=enable" in args
    assert ("--stronglyTyped" in args) == strongly
    assert not {"--int8", "--fp16", "--best"} & set(args)  # Q/DQ decide the precision, not a flag


def test_int8_is_no_precision_option():
    assert "int8" not in trt.PRECISIONS and "int8" in trt.ENGINE_PRECISIONS
    with pytest.raises(ExportError, match="unknown precision"):
        trt.check_precision("int4")
