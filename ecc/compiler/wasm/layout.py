"""BTF types written as C for wasm32, with the BPF side's byte layout.

A wasm32 guest reads the kernel's bytes in place (an event from a ring
buffer, a global section in the object), but its C compiler lays types out
for wasm32: pointers and ``long`` are 4 bytes there, ``long long`` in a
struct is aligned as the ABI says, ``bool`` is whatever the language makes it.
So nothing is left to the guest's compiler: every scalar gets a fixed-width
type, every struct is ``packed`` with explicit ``__pad`` members where the
BPF side had padding, and each definition carries ``_Static_assert``s of its
size and of every member's offset, so a guest that compiles has the kernel's
layout. Bitfields are packed struct bitfields at the kernel's bit offsets
(both sides are little-endian, and a packed struct puts each bitfield right
after the previous one), with unnamed ones filling the gaps.

Named types are defined once per guest, whichever generated header comes
first: each definition is wrapped in an ``#ifndef`` on a name derived from the
type's, so the skeleton and the export header can both need ``struct event``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ecc.btf import Btf, resolve_size
from ecc.btf.parse import MAX_RESOLVE_DEPTH
from ecc.btf.types import (
    Array,
    Const,
    Enum,
    Enum64,
    Float,
    Fwd,
    Int,
    Member,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Volatile,
)
from ecc.errors import BtfError, CompileError

_MODS = (Const, Volatile, Restrict, TypeTag)
POINTER_FIX = "declare it __u64 (a kernel address means nothing to the guest)"


class Unrepresentable(CompileError):
    """A type that cannot be written for wasm32 with the BPF side's layout."""


@dataclass
class _Body:
    """What rendering one struct/union body produced."""

    lines: list[str] = field(default_factory=list)
    # (member designator for offsetof, offset) of every named, non-bitfield member
    offsets: list[tuple[str, int]] = field(default_factory=list)


def guard_name(c_name: str) -> str:
    """The macro that says ``c_name`` (``struct event``) is defined already."""
    return "ECC_WASM_DEFINED_" + c_name.replace(" ", "_")


class Wasm32Types:
    """Writes declarations of BTF types for wasm32; collects the definitions they need.

    Errors read ``<origin>: <where>: why; fix``, ``where`` naming the type and
    field (``struct event, field 'task'``). ``pointers_as_u64``: a pointer becomes the
    64-bit number it is on the BPF side instead of being refused (the
    skeleton's global variables may hold kernel addresses; an event should not).
    """

    def __init__(self, btf: Btf, origin: str, *, pointers_as_u64: bool = False) -> None:
        self.btf = btf
        self.origin = origin
        self.pointers_as_u64 = pointers_as_u64
        self.definitions: list[str] = []   # in dependency order
        self._defined: dict[int, str] = {}  # type id -> its C name
        self._in_progress: set[int] = set()
        self._anon_count = 0

    # --- errors --------------------------------------------------------------

    def _refuse(self, where: str, why: str, fix: str) -> Unrepresentable:
        return Unrepresentable(f"{self.origin}: {where}: {why}; {fix}")

    # --- public ----------------------------------------------------------------

    def define(self, type_id: int, where: str) -> str:
        """Define the named struct/union/enum ``type_id`` (and what it uses); its C name."""
        return self._named(self._skip_mods(type_id), where, 0)

    def declare(self, type_id: int, name: str, where: str) -> str:
        """``uint32_t name[4]``: a declaration of ``name`` as ``type_id`` for wasm32."""
        return self._decl(type_id, name, where, 0)

    def assertions(self, c_name: str, size: int, offsets: list[tuple[str, int]]) -> list[str]:
        label = c_name.replace(" ", "_")
        out = [f'_Static_assert(sizeof({c_name}) == {size}, '
               f'"{label}: size differs from the BPF side");']
        out += [f"_Static_assert(__builtin_offsetof({c_name}, {path}) == {off}, "
                f'"{label}.{path}: offset differs from the BPF side");'
                for path, off in offsets]
        return out

    def body(self, members: list[tuple[Member, str]], size: int, *, union: bool,
             where: str, depth: int = 0) -> _Body:
        """A struct/union body: ``members`` are (member, how errors name it)."""
        return self._body(members, size, union, where, depth, indent="    ")

    # --- internals -------------------------------------------------------------

    def _skip_mods(self, type_id: int) -> int:
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.btf[type_id]
            if not isinstance(t, _MODS):
                return type_id
            type_id = t.type
        return type_id  # a qualifier loop: resolve_size will refuse it with the type's name

    def _deeper(self, depth: int, where: str) -> int:
        if depth >= MAX_RESOLVE_DEPTH:
            raise self._refuse(where, f"types nest deeper than {MAX_RESOLVE_DEPTH}",
                               "flatten the struct")
        return depth + 1

    def _decl(self, type_id: int, name: str, where: str, depth: int) -> str:
        depth = self._deeper(depth, where)
        type_id = self._skip_mods(type_id)
        t = self.btf[type_id]
        sep = " " if name else ""
        if isinstance(t, Typedef):
            target = self._skip_mods_typedefs(t.type, where)
            resolved = self.btf[target]
            if isinstance(resolved, Struct | Union) and not resolved.name:
                return f"{self._named(type_id, where, depth)}{sep}{name}"
            return self._decl(t.type, name, where, depth)
        if isinstance(t, Int):
            return f"{self._int(t, where)}{sep}{name}"
        if isinstance(t, Enum | Enum64):
            if t.size not in (1, 2, 4, 8):
                raise self._refuse(where, f"a {t.size}-byte enum", "use a fixed-width integer")
            if t.name and isinstance(t, Enum) and t.values:
                self._named(type_id, where, depth)
            return f"{_fixed(t.size, t.signed)}{sep}{name}"
        if isinstance(t, Float):
            if t.size == 4:
                return f"float{sep}{name}"
            if t.size == 8:
                return f"double{sep}{name}"
            raise self._refuse(where, f"a {t.size}-byte floating type ({t.name}) has another "
                               "format in wasm32", "use double")
        if isinstance(t, Ptr):
            if self.pointers_as_u64:
                return f"uint64_t{sep}{name}"
            raise self._refuse(where, "a pointer (8 bytes on the BPF side, 4 in wasm32)",
                               POINTER_FIX)
        if isinstance(t, Array):
            return self._decl(t.type, f"{name}[{t.nelems}]", where, depth)
        if isinstance(t, Struct | Union):
            if t.name:
                return f"{self._named(type_id, where, depth)}{sep}{name}"
            body = self._body(self._members(t, where), t.size, isinstance(t, Union), where,
                              depth, indent="    ")
            inner = "\n".join(body.lines)
            return f"{_keyword(t)} {{\n{inner}\n}} __attribute__((packed)){sep}{name}"
        if isinstance(t, Fwd):
            raise self._refuse(where, f"{'union' if t.is_union else 'struct'} {t.name} is only "
                               "declared, never defined, in the BPF object",
                               "define it in the header the BPF program includes")
        raise self._refuse(where, f"{self.btf.describe(type_id)} has no wasm32 form",
                           "use fixed-width integers, arrays and structs of them")

    def _skip_mods_typedefs(self, type_id: int, where: str) -> int:
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.btf[type_id]
            if not isinstance(t, (*_MODS, Typedef)):
                return type_id
            type_id = t.type
        raise self._refuse(where, "typedef chain too long (a loop?)", "fix the header")

    def _int(self, t: Int, where: str) -> str:
        if t.bool:
            return "uint8_t"  # C's bool is 1 byte here, but the kernel may send any byte
        if t.size == 1 and (t.char or t.name == "char"):
            return "char"
        if t.size in (1, 2, 4, 8):
            return _fixed(t.size, t.signed)
        if t.size == 16:
            return "__int128" if t.signed else "unsigned __int128"
        raise self._refuse(where, f"a {t.size}-byte integer ({t.name})",
                           "use a fixed-width integer type")

    def _members(self, t: Struct | Union, where: str) -> list[tuple[Member, str]]:
        return [(m, field_label(where, m.name or "<anonymous>")) for m in t.members]

    def _named(self, type_id: int, where: str, depth: int) -> str:
        """Define a named struct/union/enum, or a typedef of an anonymous struct/union."""
        if type_id in self._defined:
            return self._defined[type_id]
        t = self.btf[type_id]
        if type_id in self._in_progress:
            raise self._refuse(where, f"{self.btf.describe(type_id)} contains itself",
                               "break the cycle")
        self._in_progress.add(type_id)
        try:
            if isinstance(t, Enum):
                c_name = f"enum {t.name}"
                values = ",\n".join(f"    {v.name} = {v.value}" for v in t.values)
                text = f"{c_name} {{\n{values}\n}};"
                self._emit(type_id, c_name, text)
                return c_name
            if isinstance(t, Typedef):
                target = self.btf[self._skip_mods_typedefs(t.type, where)]
                assert isinstance(target, Struct | Union)
                c_name, opener, closer = t.name, "typedef " + _keyword(target), f" {t.name};"
            else:
                assert isinstance(t, Struct | Union)
                target = t
                c_name = f"{_keyword(t)} {t.name}"
                opener, closer = c_name, ";"
            body = self._body(self._members(target, c_name), target.size,
                              isinstance(target, Union), c_name, depth, indent="    ")
            lines = [f"{opener} {{", *body.lines, f"}} __attribute__((packed)){closer}"]
            lines += self.assertions(c_name, target.size, body.offsets)
            self._emit(type_id, c_name, "\n".join(lines))
            return c_name
        finally:
            self._in_progress.discard(type_id)

    def _emit(self, type_id: int, c_name: str, text: str) -> None:
        guard = guard_name(c_name)
        self.definitions.append(f"#ifndef {guard}\n#define {guard}\n{text}\n#endif")
        self._defined[type_id] = c_name

    def _pad(self, nbytes: int) -> str:
        self._anon_count += 1
        return f"uint8_t __pad{self._anon_count}[{nbytes}];"

    def _body(self, members: list[tuple[Member, str]], size: int, union: bool, where: str,
              depth: int, indent: str) -> _Body:
        out = _Body()
        bitpos = 0  # bits used so far (struct) / largest member end (union)
        for member, member_where in members:
            if member.bitfield_size:
                line = self._bitfield(member, member_where, bitpos, union, out, indent)
                bitpos = member.bit_offset + member.bitfield_size if not union else max(
                    bitpos, member.bit_offset + member.bitfield_size)
                out.lines.append(indent + line)
                continue
            if member.bit_offset % 8:
                raise self._refuse(member_where, f"starts at bit {member.bit_offset}, not on a "
                                   "byte", "check the struct's attributes")
            offset = member.bit_offset // 8
            msize = self._size(member.type, member_where)
            if not union:
                used = (bitpos + 7) // 8
                if offset < used:
                    raise self._refuse(member_where, f"overlaps the member before it (offset "
                                       f"{offset}, {used} bytes used)", "check the struct")
                if offset > used:
                    out.lines.append(indent + self._pad(offset - used))
                bitpos = 8 * (offset + msize)
            else:
                if offset:
                    raise self._refuse(member_where, f"a union member at offset {offset}",
                                       "check the union")
                bitpos = max(bitpos, 8 * msize)
            decl = self._decl(member.type, member.name, member_where, depth)
            out.lines.append(indent + decl.replace("\n", "\n" + indent) + ";")
            self._record_offsets(member, offset, out)
        used = (bitpos + 7) // 8
        if used > size:
            raise self._refuse(where, f"members need {used} bytes, the type has {size}",
                               "check the struct")
        if used < size:
            out.lines.append(indent + (self._pad(size) if union else self._pad(size - used)))
        return out

    def _record_offsets(self, member: Member, offset: int, out: _Body) -> None:
        if member.name:
            out.offsets.append((member.name, offset))
            inner = self.btf[self._skip_mods(member.type)]
            if isinstance(inner, Struct | Union) and not inner.name:
                out.offsets += [(f"{member.name}.{p}", offset + o)
                                for p, o in self._anon_offsets(inner)]
        else:
            inner = self.btf[self._skip_mods(member.type)]
            if isinstance(inner, Struct | Union):
                out.offsets += [(p, offset + o) for p, o in self._anon_offsets(inner)]

    def _anon_offsets(self, t: Struct | Union) -> list[tuple[str, int]]:
        body = _Body()
        for m in t.members:
            if not m.bitfield_size and m.bit_offset % 8 == 0:
                self._record_offsets(m, m.bit_offset // 8, body)
        return body.offsets

    def _bitfield(self, member: Member, where: str, bitpos: int, union: bool, out: _Body,
                  indent: str) -> str:
        base = self.btf[self._skip_mods_typedefs(member.type, where)]
        if not isinstance(base, Int | Enum | Enum64):
            raise self._refuse(where, f"a bitfield of {self.btf.describe(base.id)}",
                               "make it an integer bitfield")
        width = 8 * base.size
        if base.size not in (1, 2, 4, 8):
            raise self._refuse(where, f"a bitfield of a {base.size}-byte type",
                               "use a bitfield of a fixed-width integer")
        ctype = "uint8_t" if isinstance(base, Int) and base.bool else _fixed(
            base.size, base.signed)
        if member.bitfield_size > width:
            raise self._refuse(where, f"a {member.bitfield_size}-bit field of a {width}-bit type",
                               "narrow the bitfield")
        if union:
            if member.bit_offset:
                raise self._refuse(where, f"a union bitfield at bit {member.bit_offset}",
                                   "check the union")
        elif member.bit_offset < bitpos:
            raise self._refuse(where, f"overlaps the member before it (bit {member.bit_offset})",
                               "check the struct")
        else:
            gap = member.bit_offset - bitpos
            while gap:
                step = min(gap, 64)
                out.lines.append(f"{indent}uint64_t : {step};")
                gap -= step
        name = member.name
        return f"{ctype} {name} : {member.bitfield_size};" if name else \
            f"{ctype} : {member.bitfield_size};"

    def _size(self, type_id: int, where: str) -> int:
        try:
            return resolve_size(self.btf, type_id)
        except BtfError as exc:  # say which member
            raise self._refuse(where, f"has no size ({exc})", "give the member a complete type"
                               ) from exc


def field_label(where: str, name: str) -> str:
    """``struct event, field 'a'``; inside an anonymous member: ``... field 'a.b'``."""
    if where.endswith("'"):
        return f"{where[:-1]}.{name}'"
    return f"{where}, field '{name}'"


def _fixed(size: int, signed: bool) -> str:
    return f"{'' if signed else 'u'}int{8 * size}_t"


def _keyword(t: Struct | Union) -> str:
    return "union" if isinstance(t, Union) else "struct"
