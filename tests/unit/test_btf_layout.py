"""resolve_size / resolve_alignment / skip_mods, following libbpf's rules."""

from __future__ import annotations

import pytest

# Shared hand-built-blob encoder; tests/unit is on sys.path under pytest.
from test_btf_encoder import Enc

from ecc.btf import (
    parse_btf,
    resolve_alignment,
    resolve_size,
    skip_mods,
    skip_mods_and_typedefs,
)
from ecc.errors import BtfError


def test_sizes() -> None:
    e = Enc()
    i = e.int_("int", 4, signed=True)
    c = e.int_("char", 1, signed=True)
    td = e.typedef("pid_t", i)
    cv = e.const(e.volatile(td))
    arr = e.array(cv, 10)
    grid = e.array(e.array(i, 4), 3)
    p = e.ptr(c)
    s = e.struct("s", 24, [("a", i, 0, 0)])
    u = e.union("u", 8, [("a", i, 0, 0)])
    en = e.enum("e", [("A", 1)])
    en64 = e.enum64("w", [("A", 1)])
    fl = e.float_("double", 8)
    var = e.var("v", arr)
    ds = e.datasec(".data", 44, [(var, 0, 40)])
    tag = e.decl_tag("t", s)
    ttag = e.type_tag("user", i)
    empty = e.array(s, 0)
    btf = parse_btf(e.build())
    expect = {
        i: 4,
        c: 1,
        td: 4,
        cv: 4,
        arr: 40,
        grid: 48,
        p: 8,
        s: 24,
        u: 8,
        en: 4,
        en64: 8,
        fl: 8,
        var: 40,
        ds: 44,
        tag: 24,
        ttag: 4,
        empty: 0,
    }
    assert {t: resolve_size(btf, t) for t in expect} == expect


def test_pointer_size_follows_long() -> None:
    e = Enc()
    e.int_("long", 4, signed=True)
    p = e.ptr(0)
    btf = parse_btf(e.build())
    assert resolve_size(btf, p) == 4
    assert resolve_alignment(btf, p) == 4


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda e: 0, r"BTF type 0 \(void\): has no size \(resolves to void\)"),
        (lambda e: e.ptr(0) and e.typedef("v", 0), r"BTF type 2 \(TYPEDEF v\): has no size"),
        (lambda e: e.fwd("later"), r"has no size \(resolves to a forward declaration\)"),
        (
            lambda e: e.func_proto(0, []),
            r"BTF type 1 \(FUNC_PROTO\): has no size \(resolves to BTF type 1 \(FUNC_PROTO\)\)",
        ),
        (
            lambda e: e.func("f", e.func_proto(0, [])),
            r"BTF type 2 \(FUNC f\): has no size",
        ),
    ],
)
def test_no_size(build: object, message: str) -> None:
    e = Enc()
    type_id = build(e)  # type: ignore[operator]
    with pytest.raises(BtfError, match=message):
        resolve_size(parse_btf(e.build()), type_id)


def test_size_overflow() -> None:
    e = Enc()
    i = e.int_("int", 4)
    big = e.array(i, 0x40000000)  # 4 GiB: one byte too many
    ok = e.array(e.int_("char", 1), 0xFFFFFFFF)
    nested = e.array(e.array(i, 0x10000), 0x10000)
    zero_outer = e.array(e.array(i, 0xFFFFFFFF), 0)
    btf = parse_btf(e.build())
    with pytest.raises(BtfError, match=r"size overflows: 1073741824 x 4 bytes exceeds 4294967295"):
        resolve_size(btf, big)
    assert resolve_size(btf, ok) == 0xFFFFFFFF
    with pytest.raises(BtfError, match="size overflows"):
        resolve_size(btf, nested)
    assert resolve_size(btf, zero_outer) == 0


def test_size_loop_and_depth() -> None:
    e = Enc()
    e.typedef("t", 2)  # 1 -> 2
    e.const(1)  # 2 -> 1 : a typedef that reaches itself through const
    i = e.int_("int", 4)
    deep = i
    for _ in range(31):
        deep = e.typedef("d", deep)
    deeper = e.const(deep)
    btf = parse_btf(e.build())
    with pytest.raises(
        BtfError,
        match=r"BTF type 1 \(TYPEDEF t\): resolving size: type chain "
        r"longer than 32 \(reference loop\?\)",
    ):
        resolve_size(btf, 1)
    # libbpf looks at 32 types: 31 hops and the INT is fine, 32 hops is not.
    assert resolve_size(btf, deep) == 4
    with pytest.raises(BtfError, match="longer than 32"):
        resolve_size(btf, deeper)


def test_alignment() -> None:
    e = Enc()
    c = e.int_("char", 1)
    s16 = e.int_("short", 2)
    i = e.int_("int", 4)
    ll = e.int_("long long", 8)
    i128 = e.int_("__int128", 16)
    ld = e.float_("long double", 16)
    p = e.ptr(c)
    natural = e.struct("nat", 16, [("c", c, 0, 0), ("l", ll, 64, 0)])
    packed = e.struct("packed", 9, [("c", c, 0, 0), ("l", ll, 8, 0)])
    packed_size = e.struct("psize", 12, [("l", ll, 0, 0), ("i", i, 64, 0)])
    bitfields = e.struct("bf", 4, [("a", i, 0, 3), ("b", i, 3, 5)])
    empty = e.struct("empty", 0, [])
    u = e.union("u", 8, [("c", c, 0, 0), ("p", p, 0, 0)])
    arr = e.array(s16, 3)
    td = e.typedef("t", e.const(arr))
    btf = parse_btf(e.build())
    expect = {
        c: 1,
        s16: 2,
        i: 4,
        ll: 8,
        i128: 8,
        ld: 8,
        p: 8,
        natural: 8,
        packed: 1,
        packed_size: 1,
        bitfields: 4,
        empty: 1,
        u: 8,
        arr: 2,
        td: 2,
    }
    assert {t: resolve_alignment(btf, t) for t in expect} == expect


def test_alignment_errors() -> None:
    e = Enc()
    fp = e.func_proto(0, [])
    zero = e.int_("weird", 0)
    s = e.struct("s", 8, [("f", e.ptr(fp), 0, 0), ("z", zero, 0, 0)])
    e.typedef("loop", 6)  # 5 -> 6
    e.const(5)  # 6 -> 5
    btf = parse_btf(e.build())
    with pytest.raises(BtfError, match=r"BTF type 1 \(FUNC_PROTO\): has no alignment"):
        resolve_alignment(btf, fp)
    with pytest.raises(BtfError, match=r"BTF type 4 \(STRUCT s\): has no alignment \(BTF type 2"):
        resolve_alignment(btf, s)
    with pytest.raises(BtfError, match="resolving alignment: type chain longer than 32"):
        resolve_alignment(btf, 5)
    with pytest.raises(BtfError, match="has no alignment"):
        resolve_alignment(btf, 0)


def test_skip_mods() -> None:
    e = Enc()
    i = e.int_("int", 4)
    td = e.typedef("t", i)
    chain = e.const(e.volatile(e.restrict(e.type_tag("user", td))))
    p = e.ptr(chain)
    btf = parse_btf(e.build())
    assert skip_mods(btf, chain) == td
    assert skip_mods_and_typedefs(btf, chain) == i
    assert skip_mods(btf, p) == p
    assert skip_mods(btf, 0) == 0
    assert skip_mods_and_typedefs(btf, td) == i


def test_skip_mods_loop() -> None:
    e = Enc()
    e.const(2)  # 1 -> 2
    e.typedef("t", 1)  # 2 -> 1
    btf = parse_btf(e.build())
    assert skip_mods(btf, 1) == 2  # stops at the typedef
    with pytest.raises(
        BtfError,
        match=r"BTF type 1 \(CONST\): skipping qualifiers and typedefs: "
        r"type chain longer than 32",
    ):
        skip_mods_and_typedefs(btf, 1)
    with pytest.raises(BtfError, match="out of range"):
        skip_mods(btf, 3)
