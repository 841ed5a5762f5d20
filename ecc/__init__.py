"""ecc: compile libbpf CO-RE programs into eunomia-format packages, and run them.

The Python API (``ecc.build``, ``ecc.load`` ...; docs/api.md) lives in
``ecc.api`` and is imported on first use of one of its names, so that
``import ecc`` (and every ``ecc`` command's start-up) stays cheap.
``__all__`` below is the one list of the stable names; ``ecc.api`` takes its own from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "BuildError",
    "BuildResult",
    "EccError",
    "Event",
    "FetchError",
    "Histogram",
    "LoadError",
    "Map",
    "OptionInfo",
    "PackageError",
    "Program",
    "Record",
    "Skeleton",
    "TypedMap",
    "Variables",
    "__version__",
    "build",
    "load",
]

if TYPE_CHECKING:
    from .api import (
        AttachError,
        BuildError,
        BuildResult,
        EccError,
        Event,
        FetchError,
        Histogram,
        LoadError,
        Map,
        OptionInfo,
        PackageError,
        Program,
        Record,
        Skeleton,
        TypedMap,
        Variables,
        build,
        load,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'ecc' has no attribute {name!r}")
    # By name, not an import statement: the API sits above every layer of ecc
    # (tests/test_layout.py), and this package's face only forwards to it on demand.
    import importlib

    value = getattr(importlib.import_module("ecc.api"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
