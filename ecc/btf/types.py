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


# The kinds are ecc/record.py's frozen records, not dataclasses: ``@dataclass``
# compiling two dozen classes' methods at import was the largest part of an
# ``ecc run``'s start.


class Void(Record):
    """Type id 0. Never stored in the type section; BTF refers to it as 'no type'."""

    __slots__ = ("id", "name")
    kind: ClassVar[Kind] = Kind.UNKN
    id: int
    name: str

    def __init__(self, id: int = 0, name: str = "") -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)


class Int(Record):
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
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)
        set_field(self, "signed", signed)
        set_field(self, "char", char)
        set_field(self, "bool", bool)
        set_field(self, "bits", bits)
        set_field(self, "offset", offset)


class Ptr(Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.PTR
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)


class Array(Record):
    __slots__ = ("id", "name", "type", "index_type", "nelems")
    kind: ClassVar[Kind] = Kind.ARRAY
    id: int
    name: str
    type: int
    index_type: int
    nelems: int

    def __init__(self, id: int, name: str, type: int, index_type: int, nelems: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "index_type", index_type)
        set_field(self, "nelems", nelems)


class Member(Record):
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
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "bit_offset", bit_offset)
        set_field(self, "bitfield_size", bitfield_size)


class Struct(Record):
    __slots__ = ("id", "name", "size", "members")
    kind: ClassVar[Kind] = Kind.STRUCT
    id: int
    name: str
    size: int
    members: tuple[Member, ...]

    def __init__(self, id: int, name: str, size: int, members: tuple[Member, ...]) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)
        set_field(self, "members", members)


class Union(Record):
    __slots__ = ("id", "name", "size", "members")
    kind: ClassVar[Kind] = Kind.UNION
    id: int
    name: str
    size: int
    members: tuple[Member, ...]

    def __init__(self, id: int, name: str, size: int, members: tuple[Member, ...]) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)
        set_field(self, "members", members)


class EnumValue(Record):
    """An enumerator; ``value`` is already sign-interpreted per the enum's ``signed``."""

    __slots__ = ("name", "value")
    name: str
    value: int

    def __init__(self, name: str, value: int) -> None:
        set_field(self, "name", name)
        set_field(self, "value", value)


class Enum(Record):
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
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)
        set_field(self, "signed", signed)
        set_field(self, "values", values)


class Enum64(Record):
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
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)
        set_field(self, "signed", signed)
        set_field(self, "values", values)


class Fwd(Record):
    __slots__ = ("id", "name", "is_union")
    kind: ClassVar[Kind] = Kind.FWD
    id: int
    name: str
    is_union: bool

    def __init__(self, id: int, name: str, is_union: bool) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "is_union", is_union)


class Typedef(Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.TYPEDEF
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)


class Volatile(Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.VOLATILE
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)


class Const(Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.CONST
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)


class Restrict(Record):
    __slots__ = ("id", "name", "type")
    kind: ClassVar[Kind] = Kind.RESTRICT
    id: int
    name: str
    type: int

    def __init__(self, id: int, name: str, type: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)


class Func(Record):
    """A function; ``type`` is its FUNC_PROTO, ``linkage`` a ``Linkage`` value."""

    __slots__ = ("id", "name", "type", "linkage")
    kind: ClassVar[Kind] = Kind.FUNC
    id: int
    name: str
    type: int
    linkage: int

    def __init__(self, id: int, name: str, type: int, linkage: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "linkage", linkage)


class Param(Record):
    __slots__ = ("name", "type")
    name: str
    type: int

    def __init__(self, name: str, type: int) -> None:
        set_field(self, "name", name)
        set_field(self, "type", type)


class FuncProto(Record):
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
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "return_type", return_type)
        set_field(self, "params", params)
        set_field(self, "variadic", variadic)


class Var(Record):
    """A global variable; ``linkage`` is 0 static, 1 global, 2 extern."""

    __slots__ = ("id", "name", "type", "linkage")
    kind: ClassVar[Kind] = Kind.VAR
    id: int
    name: str
    type: int
    linkage: int

    def __init__(self, id: int, name: str, type: int, linkage: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "linkage", linkage)


class VarSecinfo(Record):
    """One DATASEC entry. ``type`` is usually a VAR, a FUNC for ``.ksyms``."""

    __slots__ = ("type", "offset", "size")
    type: int
    offset: int
    size: int

    def __init__(self, type: int, offset: int, size: int) -> None:
        set_field(self, "type", type)
        set_field(self, "offset", offset)
        set_field(self, "size", size)


class Datasec(Record):
    __slots__ = ("id", "name", "size", "vars")
    kind: ClassVar[Kind] = Kind.DATASEC
    id: int
    name: str
    size: int
    vars: tuple[VarSecinfo, ...]

    def __init__(self, id: int, name: str, size: int, vars: tuple[VarSecinfo, ...]) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)
        set_field(self, "vars", vars)


class Float(Record):
    __slots__ = ("id", "name", "size")
    kind: ClassVar[Kind] = Kind.FLOAT
    id: int
    name: str
    size: int

    def __init__(self, id: int, name: str, size: int) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "size", size)


class DeclTag(Record):
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
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "component_idx", component_idx)
        set_field(self, "attr", attr)


class TypeTag(Record):
    """``btf_type_tag`` on ``type``; ``attr`` as for ``DeclTag``."""

    __slots__ = ("id", "name", "type", "attr")
    kind: ClassVar[Kind] = Kind.TYPE_TAG
    id: int
    name: str
    type: int
    attr: bool

    def __init__(self, id: int, name: str, type: int, attr: bool = False) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "attr", attr)


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
