"""Raw text in for a stock Triton: beside the model that ``triton.write_triton_repo`` writes (token ids
in, logits out), a tokenizer model, a labels model and an ensemble that chains them.

    text = write_text_repo("exports/rte-admm", "triton_repo", TritonOptions(name="rte"), backend="python")
    # triton_repo/rte           the model (backend "python": model.onnx on ONNX Runtime in Python)
    # triton_repo/rte_tokenize  text -> input_ids, attention_mask, token_type_ids, truncated
    # triton_repo/rte_labels    logits -> label, scores (value for regression)
    # triton_repo/rte_text      the ensemble: text (+ text_pair) -> label, scores, truncated

The tokenizer and labels models run in Triton's Python backend (``triton_models/``): the Triton
host needs ``numpy`` and ``transformers`` (and ``onnxruntime`` for ``backend="python"``) in the
Python its backend stub runs. ``backend="python"`` serves ``model.onnx`` through ONNX Runtime in the
Python backend, for a Triton without the ONNX Runtime backend (as the ``tritonserver`` of
nvidia-pytriton, which the tests run). Every file stays inside ``<repo>``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from nxm_deploy.errors import ExportDirError
from nxm_deploy.io import read_json, write_json_atomic, write_text_atomic
from nxm_deploy.outputs import contained, staged_dir
from nxm_deploy.runtime.exportdir import ExportDir
from nxm_deploy.runtime.triton import (
    LABELS_FILE,
    ONNX_PLATFORM,
    SERVING_FILE,
    TritonModel,
    TritonOptions,
    check_triton_target,
    model_name_for,
    write_triton_repo,
)

__all__ = ["TRITON_BACKENDS", "TextRepo", "check_text_targets", "text_model_names", "write_text_repo"]

TRITON_BACKENDS = ("auto", "python")
MODELS = Path(__file__).with_name("triton_models")
MAX_TEXT_BYTES = 65536


@dataclass(frozen=True)
class TextRepo:
    """The models written: ``model`` (token ids in), ``tokenize``, ``labels`` and ``ensemble`` (names)."""

    model: TritonModel
    tokenize: str
    labels: str
    ensemble: str


def text_model_names(name: str) -> tuple[str, str, str]:
    """(tokenizer, labels, ensemble) model names beside the model ``name``."""
    return f"{name}_tokenize", f"{name}_labels", f"{name}_text"


def check_text_targets(repo: str | os.PathLike[str], options: TritonOptions, backend: str) -> None:
    """Refuse, before an export, what ``write_text_repo`` would refuse after it."""
    if backend not in TRITON_BACKENDS:
        raise ExportDirError(f"unknown Triton backend {backend!r}: {', '.join(TRITON_BACKENDS)}")
    if backend == "python" and options.ort_provider not in (None, "cpu"):
        raise ExportDirError.naming(
            "{0} python runs model.onnx on ONNX Runtime's CPU provider; drop {1}", "backend", "ort_provider"
        )
    check_triton_target(repo, options)
    for extra in text_model_names(options.name or ""):
        check_triton_target(repo, replace(options, name=extra))


def _tensor(name: str, dtype: str, dims: str, optional: bool = False) -> str:
    more = "\n    optional: true" if optional else ""
    return f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {dims} ]{more}\n  }}'


def _block(kind: str, tensors: list[str]) -> str:
    return f"{kind} [\n" + ",\n".join(tensors) + "\n]"


def _params(values: dict[str, str]) -> str:
    return "\n".join(f'parameters {{\n  key: "{k}"\n  value: {{ string_value: {json.dumps(v)} }}\n}}'
                     for k, v in values.items())  # fmt: skip


def _text_inputs(export: ExportDir) -> list[str]:
    inputs = [_tensor("text", "TYPE_STRING", "1")]
    if export.facts.is_pair is not False:
        inputs.append(_tensor("text_pair", "TYPE_STRING", "1", optional=export.facts.is_pair is None))
    return inputs


def _answer_outputs(export: ExportDir) -> list[str]:
    facts = export.facts
    score = _tensor("value", "TYPE_FP32", "1") if facts.is_regression else _tensor(
        "scores", "TYPE_FP32", str(facts.num_outputs))  # fmt: skip
    return [_tensor("label", "TYPE_STRING", "1"), score]


def _write_python_model(
    target: Path, source: str, config: str, files: dict[str, Path], overwrite: bool
) -> None:
    with staged_dir(target, overwrite=overwrite) as tmp:
        (tmp / "1").mkdir()
        shutil.copy2(MODELS / source, tmp / "1" / "model.py")
        for name, path in files.items():
            shutil.copy2(path, contained(tmp, name, "tokenizer.files"))
        write_text_atomic(tmp / "config.pbtxt", config)


def _python_variant(model: TritonModel) -> TritonModel:
    """The ONNX Runtime model, served by the Python backend: same tensors, ``1/model.py`` beside
    ``1/model.onnx``, one CPU instance."""
    config = model.path / "config.pbtxt"
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith("default_model_filename")]
    text = "\n".join('backend: "python"' if ln == f'platform: "{ONNX_PLATFORM}"' else ln for ln in lines)
    if "instance_group" not in text:
        text += "\ninstance_group [\n  {\n    kind: KIND_CPU\n    count: 1\n  }\n]"
    write_text_atomic(config, text + "\n")
    shutil.copy2(MODELS / "onnx_model.py", model.path / "1" / "model.py")
    serving = read_json(model.path / SERVING_FILE, "Triton serving file")
    write_json_atomic(model.path / SERVING_FILE, {**serving, "platform": "python", "backend": "python"})
    return replace(model, platform="python")


def write_text_repo(
    export_dir: str | os.PathLike[str],
    repo: str | os.PathLike[str],
    options: TritonOptions | None = None,
    backend: str = "auto",
) -> TextRepo:
    """Write the model (``triton.write_triton_repo``; ``backend="python"``: its Python-backend
    variant) and the tokenizer, labels and ensemble models beside it (see the module docstring)."""
    export = ExportDir.read(export_dir)
    options = options or TritonOptions()
    options = replace(options, name=options.name or model_name_for(export.path))
    if backend == "python":
        options = replace(options, platform=ONNX_PLATFORM)
    check_text_targets(repo, options, backend)
    model = write_triton_repo(export.path, repo, options)
    if backend == "python":
        model = _python_variant(model)
    repo, facts, name = Path(repo), export.facts, model.name
    tokenize, labels, ensemble = text_model_names(name)
    serving = read_json(model.path / SERVING_FILE, "Triton serving file")
    batching = f"dynamic_batching {{\n  max_queue_delay_microseconds: {options.max_queue_delay_us}\n}}"
    head = f"# Written by nxm-deploy from {export.path.resolve()}: task {facts.task}"
    token_outputs = [_tensor(n, "TYPE_INT64", "-1") for n in facts.input_names]
    token_outputs.append(_tensor("truncated", "TYPE_BOOL", "1"))
    params = {
        "max_seq_len": str(model.buckets[-1]),
        "buckets": ",".join(map(str, model.buckets)),
        "input_names": ",".join(facts.input_names),
        "pad_values": json.dumps(serving["padding"]["values"]),
        "left_padding": "true" if serving["padding"]["side"] == "left" else "false",
        "max_text_bytes": str(MAX_TEXT_BYTES),
    }
    tokenizer_files = {f: contained(export.path, f, "tokenizer.files")
                       for f in export.manifest.tokenizer.files}  # fmt: skip
    _write_python_model(repo / tokenize, "tokenize_model.py", "\n".join([
        head, f'name: "{tokenize}"', 'backend: "python"', f"max_batch_size: {model.max_batch_size}",
        _block("input", _text_inputs(export)), _block("output", token_outputs), batching, _params(params),
    ]) + "\n", tokenizer_files, options.overwrite)  # fmt: skip
    label_files = {} if facts.is_regression else {LABELS_FILE: model.path / LABELS_FILE}
    _write_python_model(repo / labels, "labels_model.py", "\n".join([
        head, f'name: "{labels}"', 'backend: "python"', f"max_batch_size: {model.max_batch_size}",
        _block("input", [_tensor(facts.output_name, "TYPE_FP32", str(facts.num_outputs))]),
        _block("output", _answer_outputs(export)), batching,
    ]) + "\n", label_files, options.overwrite)  # fmt: skip
    _write_ensemble(repo / ensemble, head, (tokenize, name, labels), export, model, options.overwrite)
    return TextRepo(model, tokenize, labels, ensemble)


def _maps(kind: str, names: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f'      {kind} {{ key: "{n}" value: "{n}" }}' for n in names)


def _write_ensemble(
    target: Path,
    head: str,
    steps: tuple[str, str, str],
    export: ExportDir,
    model: TritonModel,
    overwrite: bool,
) -> None:
    facts = export.facts
    texts = ["text"] + ([] if facts.is_pair is False else ["text_pair"])
    answer = ["label", "value" if facts.is_regression else "scores"]
    tokens = [*facts.input_names, "truncated"]

    def step(
        model_name: str, inputs: list[str] | tuple[str, ...], outputs: list[str] | tuple[str, ...]
    ) -> str:
        return (f'    {{\n      model_name: "{model_name}"\n      model_version: -1\n'
                f"{_maps('input_map', inputs)}\n{_maps('output_map', outputs)}\n    }}")  # fmt: skip

    scheduling = "ensemble_scheduling {\n  step [\n" + ",\n".join([
        step(steps[0], texts, tokens),
        step(steps[1], facts.input_names, [facts.output_name]),
        step(steps[2], [facts.output_name], answer),
    ]) + "\n  ]\n}"  # fmt: skip
    config = "\n".join([
        head + "; text in: tokenize -> model -> labels", f'name: "{target.name}"', 'platform: "ensemble"',
        f"max_batch_size: {model.max_batch_size}", _block("input", _text_inputs(export)),
        _block("output", [*_answer_outputs(export), _tensor("truncated", "TYPE_BOOL", "1")]), scheduling,
    ]) + "\n"  # fmt: skip
    with staged_dir(target, overwrite=overwrite) as tmp:
        (tmp / "1").mkdir()  # an ensemble has no files, but Triton wants its version folder
        write_text_atomic(tmp / "config.pbtxt", config)
