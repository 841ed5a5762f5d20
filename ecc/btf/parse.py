"""Bytes -> validated ``Btf``, checked the way libbpf's ``btf__new`` checks.

The pipeline copies libbpf (``btf_parse_hdr`` -> ``btf_parse_str_sec`` ->
``btf_parse_type_sec`` -> ``btf_sanity_check``), with the same strictness on
purpose: bpftool is our oracle, so we reject exactly what it rejects and
accept what it accepts. Some consequences that look lax but are libbpf's:

- a FUNC_PROTO's return type id is not range-checked (libbpf never did);
  looking it up later raises ``BtfError`` like any bad id;
- DATASEC entries may point at any kind (clang puts FUNCs in ``.ksyms``);
- header version/flags and the unused ``info`` bits are not checked;
- non-native byte order requires a 24-byte header (libbpf can only
  byte-swap that layout), native order takes any ``hdr_len``.

Indexing is one pass over record headers; types are decoded on demand by
id and cached, which keeps parsing vmlinux (~130k types) cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import NoReturn

from ecc.btf import raw
from ecc.btf.raw import ByteOrder, Header, Layouts
from ecc.btf.types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Member,
    Param,
    Ptr,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)
from ecc.errors import BtfError

#: Bound on every walk along a type chain (libbpf's MAX_RESOLVE_DEPTH).
MAX_RESOLVE_DEPTH = 32

_VOID = Void()

# Kinds whose btf_type.type field is one type reference libbpf validates.
_SINGLE_REF = frozenset(
    {
        Kind.PTR,
        Kind.TYPEDEF,
        Kind.VOLATILE,
        Kind.CONST,
        Kind.RESTRICT,
        Kind.VAR,
        Kind.DECL_TAG,
        Kind.TYPE_TAG,
        Kind.FUNC,
    }
)
# Followed when looking for a legacy bitfield's INT (pahole copied the whole
# typedef/qualifier chain and put the bit size on the INT at its end).
_LEGACY_BITFIELD_HOPS = frozenset(
    {Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}
)
_LONG_NAMES = frozenset(
    {
        "long",
        "long int",
        "int long",
        "unsigned long",
        "long unsigned",
        "unsigned long int",
        "unsigned int long",
        "long unsigned int",
        "long int unsigned",
        "int unsigned long",
        "int long unsigned",
    }
)


def kind_name(kind: int) -> str:
    try:
        return Kind(kind).name
    except ValueError:
        return f"kind {kind}"


class Btf:
    """A parsed, validated BTF blob. Build it with ``parse_btf``.

    Valid ids are ``range(len(btf))``; id 0 is void. Types are decoded when
    first asked for and cached. Not meant to be mutated.
    """

    __slots__ = (
        "_buf",
        "_lay",
        "_offsets",
        "_kinds",
        "_str_start",
        "_str_len",
        "_types",
        "_strings",
        "_names",
        "_ptr_size",
    )

    def __init__(
        self,
        buf: bytes,
        lay: Layouts,
        offsets: list[int],
        kinds: bytearray,
        str_start: int,
        str_len: int,
    ) -> None:
        self._buf = buf
        self._lay = lay
        self._offsets = offsets
        self._kinds = kinds
        self._str_start = str_start
        self._str_len = str_len
        self._types: list[Type | None] = [None] * len(offsets)
        self._types[0] = _VOID
        self._strings: dict[int, str] = {0: ""}
        self._names: dict[str, list[int]] | None = None
        self._ptr_size: int | None = None

    # --- container protocol ------------------------------------------------

    @property
    def byte_order(self) -> ByteOrder:
        return self._lay.order

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, type_id: int) -> Type:
        if not isinstance(type_id, int) or not 0 <= type_id < len(self._offsets):
            raise BtfError(f"type id {type_id!r} out of range (BTF has {len(self)} types)")
        t = self._types[type_id]
        if t is None:
            t = self._decode(type_id)
            self._types[type_id] = t
        return t

    def __iter__(self) -> Iterator[Type]:
        for type_id in range(len(self._offsets)):
            yield self[type_id]

    def __repr__(self) -> str:
        return f"<Btf {self.byte_order}-endian, {len(self)} types>"

    # --- cheap queries that need no decoding ---------------------------------

    def kind_of(self, type_id: int) -> Kind:
        """Kind of ``type_id`` without decoding it (VOID's is UNKN)."""
        if not isinstance(type_id, int) or not 0 <= type_id < len(self._offsets):
            raise BtfError(f"type id {type_id!r} out of range (BTF has {len(self)} types)")
        return Kind(self._kinds[type_id])

    def string_at(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` in the string section."""
        s = self._strings.get(offset)
        if s is not None:
            return s
        if not isinstance(offset, int) or not 0 <= offset < self._str_len:
            raise BtfError(
                f"string offset {offset!r} outside the string section ({self._str_len} bytes)"
            )
        start = self._str_start + offset
        # The section is known to end in NUL, so find() cannot miss.
        end = self._buf.index(0, start, self._str_start + self._str_len)
        s = self._buf[start:end].decode("utf-8", "backslashreplace")
        self._strings[offset] = s
        return s

    def ids_by_name(self, name: str, kind: Kind | None = None) -> list[int]:
        """Ids of every type called ``name`` (of ``kind``, if given), ascending."""
        if self._names is None:
            self._names = self._build_name_index()
        ids = self._names.get(name, [])
        if kind is None:
            return list(ids)
        return [i for i in ids if self._kinds[i] == kind]

    def by_name(self, name: str, kind: Kind | None = None) -> Type | None:
        """The lowest-id type called ``name`` (of ``kind``), or None."""
        ids = self.ids_by_name(name, kind)
        return self[ids[0]] if ids else None

    @property
    def pointer_size(self) -> int:
        """Pointer size this BTF implies, found like libbpf's
        ``determine_ptr_size``: the size of an INT named some spelling of
        ``long``; 8 when there is none (BPF is a 64-bit target)."""
        if self._ptr_size is None:
            self._ptr_size = self._guess_ptr_size()
        return self._ptr_size

    def describe(self, type_id: int) -> str:
        """``BTF type 12 (STRUCT foo)``: how errors name a type."""
        if not 0 <= type_id < len(self._offsets):
            return f"BTF type {type_id}"
        if type_id == 0:
            return "BTF type 0 (void)"
        kind = kind_name(self._kinds[type_id])
        name_off = self._raw_type(type_id)[0]
        name = self.string_at(name_off) if name_off < self._str_len else ""
        return f"BTF type {type_id} ({kind} {name})" if name else f"BTF type {type_id} ({kind})"

    # --- internals ----------------------------------------------------------

    def _raw_type(self, type_id: int) -> tuple[int, ...]:
        return raw.unpack(self._lay.type, self._buf, self._offsets[type_id], f"BTF type {type_id}")

    def _build_name_index(self) -> dict[str, list[int]]:
        names: dict[str, list[int]] = {}
        unpack_u32 = self._lay.u32.unpack_from  # offsets were bounds-checked by _index
        buf = self._buf
        offsets = self._offsets
        for type_id in range(1, len(offsets)):
            name_off = unpack_u32(buf, offsets[type_id])[0]
            if name_off:
                names.setdefault(self.string_at(name_off), []).append(type_id)
        return names

    def _guess_ptr_size(self) -> int:
        for type_id in range(1, len(self._offsets)):
            if self._kinds[type_id] != Kind.INT:
                continue
            name_off, _, size = self._raw_type(type_id)
            if size in (4, 8) and self.string_at(name_off) in _LONG_NAMES:
                return size
        return 8

    def _legacy_bitfield(self, type_id: int) -> tuple[int, int]:
        """(bit size, extra bit offset) a kind_flag-less member gets from
        the INT at the end of its type chain; (0, 0) when not a bitfield."""
        kinds = self._kinds
        for _ in range(MAX_RESOLVE_DEPTH):
            if not 0 < type_id < len(kinds):
                return 0, 0
            kind = kinds[type_id]
            if kind == Kind.INT:
                _, _, size = self._raw_type(type_id)
                (data,) = raw.unpack(
                    self._lay.u32, self._buf, self._offsets[type_id] + raw.TYPE_SIZE, "INT data"
                )
                bits, offset = raw.int_bits(data), raw.int_offset(data)
                if offset or bits != size * 8:
                    return bits, offset
                return 0, 0
            if kind not in _LEGACY_BITFIELD_HOPS:
                return 0, 0
            type_id = self._raw_type(type_id)[2]
        # A loop here is reported by whoever walks the chain for real; as a
        # bitfield hint it just means "not a bitfield".
        return 0, 0

    def _decode(self, type_id: int) -> Type:
        lay = self._lay
        buf = self._buf
        off = self._offsets[type_id]
        # Cheap label: bounds were checked at parse time, so it is never shown.
        where = f"BTF type {type_id}"
        name_off, info, size_or_type = raw.unpack(lay.type, buf, off, where)
        name = self.string_at(name_off)
        kind = self._kinds[type_id]
        vlen = raw.info_vlen(info)
        kflag = raw.info_kflag(info)
        body = off + raw.TYPE_SIZE

        if kind == Kind.INT:
            (data,) = raw.unpack(lay.u32, buf, body, where)
            enc = raw.int_encoding(data)
            return Int(
                type_id,
                name,
                size_or_type,
                bool(enc & raw.INT_SIGNED),
                bool(enc & raw.INT_CHAR),
                bool(enc & raw.INT_BOOL),
                raw.int_bits(data),
                raw.int_offset(data),
            )
        if kind == Kind.PTR:
            return Ptr(type_id, name, size_or_type)
        if kind == Kind.ARRAY:
            elem, index, nelems = raw.unpack(lay.array, buf, body, where)
            return Array(type_id, name, elem, index, nelems)
        if kind in (Kind.STRUCT, Kind.UNION):
            members = []
            for m_name, m_type, m_off in raw.unpack_many(lay.member, buf, body, vlen, where):
                if kflag:
                    bit_offset = raw.member_bit_offset(m_off)
                    bitfield_size = raw.member_bitfield_size(m_off)
                else:
                    bitfield_size, extra = self._legacy_bitfield(m_type)
                    bit_offset = m_off + extra
                members.append(Member(self.string_at(m_name), m_type, bit_offset, bitfield_size))
            cls = Struct if kind == Kind.STRUCT else Union
            return cls(type_id, name, size_or_type, tuple(members))
        if kind == Kind.ENUM:
            values = []
            for v_name, val in raw.unpack_many(lay.enum, buf, body, vlen, where):
                if kflag and val & 0x80000000:
                    val -= 1 << 32
                values.append(EnumValue(self.string_at(v_name), val))
            return Enum(type_id, name, size_or_type, kflag, tuple(values))
        if kind == Kind.ENUM64:
            values = []
            for v_name, lo, hi in raw.unpack_many(lay.enum64, buf, body, vlen, where):
                val = hi << 32 | lo
                if kflag and val & (1 << 63):
                    val -= 1 << 64
                values.append(EnumValue(self.string_at(v_name), val))
            return Enum64(type_id, name, size_or_type, kflag, tuple(values))
        if kind == Kind.FWD:
            return Fwd(type_id, name, kflag)
        if kind == Kind.TYPEDEF:
            return Typedef(type_id, name, size_or_type)
        if kind == Kind.VOLATILE:
            return Volatile(type_id, name, size_or_type)
        if kind == Kind.CONST:
            return Const(type_id, name, size_or_type)
        if kind == Kind.RESTRICT:
            return Restrict(type_id, name, size_or_type)
        if kind == Kind.FUNC:
            return Func(type_id, name, size_or_type, vlen)
        if kind == Kind.FUNC_PROTO:
            params = [
                Param(self.string_at(p_name), p_type)
                for p_name, p_type in raw.unpack_many(lay.param, buf, body, vlen, where)
            ]
            # libbpf's rule (btf_dump): only a *last* param of type void means "...".
            variadic = bool(params) and params[-1].type == 0
            if variadic:
                params.pop()
            return FuncProto(type_id, name, size_or_type, tuple(params), variadic)
        if kind == Kind.VAR:
            (linkage,) = raw.unpack(lay.u32, buf, body, where)
            return Var(type_id, name, size_or_type, linkage)
        if kind == Kind.DATASEC:
            secinfos = tuple(
                VarSecinfo(v_type, v_off, v_size)
                for v_type, v_off, v_size in raw.unpack_many(
                    lay.var_secinfo, buf, body, vlen, where
                )
            )
            return Datasec(type_id, name, size_or_type, secinfos)
        if kind == Kind.FLOAT:
            return Float(type_id, name, size_or_type)
        if kind == Kind.DECL_TAG:
            (component_idx,) = raw.unpack(lay.i32, buf, body, where)
            return DeclTag(type_id, name, size_or_type, component_idx, kflag)
        if kind == Kind.TYPE_TAG:
            return TypeTag(type_id, name, size_or_type, kflag)
        # _index only lets known kinds through.
        raise BtfError(f"{where}: unknown kind {kind}")  # pragma: no cover


# --- parsing ---------------------------------------------------------------------


def parse_btf(data: bytes | bytearray | memoryview) -> Btf:
    """Parse and validate a ``.BTF`` section (or a raw BTF file) in either byte order."""
    buf = bytes(data)
    lay, hdr = parse_header(buf)
    str_start = hdr.hdr_len + hdr.str_off
    check_strings(buf, str_start, hdr.str_len)
    type_start = hdr.hdr_len + hdr.type_off
    offsets, kinds = _index_types(buf, lay, type_start, type_start + hdr.type_len)
    btf = Btf(buf, lay, offsets, kinds, str_start, hdr.str_len)
    _sanity_check(btf, buf, lay, hdr.str_len)
    return btf


def parse_header(buf: bytes) -> tuple[Layouts, Header]:
    # libbpf btf_parse_hdr, check for check.
    if len(buf) < raw.HEADER_SIZE:
        raise BtfError(
            f"BTF header not found: data is {len(buf)} bytes, the header alone is {raw.HEADER_SIZE}"
        )
    order: ByteOrder
    if buf[0] | buf[1] << 8 == raw.BTF_MAGIC:
        order = "little"
    elif buf[0] << 8 | buf[1] == raw.BTF_MAGIC:
        order = "big"
    else:
        raise BtfError(
            f"bad BTF magic 0x{buf[0]:02x}{buf[1]:02x} at offset 0 (want 0xeb9f, either byte order)"
        )
    lay = raw.layouts_for(order)
    hdr = raw.Header(*raw.unpack(lay.header, buf, 0, "BTF header"))
    if order != sys.byteorder and hdr.hdr_len != raw.HEADER_SIZE:
        raise BtfError(
            f"BTF header length {hdr.hdr_len} not supported for {order}-endian BTF on a "
            f"{sys.byteorder}-endian host (libbpf byte-swaps only a "
            f"{raw.HEADER_SIZE}-byte header)"
        )
    if hdr.hdr_len > len(buf):
        raise BtfError(f"BTF header length {hdr.hdr_len} exceeds the data size {len(buf)}")
    after_header = len(buf) - hdr.hdr_len
    if hdr.str_off + hdr.str_len > after_header:
        raise BtfError(
            f"BTF string section (offset {hdr.str_off}, length {hdr.str_len}) ends past the "
            f"data: only {after_header} bytes follow the {hdr.hdr_len}-byte header"
        )
    if hdr.type_off + hdr.type_len > hdr.str_off:
        raise BtfError(
            f"BTF type section (offset {hdr.type_off}, length {hdr.type_len}) runs into the "
            f"string section at offset {hdr.str_off}; types must come before strings"
        )
    if hdr.type_off % 4:
        raise BtfError(f"BTF type section offset {hdr.type_off} is not 4-byte aligned")
    return lay, hdr


def check_strings(buf: bytes, start: int, length: int) -> None:
    # libbpf btf_parse_str_sec.
    if length == 0:
        raise BtfError("BTF string section is empty (it must hold at least the empty string)")
    if length - 1 > raw.MAX_STR_OFFSET:
        raise BtfError(f"BTF string section of {length} bytes is too large")
    if buf[start + length - 1] != 0:
        raise BtfError(
            f"BTF string section does not end with NUL (byte at offset {start + length - 1})"
        )
    if buf[start] != 0:
        raise BtfError(
            f"BTF string section must start with the empty string (offset {start}); "
            "split BTF needs its base BTF, which ecc does not support"
        )


def _index_types(buf: bytes, lay: Layouts, start: int, end: int) -> tuple[list[int], bytearray]:
    # libbpf btf_parse_type_sec: every record's size from kind + vlen, each
    # must fit, and the section must end exactly on a record boundary.
    offsets = [0]
    kinds = bytearray(1)
    fixed = raw.FIXED
    per_vlen = raw.PER_VLEN
    # Bounds are checked by the loop condition, so the raw unpack_from is
    # safe here; this loop runs once per type, ~130k times for vmlinux.
    unpack_u32 = lay.u32.unpack_from
    pos = start
    while pos + raw.TYPE_SIZE <= end:
        info = unpack_u32(buf, pos + 4)[0]
        kind = (info >> 24) & 0x1F
        extra = fixed[kind]
        if extra < 0:
            raise BtfError(
                f"BTF type {len(offsets)}: unsupported kind {kind} in record at offset {pos}"
            )
        size = raw.TYPE_SIZE + extra + (info & 0xFFFF) * per_vlen[kind]
        if pos + size > end:
            raise BtfError(
                f"BTF type {len(offsets)} ({kind_name(kind)}): {size}-byte record at offset "
                f"{pos} runs past the end of the type section at offset {end}"
            )
        offsets.append(pos)
        kinds.append(kind)
        pos += size
    if pos != end:
        raise BtfError(
            f"BTF type section has {end - pos} trailing bytes at offset {pos}, "
            "too few for a type record"
        )
    return offsets, kinds


def _sanity_check(btf: Btf, buf: bytes, lay: Layouts, str_len: int) -> None:
    # libbpf btf_sanity_check/btf_validate_type: names inside the string
    # section, referenced ids below the type count, FUNC -> FUNC_PROTO.
    # Ids may point forward, hence a pass of its own after indexing.
    offsets = btf._offsets
    kinds = btf._kinds
    count = len(offsets)
    unpack_type = lay.type.unpack_from  # records were bounds-checked by _index_types
    unpack_u32 = lay.u32.unpack_from
    for type_id in range(1, count):
        off = offsets[type_id]
        kind = kinds[type_id]
        name_off, info, ref = unpack_type(buf, off)
        if name_off >= str_len:
            raise BtfError(
                f"BTF type {type_id} ({kind_name(kind)}): name offset {name_off} outside the "
                f"string section ({str_len} bytes)"
            )
        body = off + raw.TYPE_SIZE
        vlen = info & 0xFFFF
        if kind in _SINGLE_REF:
            if ref >= count:
                _bad_ref(btf, type_id, "", ref)
            if kind == Kind.FUNC and kinds[ref] != Kind.FUNC_PROTO:
                raise BtfError(
                    f"{btf.describe(type_id)}: type id {ref} is "
                    f"{kind_name(kinds[ref]) if ref else 'void'}, not FUNC_PROTO"
                )
        elif kind == Kind.ARRAY:
            elem, index, _ = lay.array.unpack_from(buf, body)
            if elem >= count:
                _bad_ref(btf, type_id, "element ", elem)
            if index >= count:
                _bad_ref(btf, type_id, "index ", index)
        elif not vlen:
            continue
        elif kind in (Kind.STRUCT, Kind.UNION):
            for i, (m_name, m_type, _) in enumerate(
                raw.unpack_many(lay.member, buf, body, vlen, f"BTF type {type_id}")
            ):
                if m_name >= str_len:
                    _bad_name(btf, type_id, f"member {i}", m_name, str_len)
                if m_type >= count:
                    _bad_ref(btf, type_id, f"member {i}: ", m_type)
        elif kind == Kind.FUNC_PROTO:
            for i, (p_name, p_type) in enumerate(
                raw.unpack_many(lay.param, buf, body, vlen, f"BTF type {type_id}")
            ):
                if p_name >= str_len:
                    _bad_name(btf, type_id, f"param {i}", p_name, str_len)
                if p_type >= count:
                    _bad_ref(btf, type_id, f"param {i}: ", p_type)
        elif kind in (Kind.ENUM, Kind.ENUM64):
            step = raw.PER_VLEN[kind]
            for i in range(vlen):
                v_name = unpack_u32(buf, body + i * step)[0]
                if v_name >= str_len:
                    _bad_name(btf, type_id, f"value {i}", v_name, str_len)
        elif kind == Kind.DATASEC:
            for i, (v_type, _, _) in enumerate(
                raw.unpack_many(lay.var_secinfo, buf, body, vlen, f"BTF type {type_id}")
            ):
                if v_type >= count:
                    _bad_ref(btf, type_id, f"var {i}: ", v_type)


def _bad_ref(btf: Btf, type_id: int, what: str, ref: int) -> NoReturn:
    raise BtfError(
        f"{btf.describe(type_id)}: {what}type id {ref} out of range (BTF has {len(btf)} types)"
    )


def _bad_name(btf: Btf, type_id: int, what: str, name_off: int, str_len: int) -> NoReturn:
    raise BtfError(
        f"{btf.describe(type_id)}: {what}: name offset {name_off} outside the string "
        f"section ({str_len} bytes)"
    )
