"""Decoded values as Python objects, and Python values encoded by BTF for the kernel."""

from __future__ import annotations

import contextlib
import keyword
import struct
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..btf import Btf, resolve_size, skip_mods_and_typedefs
from ..btf.types import Array, Enum, Enum64, Float, Int, Ptr, Struct, Union
from ..errors import PackageError

if TYPE_CHECKING:
    from ..run.decode import Decoder


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
    """One record a program sent through a ring or perf buffer (or wrote from an
    iterator with ``bpf_seq_write``), decoded by its export type.

    ``raw`` is the record as it arrived; ``map`` the buffer map it came from (the
    iterator program's name, for ``Program.iterate``). A
    record shorter than its type holds the members that arrived; one with no
    whole member (or from a map without an export type) has no fields.
    """

    __slots__ = ("_map", "raw")

    def __init__(self, values: Mapping[str, Any], raw: bytes, map: str) -> None:
        super().__init__(values)
        self.raw = raw
        self._map = map

    @property
    def map(self) -> str:
        return self._map

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            return self.raw == other.raw and self.map == other.map
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash((self.map, self.raw))


class Maker(NamedTuple):
    """How the records of one buffer map become Events: ``make(data)``; and, for a
    loop that inlines the usual case, ``read(data, 0)``, which ``make`` uses for
    records of ``size`` bytes or more (None when the type does not fuse)."""

    make: Callable[[bytes], Event]
    read: Callable[[bytes, int], Event] | None
    size: int


def event_maker(source: str, decoder: Decoder | None = None, nested: bool = False) -> Maker:
    """``data -> Event`` for the records of one buffer map, made once per map.

    The Events are of a subclass with a slot per field, filled by one generated
    function (``Decoder.reader_into``), so a field reads as a plain attribute.
    A field whose name the class already has (``keys``, ``raw``) or that Python
    cannot take as one gets a private slot: it reads as ``e["keys"]``. Values
    are wrapped into Records only when the type holds structs.
    """
    fields = decoder.fields if decoder is not None else ()
    taken = {name for klass in Event.__mro__ for name in vars(klass)}
    slot_of = {name: name if name.isidentifier() and not keyword.iskeyword(name)
               and not name.startswith("__") and name not in taken else f"_f{i}"
               for i, name in enumerate(fields)}
    cls: Any = type("Event", (Event,), {
        "__slots__": tuple(slot_of.values()), "_values": property(_slot_values),
        # The map is the class's (a property, which no field can hide): one set less.
        "map": property(lambda self: source)})
    cls._slots = [(name, vars(cls)[slot]) for name, slot in slot_of.items()]
    new, wrapper = object.__new__, wrap if nested else None
    read = None if decoder is None else decoder.reader_into(cls, slot_of, wrapper, "raw")
    size = decoder.size if decoder is not None else 0

    def make(data: bytes) -> Event:
        if read is not None and len(data) >= size:
            made: Event = read(data, 0)
            return made
        values: dict[str, Any] = {}
        if decoder is not None:
            # Shorter than any member: no fields, only .raw tells what came.
            with contextlib.suppress(PackageError):
                values = decoder.decode(data)
        event: Event = new(cls)
        for name, value in values.items():
            setattr(event, slot_of[name], value if wrapper is None else wrapper(value))
        event.raw = data
        return event

    return Maker(make, read, size)


def _slot_values(self: Record) -> dict[str, Any]:
    # The fields set (a short record leaves some out), by the slots' own descriptors:
    # getattr would fall back to __getattr__, which asks for this very dict.
    out = {}
    slots: list[tuple[str, Any]] = getattr(type(self), "_slots")  # noqa: B009
    for name, slot in slots:
        try:
            out[name] = slot.__get__(self, None)
        except AttributeError:
            continue
    return out


def holds_structs(btf: Btf, type_id: int) -> bool:
    """Whether a struct's decoded values hold dicts: a struct member, an array of structs."""
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if not isinstance(t, (Struct, Union)):
        return False
    for m in t.members:
        inner = btf[skip_mods_and_typedefs(btf, m.type)]
        while isinstance(inner, Array):
            inner = btf[skip_mods_and_typedefs(btf, inner.type)]
        # An anonymous member's own members are ours (the decoder flattens them).
        if isinstance(inner, (Struct, Union)) and (m.name or holds_structs(btf, m.type)):
            return True
    return False


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
    if isinstance(value, str) and _is_char(elem) or isinstance(value, (bytes, bytearray)) and (
            isinstance(elem, Int) and elem.size == 1):  # char arrays and __u8 ones alike
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
