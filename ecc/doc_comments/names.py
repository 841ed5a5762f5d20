"""Which name a declaration documents: the identifiers of its head, best first.

The head is the declaration's tokens up to its first top-level ``;``, ``=``,
``,`` or body. Keywords, attributes, tag names and known typedefs never name
the entity; libbpf's program wrapper macros name it by their first argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

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
ATTRIBUTES_WITH_ARGS = frozenset(
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
HEAD_LIMIT = 512

Token: TypeAlias = tuple[str, str]  # (lexer group, text)


class _Group:
    """A parenthesised or bracketed run of a declaration head."""

    __slots__ = ("opener", "items")

    def __init__(self, opener: str) -> None:
        self.opener = opener
        self.items: list[Token | _Group] = []


def _nest(head: Sequence[Token]) -> list[Token | _Group]:
    root: list[Token | _Group] = []
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
        text in _NOT_NAMES or text in ATTRIBUTES_WITH_ARGS or text in _WRAPPERS or text in typedefs
    )


def _looks_like_macro(text: str) -> bool:
    return len(text) > 1 and text.isupper()


def _first_argument(group: _Group, typedefs: set[str]) -> str | None:
    """The first argument of a call-like group if it is one bare identifier."""
    first: list[Token | _Group] = []
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
    work: list[list[Token | _Group]] = [list(reversed(group.items))]
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
        if text in ATTRIBUTES_WITH_ARGS:
            if pending and isinstance(pending[-1], _Group):
                pending.pop()
            continue
        if _is_name(text, typedefs):
            names.append(text)
    return names


def candidates(head: Sequence[Token], typedefs: set[str]) -> tuple[tuple[str, ...], bool]:
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


def _roles(items: Sequence[Token | _Group], typedefs: set[str]) -> tuple[list[_Entry], bool]:
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
        if text in ATTRIBUTES_WITH_ARGS:
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
