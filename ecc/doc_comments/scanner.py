"""Which declaration each doc comment documents: a small C lexer and scanner.

It only has to be right about the shape of a file: comments, string literals,
preprocessor lines, braces, and the head of each top-level declaration, from
which the documented name is guessed. Hostile input is bounded, never a crash.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import TypeAlias

from .body import parse_comment_body
from .names import ATTRIBUTES_WITH_ARGS, HEAD_LIMIT, Token, candidates
from .records import DocComment

# ---------------------------------------------------------------------------
# Lexer

# Whitespace is swallowed as a suffix of each token, but never a newline: a
# newline token must be where the next match starts, so that a directive is
# recognised only when its '#' opens a line.
_DIRECTIVE = (
    r"\#(?:[^\n/\"']+|//[^\n]*|/\*[\s\S]*?(?:\*/|\Z)|/"
    r"|\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?)*"
)
_TOKEN_RE = re.compile(
    r"(?:"
    r"(?P<pp>(?:\A|\n)[^\S\n]*" + _DIRECTIVE + r")"
    r"|(?P<nl>\n)"
    r"|(?P<lc>//[^\n]*)"
    r"|(?P<bc>/\*[\s\S]*?(?:\*/|\Z))"
    r"|(?P<id>[^\W\d]\w*)"
    r"|(?P<num>\.?\d(?:[eEpP][+-]|'\w|[\w.])*)"
    r"|(?P<str>\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?)"
    r"|(?P<open>\{)"
    r"|(?P<close>\})"
    r"|(?P<p>[()\[\];=,])"
    r"|(?P<o>[^\s\w\"'/{}()\[\];=,]+|/)"
    r"|(?P<ws>[^\S\n]+)"
    r")[^\S\n]*"
)
# Backslash-newline joins lines before anything else (C translation phase 2);
# trailing blanks after the backslash are accepted as gcc and clang do.
_SPLICE_RE = re.compile(r"\\[^\S\n]*\n")
_NEWLINE_RE = re.compile(r"\n")
_DIRECTIVE_NAME_RE = re.compile(r"\s*\#\s*([A-Za-z_]\w*)?(.*)", re.DOTALL)
_COMMENT_RE = re.compile(r"/\*[\s\S]*?(?:\*/|\Z)|//[^\n]*")
_INTEGER_RE = re.compile(r"([\s(]*)(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*([\s)]*)")

# ---------------------------------------------------------------------------
# Scanner


class _Pending:
    """A doc comment waiting for the declaration it documents."""

    __slots__ = ("block", "lines", "start_line", "end_line", "emitted")

    def __init__(self, block: bool, lines: list[tuple[int, str]], start: int, end: int) -> None:
        self.block = block
        self.lines = lines
        self.start_line = start
        self.end_line = end
        # Conditional branches may finish one declaration twice; report once.
        self.emitted = False


class _Decl:
    """A top-level declaration being read."""

    __slots__ = ("line", "doc", "head", "collect", "head_done", "paren", "last", "params", "body")

    def __init__(self, line: int, doc: _Pending | None, collect: bool) -> None:
        self.line = line
        self.doc = doc
        self.head: list[Token] = []
        self.collect = collect
        self.head_done = False
        self.paren = 0
        self.last: Token = ("", "")
        self.params = False
        self.body = False

    def copy(self) -> _Decl:
        other = _Decl(self.line, self.doc, self.collect)
        other.head = list(self.head)
        other.head_done = self.head_done
        other.paren = self.paren
        other.last = self.last
        other.params = self.params
        other.body = self.body
        return other


_Snapshot: TypeAlias = tuple[int, "_Decl | None"]


class _Frame:
    """One #if ... #endif group."""

    __slots__ = ("parent_live", "taken", "live", "start", "first_end")

    def __init__(self, parent_live: bool, value: bool | None, start: _Snapshot | None) -> None:
        self.parent_live = parent_live
        self.taken = value is True
        self.live = parent_live and value is not False
        self.start = start
        self.first_end: _Snapshot | None = None


def _constant_condition(argument: str) -> bool | None:
    """The value of an #if argument when it is a plain integer, else None."""
    match = _INTEGER_RE.fullmatch(_COMMENT_RE.sub(" ", argument))
    if match is None or match.group(1).count("(") != match.group(3).count(")"):
        return None
    digits = match.group(2)
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    # No int(): thousands of digits would trip Python's conversion limit.
    return digits.strip("0") != ""


def _splice(source: str) -> tuple[str, list[int]]:
    """Join continued lines; returns the text and where each line starts."""
    pieces: list[str] = []
    spliced: list[int] = []
    last = 0
    removed = 0
    for match in _SPLICE_RE.finditer(source):
        pieces.append(source[last : match.start()])
        removed += match.end() - match.start()
        spliced.append(match.end() - removed)
        last = match.end()
    pieces.append(source[last:])
    text = "".join(pieces)
    starts = [match.end() for match in _NEWLINE_RE.finditer(text)]
    if spliced:
        starts = sorted(starts + spliced)
    return text, starts


class _Scanner:
    def __init__(self, text: str, line_starts: list[int]) -> None:
        self.text = text
        self.line_starts = line_starts
        self.depth = 0
        self.decl: _Decl | None = None
        self.pending: _Pending | None = None
        self.frames: list[_Frame] = []
        self.typedefs: set[str] = set()
        self.found: list[DocComment] = []

    def line_of(self, offset: int) -> int:
        return bisect_right(self.line_starts, offset) + 1

    def live(self) -> bool:
        return self.frames[-1].live if self.frames else True

    def run(self) -> None:
        text = self.text
        live = True
        # Hot loop: state lives in locals and is synced around directives.
        depth = 0
        decl: _Decl | None = None
        # Every character matches some group, so the matches tile the text.
        for m in _TOKEN_RE.finditer(text):
            kind = m.lastgroup
            if kind == "nl" or kind == "ws":
                continue
            if kind == "pp":
                self.depth, self.decl = depth, decl
                self.directive(m.group("pp"))
                depth, decl, live = self.depth, self.decl, self.live()
                continue
            if not live:
                continue
            if depth:
                if kind == "open":
                    depth += 1
                elif kind == "close":
                    depth -= 1
                    if depth == 0 and decl is not None and decl.body:
                        self.finish(decl)
                        decl = None
                continue
            if kind == "lc" or kind == "bc":
                if decl is None:
                    self.comment(kind == "bc", m.group(kind), m.start())
                continue
            assert kind is not None
            token = m.group(kind)
            if decl is None:
                if kind == "close" or token == ";":
                    self.pending = None
                    continue
                line = self.line_of(m.start())
                doc = self.pending
                if doc is not None and line - doc.end_line > 1:
                    doc = None  # a blank line detaches the comment
                self.pending = None
                decl = _Decl(line, doc, doc is not None or token == "typedef")
            if kind == "open":
                if not decl.head_done and decl.paren == 0 and decl.params and decl.last[1] == ")":
                    decl.body = True
                    decl.head_done = True
                elif decl.collect and not decl.head_done and len(decl.head) < HEAD_LIMIT:
                    decl.head.append(("block", "{}"))
                depth = 1
                continue
            if kind == "close":
                continue
            if token == ";":
                self.finish(decl)
                decl = None
                continue
            if not decl.head_done:
                if kind == "p":
                    if token == "(" or token == "[":
                        if token == "(" and decl.paren == 0:
                            last_kind, last_text = decl.last
                            if last_text == ")" or (
                                last_kind == "id" and last_text not in ATTRIBUTES_WITH_ARGS
                            ):
                                decl.params = True
                        decl.paren += 1
                    elif token == ")" or token == "]":
                        decl.paren = max(0, decl.paren - 1)
                    elif decl.paren == 0:  # '=' or ',' ends the declarator
                        decl.head_done = True
                        continue
                if decl.collect and len(decl.head) < HEAD_LIMIT:
                    decl.head.append((kind, token))
            decl.last = (kind, token)
        if decl is not None:
            self.finish(decl)

    def comment(self, block: bool, token: str, start: int) -> None:
        if block:
            # '/**/' and '/***...' banners are ordinary comments, like '////'.
            if not token.startswith("/**") or token[3:4] in ("*", "/", "<", ""):
                self.pending = None
                return
            if not token.endswith("*/") or len(token) < 5:
                self.pending = None  # unterminated: only the end of file follows
                return
            lines: list[tuple[int, str]] = []
            offset = start + 3
            for index, segment in enumerate(token[3:-2].split("\n")):
                text = segment
                if index:
                    stripped = segment.lstrip()
                    if stripped.startswith("*"):
                        text = stripped[1:]
                lines.append((self.line_of(offset), text))
                offset += len(segment) + 1
            self.pending = _Pending(
                True, lines, self.line_of(start), self.line_of(start + len(token) - 1)
            )
            return
        if not token.startswith("///") or token[3:4] in ("/", "<"):
            self.pending = None
            return
        line = self.line_of(start)
        end_line = self.line_of(start + len(token) - 1)
        pending = self.pending
        if pending is not None and not pending.block and pending.end_line + 1 == line:
            pending.lines.append((line, token[3:]))
            pending.end_line = end_line
        else:
            self.pending = _Pending(False, [(line, token[3:])], line, end_line)

    def snapshot(self) -> _Snapshot:
        return self.depth, (self.decl.copy() if self.decl is not None else None)

    def restore(self, snapshot: _Snapshot) -> None:
        self.depth = snapshot[0]
        self.decl = snapshot[1].copy() if snapshot[1] is not None else None
        self.pending = None

    def directive(self, token: str) -> None:
        match = _DIRECTIVE_NAME_RE.match(token)
        name = (match.group(1) or "") if match else ""
        argument = match.group(2) if match else ""
        live = self.live()
        if live:
            self.pending = None  # a directive detaches a doc comment
        frames = self.frames
        if name in ("if", "ifdef", "ifndef"):
            value = _constant_condition(argument) if name == "if" else None
            frames.append(_Frame(live, value, self.snapshot() if live else None))
        elif name in ("elif", "elifdef", "elifndef", "else") and frames:
            frame = frames[-1]
            if frame.live and frame.start is not None:
                # Branches that both count (#ifdef X / #else) may each open a
                # brace; read each from the same start and keep the first one's
                # outcome, so one unbalanced branch cannot swallow the file.
                if frame.first_end is None:
                    frame.first_end = self.snapshot()
                self.restore(frame.start)
            if name == "else":
                frame.live = frame.parent_live and not frame.taken
                frame.taken = True
            elif frame.taken:
                frame.live = False
            else:
                value = _constant_condition(argument) if name == "elif" else None
                frame.live = frame.parent_live and value is not False
                frame.taken = value is True
        elif name == "endif" and frames:
            frame = frames.pop()
            if frame.first_end is not None:
                self.restore(frame.first_end)

    def finish(self, decl: _Decl) -> None:
        doc = decl.doc
        if not decl.collect or (doc is not None and doc.emitted):
            return
        names, is_typedef = candidates(decl.head, self.typedefs)
        if is_typedef and names:
            self.typedefs.add(names[0])
        if doc is None:
            return
        doc.emitted = True
        annotations, keys_lines, warnings = parse_comment_body(
            doc.lines, doc_keys=bool(names) and names[0] == "LICENSE"
        )
        self.found.append(
            DocComment(
                line=doc.start_line,
                decl_line=decl.line,
                candidates=names,
                annotations=annotations,
                keys_lines=keys_lines,
                warnings=tuple(warnings),
                lines=tuple(doc.lines),
            )
        )


def extract_doc_comments(source: str) -> tuple[DocComment, ...]:
    """Every doc comment right before a top-level declaration, in source order.

    A doc comment is a run of ``///`` lines on consecutive lines, or one
    ``/** */`` block, with nothing but whitespace (and no blank line) between
    it and the declaration. Code in ``#if 0`` is ignored; preprocessor lines
    are not declarations and detach a comment before them.
    """
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    if source.startswith("\ufeff"):
        source = source[1:]
    text, line_starts = _splice(source)
    scanner = _Scanner(text, line_starts)
    scanner.run()
    return tuple(sorted(scanner.found, key=lambda doc: (doc.line, doc.decl_line)))
