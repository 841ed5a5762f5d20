"""A struct's readers fused into one ``struct.Struct`` and one generated function.

``ecc.run.decode`` compiles each type to a small reader closure. Called member
by member, a struct of N scalars costs N Python calls per record; here the
scalar members (nested structs' too) become one ``struct`` format, unpacked
in one C call, and the dict is built by one generated function whose dict
display mirrors the struct. A member without a fixed layout here (a bitfield,
an array of structs, a 128-bit integer) keeps its closure, called from the
generated function, so the values are those the closures give, by construction.

The generated source holds no text from the BTF but member names, written as
``repr()`` string literals, which no name can break out of; helpers reach it as
bound constants (``c5``, ``r2``).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any, NamedTuple

Reader = Callable[[bytes, int], Any]


class Leaf(NamedTuple):
    """A value ``struct`` reads in one code: ``how`` says what makes the value of it:
    "" itself, "call" ``conv(v)``, "get" ``conv(v, v)`` (an enum's names), "ne0"
    ``v != 0``, "list" ``list(conv(v))`` (a packed array's unpack), "text" a char
    array's bytes up to the first NUL as UTF-8, bad bytes as ``\\xNN``."""

    code: str
    size: int
    how: str = ""
    conv: Any = None


class Group(NamedTuple):
    """A struct: (name, byte offset, Leaf or Group, or None: call ``read``, reader)."""

    members: tuple[tuple[str, int, Leaf | Group | None, Reader], ...]


class Into(NamedTuple):
    """Build an object instead of a dict: ``new(cls)``, then each top-level member
    set as attribute ``slots[i]`` (identifiers the caller chose), values that are
    not scalars passed through ``wrap`` first (None: as they are)."""

    cls: type
    slots: tuple[str, ...]
    wrap: Callable[[Any], Any] | None = None
    keep: str | None = None  # also set this attribute to the buffer itself


def fuse(group: Group, prefix: str, into: Into | None = None) -> Reader | None:
    """One reader for ``group`` (``prefix`` "<" or ">"); None when its scalars overlap
    (a union inside) or it holds no scalar at all, so fusing would gain nothing."""
    leaves: list[tuple[int, Leaf]] = []
    consts: dict[str, Any] = {}

    def const(value: Any, letter: str) -> str:
        name = f"{letter}{len(consts)}"
        consts[name] = value
        return name

    def values(g: Group, base: int) -> list[tuple[str, bool]]:
        """Each member's expression, and whether it is a scalar."""
        items = []
        for _, offset, flat, read in g.members:
            at = base + offset
            if flat is None:
                items.append((f"{const(read, 'r')}(buf, off + {at})", False))
            elif isinstance(flat, Group):
                items.append((expr(flat, at), False))
            else:
                var = f"v{len(leaves)}"
                leaves.append((at, flat))
                items.append((_value(flat, var, const), True))
        return items

    def expr(g: Group, base: int) -> str:
        # Names as literals: repr cannot make code.
        pairs = zip(g.members, values(g, base), strict=True)
        return "{" + ", ".join(f"{m[0]!r}: {value}" for m, (value, _) in pairs) + "}"

    if into is None:
        body = f"    return {expr(group, 0)}\n"
    else:
        body = _build(values(group, 0), into, const)
    if not leaves:
        return None
    order = sorted(range(len(leaves)), key=lambda i: leaves[i][0])
    fmt, end = [prefix], 0
    for i in order:
        at, leaf = leaves[i]
        if at < end:
            return None
        if at > end:
            fmt.append(f"{at - end}x")
        fmt.append(leaf.code)
        end = at + leaf.size
    import struct

    consts["unpack"] = struct.Struct("".join(fmt)).unpack_from
    names = ", ".join(f"v{i}" for i in order)
    # The constants as defaults: locals read faster than globals.
    bound = "".join(f", {c}={c}" for c in consts)
    source = f"def read(buf, off{bound}):\n    {names}, = unpack(buf, off)\n{body}"
    # The namespace is the constants only: the function sees nothing else.
    namespace: dict[str, Any] = dict(consts)
    exec(compile(source, "<ecc struct reader>", "exec"), namespace)  # noqa: S102
    read: Reader = namespace["read"]
    return read


def _build(items: list[tuple[str, bool]], into: Into, const: Callable[[Any, str], str]) -> str:
    if len(into.slots) != len(items):
        raise ValueError(f"{len(into.slots)} attribute names for {len(items)} members")
    lines = [f"    o = {const(object.__new__, 'c')}({const(into.cls, 'c')})\n"]
    wrap = const(into.wrap, "c") if into.wrap is not None else None
    for slot, (value, scalar) in zip(into.slots, items, strict=True):
        if wrap is not None and not scalar:
            value = f"{wrap}({value})"
        lines.append(f"    o.{_name(slot)} = {value}\n")
    if into.keep is not None:
        lines.append(f"    o.{_name(into.keep)} = buf\n")
    return "".join(lines) + "    return o\n"


def _name(slot: str) -> str:
    if not slot.isidentifier() or keyword.iskeyword(slot):
        raise ValueError(f"{slot!r} is no attribute name")  # it goes into code
    return slot


def _value(leaf: Leaf, var: str, const: Callable[[Any, str], str]) -> str:
    if leaf.how == "call":
        return f"{const(leaf.conv, 'c')}({var})"
    if leaf.how == "get":
        return f"{const(leaf.conv, 'c')}({var}, {var})"
    if leaf.how == "text":  # inline: a call per string costs more than the decoding
        return f'{var}.partition(b"\\0")[0].decode("utf-8", "backslashreplace")'
    if leaf.how == "ne0":
        return f"{var} != 0"
    if leaf.how == "list":
        return f"list({const(leaf.conv, 'c')}({var}))"
    return var
