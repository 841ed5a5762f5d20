"""The BPF ELF object, read once into plain frozen records.

A pure reader (bytes in, records out) of what ecc needs from a 64-bit ELF
object: the section headers and their names, the symbol table, and the
contents a loader starts from (``.BTF``, ``.BTF.ext``, the global-data
sections). It reads the headers with :mod:`struct`: every ``ecc build`` and
every ``ecc run`` reads one object, and a general ELF library cost them more
to import than the reading itself. Every offset, size and index is checked
before it is used, so hostile bytes raise :class:`ElfError`, read nothing
outside the input, and cost at most one step per byte of it.
"""

from __future__ import annotations

import struct

from .errors import ElfError
from .record import Record, set_field

EM_BPF = 247
SHF_EXECINSTR = 0x4
SHF_COMPRESSED = 0x800
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
STT_FUNC = 2
STB_LOCAL = 0
# A section this large in a BPF object is corruption, not code; refuse before reading it.
MAX_SECTION_BYTES = 256 * 1024 * 1024

_EHDR = "HHIQQQIHHHHHH"        # ELF64 header after e_ident: e_type ... e_shstrndx
_SHDR = "IIQQQQIIQQ"           # ELF64 section header, 64 bytes
_SYM = "IBBHQQ"                # ELF64 symbol, 24 bytes
_SHDR_SIZE, _SYM_SIZE = 64, 24
_SHN_XINDEX = 0xFFFF
# Symbol section indices that name no section here: SHN_ABS, SHN_COMMON, SHN_XINDEX.
_NO_SECTION = frozenset((0xFFF1, 0xFFF2, _SHN_XINDEX))
# The symbol kinds and bindings ecc tells apart (STT_NOTYPE..STT_FILE, STB_LOCAL..STB_WEAK);
# any other reads as -1.
_STT_LAST, _STB_LAST = 4, 2


class Section(Record):
    __slots__ = ("index", "name", "type", "flags", "size", "offset")
    index: int
    name: str
    type: int      # sh_type, as in the file
    flags: int
    size: int
    offset: int    # in the file; lets `ecc build --verify` name the sections that differ

    def __init__(self, index: int, name: str, type: int, flags: int, size: int,
                 offset: int = 0) -> None:
        set_field(self, "index", index)
        set_field(self, "name", name)
        set_field(self, "type", type)
        set_field(self, "flags", flags)
        set_field(self, "size", size)
        set_field(self, "offset", offset)

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


class Symbol(Record):
    __slots__ = ("name", "section_index", "value", "size", "type", "bind")
    name: str
    section_index: int  # -1: absolute, common, or in an extended index table
    value: int
    size: int
    type: int
    bind: int

    def __init__(self, name: str, section_index: int, value: int, size: int, type: int,
                 bind: int) -> None:
        set_field(self, "name", name)
        set_field(self, "section_index", section_index)
        set_field(self, "value", value)
        set_field(self, "size", size)
        set_field(self, "type", type)
        set_field(self, "bind", bind)

    @property
    def undefined(self) -> bool:
        """An extern: declared here, defined elsewhere (the kernel, Kconfig, another object)."""
        return self.section_index == 0 and bool(self.name)


class BpfObject(Record):
    __slots__ = ("little_endian", "sections", "symbols", "btf", "btf_ext", "data_sections")
    little_endian: bool
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]
    btf: bytes | None
    btf_ext: bytes | None
    # Contents of the global-data sections (.data*, .rodata*, .bss* as zeros):
    # a loader's starting point for the initial values it writes.
    data_sections: dict[str, bytes]

    def __init__(self, little_endian: bool, sections: tuple[Section, ...],
                 symbols: tuple[Symbol, ...], btf: bytes | None, btf_ext: bytes | None,
                 data_sections: dict[str, bytes] | None = None) -> None:
        set_field(self, "little_endian", little_endian)
        set_field(self, "sections", sections)
        set_field(self, "symbols", symbols)
        set_field(self, "btf", btf)
        set_field(self, "btf_ext", btf_ext)
        set_field(self, "data_sections", {} if data_sections is None else data_sections)

    def section(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None


# One section header as read: (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size,
# sh_link, sh_info, sh_addralign, sh_entsize).
_Header = tuple[int, int, int, int, int, int, int, int, int, int]


def read_object(data: bytes) -> BpfObject:
    """Parse a BPF ELF object; any malformation raises :class:`ElfError`."""
    data = bytes(data)
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file (bad magic)")
    if len(data) < 64:
        raise ElfError(f"malformed ELF: {len(data)} bytes, shorter than the 64-byte header")
    if data[4] == 1:
        raise ElfError("not a 64-bit ELF object (class 32); BPF objects are 64-bit")
    if data[4] != 2:
        raise ElfError(f"malformed ELF: class byte {data[4]} (2 is 64-bit)")
    if data[5] not in (1, 2):
        raise ElfError(f"malformed ELF: data encoding byte {data[5]} (1 is little-endian, "
                       f"2 big-endian)")
    order = "<" if data[5] == 1 else ">"
    header = struct.unpack_from(order + _EHDR, data, 16)
    machine, shoff, shentsize, shnum, shstrndx = (header[1], header[5], header[10],
                                                  header[11], header[12])
    if machine != EM_BPF:
        raise ElfError(f"not a BPF object (machine {machine}); compile with -target bpf")
    headers = _section_headers(data, order, shoff, shentsize, shnum)
    if headers and shstrndx == _SHN_XINDEX:  # the real index is in section 0 (sh_link)
        shstrndx = headers[0][6]
    return _read_sections(data, order, headers, shstrndx)


def _section_headers(data: bytes, order: str, shoff: int, shentsize: int,
                     shnum: int) -> list[_Header]:
    if shoff == 0:
        return []  # no section header table: an object with nothing in it
    if shentsize != _SHDR_SIZE:
        raise ElfError(f"malformed ELF: section headers of {shentsize} bytes "
                       f"(64-bit ELF has {_SHDR_SIZE})")
    if shnum == 0:  # 0xff00 sections or more: the count is in section 0 (sh_size)
        if shoff + _SHDR_SIZE > len(data):
            raise ElfError(f"malformed ELF: the section header table (at {shoff}) lies "
                           f"outside the file")
        shnum = struct.unpack_from(order + "Q", data, shoff + 32)[0]
    end = shoff + shnum * _SHDR_SIZE
    if end > len(data):
        raise ElfError(f"malformed ELF: the section header table ({shnum} entries at "
                       f"{shoff}) lies outside the file")
    fields: list[_Header] = list(struct.iter_unpack(order + _SHDR, data[shoff:end]))
    return fields


def _contents(data: bytes, header: _Header) -> bytes:
    if header[1] == SHT_NOBITS:
        return b""
    return data[header[4]:header[4] + header[5]]


class _Names:
    """Names from string tables, within a budget: names may overlap in a table (suffixes
    are shared), so hostile offsets could make the names' total length the square of the
    file's. A real object's names add up to a small multiple of its string tables."""

    __slots__ = ("left",)

    def __init__(self, data: bytes) -> None:
        self.left = 4 * len(data) + (1 << 16)

    def get(self, table: bytes, at: int, what: str) -> str:
        end = table.find(b"\0", at, at + self.left + 1)
        if end < 0:
            if at < len(table) and table.find(b"\0", at) >= 0:
                raise ElfError("malformed ELF: the names of sections and symbols add up to "
                               "more than the file could hold")
            raise ElfError(f"malformed ELF: {what}: its name (offset {at}) is not in its "
                           f"string table")
        self.left -= end - at
        return table[at:end].decode("utf-8", "replace")


def _read_sections(data: bytes, order: str, headers: list[_Header],
                   shstrndx: int) -> BpfObject:
    names = b""
    strings = _Names(data)
    if headers:
        if not 0 < shstrndx < len(headers):
            raise ElfError(f"malformed ELF: section name table index {shstrndx} is not one of "
                           f"its {len(headers)} sections")
        _check_bounds(data, shstrndx, headers[shstrndx], "the section names")
        names = _contents(data, headers[shstrndx])
    sections: list[Section] = []
    btf: bytes | None = None
    btf_ext: bytes | None = None
    symtab: _Header | None = None
    data_sections: dict[str, bytes] = {}
    for index, header in enumerate(headers):
        sh_name, sh_type, flags, _, offset, size = header[:6]
        name = strings.get(names, sh_name, f"section {index}")
        _check_bounds(data, index, header, name)
        sections.append(Section(index, name, sh_type, flags, size, offset))
        is_data = name.startswith((".data", ".rodata", ".bss")) and sh_type in (SHT_PROGBITS,
                                                                               SHT_NOBITS)
        if (is_data or name in (".BTF", ".BTF.ext")) and flags & SHF_COMPRESSED:
            raise ElfError(f"malformed ELF: section {index} ('{name}') is compressed; "
                           f"a BPF loader reads it as it is")
        if is_data:
            data_sections[name] = (bytes(size) if sh_type == SHT_NOBITS
                                   else data[offset:offset + size])
        if name in (".BTF", ".BTF.ext"):
            if sh_type == SHT_NOBITS:
                raise ElfError(f"malformed ELF: section {index} ('{name}') has no contents "
                               f"in the file (SHT_NOBITS)")
            if name == ".BTF":
                btf = data[offset:offset + size]
            else:
                btf_ext = data[offset:offset + size]
        elif sh_type == SHT_SYMTAB:
            symtab = header
    symbols = _symbols(data, order, headers, symtab, strings) if symtab is not None else ()
    return BpfObject(order == "<", tuple(sections), symbols, btf, btf_ext, data_sections)


def _check_bounds(data: bytes, index: int, header: _Header, name: str) -> None:
    sh_type, offset, size = header[1], header[4], header[5]
    if sh_type != SHT_NOBITS and (size > MAX_SECTION_BYTES or offset + size > len(data)):
        raise ElfError(f"section {index} ('{name}') lies outside the file")
    if size > MAX_SECTION_BYTES:
        raise ElfError(f"section {index} ('{name}') claims {size} bytes; too large")


def _symbols(data: bytes, order: str, headers: list[_Header], symtab: _Header,
             names: _Names) -> tuple[Symbol, ...]:
    offset, size, link, entsize = symtab[4], symtab[5], symtab[6], symtab[9]
    if entsize != _SYM_SIZE:
        raise ElfError(f"malformed ELF: symbol table entries of {entsize} bytes "
                       f"(64-bit ELF has {_SYM_SIZE})")
    if link >= len(headers) or headers[link][1] != SHT_STRTAB:
        raise ElfError(f"malformed ELF: the symbol table's names are in section {link}, "
                       f"which is not a string table")
    strings = _contents(data, headers[link])
    end = offset + size - size % _SYM_SIZE
    return tuple(
        Symbol(names.get(strings, st_name, f"symbol {number}"),
               -1 if shndx in _NO_SECTION else shndx, value, sym_size,
               info & 0xF if info & 0xF <= _STT_LAST else -1,
               info >> 4 if info >> 4 <= _STB_LAST else -1)
        for number, (st_name, info, _, shndx, value, sym_size)
        in enumerate(struct.iter_unpack(order + _SYM, data[offset:end])))
