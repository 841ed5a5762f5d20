"""The Python API over the compiler and the loader: what ``import ecc`` exposes.

Kept apart from ``ecc/__init__.py`` (which resolves these names lazily) so that
``import ecc`` costs nothing until a name is used. The list of public names is
``ecc.__all__``, written once there; ``tests/test_api.py`` checks that each one
is here.
"""

from __future__ import annotations

from .. import __all__ as _public
from ..errors import AttachError as AttachError
from ..errors import BuildError as BuildError
from ..errors import EccError as EccError
from ..errors import FetchError as FetchError
from ..errors import LoadError as LoadError
from ..errors import PackageError as PackageError
from .builder import BuildResult as BuildResult
from .builder import build as build
from .maps import Histogram as Histogram
from .maps import Map as Map
from .program import OptionInfo as OptionInfo
from .program import Program as Program
from .program import load as load
from .skeleton import Skeleton as Skeleton
from .skeleton import TypedMap as TypedMap
from .values import Event as Event
from .values import Record as Record
from .variables import Variables as Variables

__all__ = [name for name in _public if name != "__version__"]
