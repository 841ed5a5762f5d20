"""``llvm-strip -g`` for a BPF relocatable object, in-process: bytes in, bytes out.

Running llvm-strip costs a warm build about 17 ms, nearly all of it the
process start of a large LLVM binary; doing the same here costs about one.
What goes, as with llvm-strip: the ``.debug*``/``.zdebug*`` sections, the
relocation sections that apply to them, the symbols defined in them, and the
``STT_FILE`` symbols. Symbol indices are renumbered in every relocation and
in ``.llvm_addrsig``; the string table is made anew from the names still
used. What stays keeps its bytes, order and alignment.

Only what clang writes for ``-target bpf`` is handled: a 64-bit ELF
relocatable without program headers or section groups. Anything else raises
:class:`StripUnsupported`, and the caller uses llvm-strip; malformed input
raises :class:`~ecc.errors.ElfError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..btf.canon import canonicalize
from ..errors import BtfError, ElfError
from ..record import MutableRecord

SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 2, 3, 4, 8, 9
SHT_GROUP, SHT_SYMTAB_SHNDX = 17, 18
SHT_LLVM_ADDRSIG = 0x6FFF4C03
SHN_LORESERVE = 0xFF00
STT_FILE = 4
_EHDR, _SHDR, _SYM = "16sHHIQQQIHHHHHH", "IIQQQQIIQQ", "IBBHQQ"
_DEBUG_PREFIXES = (".debug", ".zdebug")
_MAX_ALIGN = 1 << 16  # padding is allocated: a hostile alignment must not exhaust memory


class StripUnsupported(ElfError):
    """An object this stripper does not handle (valid or not); llvm-strip may."""


class _Section(MutableRecord):
    __slots__ = ("index", "name", "fields", "data")
    index: int
    name: str
    fields: list[int]   # name, type, flags, addr, offset, size, link, info, addralign, entsize
    data: bytes

    def __init__(self, index: int, name: str, fields: list[int], data: bytes) -> None:
        self.index = index
        self.name = name
        self.fields = fields
        self.data = data

    @property
    def type(self) -> int:
        return self.fields[1]


def strip_debug(data: bytes, canonical_btf: bool = False) -> bytes:
    """The object without DWARF; with ``canonical_btf``, its BTF also in canonical
    order (canonicalize_sections), so that its bytes do not depend on how clang numbered types."""
    try:
        return _strip(data, canonical_btf)
    except (struct.error, IndexError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ElfError(f"malformed ELF object ({exc})") from exc


class _Object(NamedTuple):
    """A parsed object: its byte order, ELF header fields and every section."""

    order: str
    ehdr: list[int]
    sections: list[_Section]

    @property
    def shstrndx(self) -> int:
        return self.ehdr[13]


def _strip(data: bytes, canonical_btf: bool) -> bytes:
    obj = _read(data)
    kept, removed = _kept_sections(obj)
    if canonical_btf:
        canonicalize_sections(kept, obj.order)
    symtab, strtab, symbols, sym_map, first_global = _kept_symbols(obj, kept, removed)
    new_index = {s.index: i for i, s in enumerate(kept)}
    _rewrite(obj, kept, new_index, symtab, strtab, symbols, sym_map, first_global)
    return _layout(obj, kept, new_index)


def _read(data: bytes) -> _Object:
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF object")
    if data[4] != 2:
        raise StripUnsupported("not a 64-bit ELF")
    order = {1: "<", 2: ">"}.get(data[5])
    if order is None:
        raise ElfError(f"unknown ELF byte order {data[5]}")
    ehdr = list(struct.unpack_from(order + _EHDR, data, 0))
    e_shoff, e_phnum, e_shentsize, e_shnum, e_shstrndx = ehdr[6], *ehdr[10:14]
    if e_phnum or e_shnum == 0 or e_shstrndx >= e_shnum or e_shentsize != 64:
        raise StripUnsupported("not a plain relocatable (program headers or extended numbering)")
    if e_shoff + 64 * e_shnum > len(data):
        raise ElfError("section headers run past the end of the file")
    sections = []
    for i in range(e_shnum):
        fields = list(struct.unpack_from(order + _SHDR, data, e_shoff + 64 * i))
        offset, size = fields[4], fields[5]
        if fields[1] == SHT_NOBITS:
            body = b""
        elif offset + size > len(data):
            raise ElfError(f"section {i} runs past the end of the file")
        else:
            body = data[offset:offset + size]
        sections.append(_Section(i, "", fields, body))
    names = sections[e_shstrndx].data
    for sec in sections:
        sec.name = _string(names, sec.fields[0])
        if sec.type in (SHT_GROUP, SHT_SYMTAB_SHNDX):
            raise StripUnsupported(f"section {sec.name} of type {sec.type}")
    return _Object(order, ehdr, sections)


def undefined_symbols(data: bytes) -> tuple[list[str], bytes | None]:
    """The names of a relocatable's undefined symbols (what it takes from elsewhere: the
    kernel, Kconfig, another object) and its ``.BTF`` bytes, by this module's own reader:
    externs.py checks every warm build with it, so it must cost next to nothing."""
    try:
        obj = _read(data)
        names: list[str] = []
        for symtab in (s for s in obj.sections if s.type == SHT_SYMTAB):
            if symtab.fields[6] >= len(obj.sections) or len(symtab.data) % 24:
                raise ElfError(f"symbol table {symtab.name} is malformed")
            strings = obj.sections[symtab.fields[6]].data
            names += [_string(strings, name) for name, _, _, shndx, _, _ in
                      struct.iter_unpack(obj.order + _SYM, symtab.data) if name and shndx == 0]
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ElfError(f"malformed ELF object ({exc})") from exc
    return names, next((s.data for s in obj.sections if s.name == ".BTF"), None)


def _kept_sections(obj: _Object) -> tuple[list[_Section], set[int]]:
    """The sections that stay, and the indices of those that go."""
    sections = obj.sections
    removed = {s.index for s in sections if s.name.startswith(_DEBUG_PREFIXES)}
    removed |= {s.index for s in sections
                if s.type in (SHT_REL, SHT_RELA) and s.fields[7] in removed}
    kept = [s for s in sections if s.index not in removed]
    for sec in kept:
        if sec.fields[6] >= len(sections):
            raise ElfError(f"{sec.name} links to section {sec.fields[6]}, which does not exist")
        if sec.fields[6] in removed:
            raise StripUnsupported(f"{sec.name} links to a removed section")
    return kept, removed


def _kept_symbols(obj: _Object, kept: list[_Section], removed: set[int]) -> tuple[
        _Section | None, _Section | None, list[list[int | str]], dict[int, int], int]:
    """The symbol table, its string table, the symbols that stay (name, info, other,
    section, value, size), old index -> new, and the first global's index."""
    e_shnum = len(obj.sections)
    new_index = {s.index: i for i, s in enumerate(kept)}
    symtabs = [s for s in kept if s.type == SHT_SYMTAB]
    if len(symtabs) > 1:
        raise StripUnsupported("more than one symbol table")
    symtab = symtabs[0] if symtabs else None
    strtab = obj.sections[symtab.fields[6]] if symtab else None
    sym_map: dict[int, int] = {}
    symbols: list[list[int | str]] = []
    first_global = 0
    if symtab is not None and strtab is not None:
        if len(symtab.data) % 24:
            raise ElfError("symbol table size is not a multiple of its entries")
        for i, entry in enumerate(struct.iter_unpack(obj.order + _SYM, symtab.data)):
            st_name, st_info, st_other, st_shndx, st_value, st_size = entry
            if i and ((st_info & 0xF) == STT_FILE or st_shndx in removed):
                continue
            if st_shndx and st_shndx < SHN_LORESERVE:
                if st_shndx >= e_shnum:
                    raise ElfError(f"symbol {i} names section {st_shndx}, which does not exist")
                st_shndx = new_index[st_shndx]
            sym_map[i] = len(symbols)
            if st_info >> 4 == 0:  # STB_LOCAL: locals come first
                first_global = len(symbols) + 1
            symbols.append([_string(strtab.data, st_name), st_info, st_other, st_shndx,
                            st_value, st_size])
    return symtab, strtab, symbols, sym_map, first_global


def _rewrite(obj: _Object, kept: list[_Section], new_index: dict[int, int],
             symtab: _Section | None, strtab: _Section | None, symbols: list[list[int | str]],
             sym_map: dict[int, int], first_global: int) -> None:
    """New string tables, symbols and relocations; section headers pointing at the new
    indices. In place."""
    order, e_shnum, e_shstrndx = obj.order, len(obj.sections), obj.shstrndx
    # One string table for section and symbol names, as clang writes it, when that is so.
    shared = strtab is not None and strtab.index == e_shstrndx
    table = _StringTable()
    for sec in kept:
        sec.fields[0] = table.add(sec.name)
    sym_table = table if shared or strtab is None else _StringTable()
    for sym in symbols:
        sym[0] = sym_table.add(str(sym[0]))

    for sec in kept:
        if sec.index == e_shstrndx:
            sec.data = table.bytes()
        elif strtab is not None and sec.index == strtab.index:
            sec.data = sym_table.bytes()
        elif sec is symtab:
            sec.data = b"".join(struct.pack(order + _SYM, *sym) for sym in symbols)
            sec.fields[7] = first_global
        elif sec.type in (SHT_REL, SHT_RELA):
            sec.data = _renumber_relocations(sec, order, sym_map)
        elif sec.type == SHT_LLVM_ADDRSIG:
            sec.data = _renumber_addrsig(sec.data, sym_map)
        # sh_link is a section index in every type that uses it (.symtab's string
        # table, a relocation's symbol table, .llvm_addrsig's symbol table).
        sec.fields[6] = new_index[sec.fields[6]]
        if sec.type in (SHT_REL, SHT_RELA):
            if sec.fields[7] >= e_shnum:
                raise ElfError(f"{sec.name} applies to section {sec.fields[7]}, "
                               f"which does not exist")
            sec.fields[7] = new_index[sec.fields[7]]
        if sec.type != SHT_NOBITS:  # a .bss keeps its size, and has no bytes
            sec.fields[5] = len(sec.data)


def _layout(obj: _Object, kept: list[_Section], new_index: dict[int, int]) -> bytes:
    """Contents in their old file order, each at its alignment; section headers last."""
    order, ehdr = obj.order, obj.ehdr
    out = bytearray(64)
    for sec in sorted(kept[1:], key=lambda s: (s.fields[4], s.index)):
        if sec.type == SHT_NOBITS:
            sec.fields[4] = len(out)
            continue
        align = max(sec.fields[8], 1)
        if align & (align - 1) or align > _MAX_ALIGN:
            raise ElfError(f"section {sec.name}: alignment {align} is not a power of two "
                           f"up to {_MAX_ALIGN}")
        out += bytes(-len(out) % align)
        sec.fields[4] = len(out)
        out += sec.data
    out += bytes(-len(out) % 8)
    ehdr[6], ehdr[12], ehdr[13] = len(out), len(kept), new_index[obj.shstrndx]
    for sec in kept:
        out += struct.pack(order + _SHDR, *sec.fields)
    out[:64] = struct.pack(order + _EHDR, *ehdr)
    return bytes(out)


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    if offset >= len(table) or end < 0:
        raise ElfError(f"string offset {offset} is outside its string table")
    return table[offset:end].decode()


class _StringTable:
    def __init__(self) -> None:
        self._data = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}

    def add(self, name: str) -> int:
        if name not in self._offsets:
            self._offsets[name] = len(self._data)
            self._data += name.encode() + b"\0"
        return self._offsets[name]

    def bytes(self) -> bytes:
        return bytes(self._data)


def relocation_entry_size(name: str, sh_type: int, data: bytes) -> int:
    """Bytes per entry of a SHT_REL or SHT_RELA section, checked against its size."""
    size = 24 if sh_type == SHT_RELA else 16
    if len(data) % size:
        raise ElfError(f"{name}: size is not a multiple of its entries")
    return size


def _renumber_relocations(sec: _Section, order: str, sym_map: dict[int, int]) -> bytes:
    size = relocation_entry_size(sec.name, sec.type, sec.data)
    out = bytearray(sec.data)
    for pos in range(0, len(out), size):
        info = struct.unpack_from(order + "Q", out, pos + 8)[0]
        sym = info >> 32
        if sym not in sym_map:
            raise StripUnsupported(f"{sec.name} refers to symbol {sym}, which is removed")
        struct.pack_into(order + "Q", out, pos + 8, (sym_map[sym] << 32) | (info & 0xFFFFFFFF))
    return bytes(out)


def _renumber_addrsig(data: bytes, sym_map: dict[int, int]) -> bytes:
    """ULEB128 symbol indices; entries of removed symbols are dropped."""
    out = bytearray()
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte & 0x80:
            if shift > 63:
                raise ElfError(".llvm_addrsig: ULEB128 value too long")
            continue
        if value in sym_map:
            out += _uleb128(sym_map[value])
        value = shift = 0
    if shift:
        raise ElfError(".llvm_addrsig ends inside a value")
    return bytes(out)


def _uleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# --- the canonical BTF order, applied to the object's sections -----------------------

def canonicalize_sections(sections: Sequence[_Section], order: str) -> None:
    """Put the BTF in canonical order (btf/canon.py) and fix what points into it.

    Besides ``.BTF`` and ``.BTF.ext`` themselves, two things hold BTF positions:
    ``.rel.BTF``, whose relocations point at the offsets of global variables
    inside ``DATASEC`` records (they move with their record, and are sorted by
    their new place so that their order, too, is canonical), and the
    instructions of a ``bpf_core_type_id_local()``-style CO-RE relocation, whose
    immediate is the local type id (libbpf checks it before patching). In place.
    """
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


def _moved_relocations(sec: _Section, order: str, moved: Callable[[int], int]) -> bytes:
    size = relocation_entry_size(sec.name, sec.fields[1], sec.data)
    entries = []
    for pos in range(0, len(sec.data), size):
        entry = bytearray(sec.data[pos:pos + size])
        offset = struct.unpack_from(order + "Q", entry, 0)[0]
        struct.pack_into(order + "Q", entry, 0, moved(offset))
        entries.append(bytes(entry))
    entries.sort(key=lambda e: struct.unpack_from(order + "Q", e, 0)[0])
    return b"".join(entries)
