"""pyelftools, an ELF reader written independently of ecc's, as the oracle for ecc.elf.

ecc itself no longer imports pyelftools; the tests read every object with both and
compare the records field by field. pyelftools names the numbers it knows
(``'SHT_REL'``, ``'SHN_ABS'``, ``'STT_FUNC'``); they are turned back into the
numbers ecc.elf keeps, through pyelftools' own tables.
"""

from __future__ import annotations

import io

from elftools.elf import enums
from elftools.elf.elffile import ELFFile

from ecc.elf import BpfObject, Section, Symbol

_SH_TYPES = {name: value for name, value in enums.ENUM_SH_TYPE_BASE.items()
             if isinstance(value, int)}
_ST_TYPES = {name: value for name, value in enums.ENUM_ST_INFO_TYPE.items()
             if isinstance(value, int)}
_ST_BINDS = {name: value for name, value in enums.ENUM_ST_INFO_BIND.items()
             if isinstance(value, int)}
# ecc.elf: a symbol in no section it can name (absolute, common, extended index) is -1.
_NO_SECTION = {"SHN_ABS", "SHN_COMMON", 0xFFFF}


def _number(value: object, names: dict[str, int]) -> int:
    return value if isinstance(value, int) else names[str(value)]


def oracle_read(data: bytes) -> BpfObject:
    """What ecc.elf.read_object must return, read by pyelftools (which raises on what
    it cannot read)."""
    elf = ELFFile(io.BytesIO(data))
    assert elf.elfclass == 64 and elf.header["e_machine"] == "EM_BPF"
    sections: list[Section] = []
    btf = btf_ext = None
    symtab = None
    data_sections: dict[str, bytes] = {}
    for index in range(elf.num_sections()):
        sec = elf.get_section(index)
        sh_type = _number(sec.header["sh_type"], _SH_TYPES)
        size = int(sec.header["sh_size"])
        sections.append(Section(index, sec.name, sh_type, int(sec.header["sh_flags"]), size,
                                int(sec.header["sh_offset"])))
        if sec.name.startswith((".data", ".rodata", ".bss")) and sh_type in (1, 8):
            data_sections[sec.name] = bytes(size) if sh_type == 8 else bytes(sec.data())
        if sec.name == ".BTF":
            btf = bytes(sec.data())
        elif sec.name == ".BTF.ext":
            btf_ext = bytes(sec.data())
        elif sh_type == 2:
            symtab = sec
    symbols: list[Symbol] = []
    if symtab is not None:
        for sym in symtab.iter_symbols():  # type: ignore[attr-defined]
            shndx = sym["st_shndx"]
            kind = _number(sym["st_info"]["type"], _ST_TYPES)
            bind = _number(sym["st_info"]["bind"], _ST_BINDS)
            symbols.append(Symbol(
                sym.name, -1 if shndx in _NO_SECTION else _number(shndx, {"SHN_UNDEF": 0}),
                int(sym["st_value"]), int(sym["st_size"]), kind if kind <= 4 else -1,
                bind if bind <= 2 else -1))
    return BpfObject(elf.little_endian, tuple(sections), tuple(symbols), btf, btf_ext,
                     data_sections)


def differences(ours: BpfObject, theirs: BpfObject) -> list[str]:
    """Each field that differs, named; data_sections compared with their order."""
    found = []
    for field in ("little_endian", "btf", "btf_ext"):
        if getattr(ours, field) != getattr(theirs, field):
            found.append(field)
    if list(ours.data_sections.items()) != list(theirs.data_sections.items()):
        found.append("data_sections")
    if len(ours.sections) != len(theirs.sections):
        found.append(f"{len(ours.sections)} sections, pyelftools {len(theirs.sections)}")
    found += [f"section {a} != {b}"
              for a, b in zip(ours.sections, theirs.sections, strict=False) if a != b]
    if len(ours.symbols) != len(theirs.symbols):
        found.append(f"{len(ours.symbols)} symbols, pyelftools {len(theirs.symbols)}")
    found += [f"symbol {a} != {b}"
              for a, b in zip(ours.symbols, theirs.symbols, strict=False) if a != b]
    return found
