"""The CO-RE relocation records of a BPF object (``.BTF.ext``), tied to their programs.

Layout from ``tools/lib/bpf/libbpf_internal.h`` (``struct btf_ext_header``,
``struct bpf_core_relo``) and Documentation/bpf/btf.rst ("BTF.ext section"):
a header, then per kind of info a record size followed by one block per ELF
section: ``sec_name_off``, ``num_info``, records. Names are offsets into the
object's ``.BTF`` strings.

The object is untrusted: every count and offset is bounded before use and any
inconsistency is a :class:`~ecc.errors.BtfError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ..btf import Btf
from ..elf import STT_FUNC, BpfObject
from ..errors import BtfError

BTF_EXT_MAGIC = 0xEB9F
# A header without the core_relo fields is 24 bytes (libbpf accepts it: no CO-RE).
_MIN_HEADER = 24
_CORE_HEADER = 32
_RELO_SIZE = 16
INSN_SIZE = 8


class ReloKind(IntEnum):
    """``enum bpf_core_relo_kind`` (include/uapi/linux/bpf.h)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12

    @property
    def field_based(self) -> bool:
        return self <= ReloKind.FIELD_RSHIFT_U64

    @property
    def type_based(self) -> bool:
        return self in (ReloKind.TYPE_ID_LOCAL, ReloKind.TYPE_ID_TARGET, ReloKind.TYPE_EXISTS,
                        ReloKind.TYPE_SIZE, ReloKind.TYPE_MATCHES)

    @property
    def enumval_based(self) -> bool:
        return self in (ReloKind.ENUMVAL_EXISTS, ReloKind.ENUMVAL_VALUE)

    @property
    def is_guard(self) -> bool:
        """A relocation whose failure is an answer (0), not a poisoned instruction:
        what ``bpf_core_field_exists`` and friends compile to."""
        return self in (ReloKind.FIELD_EXISTS, ReloKind.TYPE_EXISTS, ReloKind.ENUMVAL_EXISTS,
                        ReloKind.TYPE_MATCHES)


@dataclass(frozen=True, slots=True)
class CoreRelo:
    """One ``struct bpf_core_relo``, with the section it sits in and the program it patches."""

    index: int          # position among all records, the order libbpf resolves them in
    section: str
    program: str        # the function whose instructions hold insn_off
    insn_off: int       # bytes from the start of the section
    type_id: int        # the local root type, in the object's BTF
    access: str         # "0:1:2", or "0" for type-based relocations
    kind: int           # a ReloKind value, or an unknown number
    insn: bytes         # the instruction(s) patched (16 bytes for ldimm64, else 8)


def read_core_relos(obj: BpfObject, data: bytes, btf: Btf) -> tuple[CoreRelo, ...]:
    """Every CO-RE relocation of the object, in file order; () when it has none."""
    ext = obj.btf_ext
    if not ext:
        return ()
    order = "<" if obj.little_endian else ">"
    if len(ext) < _MIN_HEADER:
        raise BtfError(f".BTF.ext: {len(ext)} bytes, shorter than its header")
    magic, _version, _flags, hdr_len = struct.unpack_from(order + "HBBI", ext, 0)
    if magic != BTF_EXT_MAGIC:
        raise BtfError(f".BTF.ext: bad magic 0x{magic:04x}")
    if hdr_len < _CORE_HEADER or hdr_len > len(ext):
        return ()  # an old header carries no core_relo section
    core_off, core_len = struct.unpack_from(order + "II", ext, 24)
    if not core_len:
        return ()
    start = hdr_len + core_off
    end = start + core_len
    if end > len(ext) or core_len < 4:
        raise BtfError(f".BTF.ext: core_relo section ({core_off}+{core_len}) runs past the end")
    (rec_size,) = struct.unpack_from(order + "I", ext, start)
    if rec_size < _RELO_SIZE or rec_size % 4:
        raise BtfError(f".BTF.ext: core_relo record size {rec_size} (want at least 16)")
    programs = _programs(obj)
    code = {sec.name: data[sec.offset:sec.offset + sec.size]
            for sec in obj.sections if sec.executable}
    out: list[CoreRelo] = []
    pos = start + 4
    while pos < end:
        if pos + 8 > end:
            raise BtfError(f".BTF.ext: truncated core_relo block at offset {pos}")
        name_off, count = struct.unpack_from(order + "II", ext, pos)
        pos += 8
        if count == 0 or pos + count * rec_size > end:
            raise BtfError(f".BTF.ext: core_relo block at offset {pos - 8} claims {count} "
                           f"records, more than the section holds")
        section = _string(btf, name_off, f"core_relo block at offset {pos - 8}: section name")
        insns = code.get(section)
        if insns is None:
            raise BtfError(f".BTF.ext: core_relo records for '{section}', which is no code "
                           f"section of the object")
        for _ in range(count):
            insn_off, type_id, access_off, kind = struct.unpack_from(order + "IIII", ext, pos)
            pos += rec_size
            if insn_off % INSN_SIZE or insn_off + INSN_SIZE > len(insns):
                raise BtfError(f".BTF.ext: relocation at byte {insn_off} of '{section}' is "
                               f"outside its {len(insns)} bytes of code")
            out.append(CoreRelo(
                index=len(out), section=section,
                program=_program_at(programs.get(section, ()), insn_off, section),
                insn_off=insn_off, type_id=type_id,
                access=_string(btf, access_off, f"relocation at byte {insn_off} of '{section}': "
                               "access string"),
                kind=kind, insn=insns[insn_off:insn_off + 2 * INSN_SIZE]))
    return tuple(out)


def _string(btf: Btf, offset: int, what: str) -> str:
    try:
        return btf.string_at(offset)
    except BtfError as exc:
        raise BtfError(f".BTF.ext: {what}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ProgramCode:
    """One function of a code section: a program, or a subprogram of ``.text``."""

    name: str
    section: str
    start: int          # byte offset in the section
    code: bytes


def read_programs(obj: BpfObject, data: bytes) -> dict[str, ProgramCode]:
    """Every function of the object's code sections, by name."""
    out: dict[str, ProgramCode] = {}
    for sec in obj.sections:
        if not sec.executable:
            continue
        body = data[sec.offset:sec.offset + sec.size]
        for begin, end, name in _programs(obj).get(sec.name, ()):
            out[name] = ProgramCode(name, sec.name, begin, body[begin:end])
    return out


def _programs(obj: BpfObject) -> dict[str, tuple[tuple[int, int, str], ...]]:
    """Section name -> (start, end, name) of each function in it, by start."""
    index = {sec.index: sec.name for sec in obj.sections}
    found: dict[str, list[tuple[int, int, str]]] = {}
    for sym in obj.symbols:
        if sym.type == STT_FUNC and sym.section_index in index and sym.name:
            found.setdefault(index[sym.section_index], []).append(
                (sym.value, sym.value + sym.size, sym.name))
    return {name: tuple(sorted(funcs)) for name, funcs in found.items()}


def _program_at(funcs: tuple[tuple[int, int, str], ...], insn_off: int, section: str) -> str:
    for begin, end, name in funcs:
        if begin <= insn_off < end:
            return name
    return section  # no symbol covers it: name the section, as libbpf's messages would
