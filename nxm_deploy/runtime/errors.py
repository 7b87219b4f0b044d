"""Errors of the serving runtime. Each is a :class:`~nxm_deploy.errors.UserError`: one line that says
what was wrong and what to do, shown by the CLI without a traceback (a web service can turn
:class:`PredictInputError` into an HTTP 400 and the others into a 500 at start-up)."""

from __future__ import annotations

from nxm_deploy.errors import UserError

__all__ = ["BackendUnavailableError", "ExportDirError", "InferenceError", "PredictInputError"]


class ExportDirError(UserError):
    """A path that is not a usable export directory: missing, not a directory, no ``export.json``,
    no model file for the chosen backend, or a manifest that contradicts its model."""


class PredictInputError(UserError, ValueError):
    """Input that ``Predictor.predict`` cannot take: an empty list, mixed sentences and pairs, pairs
    for a single-sentence task (or the reverse), an item that is neither a str nor a pair of str."""


class BackendUnavailableError(UserError):
    """The chosen backend cannot run here (``trt`` without TensorRT or an NVIDIA GPU)."""


class InferenceError(UserError):
    """The runtime refused an input that passed every check (a shape outside an engine's profile)."""
