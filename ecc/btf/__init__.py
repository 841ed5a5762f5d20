"""BTF reader: parse a ``.BTF`` blob, look types up by id or name, render them.

>>> btf = parse_btf(data)
>>> t = btf.by_name("event", Kind.STRUCT)
>>> [(m.name, member_type_str(btf, m.type)) for m in t.members]

Readers are pure: bytes in, frozen dataclasses out. Every failure on bad
input is ``ecc.errors.BtfError``.
"""

from ecc.btf.cdecl import member_type_str, type_decl, type_str
from ecc.btf.layout import (
    resolve_alignment,
    resolve_size,
    skip_mods,
    skip_mods_and_typedefs,
)
from ecc.btf.parse import MAX_RESOLVE_DEPTH, Btf, parse_btf
from ecc.btf.types import Kind, Linkage, Type

__all__ = [
    "MAX_RESOLVE_DEPTH",
    "Btf",
    "Kind",
    "Linkage",
    "Type",
    "member_type_str",
    "parse_btf",
    "resolve_alignment",
    "resolve_size",
    "skip_mods",
    "skip_mods_and_typedefs",
    "type_decl",
    "type_str",
]
