"""Typed errors. A ``UserError`` is a user's mistake: the CLI prints its message as one line and
exits 1 (STYLE.md habit 8). Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: message says what was wrong, where, and what to do."""

    exit_code = 1


class PatternError(UserError, ValueError):
    """An invalid N:M pattern, or one that does not fit a tensor axis."""


class DataError(UserError):
    """Missing or malformed task data."""


class ModelError(UserError):
    """A model or tokenizer that cannot be loaded, or layers that cannot be sparsified."""


class SparsityError(UserError):
    """Weights that do not hold the N:M pattern they are claimed to hold."""


class ExportError(UserError):
    """An export that cannot be written or fails its own checks."""
