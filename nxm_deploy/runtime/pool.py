"""A pool of objects that must never be used by two threads at once.

    tokenizers = Pool(lambda: load_tokenizer(path))
    with tokenizers.checkout() as tokenizer:
        ids = tokenizer(texts)

A caller takes a free object, or a new one from ``factory`` when every object is busy, and gives it
back when its block ends. The pool grows to the peak number of concurrent callers and no further;
objects are reused in last-in, first-out order (the most recently used, warmest one first). Unlike
a thread-local, it does not leak an object per thread when a server starts a thread per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["Pool"]

T = TypeVar("T")


class Pool(Generic[T]):
    """Objects from ``factory``, each checked out by one thread at a time."""

    def __init__(self, factory: Callable[[], T], first: T | None = None) -> None:
        self._factory = factory
        self._free: list[T] = [] if first is None else [first]
        self._lock = threading.Lock()
        self.created = 0 if first is None else 1

    @contextmanager
    def checkout(self) -> Iterator[T]:
        with self._lock:
            item = self._free.pop() if self._free else None
        if item is None:
            item = self._factory()  # outside the lock: creating one may be slow
            with self._lock:
                self.created += 1
        try:
            yield item
        finally:
            with self._lock:
                self._free.append(item)
