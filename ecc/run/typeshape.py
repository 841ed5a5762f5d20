"""Questions about a type's shape that an exporter config asks of BTF (re-exported by
``ecc.run.decode``): a struct's member, whether a type is a number or an integer array."""

from __future__ import annotations

from ecc.btf import Btf, skip_mods_and_typedefs
from ecc.btf.types import Array, Enum, Enum64, Float, Int, Struct, Union


def member_type(btf: Btf, type_id: int, name: str) -> int | None:
    """The type id of the direct member ``name`` of a struct or union, else None."""
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if isinstance(t, Struct | Union):
        for m in t.members:
            if m.name == name:
                return m.type
    return None


def is_number(btf: Btf, type_id: int) -> bool:
    """An integer, float or enum type: one that holds a number as stored."""
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    return isinstance(t, Int | Float | Enum | Enum64)


def int_array_length(btf: Btf, type_id: int) -> int | None:
    """The length of an array of integers (not chars or bools), else None."""
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if not isinstance(t, Array):
        return None
    elem = btf[skip_mods_and_typedefs(btf, t.type)]
    if not isinstance(elem, Int) or elem.char or elem.bool:
        return None
    return t.nelems
