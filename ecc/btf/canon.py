"""A canonical order for an object's BTF: its bytes then depend on the types, not on clang's path.

clang numbers BTF types, and lays out their strings, in the order its debug
info hands the types over. That order changes with a precompiled header,
with the heap's addresses under one, and even with the length of a path in
clang's argv; the types themselves do not change. Renumbering them by a walk
that looks only at the types makes a build with the PCH cache, a first build
without it and a ``--no-cache`` build give the same object, byte for byte.

The walk, in pre-order from roots taken in this order: the ``DATASEC`` types
by name; the types ``.BTF.ext`` names (its func_info, then its CO-RE
relocations, each in record order, which follows the code); every other type
nothing refers to, by kind and name; then anything left over (only a cycle
nothing points into) as it came; ``DECL_TAG`` types last, by their target's
new id. Strings are laid out in first use along the new order, then the ones
``.BTF.ext`` uses. Nothing but ids and string offsets changes: every record
keeps its size, so ``.BTF.ext`` keeps its layout, and a ``.rel.BTF``
relocation moves with the record it points into.

Bytes in, bytes out; malformed input raises :class:`~ecc.errors.BtfError`.
"""

from __future__ import annotations

import bisect
import struct
import sys
from array import array

from ecc.btf import raw
from ecc.errors import BtfError
from ecc.record import Record, set_field

# Kinds whose third word (btf_type.size_or_type) is a type id.
_TYPE_IN_HEADER = frozenset({2, 8, 9, 10, 11, 12, 13, 14, 17, 18})
# CO-RE relocation kinds whose instruction holds a local type id (libbpf's
# BPF_CORE_TYPE_ID_LOCAL and BPF_CORE_TYPE_ID_TARGET).
TYPE_ID_RELO_KINDS = frozenset({6, 7})
# How deep the shape of a type nothing refers to is compared, to order such types.
_SHAPE_DEPTH = 6


class Canonical(Record):
    __slots__ = ("btf", "ext", "type_map", "type_id_insns", "_old_starts", "_new_starts",
                 "_old_end")
    btf: bytes
    ext: bytes | None
    type_map: tuple[int, ...]           # old id -> new id; index 0 is void
    type_id_insns: tuple[tuple[str, int], ...]  # (section, insn byte offset) holding a type id
    _old_starts: tuple[int, ...]        # byte offset in .BTF of each record, old order
    _new_starts: tuple[int, ...]        # byte offset in .BTF of the same record, new order
    _old_end: int                       # where the old type section ends

    def __init__(self, btf: bytes, ext: bytes | None, type_map: tuple[int, ...],
                 type_id_insns: tuple[tuple[str, int], ...], _old_starts: tuple[int, ...],
                 _new_starts: tuple[int, ...], _old_end: int) -> None:
        set_field(self, "btf", btf)
        set_field(self, "ext", ext)
        set_field(self, "type_map", type_map)
        set_field(self, "type_id_insns", type_id_insns)
        set_field(self, "_old_starts", _old_starts)
        set_field(self, "_new_starts", _new_starts)
        set_field(self, "_old_end", _old_end)

    def moved(self, offset: int) -> int:
        """Where a byte of the old ``.BTF`` inside a type record is now (for ``.rel.BTF``)."""
        i = bisect.bisect_right(self._old_starts, offset) - 1
        if i < 0 or offset >= self._old_end:
            raise BtfError(f"offset {offset} in .BTF is not inside a type record")
        return self._new_starts[i] + offset - self._old_starts[i]


def canonicalize(btf: bytes, ext: bytes | None) -> Canonical:
    try:
        return _canonicalize(btf, ext)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise BtfError(f"malformed BTF ({exc})") from exc


def _canonicalize(btf: bytes, ext: bytes | None) -> Canonical:
    order, hdr = _header(btf)
    type_start = hdr.hdr_len + hdr.type_off
    str_start = hdr.hdr_len + hdr.str_off
    strings = btf[str_start:str_start + hdr.str_len]
    words = array("I", btf[type_start:type_start + hdr.type_len])
    swap = order != sys.byteorder
    if swap:
        words.byteswap()

    starts, type_slots, str_slots = _index(words)
    count = len(starts) - 2          # types, void not counted (starts has an end sentinel)
    referenced = bytearray(count + 1)
    for slots in type_slots:
        for pos in slots:
            if words[pos] > count:
                raise BtfError(f"BTF type refers to type {words[pos]}; there are {count}")
            referenced[words[pos]] = 1

    ext_info = _ExtInfo.read(ext, order) if ext is not None else None
    table = _Strings(strings)
    new_order = _walk(words, starts, type_slots, str_slots, referenced, table, ext_info)

    type_map = [0] * (count + 1)
    for new_id, old_id in enumerate(new_order, 1):
        type_map[old_id] = new_id
    out = array("I")
    new_starts = [0] * (count + 1)
    known = table.by_old.get  # most strings are met more than once: skip the call
    for old_id in new_order:
        begin = len(out)
        new_starts[old_id] = begin
        lo, hi = starts[old_id], starts[old_id + 1]
        out.extend(words[lo:hi])
        shift = begin - lo
        for pos in str_slots[old_id]:
            off = words[pos]
            new = known(off)
            out[pos + shift] = table.add(off) if new is None else new
        for pos in type_slots[old_id]:
            out[pos + shift] = type_map[words[pos]]
    new_ext = None
    relo_insns: tuple[tuple[str, int], ...] = ()
    if ext is not None and ext_info is not None:
        new_ext, relo_insns = ext_info.rewrite(ext, order, type_map, table)
    if swap:
        out.byteswap()
    new_strings = table.section()
    header = struct.pack(("<" if order == "little" else ">") + "HBBIIIII", raw.BTF_MAGIC,
                         hdr.version, hdr.flags, raw.HEADER_SIZE, 0, len(out) * 4,
                         len(out) * 4, len(new_strings))
    old_base = type_start
    new_base = raw.HEADER_SIZE
    return Canonical(
        btf=header + out.tobytes() + new_strings,
        ext=new_ext,
        type_map=tuple(type_map),
        type_id_insns=relo_insns,
        _old_starts=tuple(old_base + 4 * starts[i] for i in range(1, count + 1)),
        _new_starts=tuple(new_base + 4 * new_starts[i] for i in range(1, count + 1)),
        _old_end=old_base + 4 * starts[count + 1],
    )


def _header(btf: bytes) -> tuple[raw.ByteOrder, raw.Header]:
    if len(btf) < raw.HEADER_SIZE:
        raise BtfError(f"BTF of {len(btf)} bytes is shorter than its header")
    order: raw.ByteOrder
    if btf[0] | btf[1] << 8 == raw.BTF_MAGIC:
        order = "little"
    elif btf[0] << 8 | btf[1] == raw.BTF_MAGIC:
        order = "big"
    else:
        raise BtfError("bad BTF magic")
    hdr = raw.Header(*raw.layouts_for(order).header.unpack_from(btf, 0))
    if hdr.hdr_len < raw.HEADER_SIZE or hdr.type_off % 4 or hdr.type_len % 4:
        raise BtfError(f"BTF header: unaligned or short (hdr_len {hdr.hdr_len}, "
                       f"type_off {hdr.type_off}, type_len {hdr.type_len})")
    if (hdr.hdr_len + hdr.type_off + hdr.type_len > len(btf)
            or hdr.hdr_len + hdr.str_off + hdr.str_len > len(btf) or hdr.str_len == 0):
        raise BtfError("BTF header: a section runs past the end of the data")
    return order, hdr


def _index(words: array[int]) -> tuple[list[int], list[list[int]], list[list[int]]]:
    """Each record's first word, and the words in it holding type ids and string offsets.

    ``starts`` has one entry per type plus a void entry at 0 (a zero-length
    record) and an end sentinel, so ``words[starts[i]:starts[i + 1]]`` is type i.
    """
    starts = [0, 0]
    type_slots: list[list[int]] = [[]]
    str_slots: list[list[int]] = [[]]
    fixed, per_vlen = raw.FIXED, raw.PER_VLEN
    pos, end = 0, len(words)
    while pos < end:
        if pos + 3 > end:
            raise BtfError(f"BTF type {len(type_slots)}: record truncated")
        info = words[pos + 1]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if fixed[kind] < 0:
            raise BtfError(f"BTF type {len(type_slots)}: unsupported kind {kind}")
        size = 3 + fixed[kind] // 4 + vlen * per_vlen[kind] // 4
        if pos + size > end:
            raise BtfError(f"BTF type {len(type_slots)}: record runs past the type section")
        types = [pos + 2] if kind in _TYPE_IN_HEADER else []
        strs = [pos]
        body = pos + 3
        if kind == raw.KIND_ARRAY:
            types += [body, body + 1]
        elif kind in (raw.KIND_STRUCT, raw.KIND_UNION):
            for m in range(body, body + 3 * vlen, 3):
                strs.append(m)
                types.append(m + 1)
        elif kind == raw.KIND_FUNC_PROTO:
            for m in range(body, body + 2 * vlen, 2):
                strs.append(m)
                types.append(m + 1)
        elif kind in (raw.KIND_ENUM, raw.KIND_ENUM64):
            step = 2 if kind == raw.KIND_ENUM else 3
            strs += range(body, body + step * vlen, step)
        elif kind == raw.KIND_DATASEC:
            types += range(body, body + 3 * vlen, 3)
        type_slots.append(types)
        str_slots.append(strs)
        pos += size
        starts.append(pos)
    return starts, type_slots, str_slots


def _walk(words: array[int], starts: list[int], type_slots: list[list[int]],
          str_slots: list[list[int]], referenced: bytearray, table: _Strings,
          ext_info: _ExtInfo | None) -> list[int]:
    count = len(starts) - 2
    text = table.old_text

    def kind(i: int) -> int:
        return (words[starts[i] + 1] >> 24) & 0x1F

    def name(i: int) -> bytes:
        return text(words[starts[i]])

    seen = bytearray(count + 1)
    seen[0] = 1
    rank: dict[int, int] = {0: 0}
    new_order: list[int] = []

    def visit(root: int) -> None:
        stack = [root]
        while stack:
            i = stack.pop()
            if seen[i]:
                continue
            seen[i] = 1
            new_order.append(i)
            rank[i] = len(new_order)
            stack.extend(words[pos] for pos in reversed(type_slots[i]))

    tags = [i for i in range(1, count + 1) if kind(i) == raw.KIND_DECL_TAG]
    for tag in tags:
        seen[tag] = 1  # placed last, below
    for root in sorted((i for i in range(1, count + 1) if kind(i) == raw.KIND_DATASEC), key=name):
        visit(root)
    for root in ext_info.type_ids if ext_info is not None else ():
        visit(root)

    # What is left: types nothing refers to (clang emits some, such as arrays
    # of a local's type), then cycles nothing points into. Their numbering says
    # nothing, so they go in the order of what they are.
    shapes: dict[tuple[int, int], bytes] = {}

    def shape(i: int, depth: int) -> bytes:
        """A digest of what type i is, down to ``depth`` references deep."""
        if i in rank:
            return b"#%d" % rank[i]
        if depth == 0:
            return b"?"
        known = shapes.get((i, depth))
        if known is None:
            refs, names = set(type_slots[i]), set(str_slots[i])
            parts = [shape(words[p], depth - 1) if p in refs else
                     b"'" + text(words[p]) if p in names else b"%d" % words[p]
                     for p in range(starts[i], starts[i + 1])]
            known = shapes[i, depth] = _digest(b",".join(parts))
        return known

    for only_unreferenced in (True, False):
        left = [i for i in range(1, count + 1)
                if not seen[i] and not (only_unreferenced and referenced[i])]
        keyed = sorted((kind(i), name(i), shape(i, _SHAPE_DEPTH), i) for i in left)
        for *_key, root in keyed:
            visit(root)

    def tag_key(i: int) -> tuple[int, int, bytes]:
        lo = starts[i]
        component = words[lo + 3]
        return (rank.get(words[lo + 2], 0),
                component - (1 << 32) if component >> 31 else component, name(i))

    new_order += sorted(tags, key=tag_key)
    return new_order


def _digest(data: bytes) -> bytes:
    try:
        from _blake2 import blake2b  # CPython's own: no OpenSSL to load
    except ImportError:  # another Python implementation
        from hashlib import blake2b
    return blake2b(data, digest_size=16).digest()


class _Strings:
    """The new string section, made in first-use order from the old one's offsets."""

    def __init__(self, old: bytes) -> None:
        self._old = old
        self._data = bytearray(b"\0")
        self.by_old: dict[int, int] = {0: 0}
        self._by_text: dict[bytes, int] = {b"": 0}

    def add(self, old_offset: int) -> int:
        new = self.by_old.get(old_offset)
        if new is not None:
            return new
        text = self.old_text(old_offset)
        new = self._by_text.get(text)
        if new is None:
            new = len(self._data)
            self._by_text[text] = new
            self._data += text + b"\0"
        self.by_old[old_offset] = new
        return new

    def section(self) -> bytes:
        return bytes(self._data)

    def old_text(self, old_offset: int) -> bytes:
        """The string at an offset of the old section."""
        if old_offset >= len(self._old):
            raise BtfError(f"BTF string offset {old_offset} is past the string section")
        end = self._old.find(b"\0", old_offset)
        if end < 0:
            raise BtfError(f"BTF string at offset {old_offset} is not NUL-terminated")
        return self._old[old_offset:end]


# .BTF.ext: (field offsets in a record holding a type id, holding a string offset,
# minimum record size) for func_info, line_info and core_relo.
_EXT_FIELDS = (((4,), (), 8), ((), (4, 8), 16), ((4,), (8,), 16))


class _ExtInfo(Record):
    """Where ``.BTF.ext`` holds type ids and string offsets, in file order."""

    __slots__ = ("type_id_offsets", "string_offsets", "type_ids", "core_relos")
    type_id_offsets: tuple[int, ...]    # byte offsets of type-id fields
    string_offsets: tuple[int, ...]     # byte offsets of string-offset fields
    type_ids: tuple[int, ...]           # the type ids, func_info then core_relo
    core_relos: tuple[tuple[int, int, int, int], ...]  # (sec name off, insn off, kind, field)

    def __init__(self, type_id_offsets: tuple[int, ...], string_offsets: tuple[int, ...],
                 type_ids: tuple[int, ...],
                 core_relos: tuple[tuple[int, int, int, int], ...]) -> None:
        set_field(self, "type_id_offsets", type_id_offsets)
        set_field(self, "string_offsets", string_offsets)
        set_field(self, "type_ids", type_ids)
        set_field(self, "core_relos", core_relos)

    @classmethod
    def read(cls, ext: bytes, order: str) -> _ExtInfo:
        p = "<" if order == "little" else ">"
        if len(ext) < 24:
            raise BtfError(f".BTF.ext of {len(ext)} bytes is shorter than its header")
        magic, _version, _flags, hdr_len = struct.unpack_from(p + "HBBI", ext, 0)
        if magic != raw.BTF_MAGIC or hdr_len < 24 or hdr_len > len(ext):
            raise BtfError(".BTF.ext: bad magic or header length")
        parts = list(struct.unpack_from(p + "4I", ext, 8))
        if hdr_len >= 32:
            parts += struct.unpack_from(p + "2I", ext, 24)
        type_fields: list[int] = []
        string_fields: list[int] = []
        relo_ids: list[int] = []
        func_ids: list[int] = []
        relos: list[tuple[int, int, int, int]] = []
        for part, (type_at, str_at, min_size) in enumerate(_EXT_FIELDS):
            if 2 * part + 1 >= len(parts) or parts[2 * part + 1] == 0:
                continue
            start = hdr_len + parts[2 * part]
            end = start + parts[2 * part + 1]
            if end > len(ext) or start + 4 > end:
                raise BtfError(f".BTF.ext: info part {part} runs past the section")
            rec_size = struct.unpack_from(p + "I", ext, start)[0]
            if rec_size < min_size or rec_size % 4:
                raise BtfError(f".BTF.ext: record size {rec_size} of part {part} is too small")
            pos = start + 4
            while pos < end:
                if pos + 8 > end:
                    raise BtfError(".BTF.ext: info block header truncated")
                sec_off, num = struct.unpack_from(p + "II", ext, pos)
                string_fields.append(pos)
                pos += 8
                if pos + num * rec_size > end:
                    raise BtfError(".BTF.ext: info records run past their part")
                for rec in range(pos, pos + num * rec_size, rec_size):
                    for at in type_at:
                        type_fields.append(rec + at)
                        type_id = struct.unpack_from(p + "I", ext, rec + at)[0]
                        (func_ids if part == 0 else relo_ids).append(type_id)
                    string_fields += (rec + at for at in str_at)
                    if part == 2:
                        insn_off, _tid, _acc, kind = struct.unpack_from(p + "4I", ext, rec)
                        relos.append((sec_off, insn_off, kind, rec + 4))
                pos += num * rec_size
        return cls(tuple(type_fields), tuple(string_fields), tuple(func_ids + relo_ids),
                   tuple(relos))

    def rewrite(self, ext: bytes, order: str, type_map: list[int],
                table: _Strings) -> tuple[bytes, tuple[tuple[str, int], ...]]:
        p = "<" if order == "little" else ">"
        out = bytearray(ext)
        for at in self.string_offsets:
            struct.pack_into(p + "I", out, at, table.add(struct.unpack_from(p + "I", ext, at)[0]))
        for at in self.type_id_offsets:
            old = struct.unpack_from(p + "I", ext, at)[0]
            if old >= len(type_map):
                raise BtfError(f".BTF.ext refers to type {old}; there are {len(type_map) - 1}")
            struct.pack_into(p + "I", out, at, type_map[old])
        insns = tuple((table.old_text(sec_off).decode("utf-8", "replace"), insn_off)
                      for sec_off, insn_off, kind, _at in self.core_relos
                      if kind in TYPE_ID_RELO_KINDS)
        return bytes(out), insns

