"""The BPF objects inside a WebAssembly app (``ecc build --wasm``), for ``ecc check``.

An app's skeleton header holds its object as a C array (ecc/compiler/wasm/skeleton.py),
which the wasm32 compiler puts, byte for byte, in a data segment of the module. So
the module's data section is read (WebAssembly core spec, "Binary Format": a
section is an id byte and a LEB128 size; section 11 is a vector of segments, each
``flags`` 0, 1 or 2, a memory index for 2, an offset expression for 0 and 2, then
a byte vector), and each segment is searched for ELF headers of machine EM_BPF;
an object's length is where its section header table ends, which is where
clang's objects end.

The module is untrusted: every length is bounded by the bytes there are, and a
malformed module is a :class:`~ecc.errors.WasmError`.
"""

from __future__ import annotations

import struct

from ..errors import WasmError

WASM_MAGIC = b"\0asm"
_DATA_SECTION = 11
_ELF_MAGIC = b"\x7fELF"
_EM_BPF = 247
_ELF64_HEADER = 64


def embedded_objects(module: bytes) -> tuple[bytes, ...]:
    """Every BPF object (ELF64, either byte order) in the data segments of ``module``."""
    if module[:4] != WASM_MAGIC or len(module) < 8:
        raise WasmError("not a WebAssembly module (no \\0asm header)")
    found: list[bytes] = []
    for segment in _data_segments(module):
        at = segment.find(_ELF_MAGIC)
        while at >= 0:
            size = _bpf_object_size(segment, at)
            if size:
                found.append(segment[at:at + size])
                at = segment.find(_ELF_MAGIC, at + size)
            else:
                at = segment.find(_ELF_MAGIC, at + 1)
    return tuple(found)


def _bpf_object_size(data: bytes, at: int) -> int:
    """The length of the ELF64 BPF object starting at ``at``, or 0 when it is none."""
    if at + _ELF64_HEADER > len(data) or data[at + 4] != 2 or data[at + 5] not in (1, 2):
        return 0
    order = "<" if data[at + 5] == 1 else ">"
    (machine,) = struct.unpack_from(order + "H", data, at + 18)
    (shoff,) = struct.unpack_from(order + "Q", data, at + 40)
    shentsize, shnum = struct.unpack_from(order + "HH", data, at + 58)
    end = shoff + shentsize * shnum
    if machine != _EM_BPF or shnum == 0 or end > len(data) - at:
        return 0
    return int(end)


def _data_segments(module: bytes) -> list[bytes]:
    pos = 8
    while pos < len(module):
        section_id = module[pos]
        size, pos = _leb(module, pos + 1)
        end = pos + size
        if end > len(module):
            raise WasmError(f"section {section_id} at byte {pos} runs past the module's end")
        if section_id == _DATA_SECTION:
            return _segments(module, pos, end)
        pos = end
    return []


def _segments(module: bytes, pos: int, end: int) -> list[bytes]:
    count, pos = _leb(module, pos, end)
    out = []
    for index in range(count):
        flags, pos = _leb(module, pos, end)
        if flags not in (0, 1, 2):
            raise WasmError(f"data segment {index}: unknown flags {flags}")
        if flags == 2:
            _, pos = _leb(module, pos, end)  # memory index
        if flags != 1:
            pos = _skip_expr(module, pos, end, index)
        size, pos = _leb(module, pos, end)
        if pos + size > end:
            raise WasmError(f"data segment {index} runs past the data section")
        out.append(module[pos:pos + size])
        pos += size
    return out


def _skip_expr(module: bytes, pos: int, end: int, index: int) -> int:
    """Past a constant offset expression: i32/i64.const or global.get, then ``end``."""
    while pos < end:
        opcode = module[pos]
        if opcode == 0x0B:
            return pos + 1
        if opcode not in (0x41, 0x42, 0x23):
            raise WasmError(f"data segment {index}: offset expression has opcode "
                            f"0x{opcode:02x}")
        _, pos = _leb(module, pos + 1, end)
    raise WasmError(f"data segment {index}: offset expression runs past the data section")


def _leb(data: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """An unsigned LEB128 (at most 10 bytes: up to 64 bits, signed constants included)."""
    stop = len(data) if end is None else end
    value = shift = 0
    for i in range(10):
        if pos + i >= stop:
            break
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos + i + 1
    raise WasmError(f"bad LEB128 number at byte {pos}")
