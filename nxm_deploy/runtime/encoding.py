"""Text in, padded int64 batches out: input checks, thread-safe tokenization, truncation, batching.

    encoder = TextEncoder.from_dir("exports/rte-admm", facts)
    texts_a, texts_b = split_inputs([("A man sleeps.", "Nobody sleeps.")], facts)
    encoded = encoder.encode(texts_a, texts_b)     # token ids per row, truncated to max_seq_len
    for batch in encoder.batches(encoded, max_batch=32):
        batch.feed["input_ids"]                    # int64 (b, s): b <= 32, s = longest row of the batch

Fast (Rust) tokenizers are not re-entrant: every call sets truncation and padding options on the one
shared Rust object, which its Python binding refuses while another thread is still encoding with it
("RuntimeError: Already borrowed", huggingface/tokenizers#537, transformers#47085). So each call checks a
tokenizer out of a :class:`~nxm_deploy.runtime.pool.Pool` (copies of one prototype that is never used
for encoding itself): concurrent callers each get their own, and the pool holds as many copies as
there were callers at the busiest moment.

Truncation. Rows are encoded with ``max_length = max_seq_len + 1``: a row that comes back that long
had more tokens than the model takes (it was cut to ``max_seq_len + 1``, and a shorter input is
never cut), so it is encoded again with ``max_length = max_seq_len`` and flagged ``truncated``. The
tokenizer's own strategy decides what is cut (BERT: ``longest_first``, trimming the longer sentence
of a pair first).

Batching. Rows are ordered by token count, cut into batches of at most ``max_batch`` and padded to
the longest row of their batch (the attention mask hides the padding), or, with ``buckets``, to the
smallest bucket that holds them, so that every batch has one of a few fixed sequence lengths (what
Triton's dynamic batcher needs to merge requests, ``nxm_deploy.runtime.triton``).
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nxm_deploy.errors import ExportDirError, PredictInputError
from nxm_deploy.runtime.exportdir import ServingFacts
from nxm_deploy.runtime.pool import Pool

__all__ = ["Batch", "Encoded", "TextEncoder", "split_inputs"]


def _describe(item: object) -> str:
    if isinstance(item, (tuple, list)):
        kinds = ", ".join(type(x).__name__ for x in item[:3])
        return f"a {type(item).__name__} of {len(item)} ({kinds}{', ...' if len(item) > 3 else ''})"
    return f"a {type(item).__name__}"


def split_inputs(inputs: Iterable[Any], facts: ServingFacts) -> tuple[list[str], list[str] | None]:
    """``[str, ...]`` -> (sentences, None); ``[(str, str), ...]`` -> (first sentences, second ones).
    A pair may be a tuple or a two-item list (JSON has no tuples).

    Raises :class:`PredictInputError` for a bare string, an empty list, an item that is neither a str
    nor a pair of str, a mix of both kinds, or the kind the task does not take.
    """
    if isinstance(inputs, (str, bytes)):
        raise PredictInputError("predict() takes a list of texts, got a single string; wrap it: [text]")
    if isinstance(inputs, (Mapping, Set)):  # iterating would read a dict's keys, a set in no fixed order
        raise PredictInputError(
            f"predict() takes a list of texts or (text, text) pairs, got a {type(inputs).__name__}; "
            "pass a list (e.g. list(d.values()))"
        )
    try:
        items = list(inputs)
    except TypeError as exc:
        raise PredictInputError(
            f"predict() takes a list of texts or (text, text) pairs, got {_describe(inputs)}"
        ) from exc
    if not items:
        raise PredictInputError("predict() got an empty list; pass at least one text or (text, text) pair")
    first_single = first_pair = None
    for i, item in enumerate(items):
        if isinstance(item, str):
            first_single = i if first_single is None else first_single
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
            first_pair = i if first_pair is None else first_pair
        else:
            raise PredictInputError(f"input {i} is {_describe(item)}; expected a str or a (str, str) pair")
    _require_unicode(items)
    task = facts.task or "this model"
    if first_single is not None and first_pair is not None:
        raise PredictInputError(
            f"inputs mix single sentences and pairs (input {first_single} is a sentence, input "
            f"{first_pair} a pair); send one kind per call"
        )
    if first_pair is not None:
        if facts.is_pair is False:
            raise PredictInputError(
                f"{task} takes single sentences, but the inputs are pairs; pass a list of str"
            )
        return [a for a, _ in items], [b for _, b in items]
    if facts.is_pair:
        raise PredictInputError(
            f"{task} takes sentence pairs, but the inputs are single sentences; "
            "pass a list of (sentence1, sentence2) tuples"
        )
    return list(items), None


def _require_unicode(items: list[Any]) -> None:
    """Refuse a text the tokenizer cannot take: one that UTF-8 cannot encode (a lone surrogate,
    ``"\\ud800"``, as ``surrogateescape`` decoding leaves for bytes that are not UTF-8), naming its row."""
    for i, item in enumerate(items):
        for j, text in enumerate((item,) if isinstance(item, str) else item):
            if text.isascii():
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                part = "" if isinstance(item, str) else f" (sentence {j + 1} of the pair)"
                raise PredictInputError(
                    f"input {i}{part} is not valid Unicode text: {text[exc.start]!r} at character "
                    f"{exc.start} is a lone surrogate, which UTF-8 cannot encode; decode the bytes with "
                    "errors='replace' or drop the row"
                ) from None


@dataclass(frozen=True)
class Encoded:
    """Token ids of each row (unpadded lists, at most ``max_seq_len`` long) and which rows were cut."""

    features: dict[str, list[list[int]]]
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.truncated)

    def lengths(self) -> np.ndarray:
        return np.asarray([len(ids) for ids in self.features["input_ids"]], dtype=np.int64)  # (N,)


@dataclass(frozen=True)
class Batch:
    """One model call: ``rows`` are positions in the caller's input list, ``feed`` the padded inputs."""

    rows: np.ndarray  # (b,) int
    feed: dict[str, np.ndarray]  # name -> int64 (b, s)

    @property
    def shape(self) -> tuple[int, int]:
        b, s = next(iter(self.feed.values())).shape
        return int(b), int(s)


class TextEncoder:
    """Thread-safe tokenization for one model: its input names, padding values and sequence limit."""

    def __init__(self, tokenizer: Any, input_names: Sequence[str], max_seq_len: int) -> None:
        if max_seq_len < 2:
            raise ExportDirError(f"max_seq_len {max_seq_len} is too small: need at least 2 tokens")
        if tokenizer.pad_token_id is None:
            raise ExportDirError(f"the tokenizer ({type(tokenizer).__name__}) has no padding token")
        self.input_names = tuple(input_names)
        self.max_seq_len = int(max_seq_len)
        self._prototype = tokenizer  # never used to encode: only copied
        self._copy_lock = threading.Lock()
        self._pool: Pool[Any] = Pool(self._copy)
        self.pad_values = {
            "input_ids": int(tokenizer.pad_token_id),
            "attention_mask": 0,
            "token_type_ids": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        }
        self.left_padding = getattr(tokenizer, "padding_side", "right") == "left"
        self._token_types = "token_type_ids" in self.input_names
        missing = [n for n in self.input_names if n not in self._call(["probe"], None)]
        if missing:
            raise ExportDirError(f"the model needs inputs {missing} that its tokenizer does not give")

    @classmethod
    def from_dir(
        cls, path: str | os.PathLike[str], facts: ServingFacts, max_seq_len: int | None = None
    ) -> TextEncoder:
        """The tokenizer saved in ``path`` (an export directory), for the model ``facts`` describe."""
        from nxm_deploy.models import load_tokenizer

        tokenizer = load_tokenizer(Path(path).resolve())
        return cls(tokenizer, facts.input_names, max_seq_len or facts.max_seq_len)

    @property
    def tokenizers_created(self) -> int:
        """How many tokenizer copies the pool holds (the peak number of concurrent encodes)."""
        return self._pool.created

    def _copy(self) -> Any:
        with self._copy_lock:
            return copy.deepcopy(self._prototype)

    def _call(self, texts_a: list[str], texts_b: list[str] | None, max_length: int | None = None) -> Any:
        with self._pool.checkout() as tokenizer:
            return tokenizer(
                texts_a,
                texts_b,
                truncation=max_length is not None,
                max_length=max_length,
                return_attention_mask=True,
                return_token_type_ids=self._token_types,
            )

    def encode(self, texts_a: list[str], texts_b: list[str] | None = None) -> Encoded:
        """Token ids of every row, cut to ``max_seq_len`` tokens (see the module's "Truncation")."""
        limit = self.max_seq_len
        enc = self._call(texts_a, texts_b, limit + 1)
        features = {name: list(enc[name]) for name in self.input_names}
        long = [i for i, ids in enumerate(features["input_ids"]) if len(ids) > limit]
        if long:
            again = self._call(
                [texts_a[i] for i in long], [texts_b[i] for i in long] if texts_b is not None else None, limit
            )
            for j, i in enumerate(long):
                for name in self.input_names:
                    features[name][i] = again[name][j]
        truncated = [False] * len(texts_a)
        for i in long:
            truncated[i] = True
        return Encoded(features, truncated)

    def pad(self, encoded: Encoded, rows: Sequence[int], length: int) -> dict[str, np.ndarray]:
        """``rows`` of ``encoded`` padded to ``length`` tokens: name -> int64 (len(rows), length)."""
        feed = {}
        for name in self.input_names:
            arr = np.full((len(rows), length), self.pad_values.get(name, 0), dtype=np.int64)  # (b, s)
            for r, i in enumerate(rows):
                ids = encoded.features[name][i]
                if self.left_padding:
                    arr[r, length - len(ids) :] = ids
                else:
                    arr[r, : len(ids)] = ids
            feed[name] = arr
        return feed

    def batches(
        self,
        encoded: Encoded,
        max_batch: int,
        min_seq: int = 1,
        buckets: Sequence[int] | None = None,
    ) -> list[Batch]:
        """Batches of at most ``max_batch`` rows, shortest rows first, each padded to its longest row
        (at least ``min_seq``), or to the smallest of ``buckets`` that holds it."""
        lengths = encoded.lengths()
        order = np.argsort(lengths, kind="stable")  # (N,) shortest first, ties in input order
        if buckets is None:
            chunks = [order[i : i + max_batch] for i in range(0, len(order), max_batch)]
            return [
                Batch(rows, self.pad(encoded, rows, max(int(lengths[rows].max()), min_seq)))
                for rows in chunks
            ]
        sizes = np.asarray(sorted(buckets), dtype=np.int64)
        if lengths.max() > sizes[-1]:
            raise ExportDirError(
                f"the largest bucket {sizes[-1]} is shorter than max_seq_len {self.max_seq_len}"
            )
        padded = sizes[np.searchsorted(sizes, lengths)]  # (N,) the bucket of each row
        out = []
        for size in np.unique(padded[order]):
            group = order[padded[order] == size]
            for i in range(0, len(group), max_batch):
                rows = group[i : i + max_batch]
                out.append(Batch(rows, self.pad(encoded, rows, int(size))))
        return out
