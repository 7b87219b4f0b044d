"""Parity: ONNX Runtime (CPU execution provider) against PyTorch, on real tokenized sentences.

    sentences = parity_sentences("RTE", data_dir=None)       # GLUE dev rows, else built-in ones
    report = compare(model, Path("out/model.onnx"), tokenizer, sentences, ["input_ids", ...])
    report.raise_for_failures()                              # one ParityError listing every failure

Every batch size x sequence length of the grid is tokenized with ``padding="max_length"`` and
``truncation=True``, so each case holds real padding and real truncation. An output passes when,
elementwise, ``|onnx - torch| <= atol + rtol * |torch|`` (numpy ``allclose``'s rule, with our own
tolerances, never a library default).

Tolerances (fp32 against fp32): ``atol=1e-4``, ``rtol=1e-3`` on ``logits``. The two runtimes do the
same arithmetic in a different order (ONNX Runtime fuses attention, LayerNorm and GELU and blocks
its GEMMs differently), which costs a few float32 ulps per op: about 1e-7 on logits of a 6-layer
MiniLM and under 1e-6 for 12-24 layer models. 1e-4 leaves two orders of magnitude of headroom,
while a wrong weight, a transposed matrix or a broken attention mask moves logits by 1e-2 or more.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nxm_deploy.errors import DataError, ExportError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BUILTIN_SENTENCES",
    "DEFAULT_BATCHES",
    "DEFAULT_SEQ_LENS",
    "FP32_TOLERANCE",
    "ParityCase",
    "ParityError",
    "ParityReport",
    "Sentences",
    "Tolerance",
    "builtin_sentences",
    "compare",
    "parity_sentences",
    "require_finite_weights",
    "sentences_from_glue",
    "seq_grid",
]

DEFAULT_BATCHES = (1, 4, 16)
DEFAULT_SEQ_LENS = (16, 64, 128)


class ParityError(ExportError):
    """ONNX Runtime and PyTorch disagree; ``failures`` lists every failing case and output."""

    def __init__(self, source: str, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        super().__init__(
            f"{source}: ONNX Runtime differs from PyTorch in {len(self.failures)} case(s): "
            + "; ".join(self.failures)
        )


@dataclass(frozen=True)
class Tolerance:
    """Pass when ``|actual - expected| <= atol + rtol * |expected|`` elementwise."""

    atol: float
    rtol: float

    def to_json(self) -> dict[str, Any]:
        return {"atol": self.atol, "rtol": self.rtol, "rule": "|onnx - torch| <= atol + rtol * |torch|"}


FP32_TOLERANCE = Tolerance(atol=1e-4, rtol=1e-3)

BUILTIN_SENTENCES = (
    "The film is a charming, often moving portrait of a family in crisis.",
    "A dull and predictable plot that never finds its footing.",
    "The company reported higher profits for the third quarter in a row.",
    "Heavy rain is expected across the north of the country on Tuesday.",
    "She finished the marathon in under four hours despite the heat.",
    "The committee postponed its decision until more evidence is available.",
    "Nobody expected the small museum to attract so many visitors.",
    "The new bridge will connect the two halves of the city by 2027.",
)


@dataclass(frozen=True)
class Sentences:
    """Texts to tokenize: ``texts_b`` for pair tasks. ``fallback_reason`` says why task data was not
    used (``None`` when it was); ``fallback`` is the error that said it, when one did."""

    texts_a: list[str]
    texts_b: list[str] | None
    source: str
    fallback_reason: str | None = None
    fallback: DataError | None = field(default=None, compare=False)

    def take(self, n: int) -> tuple[list[str], list[str] | None]:
        """The first ``n`` examples, cycling when there are fewer."""
        idx = list(itertools.islice(itertools.cycle(range(len(self.texts_a))), n))
        return [self.texts_a[i] for i in idx], None if self.texts_b is None else [
            self.texts_b[i] for i in idx
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "examples": len(self.texts_a),
            "pairs": self.texts_b is not None,
            "fallback_reason": self.fallback_reason,
        }


def sentences_from_glue(task: str, data_dir: str | Path | None, n: int = max(DEFAULT_BATCHES)) -> Sentences:
    """The first ``n`` dev rows of a GLUE task (``data_dir``: a GLUE root, else ``$GLUE_DIR``, else
    the hub); raises :class:`DataError` when they cannot be read."""
    from nxm_deploy.data import get_task, load_split

    split = load_split(get_task(task), "dev", data_dir).select(n)
    if not len(split):
        raise DataError(f"{split.source} holds no rows")
    return Sentences(
        list(split.texts_a), None if split.texts_b is None else list(split.texts_b), split.source
    )


def builtin_sentences(pairs: bool, reason: str | DataError) -> Sentences:
    """The built-in sentences (paired with the next one for pair tasks), with why they are used."""
    a = list(BUILTIN_SENTENCES)
    b = a[1:] + a[:1] if pairs else None
    return Sentences(
        a, b, "built-in sentences", str(reason), reason if isinstance(reason, DataError) else None
    )


def parity_sentences(
    task: str | None, data_dir: str | Path | None, n: int = max(DEFAULT_BATCHES)
) -> Sentences:
    """Dev sentences of the run's task, or the built-in ones when the data cannot be found."""
    from nxm_deploy.data import get_task

    if not task:
        return builtin_sentences(False, "the run manifest names no task")
    try:
        pairs = get_task(task).is_pair
    except DataError as exc:
        return builtin_sentences(False, exc)
    try:
        return sentences_from_glue(task, data_dir, n)
    except DataError as exc:
        return builtin_sentences(pairs, exc)


def own_sentences(
    dataset: dict[str, Any] | None, options: Any = None, n: int = max(DEFAULT_BATCHES)
) -> Sentences | None:
    """Validation rows of own data: ``options`` (a ``DataOptions``, the ``data`` parameter), else the data
    the run recorded (``nxm.json``'s ``dataset``; built-in sentences when it cannot be read any more);
    None for a GLUE run without ``data``."""
    from nxm_deploy.data.own import load_own, recorded_options

    if options is None:
        if not dataset:
            return None
        try:
            dev = load_own(recorded_options(dataset)).dev.select(n)
        except DataError as exc:
            return builtin_sentences(bool((dataset.get("columns") or {}).get("text_pair")), exc)
    else:
        dev = load_own(options).dev.select(n)
    b = None if dev.texts_b is None else list(dev.texts_b)
    return Sentences(list(dev.texts_a), b, f"{dev.source} (validation rows)")


def seq_grid(max_seq_len: int, seq_lens: Sequence[int] = DEFAULT_SEQ_LENS) -> list[int]:
    """``seq_lens`` capped by ``max_seq_len`` (``[16, 64, 128]`` with 100 -> ``[16, 64, 100]``)."""
    return sorted({min(s, max_seq_len) for s in seq_lens})


@dataclass(frozen=True)
class ParityCase:
    """One output at one (batch, sequence length)."""

    batch: int
    seq: int
    output: str
    shape: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "seq": self.seq,
            "output": self.output,
            "shape": list(self.shape),
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class ParityReport:
    """Every case compared, and every failure (tolerance, shape, name or runtime), for one ONNX file."""

    source: str
    cases: list[ParityCase]
    failures: list[str]
    tolerances: Mapping[str, Tolerance]
    batches: list[int]
    seq_lens: list[int]
    sentences: Sentences
    runtime: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.cases)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.cases), default=float("nan"))

    def raise_for_failures(self) -> None:
        if self.failures:
            raise ParityError(self.source, self.failures)
        if not self.cases:
            raise ParityError(self.source, ["no case was compared"])

    def to_json(self) -> dict[str, Any]:
        return {
            **self.runtime,
            "inputs": self.sentences.to_json(),
            "padding": "max_length, truncation on",
            "tolerance": {name: tol.to_json() for name, tol in self.tolerances.items()},
            "batch_sizes": self.batches,
            "seq_lens": self.seq_lens,
            "max_abs_diff": self.max_abs_diff,
            "ok": self.ok,
            "failures": self.failures,
            "cases": [c.to_json() for c in self.cases],
        }


def _session(path: Path) -> Any:
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except (ort_state.Fail, ort_state.InvalidGraph, ort_state.InvalidProtobuf, ort_state.NoSuchFile) as exc:
        raise ExportError(f"ONNX Runtime cannot load {path}: {exc}") from exc


def _compare_one(
    name: str, got: np.ndarray, expected: np.ndarray, tol: Tolerance, batch: int, seq: int
) -> tuple[ParityCase | None, str | None]:
    where = f"batch {batch} x seq {seq}, output {name}"
    if got.shape != expected.shape:
        return None, f"{where}: shape {list(got.shape)} from ONNX, {list(expected.shape)} from PyTorch"
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    bound = tol.atol + tol.rtol * np.abs(expected.astype(np.float64))
    rel = diff / np.maximum(np.abs(expected.astype(np.float64)), np.finfo(np.float32).tiny)
    case = ParityCase(
        batch,
        seq,
        name,
        tuple(got.shape),
        float(diff.max(initial=0.0)),
        float(rel.max(initial=0.0)),
        bool(np.all(diff <= bound)),
    )
    if case.ok:
        return case, None
    worst = np.unravel_index(int(np.argmax(diff - bound)), diff.shape)
    return case, (
        f"{where}: max abs diff {case.max_abs_diff:.3g} > atol {tol.atol:g} + rtol {tol.rtol:g} * |torch| "
        f"(worst at {list(map(int, worst))}: onnx {got[worst]:.6g}, torch {expected[worst]:.6g})"
    )


def compare(
    model: nn.Module,
    onnx_path: Path,
    tokenizer: Any,
    sentences: Sentences,
    input_names: Sequence[str],
    batches: Sequence[int] = DEFAULT_BATCHES,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    tolerances: Mapping[str, Tolerance] | None = None,
) -> ParityReport:
    """Run ONNX Runtime and ``model`` on every (batch, seq) of the grid; collect every failure.

    ``tolerances`` maps output names to :class:`Tolerance` (default: ``logits`` at
    :data:`FP32_TOLERANCE`); an ONNX output with no tolerance or no PyTorch counterpart is a failure.
    """
    import onnxruntime as ort
    import torch
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    tolerances = dict(tolerances or {"logits": FP32_TOLERANCE})
    session = _session(onnx_path)
    output_names = [o.name for o in session.get_outputs()]
    cases: list[ParityCase] = []
    failures: list[str] = []
    missing = [n for n in output_names if n not in tolerances]
    failures += [f"output {n}: no tolerance given for it" for n in missing]
    model.eval()
    for batch, seq in itertools.product(batches, seq_lens):
        texts_a, texts_b = sentences.take(batch)
        enc = tokenizer(
            texts_a, texts_b, padding="max_length", truncation=True, max_length=seq, return_tensors="np"
        )
        feeds = {n: np.asarray(enc[n], dtype=np.int64) for n in input_names}
        with torch.no_grad():
            expected = model(**{n: torch.from_numpy(v) for n, v in feeds.items()})
        try:
            got = session.run(None, feeds)
        except (ort_state.Fail, ort_state.InvalidArgument, ort_state.RuntimeException) as exc:
            failures.append(f"batch {batch} x seq {seq}: ONNX Runtime failed ({str(exc).strip()[:200]})")
            continue
        for name, value in zip(output_names, got, strict=True):
            if name in missing:
                continue
            ref = expected.get(name) if hasattr(expected, "get") else None
            if ref is None:
                failures.append(f"batch {batch} x seq {seq}, output {name}: PyTorch returns no {name}")
                continue
            case, failure = _compare_one(name, value, ref.float().numpy(), tolerances[name], batch, seq)
            cases += [case] if case is not None else []
            failures += [failure] if failure is not None else []
    runtime = {
        "runtime": "onnxruntime",
        "runtime_version": ort.__version__,
        "provider": "CPUExecutionProvider",
        "reference": f"PyTorch {torch.__version__} eager, float32",
    }
    return ParityReport(
        str(onnx_path), cases, failures, tolerances, list(batches), list(seq_lens), sentences, runtime
    )


def require_finite_weights(model: nn.Module, run_dir: Path) -> None:
    """Refuse a run whose weights hold NaN or infinity (a diverged run), naming the first such tensor:
    its export would fail parity for a reason that parity cannot name."""
    import torch

    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ExportError.naming(
                "refusing to export: the weights of {run} are not finite ({name} holds {bad} NaN or "
                "infinite values); the run diverged: train it again (e.g. with a lower {0})",
                "lr",
                run=run_dir,
                name=name,
                bad=bad,
            )
