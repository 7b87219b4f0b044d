"""Tokenize task rows for training: encoded datasets, fixed subsets, row fingerprints, fixed shapes."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset


class EncodedDataset(Dataset):
    """Pre-tokenized rows; items are dicts of python lists plus ``labels`` (padding at collate time)."""

    def __init__(self, encodings: dict[str, list[list[int]]], labels: Sequence[int | float]) -> None:
        self.encodings = encodings
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {k: v[i] for k, v in self.encodings.items()}
        item["labels"] = self.labels[i]
        return item


def encode(
    tokenizer: Any,
    texts_a: Sequence[str],
    texts_b: Sequence[str] | None,
    labels: Sequence[int | float],
    max_seq_len: int,
) -> EncodedDataset:
    """Tokenize single sentences or pairs, truncated to ``max_seq_len`` (no padding)."""
    enc = tokenizer(
        list(texts_a),
        list(texts_b) if texts_b is not None else None,
        truncation=True,
        max_length=max_seq_len,
    )
    return EncodedDataset({k: list(v) for k, v in enc.items()}, labels)


def subset_indices(n_rows: int, limit: int | None, seed: int = 0) -> list[int]:
    """A fixed random subset of ``limit`` rows (seed 0 by default: the same for every method and
    training seed), kept in file order; all rows when ``limit`` is None or not smaller."""
    if limit is None or limit >= n_rows:
        return list(range(n_rows))
    return sorted(random.Random(seed).sample(range(n_rows), limit))


def trained_indices(split: Any, limit: int | None, recorded_sha256: str) -> list[int] | None:
    """The rows of the training ``split`` that a run trained on: the same fixed subset of ``limit``
    rows that ``train`` draws (all when None), proven by the sha256 the run recorded
    (``nxm.json``'s ``data.train_sha256``); None when the split no longer holds those rows."""
    idx = subset_indices(len(split), int(limit) if limit else None)
    a = [split.texts_a[i] for i in idx]
    b = [split.texts_b[i] for i in idx] if split.texts_b is not None else None
    if rows_fingerprint(a, b, [split.labels[i] for i in idx]) != recorded_sha256:
        return None
    return idx


def rows_fingerprint(
    texts_a: Sequence[str], texts_b: Sequence[str] | None, labels: Sequence[int | float]
) -> str:
    """sha256 of the rows actually used (texts and labels, tab-separated, one row per line)."""
    h = hashlib.sha256()
    for i, a in enumerate(texts_a):
        b = texts_b[i] if texts_b is not None else ""
        h.update(f"{a}\t{b}\t{labels[i]}\n".encode())
    return h.hexdigest()


def fixed_shape_batch(
    tokenizer: Any,
    texts_a: Sequence[str],
    texts_b: Sequence[str] | None,
    batch: int,
    seq_len: int,
) -> dict[str, torch.Tensor]:
    """``batch`` rows (cycled if there are fewer) padded or truncated to exactly ``seq_len``."""
    idx = [i % len(texts_a) for i in range(batch)]
    a = [texts_a[i] for i in idx]
    b = [texts_b[i] for i in idx] if texts_b is not None else None
    enc = tokenizer(a, b, truncation=True, max_length=seq_len, padding="max_length", return_tensors="pt")
    return dict(enc)
