"""BTF wire format: record layouts and bit fields, nothing else.

Mirrors ``include/uapi/linux/btf.h``. Layouts are compiled once per byte
order; callers pick a ``Layouts`` with ``layouts_for(order)`` and read only
through ``unpack`` / ``unpack_many``, so a short buffer can surface only as
``BtfError``, never as ``struct.error``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Literal, NamedTuple

from ecc.errors import BtfError

ByteOrder = Literal["little", "big"]

BTF_MAGIC = 0xEB9F
HEADER_SIZE = 24  # sizeof(struct btf_header)
TYPE_SIZE = 12  # sizeof(struct btf_type)
#: libbpf's limit on a string offset (and so on the string section's size).
MAX_STR_OFFSET = 0x7FFFFFFF

# Kind numbers, duplicated from types.Kind so this layer stays free of the
# semantic one; parse.py converts.
KIND_INT = 1
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_DECL_TAG = 17
KIND_ENUM64 = 19
MAX_KIND = 19


# Named tuples, not dataclasses: these two are made at every BTF reader's import,
# and a tuple class is built for a fraction of a frozen dataclass's cost.
class Header(NamedTuple):
    """``struct btf_header``, already in host integers."""

    magic: int
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int


class Layouts(NamedTuple):
    """Every BTF record layout for one byte order."""

    order: ByteOrder
    header: struct.Struct  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
    type: struct.Struct  # name_off, info, size_or_type
    u32: struct.Struct  # INT data, btf_var.linkage
    i32: struct.Struct  # btf_decl_tag.component_idx
    array: struct.Struct  # type, index_type, nelems
    member: struct.Struct  # name_off, type, offset
    enum: struct.Struct  # name_off, val (signedness decided by kind_flag)
    enum64: struct.Struct  # name_off, val_lo32, val_hi32
    param: struct.Struct  # name_off, type
    var_secinfo: struct.Struct  # type, offset, size

    @classmethod
    def compile(cls, order: ByteOrder) -> Layouts:
        p = "<" if order == "little" else ">"
        return cls(
            order=order,
            header=struct.Struct(p + "HBBIIIII"),
            type=struct.Struct(p + "III"),
            u32=struct.Struct(p + "I"),
            i32=struct.Struct(p + "i"),
            array=struct.Struct(p + "III"),
            member=struct.Struct(p + "III"),
            enum=struct.Struct(p + "II"),
            enum64=struct.Struct(p + "III"),
            param=struct.Struct(p + "II"),
            var_secinfo=struct.Struct(p + "III"),
        )


LITTLE = Layouts.compile("little")
BIG = Layouts.compile("big")


def layouts_for(order: ByteOrder) -> Layouts:
    return LITTLE if order == "little" else BIG


def unpack(layout: struct.Struct, buf: bytes, offset: int, what: str) -> tuple[int, ...]:
    """Read one record; ``what`` names it in the error."""
    # A negative offset would silently read from the end of the buffer.
    if offset < 0 or offset + layout.size > len(buf):
        raise BtfError(f"{what}: {layout.size}-byte record truncated at offset {offset}")
    try:
        return layout.unpack_from(buf, offset)
    except struct.error as exc:  # pragma: no cover - bounds are checked above
        raise BtfError(f"{what}: {exc} at offset {offset}") from None


def unpack_many(
    layout: struct.Struct, buf: bytes, offset: int, count: int, what: str
) -> Iterator[tuple[int, ...]]:
    """Read ``count`` consecutive records starting at ``offset``."""
    end = offset + count * layout.size
    if offset < 0 or count < 0 or end > len(buf):
        raise BtfError(f"{what}: {count} x {layout.size}-byte records truncated at offset {offset}")
    try:
        return layout.iter_unpack(memoryview(buf)[offset:end])
    except struct.error as exc:  # pragma: no cover - bounds are checked above
        raise BtfError(f"{what}: {exc} at offset {offset}") from None


# --- btf_type.info ----------------------------------------------------------
# bits 0-15 vlen, 24-28 kind, 31 kind_flag. libbpf masks kind with 0x1f and
# ignores bits 16-23 and 29-30 (the kernel rejects them set; libbpf, our
# oracle, does not).


def info_kind(info: int) -> int:
    return (info >> 24) & 0x1F


def info_vlen(info: int) -> int:
    return info & 0xFFFF


def info_kflag(info: int) -> bool:
    return bool(info >> 31)


# --- per-kind record size (libbpf btf_type_size) ----------------------------
# (bytes after struct btf_type, bytes per vlen entry); None = unknown kind.
# Kind 0 (UNKN) is not a valid record either: libbpf rejects it here.
_EXTRA: list[tuple[int, int] | None] = [None] * 32
# PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG: btf_type only.
for _k in (2, 7, 8, 9, 10, 11, 12, 16, 18):
    _EXTRA[_k] = (0, 0)
_EXTRA[KIND_INT] = (4, 0)
_EXTRA[KIND_ARRAY] = (12, 0)
_EXTRA[KIND_STRUCT] = (0, 12)
_EXTRA[KIND_UNION] = (0, 12)
_EXTRA[KIND_ENUM] = (0, 8)
_EXTRA[KIND_FUNC_PROTO] = (0, 8)
_EXTRA[KIND_VAR] = (4, 0)
_EXTRA[KIND_DATASEC] = (0, 12)
_EXTRA[KIND_DECL_TAG] = (4, 0)
_EXTRA[KIND_ENUM64] = (0, 12)

#: Indexed by kind: bytes a record of that kind has after ``struct btf_type``
#: per vlen entry (``PER_VLEN``) and fixed (``FIXED``); ``FIXED[k] < 0`` marks
#: a kind libbpf does not know.
FIXED: tuple[int, ...] = tuple(-1 if e is None else e[0] for e in _EXTRA)
PER_VLEN: tuple[int, ...] = tuple(0 if e is None else e[1] for e in _EXTRA)


def record_size(kind: int, vlen: int) -> int | None:
    """Size of a whole record, or None for a kind libbpf would reject."""
    fixed = FIXED[kind & 0x1F]
    if fixed < 0:
        return None
    return TYPE_SIZE + fixed + vlen * PER_VLEN[kind & 0x1F]


# --- INT data ------------------------------------------------------------------
INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4


def int_encoding(data: int) -> int:
    return (data >> 24) & 0x0F


def int_offset(data: int) -> int:
    return (data >> 16) & 0xFF


def int_bits(data: int) -> int:
    return data & 0xFF


# --- struct member offset when the struct's kind_flag is set -------------------
def member_bit_offset(offset: int) -> int:
    return offset & 0xFFFFFF


def member_bitfield_size(offset: int) -> int:
    return offset >> 24
