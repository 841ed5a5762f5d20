"""Decoded values as Python objects, and Python values encoded by BTF for the kernel."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..btf import Btf, resolve_size, skip_mods_and_typedefs
from ..btf.types import Array, Enum, Enum64, Float, Int, Ptr, Struct, Union


class Record(Mapping[str, Any]):
    """A decoded struct: read-only, fields by attribute (``r.pid``) or key (``r["pid"]``).

    Nested structs are Records too; arrays are lists, ``char`` arrays strings.
    Equal to a dict with the same items, and hashable (so a struct can be a map key).
    """

    __slots__ = ("_values",)
    _values: dict[str, Any]

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = {name: wrap(value) for name, value in values.items()}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}; "
                                 f"fields: {', '.join(self._values)}") from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(_freeze(self._values))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({inner})"

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists all the way down (for ``json.dumps``)."""
        return {name: unwrap(value) for name, value in self._values.items()}


class Event(Record):
    """One record a program sent through a ring or perf buffer, decoded by its export type.

    ``raw`` is the record as it arrived; ``map`` the buffer map it came from. A
    record shorter than its type holds the members that arrived; one with no
    whole member (or from a map without an export type) has no fields.
    """

    __slots__ = ("map", "raw")

    def __init__(self, values: Mapping[str, Any], raw: bytes, map: str) -> None:
        super().__init__(values)
        self.raw = raw
        self.map = map

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            return self.raw == other.raw and self.map == other.map
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash((self.map, self.raw))


def wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Record(value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


def unwrap(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


# --- encoding -----------------------------------------------------------------------

def encode(btf: Btf, type_id: int, value: Any) -> bytes:
    """``value`` as the bytes of BTF type ``type_id``, in this machine's byte order.

    ints (range-checked), bools, floats, enumerator names, ``str``/``bytes``
    for ``char`` arrays (NUL-padded), sequences for other arrays, mappings
    for structs and unions (members left out are zero); ``bytes`` of exactly
    the type's size pass through. ``TypeError``/``ValueError`` say what does not fit.
    """
    size = resolve_size(btf, type_id)
    if isinstance(value, (bytes, bytearray, memoryview)) and not _is_char_array(btf, type_id):
        if len(value) != size:
            raise ValueError(f"{len(value)} bytes given for a {size}-byte value")
        return bytes(value)
    buf = bytearray(size)
    _put(btf, type_id, value, buf, 0, "value")
    return bytes(buf)


def _is_char_array(btf: Btf, type_id: int) -> bool:
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if not isinstance(t, Array):
        return False
    return _is_char(btf[skip_mods_and_typedefs(btf, t.type)])


def _is_char(t: object) -> bool:
    # As the decoder reads them (ecc/run/decode.py): clang's `char` has no CHAR encoding bit.
    return isinstance(t, Int) and t.size == 1 and (t.char or t.name == "char")


def _put(btf: Btf, type_id: int, value: Any, buf: bytearray, off: int, where: str) -> None:
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if isinstance(t, Int):
        if isinstance(value, str) and _is_char(t) and len(value) == 1:
            value = ord(value)
        _put_int(value, t.size, t.signed and not t.bool, buf, off, where)
    elif isinstance(t, (Enum, Enum64)):
        if isinstance(value, str):
            found = [e.value for e in t.values if e.name == value]
            if not found:
                raise ValueError(f"{where}: {value!r} is not an enumerator of enum {t.name}")
            value = found[0]
        _put_int(value, t.size, t.signed, buf, off, where)
    elif isinstance(t, Ptr):
        _put_int(value, resolve_size(btf, type_id), False, buf, off, where)
    elif isinstance(t, Float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: a float is wanted, not {type(value).__name__}")
        order = "<" if sys.byteorder == "little" else ">"
        buf[off:off + t.size] = struct.pack(order + ("f" if t.size == 4 else "d"), value)
    elif isinstance(t, Array):
        _put_array(btf, t, value, buf, off, where)
    elif isinstance(t, (Struct, Union)):
        _put_struct(btf, t, value, buf, off, where)
    else:
        raise TypeError(f"{where}: BTF type {t.kind.name} cannot be written from Python")


def _put_int(value: Any, size: int, signed: bool, buf: bytearray, off: int, where: str) -> None:
    if not isinstance(value, int):  # bool is an int: True -> 1
        raise TypeError(f"{where}: an int is wanted, not {type(value).__name__}")
    try:
        buf[off:off + size] = int(value).to_bytes(size, sys.byteorder, signed=signed)
    except OverflowError:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{where}: {value} does not fit a {size}-byte {kind} integer") from None


def _put_array(btf: Btf, t: Array, value: Any, buf: bytearray, off: int, where: str) -> None:
    elem_size = resolve_size(btf, t.type)
    elem = btf[skip_mods_and_typedefs(btf, t.type)]
    if _is_char(elem) and isinstance(value, (str, bytes, bytearray)):
        data = value.encode() if isinstance(value, str) else bytes(value)
        limit = t.nelems - 1 if isinstance(value, str) else t.nelems  # a str stays terminated
        if len(data) > limit:
            raise ValueError(f"{where}: {len(data)} bytes do not fit char[{t.nelems}]"
                             + (" with its NUL" if isinstance(value, str) else ""))
        buf[off:off + len(data)] = data
        return
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"{where}: a sequence is wanted for an array, not "
                        f"{type(value).__name__}")
    if len(value) > t.nelems:
        raise ValueError(f"{where}: {len(value)} items for an array of {t.nelems}")
    for i, item in enumerate(value):
        _put(btf, t.type, item, buf, off + i * elem_size, f"{where}[{i}]")


def _put_struct(btf: Btf, t: Struct | Union, value: Any, buf: bytearray, off: int,
                where: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: a mapping of field names is wanted for "
                        f"{'struct' if isinstance(t, Struct) else 'union'} {t.name}, not "
                        f"{type(value).__name__}")
    left = dict(value)
    _put_members(btf, t, left, buf, off, where)
    if left:
        raise ValueError(f"{where}: {t.name or 'the struct'} has no field "
                         f"{', '.join(map(repr, left))}")


def _put_members(btf: Btf, t: Struct | Union, left: dict[str, Any], buf: bytearray, off: int,
                 where: str) -> None:
    for member in t.members:
        if not member.name:  # an anonymous struct/union: its members read as ours
            inner = btf[skip_mods_and_typedefs(btf, member.type)]
            if isinstance(inner, (Struct, Union)):
                _put_members(btf, inner, left, buf, off + member.bit_offset // 8, where)
            continue
        if member.name not in left:
            continue
        item = left.pop(member.name)
        if member.bitfield_size:
            raise TypeError(f"{where}.{member.name}: bitfields cannot be written yet")
        _put(btf, member.type, item, buf, off + member.bit_offset // 8,
             f"{where}.{member.name}")
