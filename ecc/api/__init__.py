"""The Python API over the compiler and the loader: what ``import ecc`` exposes.

Kept apart from ``ecc/__init__.py`` (which resolves these names lazily) so that
``import ecc`` costs nothing until a name is used.
"""

from __future__ import annotations

from ..errors import AttachError, BuildError, EccError, FetchError, LoadError, PackageError
from .builder import BuildResult, build
from .maps import Histogram, Map
from .program import OptionInfo, Program, load
from .values import Event, Record

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
    "build",
    "load",
]
