"""ecc.run.decode: event/map bytes -> Python values, on hand-built and clang-built BTF."""

from __future__ import annotations

import shutil
import struct
import subprocess
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from conftest import require
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from hypothesis import given, settings
from hypothesis import strategies as st
from test_btf_encoder import Enc

from ecc.btf import Btf, Kind, parse_btf
from ecc.errors import BtfError, PackageError
from ecc.run.decode import Decoder, ValueDecoder, decode_value

Order = Literal["little", "big"]
ORDERS: tuple[Order, ...] = ("little", "big")


def _int(order: Order, value: int, size: int, signed: bool = False) -> bytes:
    return value.to_bytes(size, order, signed=signed)


def _struct_of(e: Enc, member_type: int, size: int) -> int:
    """struct s { <member_type> v; } of ``size`` bytes."""
    return e.struct("s", size, [("v", member_type, 0, 0)])


# --- one member of every kind, both byte orders --------------------------------------

# (id, builds the member type and returns (type id, size), data for a byte order, expected)
Build = Callable[[Enc], tuple[int, int]]
SCALAR_CASES: list[tuple[str, Build, Callable[[Order], bytes], Any]] = [
    ("s8", lambda e: (e.int_("signed char", 1, signed=True), 1), lambda o: b"\x80", -128),
    ("u8", lambda e: (e.int_("unsigned char", 1), 1), lambda o: b"\xff", 255),
    ("s16", lambda e: (e.int_("short", 2, signed=True), 2), lambda o: _int(o, -2, 2, True), -2),
    ("u16", lambda e: (e.int_("unsigned short", 2), 2), lambda o: _int(o, 0x1234, 2), 0x1234),
    ("s32", lambda e: (e.int_("int", 4, signed=True), 4), lambda o: _int(o, -7, 4, True), -7),
    ("u32", lambda e: (e.int_("u32", 4), 4), lambda o: _int(o, 0xDEADBEEF, 4), 0xDEADBEEF),
    ("s64", lambda e: (e.int_("long", 8, signed=True), 8), lambda o: _int(o, -(2**63), 8, True),
     -(2**63)),
    ("u64", lambda e: (e.int_("u64", 8), 8), lambda o: _int(o, 2**64 - 1, 8), 2**64 - 1),
    ("s128", lambda e: (e.int_("__int128", 16, signed=True), 16),
     lambda o: _int(o, -(2**100), 16, True), -(2**100)),
    ("u128", lambda e: (e.int_("unsigned __int128", 16), 16), lambda o: _int(o, 2**128 - 1, 16),
     2**128 - 1),
    ("odd-size int", lambda e: (e.int_("u24", 3), 3), lambda o: _int(o, 0x010203, 3), 0x010203),
    ("bool true", lambda e: (e.int_("_Bool", 1, bool_=True), 1), lambda o: b"\x01", True),
    ("bool any nonzero", lambda e: (e.int_("_Bool", 1, bool_=True), 1), lambda o: b"\x02", True),
    ("bool false", lambda e: (e.int_("_Bool", 1, bool_=True), 1), lambda o: b"\x00", False),
    ("bool of 4 bytes", lambda e: (e.int_("BOOL", 4, bool_=True), 4),
     lambda o: _int(o, 256, 4), True),
    ("half", lambda e: (e.float_("_Float16", 2), 2), lambda o: struct.pack(_p(o) + "e", 1.5), 1.5),
    ("float is shortest", lambda e: (e.float_("float", 4), 4),
     lambda o: struct.pack(_p(o) + "f", 0.1), 0.1),
    ("float needs 8 digits", lambda e: (e.float_("float", 4), 4),
     lambda o: struct.pack(_p(o) + "f", 16777217.0), 16777216.0),
    ("float inf", lambda e: (e.float_("float", 4), 4),
     lambda o: struct.pack(_p(o) + "f", float("inf")), float("inf")),
    ("double", lambda e: (e.float_("double", 8), 8), lambda o: struct.pack(_p(o) + "d", -2.25),
     -2.25),
    ("long double as raw hex", lambda e: (e.float_("long double", 16), 16),
     lambda o: _int(o, 0xAB, 16), "0x" + "0" * 30 + "ab"),
    ("pointer", lambda e: (e.ptr(0), 8), lambda o: _int(o, 0xFFFF888012345678, 8),
     0xFFFF888012345678),
    ("enum name", lambda e: (e.enum("e", [("A", 0), ("B", 7)]), 4), lambda o: _int(o, 7, 4), "B"),
    ("enum unknown", lambda e: (e.enum("e", [("A", 0), ("B", 7)]), 4), lambda o: _int(o, 3, 4), 3),
    ("enum flags stay ints", lambda e: (e.enum("f", [("R", 1), ("W", 2)]), 4),
     lambda o: _int(o, 3, 4), 3),
    ("enum signed", lambda e: (e.enum("e", [("NEG", -1)], signed=True), 4),
     lambda o: _int(o, -1, 4, True), "NEG"),
    ("enum of 1 byte", lambda e: (e.enum("e", [("NEG", -1)], signed=True, size=1), 1),
     lambda o: b"\xff", "NEG"),
    ("enum first name wins", lambda e: (e.enum("e", [("A", 1), ("ALIAS", 1)]), 4),
     lambda o: _int(o, 1, 4), "A"),
    ("enum64", lambda e: (e.enum64("w", [("HUGE", 2**40)]), 8), lambda o: _int(o, 2**40, 8),
     "HUGE"),
    ("qualifiers and typedefs", lambda e: (
        e.const(e.volatile(e.typedef("pid_t", e.restrict(e.type_tag("t", e.int_("int", 4,
                                                                               signed=True)))))),
        4), lambda o: _int(o, -5, 4, True), -5),
    ("legacy int bit range", lambda e: (e.int_("nibble", 1, bits=4, offset=2), 1),
     lambda o: b"\x3c", 0xF),
]


def _p(order: Order) -> str:
    return "<" if order == "little" else ">"


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("build", "data", "expected"),
    [pytest.param(b, d, x, id=name) for name, b, d, x in SCALAR_CASES],
)
def test_scalar_members(
    order: Order, build: Build, data: Callable[[Order], bytes], expected: Any
) -> None:
    e = Enc(order)
    type_id, size = build(e)
    s = _struct_of(e, type_id, size)
    btf = parse_btf(e.build())
    value = Decoder(btf, s).decode(data(order))["v"]
    assert value == expected
    assert type(value) is type(expected)
    # Same rules for a bare map key or value.
    assert decode_value(btf, type_id, data(order)) == expected


# --- arrays and strings ---------------------------------------------------------------


def _char(e: Enc) -> int:
    return e.int_("char", 1, signed=True)  # clang: no CHAR encoding, named "char"


ARRAY_CASES: list[tuple[str, Build, bytes, Any]] = [
    ("char with NUL", lambda e: (e.array(_char(e), 8), 8), b"bash\0xyz", "bash"),
    ("char without NUL is whole", lambda e: (e.array(_char(e), 4), 4), b"abcd", "abcd"),
    ("char empty", lambda e: (e.array(_char(e), 4), 4), b"\0abc", ""),
    # Invalid UTF-8 is escaped, not replaced: the byte stays readable (issue 28).
    ("char bad utf-8 escaped", lambda e: (e.array(_char(e), 4), 4), b"\xffok\0", "\\xffok"),
    ("char cut utf-8 escaped", lambda e: (e.array(_char(e), 4), 4), b"\xc3\0ok", "\\xc3"),
    ("char keeps control bytes", lambda e: (e.array(_char(e), 4), 4), b"a\x07\n\0", "a\x07\n"),
    ("char utf-8", lambda e: (e.array(_char(e), 4), 4), "é!".encode() + b"\0", "é!"),
    ("CHAR encoding, any name", lambda e: (e.array(e.int_("gchar", 1, char=True), 3), 3),
     b"hi\0", "hi"),
    ("typedef of char", lambda e: (e.array(e.const(e.typedef("mychar", _char(e))), 3), 3),
     b"ok\0", "ok"),
    ("unsigned char is bytes", lambda e: (e.array(e.int_("unsigned char", 1), 4), 4),
     b"ab\0\xff", [97, 98, 0, 255]),
    ("__u8 is bytes", lambda e: (e.array(e.typedef("__u8", e.int_("unsigned char", 1)), 2), 2),
     b"\x01\x02", [1, 2]),
    ("signed char is numbers", lambda e: (e.array(e.int_("signed char", 1, signed=True), 2), 2),
     b"\xff\x01", [-1, 1]),
    ("flexible char", lambda e: (e.array(_char(e), 0), 0), b"", ""),
    ("flexible int", lambda e: (e.array(e.int_("int", 4, signed=True), 0), 0), b"", []),
    ("char[2][3]", lambda e: (e.array(e.array(_char(e), 3), 2), 6), b"ab\0cde", ["ab", "cde"]),
    ("bool array", lambda e: (e.array(e.int_("_Bool", 1, bool_=True), 3), 3), b"\x00\x01\x05",
     [False, True, True]),
    ("enum array", lambda e: (e.array(e.enum("e", [("A", 1)], size=1), 2), 2), b"\x01\x02",
     ["A", 2]),
    ("array of empty structs", lambda e: (e.array(e.struct("empty", 0, []), 1000), 0), b"", []),
]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("build", "data", "expected"),
    [pytest.param(b, d, x, id=name) for name, b, d, x in ARRAY_CASES],
)
def test_byte_arrays(order: Order, build: Build, data: bytes, expected: Any) -> None:
    e = Enc(order)
    type_id, size = build(e)
    s = _struct_of(e, type_id, size)
    btf = parse_btf(e.build())
    assert Decoder(btf, s).decode(data)["v"] == expected


@pytest.mark.parametrize("order", ORDERS)
def test_int_arrays_and_arrays_of_arrays(order: Order) -> None:
    e = Enc(order)
    i16 = e.int_("short", 2, signed=True)
    u64 = e.int_("u64", 8)
    i128 = e.int_("__int128", 16, signed=True)
    grid = e.array(e.array(i16, 3), 2)
    s = e.struct("s", 12 + 16 + 32, [
        ("grid", grid, 0, 0),
        ("big", e.array(u64, 2), 12 * 8, 0),
        ("huge", e.array(i128, 2), 28 * 8, 0),
    ])
    btf = parse_btf(e.build())
    p = _p(order)
    data = (struct.pack(p + "6h", 1, -2, 3, -4, 5, -6) + struct.pack(p + "2Q", 7, 2**64 - 1)
            + _int(order, -1, 16, True) + _int(order, 2**120, 16, True))
    assert Decoder(btf, s).decode(data) == {
        "grid": [[1, -2, 3], [-4, 5, -6]],
        "big": [7, 2**64 - 1],
        "huge": [-1, 2**120],
    }


# --- structs, unions, anonymous members -----------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_nested_and_anonymous_members_are_flattened_like_c(order: Order) -> None:
    e = Enc(order)
    i32 = e.int_("int", 4, signed=True)
    u32 = e.int_("unsigned int", 4)
    u8 = e.int_("unsigned char", 1)
    point = e.struct("point", 8, [("x", i32, 0, 0), ("y", i32, 32, 0)])
    anon_union = e.union("", 4, [("i", i32, 0, 0), ("u", u32, 0, 0)])
    deeper = e.struct("", 1, [("deep", u8, 0, 0)])
    anon_struct = e.struct("", 2, [("a", u8, 0, 0), ("", deeper, 8, 0)])
    s = e.struct("ev", 20, [
        ("p", point, 0, 0),
        ("", e.const(anon_union), 64, 0),  # qualifiers do not hide an anonymous member
        ("", anon_struct, 96, 0),
        ("", u32, 128, 0),  # unnamed non-composite: not addressable, skipped
    ])
    btf = parse_btf(e.build())
    d = Decoder(btf, s)
    assert d.fields == ("p", "i", "u", "a", "deep")
    p = _p(order)
    data = struct.pack(p + "iiiBB2xI", 3, -4, -1, 9, 8, 5)
    assert d.decode(data) == {"p": {"x": 3, "y": -4}, "i": -1, "u": 0xFFFFFFFF, "a": 9, "deep": 8}
    assert list(d.decode(data)) == list(d.fields)


@pytest.mark.parametrize("order", ORDERS)
def test_bitfields_inside_an_anonymous_member(order: Order) -> None:
    # The inner struct's bit offsets count from its own start, 4 bytes in.
    e = Enc(order)
    u16 = e.int_("unsigned short", 2)
    inner = e.struct("", 2, [("lo", u16, 0, 4), ("hi", u16, 4, 12)])
    s = e.struct("s", 6, [("n", e.int_("int", 4, signed=True), 0, 0), ("", inner, 32, 0)])
    word = (0xA | 0x123 << 4) if order == "little" else (0xA << 12 | 0x123)
    data = _int(order, -1, 4, True) + word.to_bytes(2, order)
    assert Decoder(parse_btf(e.build()), s).decode(data) == {"n": -1, "lo": 0xA, "hi": 0x123}


@pytest.mark.parametrize("order", ORDERS)
def test_union_as_event(order: Order) -> None:
    e = Enc(order)
    u = e.union("val", 4, [("as_int", e.int_("int", 4, signed=True), 0, 0),
                           ("as_bytes", e.array(e.int_("unsigned char", 1), 4), 0, 0)])
    btf = parse_btf(e.build())
    data = _int(order, 1, 4)
    expected_bytes = [1, 0, 0, 0] if order == "little" else [0, 0, 0, 1]
    assert Decoder(btf, u).decode(data) == {"as_int": 1, "as_bytes": expected_bytes}


def test_repeated_names_keep_first_position() -> None:
    # Only hostile BTF repeats a name; decode must still agree with fields.
    e = Enc()
    u8 = e.int_("unsigned char", 1)
    s = e.struct("s", 3, [("a", u8, 0, 0), ("b", u8, 8, 0), ("a", u8, 16, 0)])
    d = Decoder(parse_btf(e.build()), s)
    assert d.fields == ("a", "b")
    assert d.decode(b"\x01\x02\x03") == {"a": 3, "b": 2}
    assert d.widths == (4, 4)


# --- bitfields ---------------------------------------------------------------------------


BITFIELDS = {"a": 5, "b": -2, "c": "Y", "flag": True, "hi": 2}


@pytest.mark.parametrize(
    ("order", "data"),
    [
        # Little-endian: bit 0 is the LSB of byte 0. Byte 1's low two bits
        # belong to the unnamed padding field and must not leak into c.
        ("little", bytes([0b11110_101, 0b0000_11_11, 0b00000_10_1, 0xFF])),
        # Big-endian: bit 0 is the MSB of byte 0.
        ("big", bytes([0b101_11110, 0b11_11_0000, 0b1_10_00000, 0xFF])),
    ],
)
def test_bitfields_by_shift_and_mask(order: Order, data: bytes) -> None:
    e = Enc(order)
    u32 = e.int_("unsigned int", 4)
    i32 = e.int_("int", 4, signed=True)
    b = e.int_("_Bool", 1, bool_=True)
    en = e.enum("yn", [("N", 0), ("Y", 3)])
    s = e.struct("bf", 4, [
        ("a", u32, 0, 3),
        ("b", i32, 3, 5),  # -2 in 5 bits is 0b11110
        ("", u32, 8, 2),  # unnamed padding: skipped
        ("c", en, 10, 2),
        ("flag", b, 16, 1),
        ("hi", u32, 17, 2),
    ])
    d = Decoder(parse_btf(e.build()), s)
    assert d.fields == tuple(BITFIELDS)
    assert d.decode(data) == BITFIELDS


@pytest.mark.parametrize("order", ORDERS)
def test_bitfield_spanning_bytes_and_64_bits(order: Order) -> None:
    e = Enc(order)
    u64 = e.int_("u64", 8)
    s = e.struct("s", 8, [("lo", u64, 0, 4), ("mid", u64, 4, 40), ("top", u64, 44, 20)])
    btf = parse_btf(e.build())
    lo, mid, top = 0x9, 0xABCDE12345, 0xFEDCB
    # Little-endian counts bit offsets from the LSB, big-endian from the MSB.
    word = (lo | mid << 4 | top << 44) if order == "little" else (lo << 60 | mid << 20 | top)
    assert Decoder(btf, s).decode(word.to_bytes(8, order)) == {"lo": lo, "mid": mid, "top": top}


@pytest.mark.parametrize("order", ORDERS)
def test_legacy_bitfield_encoding(order: Order) -> None:
    # Pre-kind_flag BTF: the bit size lives in the INT, the member offset is plain.
    e = Enc(order)
    three = e.int_("unsigned int", 4, bits=3)
    s = e.struct("s", 4, [("x", three, 0, 0), ("y", three, 3, 0)], kflag=False)
    btf = parse_btf(e.build())
    word = (5 | 2 << 3) if order == "little" else (5 << 29 | 2 << 26)
    assert Decoder(btf, s).decode(word.to_bytes(4, order)) == {"x": 5, "y": 2}


def test_bitfield_widths_fit_their_values() -> None:
    e = Enc()
    u32 = e.int_("unsigned int", 4)
    i32 = e.int_("int", 4, signed=True)
    s = e.struct("s", 4, [("u", u32, 0, 10), ("i", i32, 10, 10)])
    assert Decoder(parse_btf(e.build()), s).widths == (4, 4)


# --- lengths and errors ----------------------------------------------------------------


def _event_btf(order: Order = "little") -> tuple[Btf, int]:
    e = Enc(order)
    i32 = e.int_("int", 4, signed=True)
    s = e.struct("ev", 8, [("pid", i32, 0, 0), ("tid", i32, 32, 0)])
    return parse_btf(e.build()), s


def test_payload_shorter_than_the_first_member_is_a_package_error() -> None:
    btf, s = _event_btf()
    with pytest.raises(PackageError) as info:
        Decoder(btf, s).decode(b"\1\2\3")
    assert str(info.value) == ("event of 3 bytes is shorter than the first member of struct ev "
                               "(4 bytes)")


def test_short_payload_keeps_the_members_that_arrived() -> None:
    btf, s = _event_btf()
    assert Decoder(btf, s).decode(struct.pack("<i", 9) + b"\1\2\3") == {"pid": 9}


def test_short_payload_names_unions_and_anonymous_structs() -> None:
    e = Enc()
    i32 = e.int_("int", 4, signed=True)
    u = e.union("u", 4, [("a", i32, 0, 0)])
    anon = e.struct("", 4, [("a", i32, 0, 0)])
    btf = parse_btf(e.build())
    with pytest.raises(PackageError, match=r"^event of 0 bytes is shorter than the first member "
                                           r"of union u \(4 b"):
        Decoder(btf, u).decode(b"")
    with pytest.raises(PackageError, match=r"of struct \(anonymous\) \(4 bytes\)$"):
        Decoder(btf, anon).decode(b"")


def test_longer_payload_and_other_buffers() -> None:
    btf, s = _event_btf()
    d = Decoder(btf, s)
    data = struct.pack("<ii", 1, 2)
    expected = {"pid": 1, "tid": 2}
    assert d.decode(data + b"\0" * 8) == expected  # ring buffer records are 8-byte padded
    assert d.decode(bytearray(data)) == expected
    assert d.decode(memoryview(data)) == expected


def test_value_decoder() -> None:
    e = Enc()
    u32 = e.int_("unsigned int", 4)
    arr = e.array(u32, 3)
    btf = parse_btf(e.build())
    vd = ValueDecoder(btf, arr)
    assert vd.size == 12
    assert vd.decode(struct.pack("<3I", 1, 2, 3)) == [1, 2, 3]
    with pytest.raises(PackageError) as info:
        decode_value(btf, u32, b"\0\0")
    assert str(info.value) == "value of 2 bytes is shorter than unsigned int (4 bytes)"
    with pytest.raises(PackageError, match=r"shorter than unsigned int\[3\] \(12 bytes\)"):
        vd.decode(b"")


def _btf_error_cases() -> list[tuple[str, Callable[[Enc], int], str]]:
    def member_past_end(e: Enc) -> int:
        return e.struct("s", 4, [("a", e.int_("long", 8, signed=True), 0, 0)])

    def late_member(e: Enc) -> int:
        return e.struct("s", 4, [("a", e.int_("int", 4, signed=True), 64, 0)])

    def bitfield_past_end(e: Enc) -> int:
        return e.struct("s", 1, [("a", e.int_("unsigned int", 4), 6, 4)])

    def bitfield_of_struct(e: Enc) -> int:
        inner = e.struct("in", 4, [])
        return e.struct("s", 4, [("a", inner, 0, 3)])

    def unaligned(e: Enc) -> int:
        return e.struct("s", 8, [("a", e.int_("int", 4, signed=True), 3, 0)])

    def fwd_member(e: Enc) -> int:
        return e.struct("s", 8, [("a", e.fwd("opaque"), 0, 0)])

    def void_member(e: Enc) -> int:
        return e.struct("s", 8, [("a", 0, 0, 0)])

    def func_member(e: Enc) -> int:
        return e.struct("s", 8, [("a", e.func_proto(0, []), 0, 0)])

    def self_containing(e: Enc) -> int:
        # struct s { struct s inner; } can only be hostile BTF.
        return e.struct("s", 4, [("inner", 1, 0, 0)])

    def self_anonymous(e: Enc) -> int:
        return e.struct("", 4, [("", 1, 0, 0)])

    def int_size(e: Enc) -> int:
        return e.struct("s", 32, [("a", e.int_("wide", 17), 0, 0)])

    def zero_int(e: Enc) -> int:
        return e.struct("s", 4, [("a", e.int_("nothing", 0), 0, 0)])

    def not_struct(e: Enc) -> int:
        return e.int_("int", 4, signed=True)

    return [
        ("member past the end", member_past_end,
         r"member 0 \(a\): 8 bytes at offset 0 overflow the 4-byte type"),
        ("member after the end", late_member, r"4 bytes at offset 8 overflow the 4-byte type"),
        ("bitfield past the end", bitfield_past_end,
         r"4 bits at bit offset 6 overflow the 1-byte type"),
        ("bitfield of a struct", bitfield_of_struct, r"bitfield of BTF type 1 \(STRUCT in\)"),
        ("unaligned member", unaligned, r"bit offset 3 is not on a byte boundary"),
        ("forward declaration", fwd_member, r"cannot decode data of this kind"),
        ("void", void_member, r"cannot decode data of this kind"),
        ("function", func_member, r"cannot decode data of this kind"),
        ("self-containing", self_containing, r"nested deeper than 32"),
        ("self-containing anonymous", self_anonymous, r"nested deeper than 32"),
        ("int of 17 bytes", int_size, r"integer of 17 bytes"),
        ("int of 0 bytes", zero_int, r"integer of 0 bytes"),
        ("not a struct", not_struct, r"events must be a struct or union"),
    ]


@pytest.mark.parametrize(
    ("build", "message"), [pytest.param(b, m, id=n) for n, b, m in _btf_error_cases()]
)
def test_bad_btf_fails_when_compiling(build: Callable[[Enc], int], message: str) -> None:
    e = Enc()
    type_id = build(e)
    btf = parse_btf(e.build())
    with pytest.raises(BtfError, match=message):
        Decoder(btf, type_id)


def test_fields_and_widths() -> None:
    e = Enc()
    s = e.struct("ev", 48, [
        ("pid", e.int_("int", 4, signed=True), 0, 0),
        ("ok", e.int_("_Bool", 1, bool_=True), 32, 0),
        ("comm", e.array(_char(e), 16), 40, 0),
        ("ts", e.int_("u64", 8), 192, 0),
        ("state", e.enum("st", [("RUNNING", 0), ("SLEEPING", 1)]), 256, 0),
        ("path", e.array(_char(e), 8), 288, 0),
        ("pair", e.array(e.int_("short", 2, signed=True), 2), 352, 0),
    ])
    d = Decoder(parse_btf(e.build()), s)
    assert d.fields == ("pid", "ok", "comm", "ts", "state", "path", "pair")
    assert d.widths == (7, 5, 15, 12, 8, 7, 8)
    assert d.name == "ev"
    assert d.size == 48


# --- property: any bytes give a dict or PackageError -------------------------------------


def _rich_btf(order: Order) -> tuple[Btf, int]:
    e = Enc(order)
    i32 = e.int_("int", 4, signed=True)
    u64 = e.int_("u64", 8)
    en = e.enum("e", [("A", 1)], signed=True)
    inner = e.struct("in", 8, [("x", i32, 0, 0), ("b", u64, 32, 20), ("c", en, 52, 4)])
    s = e.struct("ev", 72, [
        ("n", u64, 0, 0),
        ("name", e.array(_char(e), 16), 64, 0),
        ("arr", e.array(inner, 2), 192, 0),
        ("d", e.float_("double", 8), 320, 0),
        ("f", e.float_("float", 4), 384, 0),
        ("bits", i32, 416, 7),
        ("", e.union("", 16, [("p", e.ptr(0), 0, 0), ("q", e.int_("__int128", 16), 0, 0)]), 448,
         0),
    ])
    return parse_btf(e.build()), s


RICH = {order: _rich_btf(order) for order in ORDERS}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ORDERS), st.binary(max_size=200))
def test_random_bytes_decode_or_raise_package_error(order: Order, data: bytes) -> None:
    btf, s = RICH[order]
    fields = ["n", "name", "arr", "d", "f", "bits", "p", "q"]
    try:
        out = Decoder(btf, s).decode(data)
    except PackageError:
        assert len(data) < 8  # the first member, n
    else:
        # Members in field order; those past a short event's end left out.
        assert list(out) == [f for f in fields if f in out]
        assert len(data) < 72 or list(out) == fields


# --- real clang objects, both byte orders --------------------------------------------------

C_SOURCE = r"""
typedef _Bool bool;
typedef unsigned int u32;
typedef unsigned long long u64;
enum color { RED, GREEN = 5, BLUE = -1 };
enum wide { SMALL = 1, HUGE = 0x100000000ULL };
struct inner { short x; char tag[3]; };
struct all {
    signed char s8; unsigned char u8; short s16; unsigned short u16;
    int s32; u32 u32_; long long s64; u64 u64_;
    __int128 s128; unsigned __int128 u128;
    bool yes; bool no;
    char name[8]; char full[4]; char bad[4];
    unsigned char bytes[4];
    const volatile int cv;
    float f; double d;
    void *ptr;
    enum color c1, c2, c3;
    enum wide w;
    struct inner in;
    union { int i; unsigned int u; };
    struct { short x2, y2; };
    int grid[2][3];
    char names[2][4];
    struct inner arr[2];
};
struct all g_all = {
    .s8 = -128, .u8 = 255, .s16 = -32768, .u16 = 65535,
    .s32 = -2147483647 - 1, .u32_ = 4294967295u,
    .s64 = -9223372036854775807LL - 1, .u64_ = 18446744073709551615ULL,
    .s128 = -((__int128)1 << 100), .u128 = ~(unsigned __int128)0,
    .yes = 1, .no = 0,
    .name = "bash", .full = {'a', 'b', 'c', 'd'}, .bad = {'\xff', 'o', 'k', 0},
    .bytes = {1, 2, 0, 255},
    .cv = 7,
    .f = 0.1f, .d = -2.5,
    .ptr = (void *)0x12345678,
    .c1 = GREEN, .c2 = BLUE, .c3 = 42,
    .w = HUGE,
    .in = {.x = -2, .tag = "ab"},
    .i = -1,
    .x2 = 3, .y2 = -4,
    .grid = {{1, 2, 3}, {4, 5, 6}},
    .names = {"one", "four"},
    .arr = {{.x = 1, .tag = "x"}, {.x = 2, .tag = "yz"}},
};

struct bits {
    unsigned a:3;
    int b:5;
    unsigned long long c:40;
    bool d:1;
    enum color e:4;
    signed char f:2;
    int :3;
    unsigned g:7;
    int tail;
};
struct bits g_bits = {.a = 5, .b = -3, .c = 0xABCDE12345ULL, .d = 1, .e = GREEN, .f = -2,
                      .g = 100, .tail = -1};

/* The bootstrap example's event: ints and char arrays, 168 bytes. */
struct event {
    int pid;
    int ppid;
    unsigned exit_code;
    unsigned long long duration_ns;
    char comm[16];
    char filename[127];
    bool exit_event;
};
struct event g_event = {.pid = 4242, .ppid = 1, .exit_code = 3, .duration_ns = 123456789012ULL,
                        .comm = "bash", .filename = "/usr/bin/ls", .exit_event = 1};
"""

EXPECT_ALL: dict[str, Any] = {
    "s8": -128, "u8": 255, "s16": -32768, "u16": 65535,
    "s32": -(2**31), "u32_": 2**32 - 1, "s64": -(2**63), "u64_": 2**64 - 1,
    "s128": -(2**100), "u128": 2**128 - 1,
    "yes": True, "no": False,
    "name": "bash", "full": "abcd", "bad": "\\xffok",
    "bytes": [1, 2, 0, 255],
    "cv": 7,
    "f": 0.1, "d": -2.5,
    "ptr": 0x12345678,
    "c1": "GREEN", "c2": "BLUE", "c3": 42,
    "w": "HUGE",
    "in": {"x": -2, "tag": "ab"},
    "i": -1, "u": 2**32 - 1,
    "x2": 3, "y2": -4,
    "grid": [[1, 2, 3], [4, 5, 6]],
    "names": ["one", "four"],
    "arr": [{"x": 1, "tag": "x"}, {"x": 2, "tag": "yz"}],
}
EXPECT_BITS = {"a": 5, "b": -3, "c": 0xABCDE12345, "d": True, "e": "GREEN", "f": -2, "g": 100,
               "tail": -1}
EXPECT_EVENT = {"pid": 4242, "ppid": 1, "exit_code": 3, "duration_ns": 123456789012,
                "comm": "bash", "filename": "/usr/bin/ls", "exit_event": True}
TARGETS = {"little": "bpf", "big": "bpfeb"}


class Compiled:
    """One clang-built object: its BTF and the initial bytes of its globals."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as f:
            elf = ELFFile(f)
            btf_section = elf.get_section_by_name(".BTF")
            assert btf_section is not None
            self.btf = parse_btf(btf_section.data())
            symtab = elf.get_section_by_name(".symtab")
            assert isinstance(symtab, SymbolTableSection)
            self.globals: dict[str, bytes] = {}
            for sym in symtab.iter_symbols():
                if sym.name.startswith("g_"):
                    data = elf.get_section(sym["st_shndx"]).data()
                    self.globals[sym.name] = data[sym["st_value"]: sym["st_value"] + sym["st_size"]]

    def decoder(self, name: str) -> Decoder:
        t = self.btf.by_name(name, Kind.STRUCT)
        assert t is not None
        return Decoder(self.btf, t.id)


@pytest.fixture(scope="session")
def clang_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    require("clang")
    clang = shutil.which("clang-19")
    assert clang is not None
    tmp = tmp_path_factory.mktemp("decode-c")
    src = tmp / "types.c"
    src.write_text(C_SOURCE)
    out: dict[str, Compiled] = {}
    for order, target in TARGETS.items():
        obj = tmp / f"types-{target}.o"
        subprocess.run([clang, "-g", "-O2", "-target", target, "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
        out[order] = Compiled(obj)
    return out


@pytest.mark.clang
@pytest.mark.parametrize("order", ORDERS)
def test_clang_every_kind(clang_objects: dict[str, Compiled], order: Order) -> None:
    obj = clang_objects[order]
    assert obj.btf.byte_order == order
    d = obj.decoder("all")
    assert d.decode(obj.globals["g_all"]) == EXPECT_ALL
    assert d.fields == tuple(EXPECT_ALL)


@pytest.mark.clang
@pytest.mark.parametrize("order", ORDERS)
def test_clang_bitfields(clang_objects: dict[str, Compiled], order: Order) -> None:
    obj = clang_objects[order]
    assert obj.decoder("bits").decode(obj.globals["g_bits"]) == EXPECT_BITS


def _pack_event(order: Order, **v: Any) -> bytes:
    # struct event by hand: 3 ints, 4 bytes of padding to align the u64,
    # char[16], char[127], bool: 168 bytes, no tail padding.
    return struct.pack(
        _p(order) + "iiI4xQ16s127s?", v["pid"], v["ppid"], v["exit_code"], v["duration_ns"],
        v["comm"].encode(), v["filename"].encode(), v["exit_event"],
    )


@pytest.mark.clang
@pytest.mark.parametrize("order", ORDERS)
def test_clang_event_packed_by_hand(clang_objects: dict[str, Compiled], order: Order) -> None:
    obj = clang_objects[order]
    d = obj.decoder("event")
    packed = _pack_event(order, **EXPECT_EVENT)
    assert d.size == 168
    assert packed == obj.globals["g_event"]  # our layout is clang's
    assert d.decode(packed) == EXPECT_EVENT
    cut = {k: v for k, v in EXPECT_EVENT.items() if k != "exit_event"}
    assert d.decode(packed[:167]) == cut  # exit_event did not arrive
    assert d.decode(packed[:44]) == {**cut, "filename": "/usr"}  # filename starts at 40
    with pytest.raises(PackageError, match=r"^event of 3 bytes is shorter than the first member "
                                           r"of struct event \(4 bytes\)$"):
        d.decode(packed[:3])


@pytest.mark.clang
@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ORDERS), st.binary(max_size=260))
def test_clang_random_bytes(clang_objects: dict[str, Compiled], order: Order, data: bytes) -> None:
    d = clang_objects[order].decoder("all")
    try:
        out = d.decode(data)
    except PackageError:
        assert len(data) < d.least == 1  # s8
    else:
        assert list(out) == [f for f in d.fields if f in out]
        assert len(data) < d.size or list(out) == list(d.fields)


@pytest.mark.clang
def test_decode_speed(clang_objects: dict[str, Compiled]) -> None:
    obj = clang_objects["little"]
    d = obj.decoder("event")
    data = obj.globals["g_event"]
    n = 2000
    best = min(timeit.repeat(lambda: d.decode(data), number=n, repeat=5)) / n * 1e6
    print(f"decode of a {len(data)}-byte event: {best:.2f} us")
    assert best < 20, f"{best:.1f} us per event"
