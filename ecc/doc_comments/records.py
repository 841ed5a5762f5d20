"""What the doc-comment reader gives back: comments and warnings (frozen records)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Diagnostic:
    """A warning about a doc comment; ``line`` is 1-based in the source."""

    line: int
    message: str


@dataclass(frozen=True)
class DocComment:
    """One doc comment and the declaration right after it.

    ``candidates`` are the identifiers that may name the declared entity, the
    most likely first; the caller keeps the first one that really is a
    program, map or variable of the compiled object. ``lines`` is the comment
    text with its markers stripped, for callers that want to parse it again.
    """

    line: int
    decl_line: int
    candidates: tuple[str, ...]
    annotations: Mapping[str, Any] = field(hash=False)
    keys_lines: Mapping[str, int] = field(hash=False)
    warnings: tuple[Diagnostic, ...]
    lines: tuple[tuple[int, str], ...] = ()
