"""Triton Inference Server: a model repository from an export directory, and the client-side helper
that shapes requests the way its configuration expects.

    model = write_triton_repo("exports/rte-admm", "triton_repo", TritonOptions(name="rte"))
    # triton_repo/rte/config.pbtxt, triton_repo/rte/1/model.onnx (or model.plan), ...

    requests = TritonRequests.from_model_dir("triton_repo/rte")       # on the client
    plan = requests.encode([("A man is sleeping.", "Nobody sleeps.")])
    outputs = [send(batch.feed) for batch in plan.batches]              # one Triton request each
    predictions = requests.decode(plan, outputs)

Layout of ``<repo>/<name>/`` (Triton reads ``config.pbtxt``, the label file and ``1/``; it leaves the
other files alone):

- ``config.pbtxt``: platform ``onnxruntime_onnx`` (``1/model.onnx``) or ``tensorrt_plan``
  (``1/model.plan``, the export's ``model.engine``); one int64 input per tokenizer output with
  ``dims: [ -1 ]`` (the sequence; the batch dimension is implicit, up to ``max_batch_size``);
  output ``logits`` FP32 ``dims: [ <labels> ]``; ``dynamic_batching``.
- ``labels.txt``: label names, one per line in class-id order (classification only), named by the
  output's ``label_filename`` so that Triton's classification extension can answer with names.
- ``nxm_serving.json``: the request contract below, the task, labels and where the model came from;
  ``1/PLAN_INFO.json`` beside a TensorRT plan: the TensorRT version and GPU it was built with.
- the tokenizer files (``tokenizer.json``, ...), so that a client needs only this folder.

Request contract. Triton's dynamic batcher merges only requests of one shape, so a client pads each
row to the smallest *bucket* that holds it (powers of two from 16 up to ``max_seq_len``:
``sequence_buckets``), truncates longer input, and sends rows of one bucket together; padding with
a 0 attention mask leaves logits unchanged. ``TritonRequests`` implements it; ``config.pbtxt`` says it.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nxm_deploy.errors import ExportDirError
from nxm_deploy.io import now_iso, write_json_atomic, write_text_atomic
from nxm_deploy.outputs import contained, prepare_out, staged_dir
from nxm_deploy.runtime.encoding import TextEncoder
from nxm_deploy.runtime.exportdir import ExportDir
from nxm_deploy.runtime.ort_providers import triton_instance_group, triton_provider_check
from nxm_deploy.runtime.triton_client import SERVING_FILE, TritonPlan, TritonRequests

__all__ = [
    "DEFAULT_MAX_QUEUE_DELAY_US",
    "LABELS_FILE",
    "ONNX_PLATFORM",
    "PLAN_INFO",
    "SERVING_FILE",
    "TRT_PLATFORM",
    "TritonModel",
    "TritonOptions",
    "TritonPlan",
    "TritonRequests",
    "check_triton_target",
    "config_pbtxt",
    "model_name_for",
    "sequence_buckets",
    "write_triton_repo",
]

ONNX_PLATFORM = "onnxruntime_onnx"
TRT_PLATFORM = "tensorrt_plan"
_MODEL_FILES = {ONNX_PLATFORM: "model.onnx", TRT_PLATFORM: "model.plan"}
LABELS_FILE = "labels.txt"
PLAN_INFO = "PLAN_INFO.json"
VERSION = "1"
DEFAULT_MAX_QUEUE_DELAY_US = 500
SMALLEST_BUCKET = 16
_SERVING_KIND = "nxm-deploy/triton-model"
_TRITON_TYPES = {"int64": "TYPE_INT64", "int32": "TYPE_INT32", "float": "TYPE_FP32", "float16": "TYPE_FP16"}


def sequence_buckets(max_seq_len: int, min_seq: int = 1, smallest: int = SMALLEST_BUCKET) -> tuple[int, ...]:
    """Sequence lengths requests are padded to: powers of two from ``smallest`` (raised to ``min_seq``)
    below ``max_seq_len``, then ``max_seq_len`` itself. ``(128) -> (16, 32, 64, 128)``."""
    if max_seq_len < 1 or min_seq > max_seq_len:
        raise ExportDirError(f"no sequence bucket fits between {min_seq} and {max_seq_len}")
    sizes, size = [], max(smallest, min_seq)
    while size < max_seq_len:
        sizes.append(size)
        size *= 2
    return (*sizes, max_seq_len)


def model_name_for(export_dir: str | os.PathLike[str]) -> str:
    """A Triton model name from an export directory's name: letters, digits, ``_``, ``-`` and ``.``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(export_dir).resolve().name).strip("._-")
    return name or "model"


@dataclass(frozen=True)
class TritonOptions:
    """``name``: the model's folder and name (default: from the export directory's name).
    ``max_batch_size``: rows per request and per merged batch (a TensorRT plan caps it at its
    profile's largest batch). ``platform``: ``auto`` (the TensorRT plan when the export has an engine,
    else ONNX Runtime), ``onnxruntime_onnx`` or ``tensorrt_plan``. ``buckets``: sequence lengths
    (default ``sequence_buckets``). ``overwrite``: replace an existing ``<repo>/<name>``.
    ``ort_provider``: model.onnx on ONNX Runtime's cpu, cuda or tensorrt provider (None: Triton decides)."""

    name: str | None = None
    max_batch_size: int = 32
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US
    platform: str = "auto"
    buckets: tuple[int, ...] | None = None
    overwrite: bool = False
    ort_provider: str | None = None

    def __post_init__(self) -> None:
        if self.platform not in ("auto", *_MODEL_FILES):
            raise ExportDirError(
                f"unknown Triton platform {self.platform!r}: auto, {', '.join(_MODEL_FILES)}"
            )
        triton_provider_check(self.ort_provider, plan=self.platform == TRT_PLATFORM)
        if self.max_batch_size < 1:
            raise ExportDirError(f"Triton max batch size must be at least 1, got {self.max_batch_size}")
        if self.buckets is not None and (
            not self.buckets
            or any(isinstance(b, bool) or not isinstance(b, int) or b < 2 for b in self.buckets)
        ):
            raise ExportDirError(
                f"Triton buckets {list(self.buckets)} must be token counts of at least 2 (e.g. 16, 32, 64)"
            )
        if self.max_queue_delay_us < 0:
            raise ExportDirError(f"max queue delay must be >= 0 microseconds, got {self.max_queue_delay_us}")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", self.name):
            raise ExportDirError(
                f"invalid Triton model name {self.name!r}: use letters, digits, '_', '-' and '.' (not first)"
            )


@dataclass(frozen=True)
class TritonModel:
    """One model written into a repository: ``path`` is ``<repo>/<name>``."""

    path: Path
    name: str
    platform: str
    max_batch_size: int
    buckets: tuple[int, ...]

    @property
    def model_file(self) -> Path:
        return self.path / VERSION / _MODEL_FILES[self.platform]


def _dims(values: Iterable[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def config_pbtxt(
    name: str,
    platform: str,
    export: ExportDir,
    max_batch_size: int,
    buckets: Sequence[int],
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    padding: dict[str, int] | None = None,
    pad_side: str = "right",
    ort_provider: str | None = None,
) -> str:
    """The text of ``config.pbtxt`` (Triton's ``ModelConfig`` in protobuf text format); ``padding``:
    the pad value of each input (the tokenizer's pad id for ``input_ids``, else 0)."""
    padding = padding or {}
    facts, onnx, run = export.facts, export.manifest.onnx, export.source_run.facts
    dtypes = {e.name: e.dtype or "int64" for e in onnx.inputs + onnx.outputs}
    odtype = _TRITON_TYPES.get(dtypes.get(facts.output_name, "float"), "TYPE_FP32")
    inputs = [
        f'  {{\n    name: "{n}"\n    data_type: {_TRITON_TYPES.get(dtypes.get(n, "int64"), "TYPE_INT64")}\n'
        f"    dims: {_dims([-1])}\n  }}"
        for n in facts.input_names
    ]
    label_line = "" if facts.is_regression else f'\n    label_filename: "{LABELS_FILE}"'
    output = (
        f'  {{\n    name: "{facts.output_name}"\n    data_type: {odtype}\n'
        f"    dims: {_dims([facts.num_outputs])}{label_line}\n  }}"
    )
    pads = ", ".join(f"{n} {padding.get(n, 0)}" for n in facts.input_names)
    lines = [
        f"# Triton model configuration written by nxm-deploy from {export.path.resolve()}",
        f"# task {facts.task}, method {run.method}, pattern {run.pattern}, "
        f"base model {run.base_model}; labels: {', '.join(facts.labels) or '(regression score)'}",
        "#",
        "# Request contract: every input is int64 [batch, sequence], the tokenizer's output (its files",
        "# sit beside this one). Triton's dynamic batcher merges only requests of equal shape, so",
        "# clients pad each row to the smallest of these sequence lengths that holds it:",
        f"#   {', '.join(map(str, buckets))}",
        f"# and truncate longer input to {buckets[-1]} tokens. Padding goes on the {pad_side}, with",
        f"#   {pads}",
        f"# nxm_deploy.runtime.triton.TritonRequests does this; {SERVING_FILE} records it.",
        f'name: "{name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {max_batch_size}",
        f'default_model_filename: "{_MODEL_FILES[platform]}"',
        "input [\n" + ",\n".join(inputs) + "\n]",
        "output [\n" + output + "\n]",
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_us}\n}}",
    ]
    if platform == TRT_PLATFORM:
        lines.append(
            "# A TensorRT plan runs on the GPU (and TensorRT version) it was built for: see 1/PLAN_INFO.json"
        )
        lines.append("instance_group [\n  {\n    kind: KIND_GPU\n    count: 1\n  }\n]")
    elif ort_provider is not None:
        lines += triton_instance_group(ort_provider)
    return "\n".join(lines) + "\n"


def _plan_info(export: ExportDir) -> dict[str, Any]:
    trt = export.tensorrt.extra  # the build's evidence
    return {
        "tensorrt_version": trt.get("tensorrt_version"),
        "gpu": trt.get("gpu"),
        "precision": export.tensorrt.precision,
        "profile": trt.get("profile"),
        "sparse_weights_flag": trt.get("sparse_weights_flag"),
        "sparse_layers": len(trt.get("sparse_layers") or []),
        "eligible_layers": len(trt.get("eligible_layers") or []),
        "built_from": str(export.engine_path.resolve()),
        "note": (
            "A TensorRT plan loads only with the TensorRT version it was built with and runs on the GPU "
            "model it was built for: serve it with the Triton release whose TensorRT matches, on that "
            "GPU, or rebuild it with the export's build_engine.sh there."
        ),
    }


def _choose_platform(export: ExportDir, wanted: str) -> str:
    has_engine = export.engine_path.is_file()
    if wanted == "auto":
        return TRT_PLATFORM if has_engine else ONNX_PLATFORM
    if wanted == TRT_PLATFORM:
        export.model_file("trt")  # one clear line when the export has no engine
    return wanted


def check_triton_target(repo: str | os.PathLike[str], options: TritonOptions) -> Path:
    """``<repo>/<name>``, or a one-line error when it cannot be written (a file as ``repo``, an
    existing model without ``overwrite``); lets a caller fail before a long export."""
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise ExportDirError(f"Triton repository {repo} is a file; pass a directory")
    target = repo / (options.name or "")
    if options.name and target.exists() and not options.overwrite:
        raise ExportDirError.naming(
            "Triton model {target} already exists; pass {0} to replace it", "overwrite", target=target
        )
    if options.name:
        prepare_out(target, options.overwrite, "repo")  # a safe place; only our files replaced
    return target


def _warn_gpu_elsewhere(ort_provider: str | None, name: str) -> None:
    """A repository is prepared for the machine that serves it: ``KIND_GPU`` is written on a machine
    without a GPU too (exit 0), with one warning, since Triton here could not load it."""
    from nxm_deploy.runtime.availability import gpu_unavailable_reason

    if ort_provider in ("cuda", "tensorrt") and (why := gpu_unavailable_reason()):
        warnings.warn(
            f"Triton model {name} is set to run on a GPU (KIND_GPU, ONNX Runtime's {ort_provider} provider), "
            f"but {why.rstrip('.')} here: serve it on a machine with an NVIDIA GPU and onnxruntime-gpu",
            stacklevel=3,
        )


def write_triton_repo(
    export_dir: str | os.PathLike[str], repo: str | os.PathLike[str], options: TritonOptions | None = None
) -> TritonModel:
    """Write ``<repo>/<name>/`` for the export (see the module docstring); other models in ``repo``
    are left alone. ``<repo>/<name>`` is built beside itself and renamed into place when complete;
    an existing one is refused unless ``options.overwrite``."""
    options = options or TritonOptions()
    export = ExportDir.read(export_dir)
    facts = export.facts
    platform = _choose_platform(export, options.platform if options.ort_provider is None else ONNX_PLATFORM)
    source = export.model_file("trt" if platform == TRT_PLATFORM else "ort")
    max_batch, max_seq, min_seq = options.max_batch_size, facts.max_seq_len, 1
    profile = export.tensorrt.extra.get("profile") or {}
    if platform == TRT_PLATFORM and profile.get("max"):  # the engine's shape range bounds both
        min_seq, max_seq = int(profile["min"][1]), min(max_seq, int(profile["max"][1]))
        max_batch = min(max_batch, int(profile["max"][0]))
    buckets = tuple(sorted(options.buckets)) if options.buckets else sequence_buckets(max_seq, min_seq)
    if buckets[-1] != max_seq or buckets[0] < min_seq:
        raise ExportDirError(
            f"buckets {list(buckets)} must lie in [{min_seq}, {max_seq}] and end at {max_seq}"
        )
    encoder = TextEncoder.from_dir(export.path, facts, max_seq)  # checks the tokenizer, gives pad values
    padding = {n: encoder.pad_values.get(n, 0) for n in facts.input_names}
    pad_side = "left" if encoder.left_padding else "right"
    name = options.name or model_name_for(export.path)
    repo = Path(repo)
    check_triton_target(repo, replace(options, name=name))
    _warn_gpu_elsewhere(options.ort_provider, name)
    with staged_dir(repo / name, overwrite=options.overwrite) as tmp:
        (tmp / VERSION).mkdir()
        shutil.copy2(source, tmp / VERSION / _MODEL_FILES[platform])
        if platform == ONNX_PLATFORM:  # external weights keep their names beside model.onnx
            for extra in export.manifest.onnx.external_data:
                name_in = contained(export.path, extra, "onnx.external_data")
                shutil.copy2(name_in, contained(tmp / VERSION, extra, "onnx.external_data"))
        else:
            write_json_atomic(tmp / VERSION / PLAN_INFO, _plan_info(export))
        delay, ort = options.max_queue_delay_us, options.ort_provider
        text = config_pbtxt(name, platform, export, max_batch, buckets, delay, padding, pad_side, ort)
        write_text_atomic(tmp / "config.pbtxt", text)
        if not facts.is_regression:
            write_text_atomic(tmp / LABELS_FILE, "".join(f"{label}\n" for label in facts.labels))
        tokenizer_files = list(export.manifest.tokenizer.files)
        for f in tokenizer_files:
            shutil.copy2(contained(export.path, f, "tokenizer.files"), contained(tmp, f, "tokenizer.files"))
        write_json_atomic(
            tmp / SERVING_FILE,
            {
                "kind": _SERVING_KIND,
                "created": now_iso(),
                "name": name,
                "platform": platform,
                "ort_provider": options.ort_provider,
                "model_file": f"{VERSION}/{_MODEL_FILES[platform]}",
                "max_batch_size": max_batch,
                "sequence_buckets": list(buckets),
                "padding": {"side": pad_side, "values": padding},
                "facts": facts.to_json(),
                "tokenizer_files": tokenizer_files,
                "export_dir": str(export.path.resolve()),
                "source_run": export.source_run.to_json(),
                "tensorrt": _plan_info(export) if platform == TRT_PLATFORM else None,
            },
        )
    return TritonModel(repo / name, name, platform, max_batch, buckets)
