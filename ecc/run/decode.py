"""Event and map bytes -> Python values, driven by BTF.

Ring/perf buffer records laid out as an exported struct, and map keys and
values, become plain Python values (``int``, ``bool``, ``float``, ``str``,
``list``, ``dict``) that ``ecc run`` prints as text or JSON and the API wraps.

The rules follow libbpf's ``btf_dump_*_data`` family (style guide section 3),
re-implemented:

- Every read is bounds-checked: compiling a type (once) proves every read
  lies inside its BTF size (else ``BtfError`` up front), so at decode time
  one length check against the size covers all reads.
- Integers of 1/2/4/8/16 bytes in the BTF's byte order; ``_Bool`` -> bool;
  pointers -> their address as an int; float/double -> float.
- A char array (its element, through typedefs and qualifiers, is a 1-byte
  INT with the CHAR encoding or named ``char``) -> str up to its first NUL,
  or the whole array when there is none; UTF-8, each byte that is not valid
  UTF-8 written as the four characters ``\\xNN`` (so plain and JSON output
  show the same text, and no byte is lost to a U+FFFD).
  ``unsigned char``/``__u8`` arrays stay lists of ints: they hold addresses
  and hashes far more often than text.
- Other arrays -> list; structs and unions -> dict, with the members of an
  anonymous struct/union member flattened into the parent, as C accesses them.
- Enums -> the enumerator's name, or the number when none matches (flag sets).
- Bitfields by shift and mask; BTF counts bit offsets from the start of the
  struct, from the least significant bit on little-endian targets and from
  the most significant bit on big-endian ones.

Decoding is on the hot path, so each type compiles once to a tree of small
closures, and a struct's fixed-layout members fuse into one ``struct.Struct``
(structplan.py).

Events shorter than their type (issue 30). BPF programs such as libbpf-tools'
execsnoop declare a large trailing buffer (``char args[7680]``) but submit
only the bytes they filled. ``Decoder.decode`` takes such an event as far as
it goes: a top-level member (anonymous members flattened, as above) that lies
wholly inside the data is decoded as usual; an array member the data ends in
keeps its whole elements received (a char array: its bytes up to the data's
end or its first NUL), and is left out when not one element arrived; every
other member the data ends in or before (a nested struct, a scalar) is left
out of the dict. Nothing is read past the data: the short path works on a
buffer of exactly the data's length and checks each member's extent against
it. An event that holds no member at all raises ``PackageError``.

Events longer than their type decode from their first ``size`` bytes (perf
buffers pad records to 8 bytes, so up to 7 extra are normal); ``EventTally``
counts records too short or longer than that, for one report per kind.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from ecc.btf import MAX_RESOLVE_DEPTH, Btf, skip_mods_and_typedefs, type_str
from ecc.btf.raw import ByteOrder
from ecc.btf.types import (
    Array,
    Enum,
    Enum64,
    Float,
    Int,
    Ptr,
    Struct,
    Type,
    Union,
)
from ecc.errors import BtfError, PackageError
from ecc.run.structplan import Group, Into, Leaf, fuse
from ecc.run.tally import EventTally
from ecc.run.typeshape import int_array_length, is_number, member_type

__all__ = ["Decoder", "EventTally", "ValueDecoder", "decode_value", "field_names",
           "int_array_length", "is_number", "member_type"]

# (buffer, byte offset) -> value. The buffer is always ``bytes``, and the
# caller has already checked that the whole value lies inside it.
Reader = Callable[[bytes, int], Any]
# (buffer, byte offset, element count) -> the first ``count`` elements of an
# array; the caller has checked that those elements lie inside the buffer.
PartialReader = Callable[[bytes, int, int], Any]
# A member as decode sees it: name, reader, byte offset, display width, the
# bytes from its offset it needs, and, for arrays, the element size and the
# reader of a prefix of whole elements (0 and None otherwise).
Member = tuple[str, Reader, int, int, int, int, "PartialReader | None"]

#: Bytes a record may exceed its type by without being reported: perf buffers
#: round ``u32 size`` + record up to 8 bytes.
PADDING_SLACK = 8

_INT_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}
_FLOAT_CODES = {2: "e", 4: "f", 8: "d"}
_F32 = struct.Struct("<f")

# Display widths ``EventFormatter`` uses as column minimums: wide enough for
# common values (pids, 16-byte comms), not for every possible one, so rows
# stay narrow; a longer value pushes the rest of its row right.
_INT_WIDTHS = {1: 4, 2: 6, 4: 7, 8: 12, 16: 12}
_MAX_STR_WIDTH = 32
_OTHER_WIDTH = 8


class _Compiled:
    """A compiled type: how to read it, how many bytes it spans, how wide it prints;
    for arrays, also how to read a prefix of whole elements."""

    __slots__ = ("read", "size", "width", "elem", "partial")

    def __init__(self, read: Reader, size: int, width: int, elem: int = 0,
                 partial: PartialReader | None = None) -> None:
        self.read = read
        self.size = size
        self.width = width
        self.elem = elem
        self.partial = partial


class _Compiler:
    """Turns BTF type ids into readers; one per ``Btf``, caching by type id."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self.order: ByteOrder = btf.byte_order
        self.prefix = "<" if self.order == "little" else ">"
        self._cache: dict[int, _Compiled] = {}
        # The fixed-layout readers -> their formats, for structplan.fuse.
        self.flat: dict[Reader, Leaf | Group] = {}

    # --- entry points --------------------------------------------------------

    def compile(self, type_id: int, depth: int = 0) -> _Compiled:
        cached = self._cache.get(type_id)
        if cached is not None:
            return cached
        if depth >= MAX_RESOLVE_DEPTH:
            raise BtfError(
                f"{self.btf.describe(type_id)}: types nested deeper than {MAX_RESOLVE_DEPTH} "
                "(reference loop?)"
            )
        t = self.btf[skip_mods_and_typedefs(self.btf, type_id)]
        compiled = self._compile(t, depth)
        self._cache[type_id] = compiled
        return compiled

    def members(self, t: Struct | Union, depth: int) -> list[Member]:
        """A ``Member`` for each member as C code names it: anonymous
        struct/union members are replaced by their own members."""
        if depth >= MAX_RESOLVE_DEPTH:
            raise BtfError(
                f"{self.btf.describe(t.id)}: types nested deeper than {MAX_RESOLVE_DEPTH} "
                "(reference loop?)"
            )
        out: list[Member] = []
        for index, m in enumerate(t.members):
            try:
                target = self.btf[skip_mods_and_typedefs(self.btf, m.type)]
                if not m.name:
                    if m.bitfield_size or not isinstance(target, Struct | Union):
                        # Unnamed padding bitfields and the like: C cannot name them either.
                        continue
                    if m.bit_offset % 8:
                        raise BtfError(f"bit offset {m.bit_offset} is not on a byte boundary")
                    offset = m.bit_offset // 8
                    _check_extent(offset, target.size, t.size)
                    for name, read, inner, width, span, elem, part in self.members(
                        target, depth + 1
                    ):
                        out.append((name, read, offset + inner, width, span, elem, part))
                    continue
                if m.bitfield_size:
                    read, width = self._bitfield(target, m.bit_offset, m.bitfield_size, t.size)
                    # Read at offset 0 with the bit offset built in: it needs
                    # the bytes up to the one holding its last bit.
                    span = (m.bit_offset + m.bitfield_size + 7) // 8
                    out.append((m.name, read, 0, width, span, 0, None))
                    continue
                if m.bit_offset % 8:
                    raise BtfError(f"bit offset {m.bit_offset} is not on a byte boundary")
                offset = m.bit_offset // 8
                compiled = self.compile(m.type, depth + 1)
                _check_extent(offset, compiled.size, t.size)
                out.append((m.name, compiled.read, offset, compiled.width, compiled.size,
                            compiled.elem, compiled.partial))
            except BtfError as exc:
                if str(exc).startswith("BTF type"):
                    raise  # already names the innermost type and member
                raise BtfError(
                    f"{self.btf.describe(t.id)}: member {index} ({m.name or 'anonymous'}): {exc}"
                ) from None
        return out

    # --- one method per kind ---------------------------------------------------

    def _compile(self, t: Type, depth: int) -> _Compiled:
        if isinstance(t, Int):
            return self._int(t)
        if isinstance(t, Ptr):
            size = self.btf.pointer_size
            return _Compiled(self._scalar(size, signed=False), size, 16)
        if isinstance(t, Enum | Enum64):
            return self._enum(t)
        if isinstance(t, Float):
            return self._float(t)
        if isinstance(t, Array):
            return self._array(t, depth)
        if isinstance(t, Struct | Union):
            return self._composite(t, depth)
        raise BtfError(f"{self.btf.describe(t.id)}: cannot decode data of this kind")

    def _int(self, t: Int) -> _Compiled:
        if t.size == 0 or t.size > 16:
            raise BtfError(f"{self.btf.describe(t.id)}: integer of {t.size} bytes")
        if t.offset or t.bits != t.size * 8:
            # Legacy encoding of a bit range inside the int itself.
            read, width = self._bits(t, t.offset, t.bits, t.size)
            return _Compiled(read, t.size, width)
        if t.bool:
            return _Compiled(self._bool(t.size), t.size, 5)
        return _Compiled(self._scalar(t.size, t.signed), t.size, _INT_WIDTHS.get(t.size, 12))

    def _scalar(self, size: int, signed: bool) -> Reader:
        code = _INT_CODES.get(size)
        if code is not None:
            letter = code if signed else code.upper()
            unpack = struct.Struct(self.prefix + letter).unpack_from
            read: Reader = lambda buf, off: unpack(buf, off)[0]  # noqa: E731
            self.flat[read] = Leaf(letter, size)
            return read
        order = self.order
        return lambda buf, off: int.from_bytes(buf[off : off + size], order, signed=signed)

    def _bool(self, size: int) -> Reader:
        if size == 1:
            unpack = struct.Struct("?").unpack_from
            read_bool: Reader = lambda buf, off: unpack(buf, off)[0]  # noqa: E731
            self.flat[read_bool] = Leaf("?", 1)
            return read_bool
        read = self._scalar(size, signed=False)
        read_bool = lambda buf, off: read(buf, off) != 0  # noqa: E731
        return self._like(read_bool, read, "ne0")

    def _like(self, new: Reader, old: Reader, how: str, conv: Any = None) -> Reader:
        leaf = self.flat.get(old)
        if isinstance(leaf, Leaf):
            self.flat[new] = leaf._replace(how=how, conv=conv)
        return new

    def _enum(self, t: Enum | Enum64) -> _Compiled:
        if t.size == 0 or t.size > 8:
            raise BtfError(f"{self.btf.describe(t.id)}: enum of {t.size} bytes")
        names = _enum_names(t)
        read = self._scalar(t.size, t.signed)
        get = names.get

        def read_enum(buf: bytes, off: int) -> Any:
            value = read(buf, off)
            return get(value, value)

        self._like(read_enum, read, "get", get)
        return _Compiled(read_enum, t.size, _enum_width(names))

    def _float(self, t: Float) -> _Compiled:
        code = _FLOAT_CODES.get(t.size)
        if code is None:
            # long double and friends: no portable layout; show the raw bits.
            if t.size == 0 or t.size > 16:
                raise BtfError(f"{self.btf.describe(t.id)}: float of {t.size} bytes")
            raw = self._scalar(t.size, signed=False)
            digits = 2 * t.size
            return _Compiled(lambda buf, off: f"0x{raw(buf, off):0{digits}x}", t.size, 10)
        unpack = struct.Struct(self.prefix + code).unpack_from
        if t.size != 4:
            read: Reader = lambda buf, off: unpack(buf, off)[0]  # noqa: E731
            self.flat[read] = Leaf(code, t.size)
            return _Compiled(read, t.size, 10)
        read = lambda buf, off: _short_f32(unpack(buf, off)[0])  # noqa: E731
        self.flat[read] = Leaf(code, 4, "call", _short_f32)
        return _Compiled(read, 4, 10)

    def _array(self, t: Array, depth: int) -> _Compiled:
        n = t.nelems
        elem_id = skip_mods_and_typedefs(self.btf, t.type)
        elem_t = self.btf[elem_id]
        if isinstance(elem_t, Int) and elem_t.size == 1 and (elem_t.char or elem_t.name == "char"):
            read_text = _string_reader(n)
            self.flat[read_text] = Leaf(f"{n}s", n, "text")
            return _Compiled(read_text, n, min(max(n - 1, 1), _MAX_STR_WIDTH), 1, _read_chars)
        elem = self.compile(t.type, depth + 1)
        if elem.size == 0 or n == 0:
            # Flexible array members and arrays of empty structs carry no bytes.
            return _Compiled(lambda buf, off: [], 0, _OTHER_WIDTH)
        size = elem.size * n
        if size > 0xFFFFFFFF:
            raise BtfError(f"{self.btf.describe(t.id)}: array of {size} bytes")
        if isinstance(elem_t, Int) and not elem_t.bool and elem.size in _INT_CODES and (
            elem_t.bits == elem_t.size * 8 and not elem_t.offset
        ):
            code = _INT_CODES[elem.size]
            letter = code if elem_t.signed else code.upper()
            unpack = struct.Struct(f"{self.prefix}{n}{letter}").unpack_from
            prefix = self.prefix

            def read_some_ints(buf: bytes, off: int, count: int) -> list[int]:
                return list(struct.unpack_from(f"{prefix}{count}{letter}", buf, off))

            read_ints: Reader = lambda buf, off: list(unpack(buf, off))  # noqa: E731
            whole = struct.Struct(f"{self.prefix}{n}{letter}").unpack
            self.flat[read_ints] = Leaf(f"{size}s", size, "list", whole)
            return _Compiled(read_ints, size, _OTHER_WIDTH, elem.size, read_some_ints)
        read = elem.read
        step = elem.size

        def read_some(buf: bytes, off: int, count: int) -> list[Any]:
            return [read(buf, off + i * step) for i in range(count)]

        return _Compiled(
            lambda buf, off: [read(buf, off + i * step) for i in range(n)], size, _OTHER_WIDTH,
            step, read_some,
        )

    def _composite(self, t: Struct | Union, depth: int) -> _Compiled:
        members = self.members(t, depth)
        if isinstance(t, Struct):
            group = Group(tuple((name, off, self.flat.get(read), read)
                                for name, read, off, *_ in members))
            fused = fuse(group, self.prefix)
            if fused is not None:
                self.flat[fused] = group
                return _Compiled(fused, t.size, _OTHER_WIDTH)
        plan = tuple((name, read, off) for name, read, off, *_ in members)
        return _Compiled(
            lambda buf, off: {name: read(buf, off + o) for name, read, o in plan},
            t.size,
            _OTHER_WIDTH,
        )

    # --- bitfields --------------------------------------------------------------

    def _bitfield(
        self, t: Type, bit_offset: int, bits: int, struct_size: int
    ) -> tuple[Reader, int]:
        if not isinstance(t, Int | Enum | Enum64):
            raise BtfError(f"bitfield of {self.btf.describe(t.id)}")
        return self._bits(t, bit_offset, bits, struct_size)

    def _bits(
        self, t: Int | Enum | Enum64, bit_offset: int, bits: int, container: int
    ) -> tuple[Reader, int]:
        """Reader for ``bits`` bits at ``bit_offset`` (from the container's
        start) of a ``container``-byte value, interpreted as ``t``."""
        if bits <= 0 or bits > 128 or bits > t.size * 8:
            raise BtfError(f"bitfield of {bits} bits in a {t.size}-byte {t.kind.name}")
        if bit_offset + bits > container * 8:
            raise BtfError(
                f"{bits} bits at bit offset {bit_offset} overflow the {container}-byte type"
            )
        first = bit_offset // 8
        end = (bit_offset + bits + 7) // 8
        mask = (1 << bits) - 1
        # Little-endian: bit 0 is the LSB of byte 0, so the field starts
        # bit_offset % 8 bits into the little-endian number made of its bytes.
        # Big-endian: bit 0 is the MSB of byte 0, so the field ends that many
        # bits before the end of the big-endian number.
        shift = bit_offset % 8 if self.order == "little" else end * 8 - (bit_offset + bits)
        order = self.order

        def raw(buf: bytes, off: int) -> int:
            return (int.from_bytes(buf[off + first : off + end], order) >> shift) & mask

        signed = t.signed
        sign = 1 << (bits - 1)
        if isinstance(t, Int):
            if t.bool:
                return (lambda buf, off: raw(buf, off) != 0), 5
            if signed:
                return (lambda buf, off: ((raw(buf, off) ^ sign) - sign)), len(str(sign)) + 1
            return raw, len(str(mask))
        names = _enum_names(t)
        get = names.get

        def read_enum(buf: bytes, off: int) -> Any:
            value = raw(buf, off)
            if signed:
                value = (value ^ sign) - sign
            return get(value, value)

        return read_enum, _enum_width(names)


def _check_extent(offset: int, size: int, container: int) -> None:
    # The one bounds proof decode relies on: each part lies inside its whole.
    if offset + size > container:
        raise BtfError(f"{size} bytes at offset {offset} overflow the {container}-byte type")


def _enum_names(t: Enum | Enum64) -> dict[int, str]:
    # The first enumerator wins when several share a value, as in C's switch.
    names: dict[int, str] = {}
    bits = t.size * 8
    for v in t.values:
        value = v.value
        # Enumerators are stored sign-interpreted per the enum's flag; data is
        # read the same way, except when the BTF value is wider than the data.
        if bits < 64:
            value &= (1 << bits) - 1
            if t.signed and value >= 1 << (bits - 1):
                value -= 1 << bits
        names.setdefault(value, v.name)
    return names


def _enum_width(names: dict[int, str]) -> int:
    return min(max([4, *(len(n) for n in names.values())]), 20)


def _string_reader(n: int) -> Reader:
    def read(buf: bytes, off: int) -> str:
        end = buf.find(b"\0", off, off + n)
        return buf[off : off + n if end < 0 else end].decode("utf-8", "backslashreplace")

    return read


def _read_chars(buf: bytes, off: int, count: int) -> str:
    # The cut end of a char array: its first ``count`` bytes, up to a NUL.
    end = buf.find(b"\0", off, off + count)
    return buf[off : off + count if end < 0 else end].decode("utf-8", "backslashreplace")


def _short_f32(value: float) -> float:
    """The shortest decimal that reads back as the same float32, so a C
    ``0.1f`` shows as 0.1 rather than 0.10000000149011612."""
    if not math.isfinite(value):
        return value
    bits = _F32.pack(value)
    for digits in range(6, 9):
        candidate = float(f"{value:.{digits}g}")
        if _F32.pack(candidate) == bits:
            return candidate
    return value


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


def _unexpected(what: str, exc: Exception) -> PackageError:
    # Compilation proved every read in bounds; reaching this is a bug, but
    # the promise to callers is still "PackageError or a value".
    return PackageError(f"cannot decode {what}: {exc}")


class Decoder:
    """Decodes records laid out as one struct (or union), e.g. an exported event.

    ``fields`` are the top-level member names in order, with anonymous
    struct/union members replaced by their own members; ``decode`` returns a
    dict with exactly these keys in this order. ``widths`` are suggested
    minimum display widths for ``EventFormatter``, one per field.
    """

    __slots__ = ("name", "size", "least", "fields", "widths", "whole", "_cut", "_keyword",
                 "_fused")

    def __init__(self, btf: Btf, type_id: int) -> None:
        t = btf[skip_mods_and_typedefs(btf, type_id)]
        if not isinstance(t, Struct | Union):
            raise BtfError(f"{btf.describe(type_id)}: events must be a struct or union")
        compiler = _Compiler(btf)
        members = compiler.members(t, 0)
        #: ``(data, 0) -> dict`` for data of at least ``size`` bytes (``bytes``, not a view).
        self.whole: Reader = compiler.compile(type_id).read
        group = compiler.flat.get(self.whole)
        self._fused = (group, compiler.prefix) if isinstance(group, Group) else None
        self.name = t.name or "(anonymous)"
        self._keyword = "struct" if isinstance(t, Struct) else "union"
        self.size = t.size
        # A repeated name (only hostile BTF has one) keeps its first position;
        # the dict built by decode holds the last value, as C would shadow it.
        seen: dict[str, int] = {}
        for name, _, _, width, *_ in members:
            seen.setdefault(name, width)
        self.fields: tuple[str, ...] = tuple(seen)
        self.widths: tuple[int, ...] = tuple(seen.values())
        # For events shorter than the type: (name, reader, offset, end, element
        # size, prefix reader) in declaration order.
        self._cut = tuple(
            (name, read, off, off + span, elem, part)
            for name, read, off, _, span, elem, part in members
        )
        #: The fewest bytes that hold one member (or one element of an array
        #: member); a shorter event decodes to nothing. 0 for an empty type.
        self.least = min(
            (off + elem if part is not None else end for _, _, off, end, elem, part in self._cut),
            default=0,
        )

    def decode(self, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """One record -> {field: value}. A longer record decodes from its first
        ``size`` bytes. A shorter one gives the members that arrived (see the
        module's docstring), in field order, the others left out; one that
        holds no member raises ``PackageError``."""
        n = len(data)
        if n < self.size:
            return self._decode_cut(data, n)
        buf = _as_bytes(data)
        try:
            result: dict[str, Any] = self.whole(buf, 0)
            return result
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # pragma: no cover
            raise _unexpected(f"{self._keyword} {self.name}", exc) from exc

    def _decode_cut(self, data: bytes | bytearray | memoryview, n: int) -> dict[str, Any]:
        if n < self.least:
            raise PackageError(
                f"event of {n} bytes is shorter than the first member of {self._keyword} "
                f"{self.name} ({self.least} bytes)"
            )
        # Exactly n bytes: a reader that strayed past its extent would fail
        # here rather than read what follows the data.
        buf = bytes(data[:n])
        out: dict[str, Any] = {}
        try:
            for name, read, off, end, elem, part in self._cut:
                if end <= n:
                    out[name] = read(buf, off)
                elif part is not None and off + elem <= n:
                    out[name] = part(buf, off, (n - off) // elem)
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # pragma: no cover
            raise _unexpected(f"{self._keyword} {self.name}", exc) from exc
        return out

    def reader_into(self, cls: type, slot_of: Mapping[str, str], wrap: Callable[[Any], Any]
                    | None = None, keep: str | None = None) -> Reader | None:
        """``(data, 0) -> cls`` object, field ``f`` in attribute ``slot_of[f]``
        (structplan.Into), for data of at least ``size`` bytes; None when the type
        does not fuse (a union)."""
        if self._fused is None:
            return None
        group, prefix = self._fused
        slots = tuple(slot_of[name] for name, *_ in group.members)
        return fuse(group, prefix, Into(cls, slots, wrap, keep))

    @property
    def what(self) -> str:
        """``struct NAME`` or ``union NAME``, as messages name the type."""
        return f"{self._keyword} {self.name}"

    def too_long(self, n: int) -> bool:
        """Whether a record of ``n`` bytes is longer than the type by more than
        perf buffer alignment padding explains."""
        return n - self.size >= PADDING_SLACK


class ValueDecoder:
    """Decodes a value of any sized type (map keys and values)."""

    __slots__ = ("size", "_read", "_what")

    def __init__(self, btf: Btf, type_id: int) -> None:
        compiled = _Compiler(btf).compile(type_id)
        self.size = compiled.size
        self._read = compiled.read
        self._what = type_str(btf, type_id)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        if len(data) < self.size:
            raise PackageError(
                f"value of {len(data)} bytes is shorter than {self._what} ({self.size} bytes)"
            )
        try:
            return self._read(_as_bytes(data), 0)
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # pragma: no cover
            raise _unexpected(self._what, exc) from exc


@lru_cache(maxsize=64)
def _value_decoder(btf: Btf, type_id: int) -> ValueDecoder:
    return ValueDecoder(btf, type_id)


def decode_value(btf: Btf, type_id: int, data: bytes | bytearray | memoryview) -> Any:
    """Decode one map key or value; decoders are cached per (btf, type id)."""
    return _value_decoder(btf, type_id).decode(data)


# --- the shape of a type, as a configuration that names its fields needs it ----------------


def field_names(btf: Btf, type_id: int) -> tuple[str, ...] | None:
    """The fields ``Decoder`` gives a struct or union (anonymous members flattened);
    None for any other type, which decodes to one value."""
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if not isinstance(t, Struct | Union):
        return None
    return Decoder(btf, type_id).fields
