"""What a ``.maps`` map's BTF definition declares: its type, and its key and value types.

libbpf's BTF-defined maps are anonymous structs of pointers: ``__uint(type, N)``
is ``int (*type)[N]`` and ``__type(key, T)`` is ``T *key``. The loader and the
exporter both need this to decode map contents.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import skip_mods_and_typedefs
from .parse import Btf
from .types import Array, Datasec, Kind, Ptr, Struct, Var


@dataclass(frozen=True)
class MapDef:
    """A ``.maps`` map as its BTF definition declares it."""

    type: int | None
    key_id: int | None
    value_id: int | None


def map_defs(btf: Btf) -> dict[str, MapDef]:
    """Type, key and value type ids of each ``.maps`` map, from its BTF definition."""
    out: dict[str, MapDef] = {}
    sec = btf.by_name(".maps", Kind.DATASEC)
    if not isinstance(sec, Datasec):
        return out
    for info in sec.vars:
        var = btf[info.type]
        if not isinstance(var, Var):
            continue
        definition = btf[skip_mods_and_typedefs(btf, var.type)]
        if not isinstance(definition, Struct):
            continue
        found: dict[str, int | None] = {"type": None, "key": None, "value": None}
        for member in definition.members:
            if member.name not in found:
                continue
            ptr = btf[member.type]
            if not isinstance(ptr, Ptr):
                continue
            if member.name == "type":
                # __uint(type, N) is `int (*type)[N]`: the number is the array's length.
                arr = btf[ptr.type]
                found["type"] = arr.nelems if isinstance(arr, Array) else None
            else:
                found[member.name] = ptr.type
        out[var.name] = MapDef(found["type"], found["key"], found["value"])
    return out
