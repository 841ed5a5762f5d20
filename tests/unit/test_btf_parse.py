"""parse_btf on hand-built blobs: every kind, both byte orders, every rejection."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable

import pytest

# Shared hand-built-blob encoder; tests/unit is on sys.path under pytest.
from test_btf_encoder import Enc

from ecc.btf import Btf, Kind, parse_btf
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
    Member,
    Param,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)
from ecc.errors import BtfError

ORDERS = ["little", "big"]
NATIVE = sys.byteorder
FOREIGN = "big" if NATIVE == "little" else "little"


def every_kind(order: str) -> tuple[bytes, list[object]]:
    """One of each kind; returns the blob and the expected decoded types."""
    e = Enc(order)
    i = e.int_("int", 4, signed=True)  # 1
    uc = e.int_("unsigned char", 1, char=True)  # 2
    b = e.int_("_Bool", 1, bool_=True)  # 3
    p = e.ptr(i)  # 4
    a = e.array(uc, 16, index=i)  # 5
    s = e.struct("s", 8, [("x", i, 0, 0), ("c", uc, 32, 0)])  # 6
    u = e.union("u", 4, [("i", i, 0, 0), ("", s, 0, 0)])  # 7
    en = e.enum("color", [("RED", 0), ("NEG", -1)], signed=True)  # 8
    fw = e.fwd("later", union=True)  # 9
    td = e.typedef("myint", i)  # 10
    vo = e.volatile(i)  # 11
    co = e.const(vo)  # 12
    re = e.restrict(p)  # 13
    fp = e.func_proto(i, [("ctx", p), ("n", i)])  # 14
    fn = e.func("main", fp, linkage=0)  # 15
    va = e.var("g", i, linkage=2)  # 16
    ds = e.datasec(".data", 4, [(va, 0, 4)])  # 17
    fl = e.float_("double", 8)  # 18
    dt = e.decl_tag("tag", s, 1)  # 19
    tt = e.type_tag("user", i)  # 20
    e64 = e.enum64("big", [("B", 0xFFFFFFFF00000001), ("M", -(1 << 63))], signed=True)  # 21
    expected = [
        Void(),
        Int(i, "int", 4, True, False, False, 32, 0),
        Int(uc, "unsigned char", 1, False, True, False, 8, 0),
        Int(b, "_Bool", 1, False, False, True, 8, 0),
        Ptr(p, "", i),
        Array(a, "", uc, i, 16),
        Struct(s, "s", 8, (Member("x", i, 0, 0), Member("c", uc, 32, 0))),
        Union(u, "u", 4, (Member("i", i, 0, 0), Member("", s, 0, 0))),
        Enum(en, "color", 4, True, (EnumValue("RED", 0), EnumValue("NEG", -1))),
        Fwd(fw, "later", True),
        Typedef(td, "myint", i),
        Volatile(vo, "", i),
        Const(co, "", vo),
        Restrict(re, "", p),
        FuncProto(fp, "", i, (Param("ctx", p), Param("n", i)), False),
        Func(fn, "main", fp, 0),
        Var(va, "g", i, 2),
        Datasec(ds, ".data", 4, (VarSecinfo(va, 0, 4),)),
        Float(fl, "double", 8),
        DeclTag(dt, "tag", s, 1),
        TypeTag(tt, "user", i),
        Enum64(
            e64,
            "big",
            8,
            True,
            (EnumValue("B", 0xFFFFFFFF00000001 - (1 << 64)), EnumValue("M", -(1 << 63))),
        ),
    ]
    return e.build(), expected


@pytest.mark.parametrize("order", ORDERS)
def test_every_kind_decodes(order: str) -> None:
    blob, expected = every_kind(order)
    btf = parse_btf(blob)
    assert btf.byte_order == order
    assert len(btf) == len(expected)
    assert list(btf) == expected
    assert [btf[i] for i in range(len(btf))] == expected
    assert {t.kind for t in btf} == set(Kind)


def test_both_byte_orders_decode_identically() -> None:
    le, _ = every_kind("little")
    be, _ = every_kind("big")
    assert le != be
    assert list(parse_btf(le)) == list(parse_btf(be))


def test_accepts_bytearray_and_memoryview() -> None:
    blob, expected = every_kind("little")
    assert list(parse_btf(bytearray(blob))) == expected
    assert list(parse_btf(memoryview(blob))) == expected


def test_types_are_cached_and_frozen() -> None:
    blob, _ = every_kind("little")
    btf = parse_btf(blob)
    assert btf[6] is btf[6]
    with pytest.raises(AttributeError):
        btf[6].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [-1, 22, 1 << 40])
def test_out_of_range_id(bad: int) -> None:
    blob, _ = every_kind("little")
    btf = parse_btf(blob)
    with pytest.raises(BtfError, match=rf"type id {bad} out of range \(BTF has 22 types\)"):
        btf[bad]
    with pytest.raises(BtfError, match="out of range"):
        btf.kind_of(bad)


def test_kind_property_matches_class() -> None:
    blob, _ = every_kind("little")
    btf = parse_btf(blob)
    for t in btf:
        assert t.kind == btf.kind_of(t.id)
        assert type(t).kind == t.kind


# --- names ---------------------------------------------------------------------


def test_by_name_first_match_by_id() -> None:
    e = Enc()
    e.int_("int", 4, signed=True)  # 1
    s1 = e.struct("dup", 4, [("a", 1, 0, 0)])  # 2
    t = e.typedef("dup", 1)  # 3
    s2 = e.struct("dup", 8, [("a", 1, 0, 0), ("b", 1, 32, 0)])  # 4
    btf = parse_btf(e.build())
    assert btf.ids_by_name("dup") == [s1, t, s2]
    assert btf.ids_by_name("dup", Kind.STRUCT) == [s1, s2]
    assert btf.ids_by_name("dup", Kind.UNION) == []
    assert btf.by_name("dup") == btf[s1]
    assert btf.by_name("dup", Kind.TYPEDEF) == btf[t]
    assert btf.by_name("nope") is None
    assert btf.by_name("") is None  # anonymous types are not indexed
    # The returned list is a copy; mutating it must not corrupt the index.
    btf.ids_by_name("dup").clear()
    assert btf.ids_by_name("dup") == [s1, t, s2]


def test_string_at() -> None:
    e = Enc()
    e.int_("int", 4)
    btf = parse_btf(e.build())
    assert btf.string_at(0) == ""
    assert btf.string_at(1) == "int"
    assert btf.string_at(2) == "nt"  # offsets into the middle of a string are legal
    with pytest.raises(BtfError, match=r"string offset 5 outside the string section \(5 bytes\)"):
        btf.string_at(5)


def test_non_utf8_name_does_not_raise() -> None:
    e = Enc()
    e.raw_type(Kind.INT, 1, size_or_type=4, extra=e.pack("I", 32))
    e.strings += b"\xff\xfe\0"
    btf = parse_btf(e.build())
    assert btf[1].name == "\\xff\\xfe"


# --- bitfields ---------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_bitfields_kind_flag_and_legacy_agree(order: str) -> None:
    # struct { unsigned a:3; unsigned b:13; int c; }
    e = Enc(order)
    u32 = e.int_("unsigned int", 4)  # 1
    i32 = e.int_("int", 4, signed=True)  # 2
    kf = e.struct("kf", 8, [("a", u32, 0, 3), ("b", u32, 3, 13), ("c", i32, 32, 0)])
    # Legacy: the bit size (and an extra bit offset) live in a dedicated INT.
    a3 = e.int_("unsigned int", 4, bits=3)
    b13 = e.int_("unsigned int", 4, bits=13, offset=3)
    legacy = e.struct("legacy", 8, [("a", a3, 0, 0), ("b", b13, 0, 0), ("c", i32, 32, 0)])
    btf = parse_btf(e.build())
    kf_t, legacy_t = btf[kf], btf[legacy]
    assert isinstance(kf_t, Struct) and isinstance(legacy_t, Struct)
    want = [("a", 0, 3), ("b", 3, 13), ("c", 32, 0)]
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in kf_t.members] == want
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in legacy_t.members] == want


def test_legacy_bitfield_through_typedef_and_const() -> None:
    # pahole's legacy encoding copied the whole chain with the bit size at its INT.
    e = Enc()
    bits5 = e.int_("unsigned int", 4, bits=5, offset=2)  # 1
    td = e.typedef("u5", bits5)  # 2
    c = e.const(td)  # 3
    s = e.struct("s", 4, [("x", c, 8, 0)], kflag=False)
    t = parse_btf(e.build())[s]
    assert isinstance(t, Struct)
    assert t.members == (Member("x", c, 10, 5),)


def test_legacy_full_width_int_is_not_a_bitfield() -> None:
    e = Enc()
    i = e.int_("int", 4, signed=True)
    ptr = e.ptr(i)
    s = e.struct("s", 16, [("i", i, 0, 0), ("p", ptr, 64, 0), ("v", 0, 128, 0)], kflag=False)
    t = parse_btf(e.build())[s]
    assert isinstance(t, Struct)
    assert [m.bitfield_size for m in t.members] == [0, 0, 0]


def test_legacy_bitfield_probe_survives_a_loop() -> None:
    e = Enc()
    e.typedef("a", 2)  # 1 -> 2
    e.const(1)  # 2 -> 1
    s = e.struct("s", 4, [("x", 1, 0, 0)], kflag=False)
    t = parse_btf(e.build())[s]
    assert isinstance(t, Struct)
    assert t.members == (Member("x", 1, 0, 0),)


def test_kind_flag_member_offset_split() -> None:
    e = Enc()
    u64 = e.int_("unsigned long long", 8)
    s = e.struct("s", 16, [("w", u64, 0xABCDEF, 40)])
    t = parse_btf(e.build())[s]
    assert isinstance(t, Struct)
    assert t.members == (Member("w", u64, 0xABCDEF, 40),)


# --- enums, protos ----------------------------------------------------------------


def test_enum_signedness_follows_kind_flag() -> None:
    e = Enc()
    u = e.enum("u", [("HI", 0x80000000)], signed=False)
    s = e.enum("s", [("NEG", 0x80000000)], signed=True)
    u64 = e.enum64("u64", [("HI", 1 << 63)], signed=False)
    s64 = e.enum64("s64", [("NEG", 1 << 63)], signed=True)
    btf = parse_btf(e.build())
    assert btf[u] == Enum(u, "u", 4, False, (EnumValue("HI", 0x80000000),))
    assert btf[s] == Enum(s, "s", 4, True, (EnumValue("NEG", -0x80000000),))
    assert btf[u64] == Enum64(u64, "u64", 8, False, (EnumValue("HI", 1 << 63),))
    assert btf[s64] == Enum64(s64, "s64", 8, True, (EnumValue("NEG", -(1 << 63)),))


def test_variadic_and_void_params() -> None:
    e = Enc()
    i = e.int_("int", 4, signed=True)
    variadic = e.func_proto(i, [("fmt", i), ("", 0)])
    void_only = e.func_proto(i, [("", 0)])  # clang's `int f(void)`... or `int f(...)`
    none = e.func_proto(0, [])
    middle_void = e.func_proto(i, [("a", 0), ("b", i)])
    btf = parse_btf(e.build())
    assert btf[variadic] == FuncProto(variadic, "", i, (Param("fmt", i),), True)
    assert btf[void_only] == FuncProto(void_only, "", i, (), True)
    assert btf[none] == FuncProto(none, "", 0, (), False)
    assert btf[middle_void] == FuncProto(middle_void, "", i, (Param("a", 0), Param("b", i)), False)


def test_tag_attr_kind_flag() -> None:
    e = Enc()
    i = e.int_("int", 4)
    tt = e.type_tag("aligned(8)", i, attr=True)
    dt = e.decl_tag("noinline", i, -1, attr=True)
    btf = parse_btf(e.build())
    assert btf[tt] == TypeTag(tt, "aligned(8)", i, True)
    assert btf[dt] == DeclTag(dt, "noinline", i, -1, True)


def test_pointer_size_guess() -> None:
    e = Enc()
    e.int_("int", 4)
    assert parse_btf(e.build()).pointer_size == 8  # no long: BPF's 8
    e.int_("long unsigned int", 4)
    assert parse_btf(e.build()).pointer_size == 4


# --- what libbpf accepts, so we do too ------------------------------------------------


def test_forward_references_are_legal() -> None:
    e = Enc()
    p = e.ptr(2)
    e.int_("int", 4)
    assert parse_btf(e.build())[p] == Ptr(p, "", 2)


def test_func_proto_return_type_is_not_range_checked() -> None:
    # libbpf's btf_validate_type checks FUNC_PROTO params but not the
    # return type; bpftool dumps such BTF fine. Looking it up still fails.
    e = Enc()
    fp = e.func_proto(99, [])
    btf = parse_btf(e.build())
    t = btf[fp]
    assert isinstance(t, FuncProto)
    with pytest.raises(BtfError, match="type id 99 out of range"):
        btf[t.return_type]


def test_datasec_may_point_at_func() -> None:
    # clang puts extern kfuncs in a .ksyms DATASEC as FUNC entries.
    e = Enc()
    i = e.int_("int", 4)
    fp = e.func_proto(i, [])
    fn = e.func("bpf_kfunc", fp, linkage=2)
    ds = e.datasec(".ksyms", 0, [(fn, 0, 0), (i, 0, 4)])
    t = parse_btf(e.build())[ds]
    assert isinstance(t, Datasec)
    assert [v.type for v in t.vars] == [fn, i]


def test_header_version_and_flags_are_ignored() -> None:
    e = Enc()
    e.int_("int", 4)
    assert len(parse_btf(e.build(version=7, flags=0xFF))) == 2


def test_gap_between_sections_and_trailing_bytes() -> None:
    e = Enc()
    e.int_("int", 4)
    assert len(parse_btf(e.build(gap=12, trailer=b"\xaa" * 5))) == 2


def test_type_section_may_start_late() -> None:
    e = Enc()
    e.int_("int", 4)
    types, strings = e.sections()
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 8, len(types), 8 + len(types), len(strings))
    blob = hdr + b"\0" * 8 + types + strings
    assert parse_btf(blob)[1].name == "int"


def test_native_order_accepts_longer_header() -> None:
    # libbpf only uses hdr_len to find the sections in native byte order.
    e = Enc(NATIVE)
    e.int_("int", 4)
    types, strings = e.sections()
    blob = e.pack("HBBIIIII", 0xEB9F, 1, 0, 32, 0, len(types), len(types), len(strings))
    blob += b"\0" * 8 + types + strings
    assert parse_btf(blob)[1].name == "int"


def test_unused_info_bits_are_ignored() -> None:
    e = Enc()
    e.records.append(e.pack("III", e.s("int"), (1 << 24) | (0x7F << 16), 4) + e.pack("I", 32))
    assert parse_btf(e.build())[1] == Int(1, "int", 4, False, False, False, 32, 0)


# --- what libbpf rejects, so we do too --------------------------------------------------


def _good() -> Enc:
    e = Enc()
    i = e.int_("int", 4, signed=True)
    e.ptr(i)
    return e


def _with(build: Callable[[Enc], object]) -> bytes:
    e = Enc()
    build(e)
    return e.build()


def _patched(blob: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _foreign_hdr_len() -> bytes:
    e = Enc(FOREIGN)
    e.int_("int", 4)
    types, strings = e.sections()
    blob = e.pack("HBBIIIII", 0xEB9F, 1, 0, 32, 0, len(types), len(types), len(strings))
    return blob + b"\0" * 8 + types + strings


MALFORMED: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty", lambda: b"", r"BTF header not found: data is 0 bytes, the header alone is 24"),
    ("short", lambda: _good().build()[:23], r"BTF header not found: data is 23 bytes"),
    (
        "bad magic",
        lambda: _good().build(magic=0x1234),
        r"bad BTF magic 0x3412 at offset 0 \(want 0xeb9f, either byte order\)",
    ),
    (
        "foreign order, long header",
        _foreign_hdr_len,
        rf"BTF header length 32 not supported for {FOREIGN}-endian BTF on a {NATIVE}-endian host",
    ),
    (
        "header longer than data",
        lambda: _good().build(hdr_len=4096),
        r"BTF header length 4096 exceeds the data size 57",
    ),
    (
        "strings past the end",
        lambda: _good().build(str_len=100),
        r"BTF string section \(offset 28, length 100\) ends past the data: "
        r"only 33 bytes follow the 24-byte header",
    ),
    (
        "types overlap strings",
        lambda: _good().build(type_len=32),
        r"BTF type section \(offset 0, length 32\) runs into the string section at offset 28; "
        r"types must come before strings",
    ),
    (
        "types misaligned",
        lambda: _good().build(type_off=2, type_len=26, str_off=28),
        r"BTF type section offset 2 is not 4-byte aligned",
    ),
    (
        "no strings",
        lambda: _good().build(str_len=0),
        r"BTF string section is empty",
    ),
    (
        "strings not NUL-terminated",
        lambda: _good().build(str_len=3),
        r"BTF string section does not end with NUL \(byte at offset 54\)",
    ),
    (
        "strings not starting with empty string",
        lambda: _good().build(str_off=29, str_len=4),
        r"BTF string section must start with the empty string \(offset 53\); split BTF",
    ),
    (
        "kind 0 record",
        lambda: _with(lambda e: e.raw_type(Kind.UNKN)),
        r"BTF type 1: unsupported kind 0 in record at offset 24",
    ),
    (
        "unknown kind 20",
        lambda: _with(lambda e: (e.int_("int", 4), e.raw_type(20))),
        r"BTF type 2: unsupported kind 20 in record at offset 40",
    ),
    (
        "record runs past section",
        lambda: _with(lambda e: e.raw_type(Kind.STRUCT, "s", vlen=2, extra=b"\0" * 12)),
        r"BTF type 1 \(STRUCT\): 36-byte record at offset 24 runs past the end of the type "
        r"section at offset 48",
    ),
    (
        "trailing bytes in type section",
        lambda: _good().build(type_len=24, str_off=28),
        r"BTF type section has 8 trailing bytes at offset 40, too few for a type record",
    ),
    (
        "type name offset",
        lambda: _with(lambda e: e.raw_type(Kind.FWD, 99)),
        r"BTF type 1 \(FWD\): name offset 99 outside the string section \(1 bytes\)",
    ),
    (
        "member name offset",
        lambda: _with(
            lambda e: (
                e.int_("int", 4),
                e.raw_type(Kind.STRUCT, "s", 1, False, 4, e.pack("III", 500, 1, 0)),
            )
        ),
        r"BTF type 2 \(STRUCT s\): member 0: name offset 500 outside the string section",
    ),
    (
        "member type id",
        lambda: _with(
            lambda e: (
                e.int_("int", 4),
                e.struct(
                    "foo", 8, [("a", 1, 0, 0), ("b", 1, 32, 0), ("c", 1, 0, 0), ("d", 99, 0, 0)]
                ),
            )
        ),
        r"BTF type 2 \(STRUCT foo\): member 3: type id 99 out of range \(BTF has 3 types\)",
    ),
    (
        "param name offset",
        lambda: _with(lambda e: e.raw_type(Kind.FUNC_PROTO, vlen=1, extra=e.pack("II", 77, 0))),
        r"BTF type 1 \(FUNC_PROTO\): param 0: name offset 77 outside the string section",
    ),
    (
        "param type id",
        lambda: _with(lambda e: e.func_proto(0, [("x", 0), ("y", 5)])),
        r"BTF type 1 \(FUNC_PROTO\): param 1: type id 5 out of range \(BTF has 2 types\)",
    ),
    (
        "enum value name offset",
        lambda: _with(
            lambda e: e.raw_type(
                Kind.ENUM, "e", 2, False, 4, e.pack("II", 0, 0) + e.pack("II", 9, 1)
            )
        ),
        r"BTF type 1 \(ENUM e\): value 1: name offset 9 outside the string section",
    ),
    (
        "enum64 value name offset",
        lambda: _with(lambda e: e.raw_type(Kind.ENUM64, "", 1, False, 8, e.pack("III", 40, 0, 0))),
        r"BTF type 1 \(ENUM64\): value 0: name offset 40 outside the string section",
    ),
    (
        "ptr target",
        lambda: _with(lambda e: e.ptr(2)),
        r"BTF type 1 \(PTR\): type id 2 out of range \(BTF has 2 types\)",
    ),
    (
        "typedef target",
        lambda: _with(lambda e: e.typedef("t", 0xFFFFFFFF)),
        r"BTF type 1 \(TYPEDEF t\): type id 4294967295 out of range",
    ),
    (
        "var target",
        lambda: _with(lambda e: e.var("v", 3)),
        r"BTF type 1 \(VAR v\): type id 3 out of range",
    ),
    (
        "decl tag target",
        lambda: _with(lambda e: e.decl_tag("t", 3)),
        r"BTF type 1 \(DECL_TAG t\): type id 3 out of range",
    ),
    (
        "type tag target",
        lambda: _with(lambda e: e.type_tag("user", 3)),
        r"BTF type 1 \(TYPE_TAG user\): type id 3 out of range",
    ),
    (
        "array element",
        lambda: _with(lambda e: e.array(7, 1, index=0)),
        r"BTF type 1 \(ARRAY\): element type id 7 out of range",
    ),
    (
        "array index",
        lambda: _with(lambda e: e.array(0, 1, index=8)),
        r"BTF type 1 \(ARRAY\): index type id 8 out of range",
    ),
    (
        "datasec var",
        lambda: _with(lambda e: e.datasec(".bss", 4, [(0, 0, 0), (12, 0, 4)])),
        r"BTF type 1 \(DATASEC \.bss\): var 1: type id 12 out of range",
    ),
    (
        "func target out of range",
        lambda: _with(lambda e: e.func("main", 3)),
        r"BTF type 1 \(FUNC main\): type id 3 out of range",
    ),
    (
        "func to non-proto",
        lambda: _with(lambda e: (e.int_("int", 4), e.func("main", 1))),
        r"BTF type 2 \(FUNC main\): type id 1 is INT, not FUNC_PROTO",
    ),
    (
        "func to void",
        lambda: _with(lambda e: e.func("main", 0)),
        r"BTF type 1 \(FUNC main\): type id 0 is void, not FUNC_PROTO",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [(m, msg) for _, m, msg in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_is_rejected(make: Callable[[], bytes], message: str) -> None:
    with pytest.raises(BtfError, match=message):
        parse_btf(make())


@pytest.mark.parametrize("order", ORDERS)
def test_malformed_rejected_in_both_orders(order: str) -> None:
    e = Enc(order)
    e.ptr(5)
    with pytest.raises(BtfError, match="type id 5 out of range"):
        parse_btf(e.build())


def test_checks_run_in_libbpf_order() -> None:
    # A truncated record later in the section wins over a bad reference in
    # an earlier type: sizes are checked for all types before references.
    e = Enc()
    e.ptr(42)
    e.raw_type(Kind.STRUCT, "s", vlen=3)
    with pytest.raises(BtfError, match="BTF type 2 .* runs past the end"):
        parse_btf(e.build())


def test_every_truncation_is_a_btf_error() -> None:
    blob = _good().build()
    for cut in range(len(blob)):
        with pytest.raises(BtfError):
            parse_btf(blob[:cut])


def test_btf_repr() -> None:
    btf = parse_btf(_good().build())
    assert repr(btf) == "<Btf little-endian, 3 types>"
    assert isinstance(btf, Btf)
    assert btf.describe(2) == "BTF type 2 (PTR)"
    assert btf.describe(1) == "BTF type 1 (INT int)"
    assert btf.describe(0) == "BTF type 0 (void)"
