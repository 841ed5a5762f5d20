"""Sizes, alignments and qualifier skipping, as libbpf computes them.

Every walk is bounded by ``MAX_RESOLVE_DEPTH`` hops, so a reference loop
(libbpf accepts BTF containing one) ends in ``BtfError`` instead of hanging.
"""

from __future__ import annotations

from ecc.btf.parse import MAX_RESOLVE_DEPTH, Btf
from ecc.btf.types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Fwd,
    Int,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    Void,
    Volatile,
)
from ecc.errors import BtfError

__all__ = [
    "MAX_RESOLVE_DEPTH",
    "resolve_alignment",
    "resolve_size",
    "skip_mods",
    "skip_mods_and_typedefs",
]

U32_MAX = 0xFFFFFFFF

_MODS = (Const, Volatile, Restrict, TypeTag)
_MODS_AND_TYPEDEFS = (Const, Volatile, Restrict, TypeTag, Typedef)


def _too_deep(btf: Btf, start_id: int, what: str) -> BtfError:
    return BtfError(
        f"{btf.describe(start_id)}: {what}: type chain longer than {MAX_RESOLVE_DEPTH} "
        "(reference loop?)"
    )


def resolve_size(btf: Btf, type_id: int) -> int:
    """Byte size of ``type_id``, like libbpf ``btf__resolve_size``.

    Follows typedefs, qualifiers, VARs and tags; multiplies array element
    counts and refuses a total above ``U32_MAX`` as libbpf does. Void,
    forward declarations and functions have no size.
    """
    start_id = type_id
    nelems = 1
    for _ in range(MAX_RESOLVE_DEPTH):
        t = btf[type_id]
        if isinstance(t, Int | Struct | Union | Enum | Enum64 | Datasec | Float):
            size = t.size
            break
        if isinstance(t, Ptr):
            size = btf.pointer_size
            break
        if isinstance(t, Typedef | Volatile | Const | Restrict | Var | DeclTag | TypeTag):
            type_id = t.type
        elif isinstance(t, Array):
            if nelems and t.nelems > U32_MAX // nelems:
                raise BtfError(
                    f"{btf.describe(start_id)}: size overflows: array of {t.nelems} x "
                    f"{nelems} elements exceeds {U32_MAX}"
                )
            nelems *= t.nelems
            type_id = t.type
        elif isinstance(t, Void | Fwd):
            what = "void" if isinstance(t, Void) else "a forward declaration"
            raise BtfError(f"{btf.describe(start_id)}: has no size (resolves to {what})")
        else:
            raise BtfError(
                f"{btf.describe(start_id)}: has no size (resolves to {btf.describe(t.id)})"
            )
    else:
        raise _too_deep(btf, start_id, "resolving size")
    if nelems and size > U32_MAX // nelems:
        raise BtfError(
            f"{btf.describe(start_id)}: size overflows: {nelems} x {size} bytes exceeds {U32_MAX}"
        )
    return nelems * size


def resolve_alignment(btf: Btf, type_id: int) -> int:
    """Alignment of ``type_id`` in bytes, like libbpf ``btf__align_of``.

    A struct whose fields or size contradict its members' natural alignment
    must have been packed, and gets 1.
    """
    return _align_of(btf, type_id, type_id, 0)


def _align_of(btf: Btf, start_id: int, type_id: int, depth: int) -> int:
    if depth >= MAX_RESOLVE_DEPTH:
        raise _too_deep(btf, start_id, "resolving alignment")
    t = btf[type_id]
    if isinstance(t, Int | Enum | Enum64 | Float):
        if t.size == 0:
            raise BtfError(
                f"{btf.describe(start_id)}: has no alignment ({btf.describe(t.id)} has size 0)"
            )
        return min(btf.pointer_size, t.size)
    if isinstance(t, Ptr):
        return btf.pointer_size
    if isinstance(t, _MODS_AND_TYPEDEFS):
        return _align_of(btf, start_id, t.type, depth + 1)
    if isinstance(t, Array):
        return _align_of(btf, start_id, t.type, depth + 1)
    if isinstance(t, Struct | Union):
        max_align = 1
        packed = False
        for m in t.members:
            align = _align_of(btf, start_id, m.type, depth + 1)
            max_align = max(max_align, align)
            # A field off its type's natural alignment means the struct was packed.
            if m.bitfield_size == 0 and m.bit_offset % (8 * align):
                packed = True
        if packed or t.size % max_align:
            return 1
        return max_align
    raise BtfError(f"{btf.describe(start_id)}: has no alignment (contains {btf.describe(t.id)})")


def skip_mods(btf: Btf, type_id: int) -> int:
    """Follow const/volatile/restrict/type_tag to the first other type."""
    return _skip(btf, type_id, typedefs=False)


def skip_mods_and_typedefs(btf: Btf, type_id: int) -> int:
    """Follow qualifiers, type tags and typedefs to the first other type."""
    return _skip(btf, type_id, typedefs=True)


def _skip(btf: Btf, type_id: int, *, typedefs: bool) -> int:
    start_id = type_id
    # Same budget as libbpf btf__resolve_type: 32 types looked at.
    for _ in range(MAX_RESOLVE_DEPTH):
        t = btf[type_id]
        if isinstance(t, _MODS) or (typedefs and isinstance(t, Typedef)):
            type_id = t.type
        else:
            return type_id
    what = "skipping qualifiers and typedefs" if typedefs else "skipping qualifiers"
    raise _too_deep(btf, start_id, what)
