"""Typed errors. A ``UserError`` is a user's mistake: the CLI prints its message as one line and
exits with its ``exit_code`` (1; 3 when a GPU or TensorRT is needed), so say what was wrong, where,
and what to do. Anything else is a bug and keeps its traceback: a broken invariant of the library
raises :class:`InternalError`, never a ``UserError``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import TypeVar

_E = TypeVar("_E", bound="UserError")

EXIT_USER_ERROR = 1
EXIT_NEEDS_GPU = 3
"""Exit code when the work needs TensorRT or an NVIDIA GPU that this machine lacks."""


class UserError(Exception):
    """A mistake in the user's input: message says what was wrong, where, and what to do.

    Made by :meth:`naming`, the message names the library's parameters (``rho_max``) and
    :meth:`worded` can write them otherwise: the CLI writes its flags (``--rho-max``)."""

    exit_code = EXIT_USER_ERROR
    params: tuple[str, ...] = ()
    _template: str | None = None
    _values: Mapping[str, object] | None = None

    @classmethod
    def naming(cls: type[_E], template: str, *params: str, **values: object) -> _E:
        """This error, its ``template`` naming parameters as positional fields (``"{0} must be
        positive, got {value}"``): ``str()`` names the parameters, :meth:`worded` what it is given."""
        exc = cls(template.format(*params, **values))
        exc._name(template, params, values)
        return exc

    def _name(self, template: str, params: tuple[str, ...], values: Mapping[str, object]) -> None:
        self._template, self.params, self._values = template, params, values

    def worded(self, name_of: Callable[[str], str]) -> str:
        """The message with each parameter it names written as ``name_of(parameter)`` (also those
        that its values name: a :class:`Given`, another ``UserError``)."""
        if self._template is None:
            return str(self)
        values = {k: _worded(v, name_of) for k, v in (self._values or {}).items()}
        return self._template.format(*map(name_of, self.params), **values)

    def wrapped(
        self, template: str, *params: str, cls: type[UserError] | None = None, **values: object
    ) -> UserError:
        """A new error (of ``cls``, else this error's class) whose ``template`` holds this error's
        message as ``{error}``: each form of the new message holds the same form of this one."""
        return (cls or type(self)).naming(template, *params, error=self, **values)

    def replace_text(self, old: str, new: str) -> None:
        """Write ``new`` for ``old`` in the message, as :meth:`worded` too writes it (a path renamed
        after the error was raised)."""
        self.args = tuple(str(a).replace(old, new) for a in self.args)
        if self._values:
            self._values = {k: _replaced(v, old, new) for k, v in self._values.items()}

    @property
    def cli_message(self) -> str:
        """The message with each parameter written as :func:`flag` writes it (``--rho-max``)."""
        return self.worded(flag)


class Phrase:
    """Part of a message that names parameters, kept until the message is written in either form:
    ``Phrase("pass {0} with the GLUE root", "data_dir")`` is ``pass data_dir with the GLUE root`` by
    ``str()``, ``pass --data-dir with the GLUE root`` as the CLI words it (a value of a message made
    by :meth:`UserError.naming`)."""

    def __init__(self, template: str, *params: str, **values: object) -> None:
        self.template, self.params, self.values = template, params, values

    def worded(self, name_of: Callable[[str], str]) -> str:
        values = {k: _worded(v, name_of) for k, v in self.values.items()}
        return self.template.format(*map(name_of, self.params), **values)

    def __str__(self) -> str:
        return self.worded(str)


class Given(Phrase):
    """A parameter and the value given to it (if any): ``dense exports/x`` by ``str()``,
    ``--dense exports/x`` as the CLI words it."""

    def __init__(self, param: str, value: object = "") -> None:
        super().__init__("{0} {value}", param, value=value)

    def worded(self, name_of: Callable[[str], str]) -> str:
        return super().worded(name_of).rstrip()


def _worded(value: object, name_of: Callable[[str], str]) -> object:
    return value.worded(name_of) if isinstance(value, (UserError, Phrase)) else value


def _replaced(value: object, old: str, new: str) -> object:
    if isinstance(value, UserError):
        value.replace_text(old, new)
        return value
    if isinstance(value, Phrase):
        value.values = {k: _replaced(v, old, new) for k, v in value.values.items()}
        return value
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, PurePath):
        return type(value)(str(value).replace(old, new))
    return value


class InternalError(RuntimeError):
    """An invariant of the library broke: a bug, shown with its traceback (never one line)."""


def flag(name: str) -> str:
    """The command-line flag of a config parameter: ``rho_max`` -> ``--rho-max``."""
    return "--" + name.replace("_", "-")


class OptionError(UserError):
    """A bad value (or combination) of a config's parameters, made as :meth:`UserError.naming` makes
    any user error: ``OptionError("{0} must be positive, got {value}", "rho_max", value=-1)``."""

    def __init__(self, template: str, *params: str, **values: object) -> None:
        super().__init__(template.format(*params, **values))
        self._name(template, params, values)


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


# ---- serving and runtimes ----------------------------------------------------------------------
# A web service can turn PredictInputError into an HTTP 400 and the others into a 500 at start-up.


class ExportDirError(UserError):
    """A path that is not a usable export directory: missing, not a directory, no ``export.json``,
    no model file for the chosen backend, or a manifest that contradicts its model."""


class PredictInputError(UserError, ValueError):
    """Input that ``Predictor.predict`` cannot take: an empty list, mixed sentences and pairs, pairs
    for a single-sentence task (or the reverse), an item that is neither a str nor a pair of str."""


class InferenceError(UserError):
    """The runtime refused an input that passed every check (a shape outside an engine's profile,
    a sequence longer than the model's position limit, a broken model file)."""


class GpuNeededError(UserError):
    """The work asked for needs an NVIDIA (CUDA) GPU that this machine lacks: exit code 3."""

    exit_code = EXIT_NEEDS_GPU


class BackendUnavailableError(UserError):
    """The chosen backend cannot run here (``trt`` without TensorRT or an NVIDIA GPU): exit code 3."""

    exit_code = EXIT_NEEDS_GPU


class TensorRTUnavailableError(BackendUnavailableError, ExportError):
    """TensorRT or an NVIDIA GPU is missing: an engine cannot be built or run here (exit code 3)."""
