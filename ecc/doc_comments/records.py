"""What the doc-comment reader gives back: comments and warnings (frozen records).

Records (ecc/record.py), not dataclasses: every build imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..record import Record, set_field


class Diagnostic(Record):
    """A warning about a doc comment; ``line`` is 1-based in the source."""

    __slots__ = ("line", "message")
    line: int
    message: str

    def __init__(self, line: int, message: str) -> None:
        set_field(self, "line", line)
        set_field(self, "message", message)


class DocComment(Record):
    """One doc comment and the declaration right after it.

    ``candidates`` are the identifiers that may name the declared entity, the
    most likely first; the caller keeps the first one that really is a
    program, map or variable of the compiled object. ``lines`` is the comment
    text with its markers stripped, for callers that want to parse it again.
    """

    __slots__ = ("line", "decl_line", "candidates", "annotations", "keys_lines", "warnings",
                 "lines")
    line: int
    decl_line: int
    candidates: tuple[str, ...]
    annotations: Mapping[str, Any]      # compared, not hashed (a dict)
    keys_lines: Mapping[str, int]       # compared, not hashed (a dict)
    warnings: tuple[Diagnostic, ...]
    lines: tuple[tuple[int, str], ...]

    def __init__(self, line: int, decl_line: int, candidates: tuple[str, ...],
                 annotations: Mapping[str, Any], keys_lines: Mapping[str, int],
                 warnings: tuple[Diagnostic, ...],
                 lines: tuple[tuple[int, str], ...] = ()) -> None:
        set_field(self, "line", line)
        set_field(self, "decl_line", decl_line)
        set_field(self, "candidates", candidates)
        set_field(self, "annotations", annotations)
        set_field(self, "keys_lines", keys_lines)
        set_field(self, "warnings", warnings)
        set_field(self, "lines", lines)

    def __hash__(self) -> int:
        return hash((self.line, self.decl_line, self.candidates, self.warnings, self.lines))
