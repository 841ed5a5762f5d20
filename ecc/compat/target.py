"""A target kernel's BTF, indexed only as far as CO-RE resolution needs.

``ecc.btf.parse_btf`` validates every type of a blob up front and indexes every
name, about 0.2 s for a 6 MB vmlinux: too slow for an archive of hundreds of
kernels. Here one pass over the record headers gives each type's offset (what
``Btf`` needs to decode any id later) and, in the same pass, the ids of the
types whose names the relocations look for (found first as string offsets, by
one regular-expression pass over the string section). Everything after that goes
through ``Btf``'s bounds-checked decoding, so malformed records still surface
as :class:`~ecc.errors.BtfError`, only when they are reached instead of up front.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..btf import Btf, raw
from ..btf.parse import check_strings, parse_header
from ..errors import BtfError

FLAVOR_SEP = "___"


def essential_name(name: str) -> str:
    """The name without its ``___flavor`` suffix (libbpf's bpf_core_essential_name_len):
    the last ``___`` that has a non-underscore on both sides starts the suffix."""
    n = len(name)
    for i in range(n - 5, -1, -1):
        if (name[i] != "_" and name[i + 1:i + 4] == FLAVOR_SEP and name[i + 4] != "_"):
            return name[:i + 1]
    return name


@dataclass(frozen=True)
class TargetBtf:
    """A kernel's BTF and, for each essential name asked for, its candidate type ids."""

    btf: Btf
    candidates: dict[str, tuple[int, ...]]   # essential name -> ids, ascending

    def named(self, essential: str) -> tuple[int, ...]:
        return self.candidates.get(essential, ())


def index_target(data: bytes, names: Iterable[str]) -> TargetBtf:
    """Index ``data`` (a raw kernel BTF) for the essential ``names`` CO-RE will look up."""
    buf = bytes(data)
    lay, hdr = parse_header(buf)
    str_start = hdr.hdr_len + hdr.str_off
    check_strings(buf, str_start, hdr.str_len)
    strings = buf[str_start:str_start + hdr.str_len]
    wanted = _string_offsets(strings, set(names))
    type_start = hdr.hdr_len + hdr.type_off
    type_end = type_start + hdr.type_len
    offsets, kinds, hits = _walk(buf, lay, type_start, type_end, wanted)
    btf = Btf(buf, lay, offsets, kinds, str_start, hdr.str_len)
    found: dict[str, list[int]] = {}
    for type_id in hits:
        name_off = raw.unpack(lay.u32, buf, offsets[type_id], "BTF type name")[0]
        found.setdefault(wanted[name_off], []).append(type_id)
    return TargetBtf(btf, {name: tuple(ids) for name, ids in found.items()})


def _string_offsets(strings: bytes, names: set[str]) -> dict[int, str]:
    """String offset -> essential name, for every string whose essential name is wanted."""
    wanted = sorted((n.encode() for n in names if n), key=len, reverse=True)
    if not wanted:
        return {}
    # One pass over the strings for all names at once; a name is followed by the end
    # of its string or by a ___flavor suffix.
    pattern = re.compile(b"\\0(" + b"|".join(map(re.escape, wanted)) + b")(?=\\0|___)")
    out: dict[int, str] = {}
    for match in pattern.finditer(strings):
        start = match.start(1)
        stop = strings.find(b"\0", start)
        full = strings[start:stop].decode("utf-8", "backslashreplace")
        essential = essential_name(full)
        if essential in names:
            out[start] = essential
    return out


def _walk(buf: bytes, lay: raw.Layouts, start: int, end: int, wanted: dict[int, str],
          ) -> tuple[list[int], bytearray, list[int]]:
    # The one loop that runs per type (~130k for vmlinux): kept to the bare minimum.
    # A record starts with its name offset, so the named types asked for are found in
    # the same pass.
    offsets = [0]
    kinds = bytearray(1)
    hits: list[int] = []
    fixed = raw.FIXED
    per_vlen = raw.PER_VLEN
    unpack = struct.Struct(lay.u32.format[0] + "II").unpack_from
    add_offset = offsets.append
    add_kind = kinds.append
    pos = start
    last = end - raw.TYPE_SIZE
    while pos <= last:
        name_off, info = unpack(buf, pos)
        kind = (info >> 24) & 0x1F
        extra = fixed[kind]
        if extra < 0:
            raise BtfError(f"BTF type {len(offsets)}: unsupported kind {kind} at offset {pos}")
        if name_off in wanted:
            hits.append(len(offsets))
        add_offset(pos)
        add_kind(kind)
        pos += 12 + extra + (info & 0xFFFF) * per_vlen[kind]
    if pos != end:
        raise BtfError(f"BTF type section ends inside a record (offset {pos}, end {end})")
    return offsets, kinds, hits
