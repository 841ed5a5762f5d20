"""Put an object's BTF in canonical order (btf/canon.py) and fix what points into it.

Besides ``.BTF`` and ``.BTF.ext`` themselves, two things hold BTF positions:
``.rel.BTF``, whose relocations point at the offsets of global variables
inside ``DATASEC`` records (they move with their record, and are sorted by
their new place so that their order, too, is canonical), and the
instructions of a ``bpf_core_type_id_local()``-style CO-RE relocation, whose
immediate is the local type id (libbpf checks it before patching).

Works on the sections of strip.py's rewrite, in place.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Protocol

from ..btf.canon import canonicalize
from ..errors import BtfError, ElfError
from .strip import SHT_REL, SHT_RELA, relocation_entry_size


class Section(Protocol):
    index: int
    name: str
    data: bytes
    fields: list[int]


def canonicalize_sections(sections: Sequence[Section], order: str) -> None:
    by_name = {s.name: s for s in sections}
    btf = by_name.get(".BTF")
    if btf is None:
        return
    ext = by_name.get(".BTF.ext")
    try:
        canonical = canonicalize(btf.data, ext.data if ext is not None else None)
    except BtfError as exc:
        raise ElfError(f"section .BTF: {exc}") from exc
    btf.data = canonical.btf
    if ext is not None and canonical.ext is not None:
        ext.data = canonical.ext
    for sec in sections:
        if sec.fields[1] in (SHT_REL, SHT_RELA) and sec.fields[7] == btf.index:
            try:
                sec.data = _moved_relocations(sec, order, canonical.moved)
            except BtfError as exc:
                raise ElfError(f"{sec.name}: {exc}") from exc
    for name, insn_off in canonical.type_id_insns:
        code = by_name.get(name)
        if code is None or insn_off + 8 > len(code.data):
            raise ElfError(f".BTF.ext: a CO-RE relocation names instruction {insn_off} of "
                           f"{name}, which does not exist")
        data = bytearray(code.data)
        old = struct.unpack_from(order + "I", data, insn_off + 4)[0]
        if 0 < old < len(canonical.type_map):
            struct.pack_into(order + "I", data, insn_off + 4, canonical.type_map[old])
            code.data = bytes(data)


def _moved_relocations(sec: Section, order: str, moved: Callable[[int], int]) -> bytes:
    size = relocation_entry_size(sec.name, sec.fields[1], sec.data)
    entries = []
    for pos in range(0, len(sec.data), size):
        entry = bytearray(sec.data[pos:pos + size])
        offset = struct.unpack_from(order + "Q", entry, 0)[0]
        struct.pack_into(order + "Q", entry, 0, moved(offset))
        entries.append(bytes(entry))
    entries.sort(key=lambda e: struct.unpack_from(order + "Q", e, 0)[0])
    return b"".join(entries)
