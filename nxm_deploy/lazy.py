"""Lazy re-exports for package ``__init__`` files (transformers' ``_LazyModule`` habit, in brief).

    __getattr__, __dir__ = lazy_exports(__name__, {"train": "nxm_deploy.admm.run"})

A name is imported from its module on first use, so importing a package (and ``nxm-deploy --help``)
does not import torch or onnxruntime.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str | tuple[str, str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps each public name to the module
    that defines it, or to ``(module, attribute)`` when the attribute has another name (an empty
    attribute means the module itself)."""

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = (target, name) if isinstance(target, str) else target
        value = importlib.import_module(module)
        value = getattr(value, attr) if attr else value
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
