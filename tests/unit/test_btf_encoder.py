"""A tiny BTF encoder for hand-built test blobs, plus tests of the encoder.

Other BTF test files import ``Enc`` from here. It writes records exactly as
``include/uapi/linux/btf.h`` lays them out, in either byte order, and can
also write deliberately broken records (``raw_type``) and headers
(``build(**overrides)``).
"""

from __future__ import annotations

import struct

from ecc.btf import Kind, parse_btf

HEADER_FIELDS = (
    "magic",
    "version",
    "flags",
    "hdr_len",
    "type_off",
    "type_len",
    "str_off",
    "str_len",
)


class Enc:
    """Append types, get their ids back, then ``build()`` the blob."""

    def __init__(self, order: str = "little") -> None:
        self.order = order
        self.p = "<" if order == "little" else ">"
        self.strings = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}
        self.records: list[bytes] = []

    # --- low level ---------------------------------------------------------

    def s(self, text: str) -> int:
        """Offset of ``text`` in the string section, adding it if new."""
        if text not in self._offsets:
            self._offsets[text] = len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._offsets[text]

    def pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self.p + fmt, *values)

    def raw_type(
        self,
        kind: int,
        name: str | int = "",
        vlen: int = 0,
        kflag: bool = False,
        size_or_type: int = 0,
        extra: bytes = b"",
    ) -> int:
        """Append any record; ``name`` may be a raw (possibly bad) offset."""
        name_off = name if isinstance(name, int) else self.s(name)
        info = (int(kflag) << 31) | ((kind & 0x1F) << 24) | (vlen & 0xFFFF)
        self.records.append(self.pack("III", name_off, info, size_or_type) + extra)
        return len(self.records)

    # --- one method per kind --------------------------------------------------

    def int_(
        self,
        name: str,
        size: int,
        *,
        signed: bool = False,
        char: bool = False,
        bool_: bool = False,
        bits: int | None = None,
        offset: int = 0,
    ) -> int:
        enc = (1 if signed else 0) | (2 if char else 0) | (4 if bool_ else 0)
        nbits = size * 8 if bits is None else bits
        data = (enc << 24) | (offset << 16) | nbits
        return self.raw_type(Kind.INT, name, size_or_type=size, extra=self.pack("I", data))

    def ptr(self, to: int) -> int:
        return self.raw_type(Kind.PTR, size_or_type=to)

    def array(self, elem: int, nelems: int, index: int = 0) -> int:
        return self.raw_type(Kind.ARRAY, extra=self.pack("III", elem, index, nelems))

    def _composite(
        self,
        kind: Kind,
        name: str,
        size: int,
        members: list[tuple[str, int, int, int]],
        kflag: bool | None,
    ) -> int:
        if kflag is None:
            kflag = any(bfs for _, _, _, bfs in members)
        body = b""
        for m_name, m_type, bit_off, bfs in members:
            if not kflag and bfs:
                raise ValueError("legacy encoding: put the bit size in an INT instead")
            off = (bfs << 24 | bit_off) if kflag else bit_off
            body += self.pack("III", self.s(m_name), m_type, off)
        return self.raw_type(kind, name, len(members), kflag, size, body)

    def struct(
        self,
        name: str,
        size: int,
        members: list[tuple[str, int, int, int]],
        kflag: bool | None = None,
    ) -> int:
        """``members``: (name, type id, bit offset, bitfield size)."""
        return self._composite(Kind.STRUCT, name, size, members, kflag)

    def union(
        self,
        name: str,
        size: int,
        members: list[tuple[str, int, int, int]],
        kflag: bool | None = None,
    ) -> int:
        return self._composite(Kind.UNION, name, size, members, kflag)

    def enum(
        self, name: str, values: list[tuple[str, int]], *, signed: bool = False, size: int = 4
    ) -> int:
        body = b"".join(
            self.pack("I", self.s(n)) + self.pack("I", v & 0xFFFFFFFF) for n, v in values
        )
        return self.raw_type(Kind.ENUM, name, len(values), signed, size, body)

    def enum64(
        self, name: str, values: list[tuple[str, int]], *, signed: bool = False, size: int = 8
    ) -> int:
        body = b""
        for n, v in values:
            v &= (1 << 64) - 1
            body += self.pack("III", self.s(n), v & 0xFFFFFFFF, v >> 32)
        return self.raw_type(Kind.ENUM64, name, len(values), signed, size, body)

    def fwd(self, name: str, *, union: bool = False) -> int:
        return self.raw_type(Kind.FWD, name, kflag=union)

    def typedef(self, name: str, to: int) -> int:
        return self.raw_type(Kind.TYPEDEF, name, size_or_type=to)

    def volatile(self, to: int) -> int:
        return self.raw_type(Kind.VOLATILE, size_or_type=to)

    def const(self, to: int) -> int:
        return self.raw_type(Kind.CONST, size_or_type=to)

    def restrict(self, to: int) -> int:
        return self.raw_type(Kind.RESTRICT, size_or_type=to)

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self.raw_type(Kind.FUNC, name, vlen=linkage, size_or_type=proto)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        body = b"".join(self.pack("II", self.s(n), t) for n, t in params)
        return self.raw_type(Kind.FUNC_PROTO, vlen=len(params), size_or_type=ret, extra=body)

    def var(self, name: str, to: int, linkage: int = 1) -> int:
        return self.raw_type(Kind.VAR, name, size_or_type=to, extra=self.pack("I", linkage))

    def datasec(self, name: str, size: int, vars_: list[tuple[int, int, int]]) -> int:
        body = b"".join(self.pack("III", t, off, sz) for t, off, sz in vars_)
        return self.raw_type(Kind.DATASEC, name, len(vars_), size_or_type=size, extra=body)

    def float_(self, name: str, size: int) -> int:
        return self.raw_type(Kind.FLOAT, name, size_or_type=size)

    def decl_tag(self, name: str, to: int, component_idx: int = -1, attr: bool = False) -> int:
        return self.raw_type(
            Kind.DECL_TAG, name, kflag=attr, size_or_type=to, extra=self.pack("i", component_idx)
        )

    def type_tag(self, name: str, to: int, attr: bool = False) -> int:
        return self.raw_type(Kind.TYPE_TAG, name, kflag=attr, size_or_type=to)

    # --- the blob ---------------------------------------------------------------

    def sections(self) -> tuple[bytes, bytes]:
        return b"".join(self.records), bytes(self.strings)

    def build(self, *, gap: int = 0, trailer: bytes = b"", **header: int) -> bytes:
        """Header + types + ``gap`` zero bytes + strings + ``trailer``.

        Keyword arguments override header fields by name (``str_len=0``).
        """
        types, strings = self.sections()
        fields = {
            "magic": 0xEB9F,
            "version": 1,
            "flags": 0,
            "hdr_len": 24,
            "type_off": 0,
            "type_len": len(types),
            "str_off": len(types) + gap,
            "str_len": len(strings),
        }
        unknown = set(header) - set(fields)
        if unknown:
            raise TypeError(f"unknown header fields {unknown}")
        fields.update(header)
        hdr = self.pack("HBBIIIII", *(fields[f] for f in HEADER_FIELDS))
        return hdr + types + b"\0" * gap + strings + trailer


# --- the encoder's own tests -----------------------------------------------------


def test_empty_blob_has_only_void() -> None:
    for order in ("little", "big"):
        btf = parse_btf(Enc(order).build())
        assert len(btf) == 1
        assert btf.byte_order == order


def test_encoder_ids_count_from_one() -> None:
    e = Enc()
    assert e.int_("int", 4, signed=True) == 1
    assert e.ptr(1) == 2
    btf = parse_btf(e.build())
    assert [t.kind for t in btf] == [Kind.UNKN, Kind.INT, Kind.PTR]


def test_string_offsets_are_shared() -> None:
    e = Enc()
    assert e.s("abc") == e.s("abc") == 1
    assert e.s("") == 0
