"""The meaning of BTF: one frozen dataclass per kind, wire details decoded away.

Types refer to each other by id (``int``), never by object: BTF graphs have
cycles (``struct list_head { struct list_head *next; }``), and dataclasses
that held each other would recurse forever in ``repr`` and ``==``. Ids are
also what callers need anyway (``export_types.type_id``, bpftool diffs).

Look a referenced id up with ``btf[type_id]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar


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


@dataclass(frozen=True, slots=True)
class Void:
    """Type id 0. Never stored in the type section; BTF refers to it as 'no type'."""

    id: int = 0
    name: str = ""
    kind: ClassVar[Kind] = Kind.UNKN


@dataclass(frozen=True, slots=True)
class Int:
    id: int
    name: str
    size: int
    signed: bool
    char: bool
    bool: bool
    bits: int
    offset: int
    kind: ClassVar[Kind] = Kind.INT


@dataclass(frozen=True, slots=True)
class Ptr:
    id: int
    name: str
    type: int
    kind: ClassVar[Kind] = Kind.PTR


@dataclass(frozen=True, slots=True)
class Array:
    id: int
    name: str
    type: int
    index_type: int
    nelems: int
    kind: ClassVar[Kind] = Kind.ARRAY


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union field.

    ``bit_offset`` is from the start of the enclosing type; ``bitfield_size``
    is 0 unless the field is a bitfield. Both come out the same whether the
    object used the kind_flag encoding or the legacy one (bit size kept in
    the INT at the end of the field's type chain).
    """

    name: str
    type: int
    bit_offset: int
    bitfield_size: int


@dataclass(frozen=True, slots=True)
class Struct:
    id: int
    name: str
    size: int
    members: tuple[Member, ...]
    kind: ClassVar[Kind] = Kind.STRUCT


@dataclass(frozen=True, slots=True)
class Union:
    id: int
    name: str
    size: int
    members: tuple[Member, ...]
    kind: ClassVar[Kind] = Kind.UNION


@dataclass(frozen=True, slots=True)
class EnumValue:
    """An enumerator; ``value`` is already sign-interpreted per the enum's ``signed``."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Enum:
    id: int
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...]
    kind: ClassVar[Kind] = Kind.ENUM


@dataclass(frozen=True, slots=True)
class Enum64:
    id: int
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...]
    kind: ClassVar[Kind] = Kind.ENUM64


@dataclass(frozen=True, slots=True)
class Fwd:
    id: int
    name: str
    is_union: bool
    kind: ClassVar[Kind] = Kind.FWD


@dataclass(frozen=True, slots=True)
class Typedef:
    id: int
    name: str
    type: int
    kind: ClassVar[Kind] = Kind.TYPEDEF


@dataclass(frozen=True, slots=True)
class Volatile:
    id: int
    name: str
    type: int
    kind: ClassVar[Kind] = Kind.VOLATILE


@dataclass(frozen=True, slots=True)
class Const:
    id: int
    name: str
    type: int
    kind: ClassVar[Kind] = Kind.CONST


@dataclass(frozen=True, slots=True)
class Restrict:
    id: int
    name: str
    type: int
    kind: ClassVar[Kind] = Kind.RESTRICT


@dataclass(frozen=True, slots=True)
class Func:
    """A function; ``type`` is its FUNC_PROTO, ``linkage`` a ``Linkage`` value."""

    id: int
    name: str
    type: int
    linkage: int
    kind: ClassVar[Kind] = Kind.FUNC


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class FuncProto:
    """A function signature.

    A trailing ``...`` is encoded in BTF as a last parameter of type 0; it is
    taken out of ``params`` and reported as ``variadic``.
    """

    id: int
    name: str
    return_type: int
    params: tuple[Param, ...]
    variadic: bool
    kind: ClassVar[Kind] = Kind.FUNC_PROTO


@dataclass(frozen=True, slots=True)
class Var:
    """A global variable; ``linkage`` is 0 static, 1 global, 2 extern."""

    id: int
    name: str
    type: int
    linkage: int
    kind: ClassVar[Kind] = Kind.VAR


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """One DATASEC entry. ``type`` is usually a VAR, a FUNC for ``.ksyms``."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Datasec:
    id: int
    name: str
    size: int
    vars: tuple[VarSecinfo, ...]
    kind: ClassVar[Kind] = Kind.DATASEC


@dataclass(frozen=True, slots=True)
class Float:
    id: int
    name: str
    size: int
    kind: ClassVar[Kind] = Kind.FLOAT


@dataclass(frozen=True, slots=True)
class DeclTag:
    """``btf_decl_tag`` on ``type``; ``component_idx`` -1 for the whole type,
    else the member or parameter index.

    ``attr`` (kind_flag, Linux 6.14+) means the tag is a whole attribute
    (``__attribute__((name))``) rather than ``btf_decl_tag("name")``.
    """

    id: int
    name: str
    type: int
    component_idx: int
    attr: bool = False
    kind: ClassVar[Kind] = Kind.DECL_TAG


@dataclass(frozen=True, slots=True)
class TypeTag:
    """``btf_type_tag`` on ``type``; ``attr`` as for ``DeclTag``."""

    id: int
    name: str
    type: int
    attr: bool = False
    kind: ClassVar[Kind] = Kind.TYPE_TAG


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
