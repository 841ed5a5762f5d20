"""Compiling: ``ecc build``'s library (spec section 1). The pipeline is pipeline.py;
this face names what callers use.

``BuildResult`` is a record (result.py), imported on first use: nothing before
clang starts needs it (see pipeline.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import BuildOptions as BuildOptions
from .pipeline import build as build

if TYPE_CHECKING:
    from .result import BuildResult as BuildResult


def __getattr__(name: str) -> Any:
    if name == "BuildResult":
        from .result import BuildResult

        return BuildResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
