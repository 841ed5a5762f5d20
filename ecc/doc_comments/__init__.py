"""Doc comments of a ``.bpf.c`` source: which declaration each one documents.

eunomia users annotate programs, maps and global variables with ``///`` runs
or ``/** */`` blocks (spec §5). The reference asks libclang; we use a small
C lexer instead, so that no libclang is needed and arbitrary input can never
crash the build. The lexer only has to be right about the shape of a file:
comments, string literals, preprocessor lines, braces, and the head of each
top-level declaration, from which the documented name is guessed.

Everything here is pure: text in, frozen dataclasses out.
"""

from .body import parse_comment_body, validate_cmdargs
from .records import Diagnostic, DocComment
from .scanner import extract_doc_comments

__all__ = [
    "Diagnostic",
    "DocComment",
    "extract_doc_comments",
    "parse_comment_body",
    "validate_cmdargs",
]
