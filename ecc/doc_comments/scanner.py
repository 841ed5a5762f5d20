"""Which declaration each doc comment documents: a small C lexer and scanner.

It only has to be right about the shape of a file: comments, string literals,
preprocessor lines, braces, and the head of each top-level declaration, from
which the documented name is guessed. Hostile input is bounded, never a crash.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import TypeAlias

from .body import parse_comment_body
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
# Words that never name the declared entity

_TAG_KEYWORDS = frozenset({"struct", "union", "enum"})
_NOT_NAMES = frozenset(
    {
        # C keywords and GNU spellings
        "auto", "break", "case", "char", "const", "continue", "default", "do",
        "double", "else", "enum", "extern", "float", "for", "goto", "if",
        "inline", "int", "long", "register", "restrict", "return", "short",
        "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
        "unsigned", "void", "volatile", "while", "_Alignof", "_Atomic", "_Bool",
        "_Complex", "_Imaginary", "_Noreturn", "_Thread_local", "bool", "true",
        "false", "nullptr", "thread_local", "__inline", "__inline__",
        "__volatile", "__volatile__", "__const", "__const__", "__restrict",
        "__restrict__", "__signed", "__signed__", "__extension__", "__int128",
        "__int128_t", "__uint128_t", "__builtin_va_list", "_Float16", "__bf16",
        "__label__", "__auto_type",
        # kernel and libc typedefs that vmlinux.h / stdint provide
        "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "__u8", "__u16",
        "__u32", "__u64", "__s8", "__s16", "__s32", "__s64", "__be16", "__be32",
        "__be64", "__le16", "__le32", "__le64", "__wsum", "__sum16", "size_t",
        "ssize_t", "pid_t", "uid_t", "gid_t", "off_t", "loff_t", "dev_t",
        "ino_t", "mode_t", "umode_t", "time_t", "clock_t", "ktime_t",
        "sector_t", "gfp_t", "uintptr_t", "intptr_t", "ptrdiff_t", "int8_t",
        "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
        "uint64_t", "atomic_t", "atomic64_t", "__kernel_size_t", "Elf64_Addr",
        # attribute macros of bpf_helpers.h / the kernel, used without arguments
        "__always_inline", "__noinline", "__weak", "__hidden", "__ksym",
        "__kconfig", "__kptr", "__kptr_ref", "__kptr_untrusted",
        "__percpu_kptr", "__rcu", "__user", "__kernel", "__iomem", "__percpu",
        "__arg_ctx", "__arg_nonnull", "__arg_nullable", "__arg_trusted",
        "__arg_untrusted", "__arg_arena", "__arena", "__arena_global", "__used",
        "__unused", "__maybe_unused", "__always_unused", "__packed",
        "__noreturn", "__force", "__bitwise", "__must_check", "__cold", "__hot",
        "__pure", "__visible", "__init", "__exit", "__read_mostly", "__private",
        "__nocast", "__safe", "__deprecated", "__bpf_fastcall", "__ksym_weak",
    }
)  # fmt: skip
# Identifiers whose parenthesised argument belongs to them, not to the
# declarator: SEC("..."), __attribute__((...)), typeof(...), ...
_ATTRIBUTES_WITH_ARGS = frozenset(
    {
        "SEC", "__attribute__", "__attribute", "__section", "__aligned",
        "__declspec", "_Alignas", "alignas", "asm", "__asm", "__asm__",
        "__uint", "__type", "__array", "__ulong", "__contains", "__printf",
        "__format", "__btf_decl_tag", "__btf_type_tag", "__tag", "typeof",
        "__typeof", "__typeof__", "typeof_unqual", "__typeof_unqual__",
        "__counted_by", "_Static_assert", "static_assert", "_Pragma",
        "__builtin_preserve_access_index", "_Generic",
    }
)  # fmt: skip
# libbpf's bpf_tracing.h / usdt.bpf.h wrappers: the first argument is the
# program's name; the macro expands to `name(...)` plus a `____name` helper.
_WRAPPERS = frozenset(
    {
        "BPF_PROG", "BPF_PROG2", "BPF_KPROBE", "BPF_KRETPROBE", "BPF_KSYSCALL",
        "BPF_KPROBE_SYSCALL", "BPF_UPROBE", "BPF_URETPROBE", "BPF_USDT",
        "BPF_STRUCT_OPS", "BPF_STRUCT_OPS_SLEEPABLE",
    }
)  # fmt: skip
# Bounds the work per declaration on hostile input (a doc comment followed by
# a megabyte without ';'); real declaration heads are a few dozen tokens.
_HEAD_LIMIT = 512

_Token: TypeAlias = tuple[str, str]  # (lexer group, text)


class _Group:
    """A parenthesised or bracketed run of a declaration head."""

    __slots__ = ("opener", "items")

    def __init__(self, opener: str) -> None:
        self.opener = opener
        self.items: list[_Token | _Group] = []


def _nest(head: Sequence[_Token]) -> list[_Token | _Group]:
    root: list[_Token | _Group] = []
    stack = [root]
    for kind, text in head:
        if text == "(" or text == "[":
            group = _Group(text)
            stack[-1].append(group)
            stack.append(group.items)
        elif text == ")" or text == "]":
            if len(stack) > 1:
                stack.pop()
        else:
            stack[-1].append((kind, text))
    return root


def _is_name(text: str, typedefs: set[str]) -> bool:
    return not (
        text in _NOT_NAMES or text in _ATTRIBUTES_WITH_ARGS or text in _WRAPPERS or text in typedefs
    )


def _looks_like_macro(text: str) -> bool:
    return len(text) > 1 and text.isupper()


def _first_argument(group: _Group, typedefs: set[str]) -> str | None:
    """The first argument of a call-like group if it is one bare identifier."""
    first: list[_Token | _Group] = []
    for item in group.items:
        if item == ("p", ","):
            break
        first.append(item)
    if len(first) == 1:
        item = first[0]
        if not isinstance(item, _Group) and item[0] == "id" and _is_name(item[1], typedefs):
            return item[1]
    return None


def _names_inside(group: _Group, typedefs: set[str]) -> list[str]:
    """Identifiers in a parenthesised declarator like ``(*handler)``."""
    names: list[str] = []
    work: list[list[_Token | _Group]] = [list(reversed(group.items))]
    while work:
        pending = work[-1]
        if not pending:
            work.pop()
            continue
        item = pending.pop()
        if isinstance(item, _Group):
            if item.opener == "(":
                work.append(list(reversed(item.items)))
            continue
        kind, text = item
        if kind != "id":
            continue
        if text in _ATTRIBUTES_WITH_ARGS:
            if pending and isinstance(pending[-1], _Group):
                pending.pop()
            continue
        if _is_name(text, typedefs):
            names.append(text)
    return names


def _candidates(head: Sequence[_Token], typedefs: set[str]) -> tuple[tuple[str, ...], bool]:
    """Names the declaration with this head may declare, best first.

    ``head`` is the declaration's text up to its first top-level ``;``, ``=``,
    ``,`` or function body, with every ``{...}`` collapsed to one token. The
    second result says whether it is a typedef.
    """
    entries, is_typedef = _roles(_nest(head), typedefs)
    primary, extras, before = _primary(entries, typedefs)
    ordered: list[str] = []
    if primary is not None:
        ordered.append(primary)
    ordered.extend(extras)
    ordered.extend(text for role, text, _ in before if role == "name")
    return tuple(dict.fromkeys(ordered)), is_typedef


# (role, text, group): role is "name", "call", "group", "skip" or "other".
_Entry: TypeAlias = tuple[str, str, "_Group | None"]


def _roles(items: Sequence[_Token | _Group], typedefs: set[str]) -> tuple[list[_Entry], bool]:
    """What each item of a declaration head is; and whether the head is a typedef."""
    entries: list[_Entry] = []
    is_typedef = False
    expect_tag = False
    i = 0
    while i < len(items):
        item = items[i]
        after = items[i + 1] if i + 1 < len(items) else None
        i += 1
        if isinstance(item, _Group):
            entries.append(("group", item.opener, item))
            expect_tag = False
            continue
        kind, text = item
        if kind != "id":
            entries.append(("other", text, None))
            expect_tag = False
            continue
        if text in _ATTRIBUTES_WITH_ARGS:
            if isinstance(after, _Group) and after.opener == "(":
                i += 1
            continue
        if text in _TAG_KEYWORDS:
            entries.append(("skip", text, None))
            expect_tag = True
            continue
        if text in _NOT_NAMES:
            is_typedef = is_typedef or text == "typedef"
            entries.append(("skip", text, None))
            continue
        if expect_tag:
            # `struct bpf_map_def` names a type, never the declared object.
            expect_tag = False
            entries.append(("skip", text, None))
            continue
        if text in typedefs:
            entries.append(("skip", text, None))
            continue
        if isinstance(after, _Group) and after.opener == "(":
            entries.append(("call", text, after))
            i += 1
            continue
        entries.append(("name", text, None))

    return entries, is_typedef


def _primary(entries: list[_Entry], typedefs: set[str],
             ) -> tuple[str | None, list[str], list[_Entry]]:
    """The declared name, names a wrapper macro adds, and the entries before it."""
    primary: str | None = None
    extras: list[str] = []
    before = entries
    for index, (role, text, group) in enumerate(entries):
        if role == "call" and group is not None:
            first = _first_argument(group, typedefs)
            if text in _WRAPPERS or _looks_like_macro(text):
                # int BPF_KPROBE(do_unlinkat, ...): the macro defines do_unlinkat.
                primary = first if first is not None else (None if text in _WRAPPERS else text)
            else:
                primary = text
                if first is not None:
                    # An unknown lower-case wrapper macro: my_wrap(prog, ...).
                    extras.append(first)
            before = entries[:index]
            break
        if role == "group" and group is not None and group.opener == "(":
            # A parenthesised declarator: int (*handler)(void *).
            inner = _names_inside(group, typedefs)
            if inner:
                primary = inner[-1]
            before = entries[:index]
            break
    else:
        names = [text for role, text, _ in entries if role == "name"]
        if names:
            primary = names[-1]

    return primary, extras, before


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
        self.head: list[_Token] = []
        self.collect = collect
        self.head_done = False
        self.paren = 0
        self.last: _Token = ("", "")
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
                elif decl.collect and not decl.head_done and len(decl.head) < _HEAD_LIMIT:
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
                                last_kind == "id" and last_text not in _ATTRIBUTES_WITH_ARGS
                            ):
                                decl.params = True
                        decl.paren += 1
                    elif token == ")" or token == "]":
                        decl.paren = max(0, decl.paren - 1)
                    elif decl.paren == 0:  # '=' or ',' ends the declarator
                        decl.head_done = True
                        continue
                if decl.collect and len(decl.head) < _HEAD_LIMIT:
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
        candidates, is_typedef = _candidates(decl.head, self.typedefs)
        if is_typedef and candidates:
            self.typedefs.add(candidates[0])
        if doc is None:
            return
        doc.emitted = True
        annotations, keys_lines, warnings = parse_comment_body(
            doc.lines, doc_keys=bool(candidates) and candidates[0] == "LICENSE"
        )
        self.found.append(
            DocComment(
                line=doc.start_line,
                decl_line=decl.line,
                candidates=candidates,
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
