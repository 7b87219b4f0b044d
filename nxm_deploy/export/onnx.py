"""PyTorch sequence classifier -> ``model.onnx`` with dynamic batch and sequence axes.

    export_onnx(model, Path("out/model.onnx"), ["input_ids", "attention_mask", "token_type_ids"])

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter, the default
since PyTorch 2.9). It gives a clean graph (no ``Constant``/``Identity`` chains), real symbolic
``batch``/``sequence`` dimensions from ``torch.export.Dim`` (the TorchScript tracer bakes Python
booleans of the attention-mask code into the graph and warns about it), and node metadata
(``pkg.torch.onnx.name_scopes``) that names the ``nn.Linear`` behind every MatMul/Gemm even though
the exporter pre-transposes weights into anonymous initializers (``val_83``). The TorchScript
exporter (``dynamo=False``) is deprecated in PyTorch 2.9+.

Default opset 18: the lowest the dynamo exporter implements natively (asking for 17 makes it export
18 and run the version converter), it has ``LayerNormalization`` (17+), and TensorRT 10 and 11 parse
it. Weights go into ``model.onnx`` itself unless they pass the 2 GB protobuf limit, in which case
they go to ``model.onnx.data`` beside it.

This module imports torch and onnx only inside its functions, so the CLI can read its constants.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nxm_deploy.errors import ExportError, InternalError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BATCH_AXIS",
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "MIN_OPSET",
    "ONNX_NAME",
    "SEQUENCE_AXIS",
    "describe_io",
    "export_onnx",
    "io_problems",
]

ONNX_NAME = "model.onnx"
DEFAULT_OPSET = 18
MIN_OPSET = 17  # LayerNormalization
MAX_OPSET = 25  # the newest that torch 2.13's exporter writes and ONNX Runtime 1.32 reads for BERT
BATCH_AXIS = "batch"
SEQUENCE_AXIS = "sequence"
_SAMPLE_BATCH = 2  # torch.export specialises dimensions of size 0 and 1, so sample with 2 and more
_SAMPLE_SEQ = 16


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's notes (missing torchvision ops, axis-renaming remarks); errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: nn.Module,
    path: Path,
    input_names: Sequence[str],
    opset: int = DEFAULT_OPSET,
    sample_seq: int = _SAMPLE_SEQ,
) -> None:
    """Export ``model`` (eval mode, fp32) to ``path``; inputs ``[batch, sequence]`` int64, output
    ``logits`` ``[batch, num_labels]``.

    ``sample_seq`` is the sequence length of the example inputs (at least 2, at most the model's
    position limit); the exported graph accepts any batch and sequence length.
    """
    import torch
    from torch.export import Dim

    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: BERT-family exports need {MIN_OPSET} or newer")
    model.eval()
    shape = (_SAMPLE_BATCH, max(2, sample_seq))
    # Any in-vocabulary token (not 0/1: RoBERTa's padding id is 1), a full mask, segment 0.
    token = min(100, int(getattr(model.config, "vocab_size", 101)) - 1)
    fill = {"input_ids": token, "attention_mask": 1}
    kwargs = {name: torch.full(shape, fill.get(name, 0), dtype=torch.long) for name in input_names}
    batch, seq = Dim(BATCH_AXIS), Dim(SEQUENCE_AXIS)
    dynamic = {name: {0: batch, 1: seq} for name in input_names}
    with _quiet_exporter(), torch.no_grad():
        try:
            program = torch.onnx.export(
                model,
                (),
                None,
                kwargs=kwargs,
                output_names=["logits"],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=dynamic,
                verbose=False,
            )
        except (RuntimeError, TypeError, ValueError) as exc:  # torch.onnx.errors.* derive from these
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {reason}") from exc
        if program is None:  # pragma: no cover - dynamo=True always returns a program
            raise InternalError("torch.onnx.export returned no program")
        # external_data=False: weights stay inside model.onnx unless they pass 2 GB.
        program.save(str(path), external_data=False)


def _dims(value_info: Any) -> list[str | int | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in shape.dim]


def describe_io(path: Path) -> dict[str, Any]:
    """Inputs and outputs of an ONNX file: names, element types, shapes (symbolic dims by name),
    and the dynamic axes per tensor (``{"input_ids": {"0": "batch", "1": "sequence"}}``)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def entry(v: Any) -> dict[str, Any]:
        dtype = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()
        return {"name": v.name, "dtype": dtype, "shape": _dims(v)}

    inputs = [entry(v) for v in model.graph.input]
    outputs = [entry(v) for v in model.graph.output]
    dynamic = {
        e["name"]: {str(i): d for i, d in enumerate(e["shape"]) if isinstance(d, str)}
        for e in inputs + outputs
    }
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "opset": opset,
        "ir_version": model.ir_version,
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_axes": dynamic,
    }


def io_problems(io: dict[str, Any], input_names: Sequence[str]) -> list[str]:
    """Everything wrong with the exported inputs/outputs, all at once (one run shows every fix)."""
    problems = []
    got = [e["name"] for e in io["inputs"]]
    if got != list(input_names):
        problems.append(f"inputs are {got}, expected {list(input_names)}")
    for e in io["inputs"]:
        if e["shape"][:2] != [BATCH_AXIS, SEQUENCE_AXIS] or len(e["shape"]) != 2:
            problems.append(
                f"input {e['name']} has shape {e['shape']}, expected [{BATCH_AXIS}, {SEQUENCE_AXIS}]"
            )
        if e["dtype"] != "int64":
            problems.append(f"input {e['name']} is {e['dtype']}, expected int64")
    outputs = [e["name"] for e in io["outputs"]]
    if not outputs or outputs[0] != "logits":
        problems.append(f"outputs are {outputs}, expected 'logits' first")
    elif io["outputs"][0]["shape"][:1] != [BATCH_AXIS]:
        problems.append(f"output logits has shape {io['outputs'][0]['shape']}, expected [{BATCH_AXIS}, ...]")
    return problems
