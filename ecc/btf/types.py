"""The meaning of BTF: one frozen record per kind, wire details decoded away.

Types refer to each other by id (``int``), never by object: BTF graphs have
cycles (``struct list_head { struct list_head *next; }``), and records
that held each other would recurse forever in ``repr`` and ``==``. Ids are
also what callers need anyway (``export_types.type_id``, bpftool diffs).

Look a referenced id up with ``btf[type_id]``.
"""

from __future__ import annotations

import builtins
from enum import IntEnum
from typing import ClassVar

from ..record import Record, set_field


class Kind(IntEnum):
    """``BTF_KIND_*`` numbers from ``include/uapi/linux/btf.h``."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class Linkage(IntEnum):
    """Linkage of a FUNC (its vlen) or a VAR (``btf_var.linkage``)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


# The shared frozen-record base (ecc/record.py): ``@dataclass`` compiling two dozen
# classes' methods at import was the largest part of an ``ecc run``'s start.
_Record = Record
_set = set_field


class Void(_Record):
    """Type id 0. Never stored in the type section; BTF refers to it as 'no type'."""

    __slots__ = ("id", "name")
    kind: ClassVar[Kind] = Kind.UNKN
    id: int
    name: str

    def __init__(self, id: int = 0, name: str = "") -> None:
        _set(self, "id", id)
        _set(self, "name", name)


class Int(_Record):
    __slots__ = ("id", "name", "size", "signed", "char", "bool", "bits", "offset")
    kind: ClassVar[Kind] = Kind.INT
    id: int
    name: str
    size: int
    signed: builtins.bool
    char: builtins.bool
    bool: builtins.bool
    bits: int
    offset: int

    def __init__(
        self,
        id: int,
        name: str,
        size: int,
        signed: builtins.bool,
        char: builtins.bool,
        bool: builtins.bool,
        bits: int,
        offset: int,
    ) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)
        _set(self, "signed", signed)
        _set(self, "char", char)
        _set(self, "bool", bool)
        _set(self, "bits", bits)
        _set(self, "offset", offset)


class Ptr(_Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.PTR
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)


class Array(_Record):
    __slots__ = ("id", "name", "type", "index_type", "nelems")
    kind: ClassVar[Kind] = Kind.ARRAY
    id: int
    name: str
    type: int
    index_type: int
    nelems: int

    def __init__(self, id: int, name: str, type: int, index_type: int, nelems: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "index_type", index_type)
        _set(self, "nelems", nelems)


class Member(_Record):
    """A struct/union field.

    ``bit_offset`` is from the start of the enclosing type; ``bitfield_size``
    is 0 unless the field is a bitfield. Both come out the same whether the
    object used the kind_flag encoding or the legacy one (bit size kept in
    the INT at the end of the field's type chain).
    """

    __slots__ = ("name", "type", "bit_offset", "bitfield_size")
    name: str
    type: int
    bit_offset: int
    bitfield_size: int

    def __init__(self, name: str, type: int, bit_offset: int, bitfield_size: int) -> None:
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "bit_offset", bit_offset)
        _set(self, "bitfield_size", bitfield_size)


class Struct(_Record):
    __slots__ = ("id", "name", "size", "members")
    kind: ClassVar[Kind] = Kind.STRUCT
    id: int
    name: str
    size: int
    members: tuple[Member, ...]

    def __init__(self, id: int, name: str, size: int, members: tuple[Member, ...]) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)
        _set(self, "members", members)


class Union(_Record):
    __slots__ = ("id", "name", "size", "members")
    kind: ClassVar[Kind] = Kind.UNION
    id: int
    name: str
    size: int
    members: tuple[Member, ...]

    def __init__(self, id: int, name: str, size: int, members: tuple[Member, ...]) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)
        _set(self, "members", members)


class EnumValue(_Record):
    """An enumerator; ``value`` is already sign-interpreted per the enum's ``signed``."""

    __slots__ = ("name", "value")
    name: str
    value: int

    def __init__(self, name: str, value: int) -> None:
        _set(self, "name", name)
        _set(self, "value", value)


class Enum(_Record):
    __slots__ = ("id", "name", "size", "signed", "values")
    kind: ClassVar[Kind] = Kind.ENUM
    id: int
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...]

    def __init__(
        self, id: int, name: str, size: int, signed: bool, values: tuple[EnumValue, ...],
    ) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)
        _set(self, "signed", signed)
        _set(self, "values", values)


class Enum64(_Record):
    __slots__ = ("id", "name", "size", "signed", "values")
    kind: ClassVar[Kind] = Kind.ENUM64
    id: int
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...]

    def __init__(
        self, id: int, name: str, size: int, signed: bool, values: tuple[EnumValue, ...],
    ) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)
        _set(self, "signed", signed)
        _set(self, "values", values)


class Fwd(_Record):
    __slots__ = ("id", "name", "is_union")
    kind: ClassVar[Kind] = Kind.FWD
    id: int
    name: str
    is_union: bool

    def __init__(self, id: int, name: str, is_union: bool) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "is_union", is_union)


class Typedef(_Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.TYPEDEF
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)


class Volatile(_Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.VOLATILE
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)


class Const(_Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.CONST
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)


class Restrict(_Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.RESTRICT
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)


class Func(_Record):
    """A function; ``type`` is its FUNC_PROTO, ``linkage`` a ``Linkage`` value."""

    __slots__ = ("id", "name", "type", "linkage")
    kind: ClassVar[Kind] = Kind.FUNC
    id: int
    name: str
    type: int
    linkage: int

    def __init__(self, id: int, name: str, type: int, linkage: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "linkage", linkage)


class Param(_Record):
    __slots__ = ("name", "type")
    name: str
    type: int

    def __init__(self, name: str, type: int) -> None:
        _set(self, "name", name)
        _set(self, "type", type)


class FuncProto(_Record):
    """A function signature.

    A trailing ``...`` is encoded in BTF as a last parameter of type 0; it is
    taken out of ``params`` and reported as ``variadic``.
    """

    __slots__ = ("id", "name", "return_type", "params", "variadic")
    kind: ClassVar[Kind] = Kind.FUNC_PROTO
    id: int
    name: str
    return_type: int
    params: tuple[Param, ...]
    variadic: bool

    def __init__(
        self, id: int, name: str, return_type: int, params: tuple[Param, ...], variadic: bool,
    ) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "return_type", return_type)
        _set(self, "params", params)
        _set(self, "variadic", variadic)


class Var(_Record):
    """A global variable; ``linkage`` is 0 static, 1 global, 2 extern."""

    __slots__ = ("id", "name", "type", "linkage")
    kind: ClassVar[Kind] = Kind.VAR
    id: int
    name: str
    type: int
    linkage: int

    def __init__(self, id: int, name: str, type: int, linkage: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "linkage", linkage)


class VarSecinfo(_Record):
    """One DATASEC entry. ``type`` is usually a VAR, a FUNC for ``.ksyms``."""

    __slots__ = ("type", "offset", "size")
    type: int
    offset: int
    size: int

    def __init__(self, type: int, offset: int, size: int) -> None:
        _set(self, "type", type)
        _set(self, "offset", offset)
        _set(self, "size", size)


class Datasec(_Record):
    __slots__ = ("id", "name", "size", "vars")
    kind: ClassVar[Kind] = Kind.DATASEC
    id: int
    name: str
    size: int
    vars: tuple[VarSecinfo, ...]

    def __init__(self, id: int, name: str, size: int, vars: tuple[VarSecinfo, ...]) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)
        _set(self, "vars", vars)


class Float(_Record):
    __slots__ = ("id", "name", "size")
    kind: ClassVar[Kind] = Kind.FLOAT
    id: int
    name: str
    size: int

    def __init__(self, id: int, name: str, size: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "size", size)


class DeclTag(_Record):
    """``btf_decl_tag`` on ``type``; ``component_idx`` -1 for the whole type,
    else the member or parameter index.

    ``attr`` (kind_flag, Linux 6.14+) means the tag is a whole attribute
    (``__attribute__((name))``) rather than ``btf_decl_tag("name")``.
    """

    __slots__ = ("id", "name", "type", "component_idx", "attr")
    kind: ClassVar[Kind] = Kind.DECL_TAG
    id: int
    name: str
    type: int
    component_idx: int
    attr: bool

    def __init__(
        self, id: int, name: str, type: int, component_idx: int, attr: bool = False,
    ) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "component_idx", component_idx)
        _set(self, "attr", attr)


class TypeTag(_Record):
    """``btf_type_tag`` on ``type``; ``attr`` as for ``DeclTag``."""

    __slots__ = ("id", "name", "type", "attr")
    kind: ClassVar[Kind] = Kind.TYPE_TAG
    id: int
    name: str
    type: int
    attr: bool

    def __init__(self, id: int, name: str, type: int, attr: bool = False) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "attr", attr)


Type = (
    Void
    | Int
    | Ptr
    | Array
    | Struct
    | Union
    | Enum
    | Fwd
    | Typedef
    | Volatile
    | Const
    | Restrict
    | Func
    | FuncProto
    | Var
    | Datasec
    | Float
    | DeclTag
    | TypeTag
    | Enum64
)

#: Kinds that only qualify the type they point at (libbpf's ``btf_is_mod``).
MODIFIER_KINDS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
