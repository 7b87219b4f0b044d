"""Shape profiles and precisions: what an engine is built for, checked before anything is built.

``parse_shape`` / ``ShapeProfile``: the dynamic (batch, sequence) range of every token input. Defaults
(``DEFAULT_PROFILE``): min 1x8, opt 8x128, max 32x512. 512 is the position limit of BERT-family encoders;
8x128 is a typical serving batch; 1x8 covers single short queries. ``PRECISIONS`` and
``check_precision``: the engine precisions nxm-deploy builds. ``trt_major``: a TensorRT version's major.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nxm_deploy.errors import ExportError

__all__ = [
    "DEFAULT_PROFILE",
    "ENGINE_PRECISIONS",
    "PRECISIONS",
    "ShapeProfile",
    "check_precision",
    "format_shape",
    "parse_shape",
    "trt_major",
]

PRECISIONS = ("fp32", "fp16")
ENGINE_PRECISIONS = (*PRECISIONS, "int8")
"""What an engine may be built at: ``--precision``'s choices, and ``int8`` for an INT8 Q/DQ ONNX
(``export --quantize int8``), built as a strongly typed network."""


_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_shape(text: str) -> tuple[int, int]:
    """``"8x128"`` -> ``(8, 128)``: batch x sequence, both positive integers."""
    match = _SHAPE_RE.match(str(text))
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ExportError(
            f"invalid shape {text!r}: write BATCHxSEQUENCE with positive integers, for example 8x128"
        )
    return int(match.group(1)), int(match.group(2))


def format_shape(shape: tuple[int, int]) -> str:
    """``(8, 128)`` -> ``"8x128"``: the inverse of ``parse_shape``."""
    return f"{shape[0]}x{shape[1]}"


@dataclass(frozen=True)
class ShapeProfile:
    """Dynamic (batch, sequence) range shared by every token input; ``min <= opt <= max`` elementwise."""

    min: tuple[int, int] = (1, 8)
    opt: tuple[int, int] = (8, 128)
    max: tuple[int, int] = (32, 512)

    def __post_init__(self) -> None:
        for label, shape in (("min", self.min), ("opt", self.opt), ("max", self.max)):
            if len(shape) != 2 or any(not isinstance(v, int) or v < 1 for v in shape):
                raise ExportError(
                    f"invalid {label} shape {shape!r}: need (batch, sequence), positive integers"
                )
        ordered = all(lo <= mid <= hi for lo, mid, hi in zip(self.min, self.opt, self.max, strict=True))
        if not ordered:
            raise ExportError(
                f"invalid shape profile min {format_shape(self.min)}, opt {format_shape(self.opt)}, "
                f"max {format_shape(self.max)}: need min <= opt <= max in batch and in sequence"
            )

    @classmethod
    def parse(cls, min_text: str, opt_text: str, max_text: str) -> ShapeProfile:
        """Profile from three ``BATCHxSEQUENCE`` strings."""
        return cls(parse_shape(min_text), parse_shape(opt_text), parse_shape(max_text))

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


DEFAULT_PROFILE = ShapeProfile()


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``ENGINE_PRECISIONS``; else a one-line ``ExportError``."""
    if precision not in ENGINE_PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def trt_major(version: str | None) -> int | None:
    """Major version of a TensorRT version string (``"10.13.0.35"`` -> 10); ``None`` if unknown."""
    if not version:
        return None
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else None
