"""The BPF ELF object, read once into plain frozen dataclasses.

The only module that imports pyelftools. pyelftools parses lazily, so every
access it needs happens inside :func:`read_object` under one guard that turns
any failure of the library into :class:`ElfError`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from .errors import ElfError

EM_BPF = 247
SHF_EXECINSTR = 0x4
SHT_PROGBITS = 1
SHT_NOBITS = 8
STT_FUNC = 2
STB_LOCAL = 0
# A section this large in a BPF object is corruption, not code; refuse before reading it.
MAX_SECTION_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    size: int
    offset: int = 0  # in the file; lets `ecc build --verify` name the sections that differ

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    section_index: int
    value: int
    size: int
    type: int
    bind: int

    @property
    def undefined(self) -> bool:
        """An extern: declared here, defined elsewhere (the kernel, Kconfig, another object)."""
        return self.section_index == 0 and bool(self.name)


@dataclass(frozen=True, slots=True)
class BpfObject:
    little_endian: bool
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]
    btf: bytes | None
    btf_ext: bytes | None
    # Contents of the global-data sections (.data*, .rodata*, .bss* as zeros):
    # a loader's starting point for the initial values it writes.
    data_sections: dict[str, bytes] = field(default_factory=dict)

    def section(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None


def preload() -> None:
    """Import pyelftools now (e.g. while clang runs) so that read_object starts at once."""
    from elftools.elf import elffile  # noqa: F401


def read_object(data: bytes) -> BpfObject:
    """Parse a BPF ELF object; any malformation raises :class:`ElfError`."""
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file (bad magic)")
    try:
        return _read(data)
    except ElfError:
        raise
    except RecursionError as exc:  # pragma: no cover - defensive
        raise ElfError("malformed ELF: nesting too deep") from exc
    except Exception as exc:  # pyelftools raises many types on bad input
        raise ElfError(f"malformed ELF: {type(exc).__name__}: {exc}") from exc


def _read(data: bytes) -> BpfObject:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    if elf.elfclass != 64:
        raise ElfError(f"not a 64-bit ELF object (class {elf.elfclass}); BPF objects are 64-bit")
    machine = elf.header["e_machine"]
    if machine not in ("EM_BPF", EM_BPF):
        raise ElfError(f"not a BPF object (machine {machine}); compile with -target bpf")

    sections: list[Section] = []
    symbols: list[Symbol] = []
    btf: bytes | None = None
    btf_ext: bytes | None = None
    symtab = None
    data_sections: dict[str, bytes] = {}
    for index in range(elf.num_sections()):
        sec = elf.get_section(index)
        header = sec.header
        size = int(header["sh_size"])
        sh_type = _enum_int(header["sh_type"])
        if sh_type != SHT_NOBITS and (size > MAX_SECTION_BYTES or
                                      header["sh_offset"] + size > len(data)):
            raise ElfError(f"section {index} ('{sec.name}') lies outside the file")
        if size > MAX_SECTION_BYTES:
            raise ElfError(f"section {index} ('{sec.name}') claims {size} bytes; too large")
        sections.append(Section(index, sec.name, sh_type, int(header["sh_flags"]), size,
                                int(header["sh_offset"])))
        if sec.name.startswith((".data", ".rodata", ".bss")) and sh_type in (SHT_PROGBITS,
                                                                          SHT_NOBITS):
            data_sections[sec.name] = (bytes(size) if sh_type == SHT_NOBITS
                                       else bytes(sec.data()))
        if sec.name == ".BTF":
            btf = bytes(sec.data())
        elif sec.name == ".BTF.ext":
            btf_ext = bytes(sec.data())
        elif sh_type == 2:  # SHT_SYMTAB
            symtab = sec
    if symtab is not None:
        for sym in symtab.iter_symbols():  # type: ignore[attr-defined]
            info = sym["st_info"]
            shndx = sym["st_shndx"]
            symbols.append(Symbol(
                name=sym.name,
                section_index=shndx if isinstance(shndx, int) else _SHN.get(shndx, -1),
                value=int(sym["st_value"]),
                size=int(sym["st_size"]),
                type=_SYM_TYPES.get(info["type"], -1),
                bind=_SYM_BINDS.get(info["bind"], -1),
            ))
    return BpfObject(
        little_endian=elf.little_endian,
        sections=tuple(sections),
        symbols=tuple(symbols),
        btf=btf,
        btf_ext=btf_ext,
        data_sections=data_sections,
    )


_SYM_TYPES = {"STT_NOTYPE": 0, "STT_OBJECT": 1, "STT_FUNC": 2, "STT_SECTION": 3, "STT_FILE": 4}
# pyelftools names the special section indices; an undefined symbol's is 0, as in the file.
_SHN = {"SHN_UNDEF": 0}
_SYM_BINDS = {"STB_LOCAL": 0, "STB_GLOBAL": 1, "STB_WEAK": 2}
_SH_TYPES = {"SHT_NULL": 0, "SHT_PROGBITS": 1, "SHT_SYMTAB": 2, "SHT_STRTAB": 3, "SHT_RELA": 4,
             "SHT_NOBITS": 8, "SHT_REL": 9}


def _enum_int(value: object) -> int:
    if isinstance(value, int):
        return value
    return _SH_TYPES.get(str(value), -1)
