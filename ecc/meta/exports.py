"""Which structs an export header names (spec 3.5), without touching BTF.

Kept apart from skel.py so that a build can know this before clang runs,
without importing the BTF reader on its critical path.
"""

from __future__ import annotations

import re
from typing import NamedTuple


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class ExportSpec(NamedTuple):
    """Structs to export and where their names came from (for messages)."""

    header: str
    struct_names: tuple[str, ...]


_STRUCT_DEF = re.compile(r"\bstruct\s+([A-Za-z_]\w*)\s*\{")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def exported_struct_names(header_text: str) -> tuple[str, ...]:
    """Every ``struct NAME {`` of the header, in order, once each (comments ignored)."""
    seen: dict[str, None] = {}
    for match in _STRUCT_DEF.finditer(_COMMENTS.sub(" ", header_text)):
        seen.setdefault(match.group(1), None)
    return tuple(seen)
