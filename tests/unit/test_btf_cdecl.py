"""type_str / type_decl / member_type_str against hand-built types.

Expected strings are what libbpf's ``btf_dump__emit_type_decl`` prints for
the same BTF (checked with libbpf 1.5 through bpftool, see
tests/test_btf_bpftool.py), except that anonymous struct/union/enum print
as the bare keyword (spec section 4).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

# Shared hand-built-blob encoder; tests/unit is on sys.path under pytest.
from test_btf_encoder import Enc

from ecc.btf import Kind, member_type_str, parse_btf, type_decl, type_str
from ecc.errors import BtfError


def _int(e: Enc) -> int:
    return e.int_("int", 4, signed=True)


def _char(e: Enc) -> int:
    return e.int_("char", 1, signed=True)


def _struct_s(e: Enc) -> int:
    return e.struct("S", 4, [("a", _int(e), 0, 0)])


def _fp_void_int(e: Enc) -> int:
    i = _int(e)
    return e.ptr(e.func_proto(i, [("", e.ptr(0)), ("", i)]))


def _three_dim(e: Enc) -> int:
    i = _int(e)
    return e.array(e.array(e.array(i, 4), 3), 2)


def _hof(e: Enc) -> int:
    # int (*(*)(int))(long): pointer to a function returning a function pointer
    i = _int(e)
    inner = e.ptr(e.func_proto(i, [("", e.int_("long", 8, signed=True))]))
    return e.ptr(e.func_proto(inner, [("", i)]))


def _ptr_chain(n: int) -> Callable[[Enc], int]:
    def build(e: Enc) -> int:
        t = _int(e)
        for _ in range(n):
            t = e.ptr(t)
        return t

    return build


# (case id, builder returning the type id to render, with strip_mods, without)
CASES: list[tuple[str, Callable[[Enc], int], str, str]] = [
    ("void", lambda e: 0, "void", "void"),
    ("int", _int, "int", "int"),
    ("ull", lambda e: e.int_("unsigned long long", 8), "unsigned long long", "unsigned long long"),
    ("bool", lambda e: e.int_("_Bool", 1, bool_=True), "_Bool", "_Bool"),
    ("int128", lambda e: e.int_("__int128", 16, signed=True), "__int128", "__int128"),
    ("float", lambda e: e.float_("float", 4), "float", "float"),
    ("double", lambda e: e.float_("double", 8), "double", "double"),
    ("char[16]", lambda e: e.array(_char(e), 16), "char[16]", "char[16]"),
    ("int[2][3][4]", _three_dim, "int[2][3][4]", "int[2][3][4]"),
    ("struct S", _struct_s, "struct S", "struct S"),
    ("struct S *", lambda e: e.ptr(_struct_s(e)), "struct S *", "struct S *"),
    ("struct S[4]", lambda e: e.array(_struct_s(e), 4), "struct S[4]", "struct S[4]"),
    ("char *", lambda e: e.ptr(_char(e)), "char *", "char *"),
    ("void *", lambda e: e.ptr(0), "void *", "void *"),
    ("int **", _ptr_chain(2), "int **", "int **"),
    ("int ***", _ptr_chain(3), "int ***", "int ***"),
    ("fn ptr", _fp_void_int, "int (*)(void *, int)", "int (*)(void *, int)"),
    ("typedef __u32", lambda e: e.typedef("__u32", e.int_("unsigned int", 4)), "__u32", "__u32"),
    ("typedef pid_t", lambda e: e.typedef("pid_t", _int(e)), "pid_t", "pid_t"),
    ("ptr to typedef", lambda e: e.ptr(e.typedef("pid_t", _int(e))), "pid_t *", "pid_t *"),
    ("anon struct", lambda e: e.struct("", 4, [("x", _int(e), 0, 0)]), "struct", "struct"),
    ("anon union", lambda e: e.union("", 4, [("x", _int(e), 0, 0)]), "union", "union"),
    ("anon enum", lambda e: e.enum("", [("A", 1)]), "enum", "enum"),
    ("ptr to anon struct", lambda e: e.ptr(e.struct("", 0, [])), "struct *", "struct *"),
    ("named union", lambda e: e.union("u", 4, [("x", _int(e), 0, 0)]), "union u", "union u"),
    ("named enum", lambda e: e.enum("E", [("A", 1)]), "enum E", "enum E"),
    ("named enum64", lambda e: e.enum64("W", [("A", 1)]), "enum W", "enum W"),
    ("fwd struct", lambda e: e.ptr(e.fwd("later")), "struct later *", "struct later *"),
    ("fwd union", lambda e: e.fwd("later", union=True), "union later", "union later"),
    # qualifiers: dropped everywhere with strip_mods, libbpf placement without
    ("const char *", lambda e: e.ptr(e.const(_char(e))), "char *", "const char *"),
    ("volatile int", lambda e: e.volatile(_int(e)), "int", "volatile int"),
    ("char * const", lambda e: e.const(e.ptr(_char(e))), "char *", "char * const"),
    ("int * restrict", lambda e: e.restrict(e.ptr(_int(e))), "int *", "int * restrict"),
    (
        "const volatile int (volatile outermost)",
        lambda e: e.volatile(e.const(_int(e))),
        "int",
        "const volatile int",
    ),
    (
        # clang emits `const volatile int` as CONST -> VOLATILE -> INT, and
        # libbpf prints the qualifier nearest the base type first.
        "const volatile int (clang order)",
        lambda e: e.const(e.volatile(_int(e))),
        "int",
        "volatile const int",
    ),
    (
        "const volatile char[100]",
        lambda e: e.array(e.const(e.volatile(_char(e))), 100),
        "char[100]",
        "volatile const char[100]",
    ),
    (
        "const volatile struct OutData *",
        lambda e: e.ptr(e.const(e.volatile(e.struct("OutData", 0, [])))),
        "struct OutData *",
        "volatile const struct OutData *",
    ),
    ("const void *", lambda e: e.ptr(e.const(0)), "void *", "const void *"),
    (
        "const int * volatile * restrict",
        lambda e: e.restrict(e.ptr(e.volatile(e.ptr(e.const(_int(e)))))),
        "int **",
        "const int * volatile * restrict",
    ),
    ("const pid_t", lambda e: e.const(e.typedef("pid_t", _int(e))), "pid_t", "const pid_t"),
    # arrays and function pointers wrap the declarator
    ("pointer to array", lambda e: e.ptr(e.array(_int(e), 4)), "int(*)[4]", "int(*)[4]"),
    ("array of pointers", lambda e: e.array(e.ptr(_int(e)), 4), "int *[4]", "int *[4]"),
    (
        "fn ptr returning ptr",
        lambda e: e.ptr(e.func_proto(e.ptr(_char(e)), [("", _int(e))])),
        "char * (*)(int)",
        "char * (*)(int)",
    ),
    (
        "array of fn ptrs",
        lambda e: e.array(e.ptr(e.func_proto(_int(e), [])), 2),
        "int (*[2])(void)",
        "int (*[2])(void)",
    ),
    (
        "variadic",
        lambda e: e.ptr(e.func_proto(0, [("", _int(e)), ("", 0)])),
        "void (*)(int, ...)",
        "void (*)(int, ...)",
    ),
    (
        "lone void param is (void)",
        lambda e: e.ptr(e.func_proto(_int(e), [("", 0)])),
        "int (*)(void)",
        "int (*)(void)",
    ),
    ("fn returning fn ptr", _hof, "int (* (*)(int))(long)", "int (* (*)(int))(long)"),
    (
        "bare proto with names",
        lambda e: e.func_proto(_int(e), [("ctx", e.ptr(0)), ("n", _int(e))]),
        "int(void *ctx, int n)",
        "int(void *ctx, int n)",
    ),
    (
        "param qualifiers follow strip_mods",
        lambda e: e.ptr(e.func_proto(_int(e), [("", e.ptr(e.const(_char(e))))])),
        "int (*)(char *)",
        "int (*)(const char *)",
    ),
    (
        "qualifiers on an array are dropped (GCC quirk)",
        lambda e: e.const(e.array(_int(e), 4)),
        "int[4]",
        "int[4]",
    ),
    (
        "volatile fn ptr is dropped (GCC noreturn quirk)",
        lambda e: e.ptr(e.volatile(e.func_proto(0, []))),
        "void (*)(void)",
        "void (*)(void)",
    ),
    ("zero-length array", lambda e: e.array(_int(e), 0), "int[0]", "int[0]"),
    (
        "type tag",
        lambda e: e.ptr(e.type_tag("user", _int(e))),
        "int *",
        'int __attribute__((btf_type_tag("user"))) *',
    ),
    (
        "type tag attribute form",
        lambda e: e.type_tag("aligned(8)", _int(e), attr=True),
        "int",
        "int __attribute__((aligned(8)))",
    ),
    ("31 pointers", _ptr_chain(31), "int " + "*" * 31, "int " + "*" * 31),
]


@pytest.mark.parametrize(
    ("build", "stripped", "kept"),
    [(b, s, k) for _, b, s, k in CASES],
    ids=[c[0] for c in CASES],
)
@pytest.mark.parametrize("order", ["little", "big"])
def test_type_str(build: Callable[[Enc], int], stripped: str, kept: str, order: str) -> None:
    e = Enc(order)
    type_id = build(e)
    btf = parse_btf(e.build())
    assert type_str(btf, type_id) == stripped
    assert type_str(btf, type_id, strip_mods=True) == stripped
    assert type_str(btf, type_id, strip_mods=False) == kept


def test_strip_mods_is_the_default() -> None:
    e = Enc()
    p = e.ptr(e.const(_char(e)))
    assert type_str(parse_btf(e.build()), p) == "char *"


# --- with a declarator name, as bpftool prints struct members -------------------------

NAMED: list[tuple[str, Callable[[Enc], int], str]] = [
    ("scalar", _int, "int x"),
    ("pointer", _ptr_chain(2), "int **x"),
    ("array", _three_dim, "int x[2][3][4]"),
    ("pointer to array", lambda e: e.ptr(e.array(_int(e), 4)), "int (*x)[4]"),
    ("array of pointers", lambda e: e.array(e.ptr(_int(e)), 4), "int *x[4]"),
    ("fn ptr", _fp_void_int, "int (*x)(void *, int)"),
    ("fn returning fn ptr", _hof, "int (* (*x)(int))(long)"),
    ("char * const", lambda e: e.const(e.ptr(_char(e))), "char * const x"),
    (
        "array of fn ptrs",
        lambda e: e.array(e.ptr(e.func_proto(_int(e), [])), 2),
        "int (*x[2])(void)",
    ),
]


@pytest.mark.parametrize(
    ("build", "want"), [(b, w) for _, b, w in NAMED], ids=[n for n, _, _ in NAMED]
)
def test_type_decl_with_name(build: Callable[[Enc], int], want: str) -> None:
    e = Enc()
    type_id = build(e)
    assert type_decl(parse_btf(e.build()), type_id, "x") == want


# --- export_types member rule ------------------------------------------------------------


def test_member_type_str() -> None:
    e = Enc()
    i = _int(e)
    s = e.struct("S", 4, [("a", i, 0, 0)])
    u = e.union("U", 4, [("a", i, 0, 0)])
    en = e.enum("E", [("A", 1)])
    en64 = e.enum64("W", [("A", 1)])
    anon = e.struct("", 4, [("a", i, 0, 0)])
    td_s = e.typedef("S_t", s)
    td_e = e.typedef("E_t", en)
    c_s = e.const(s)
    p_s = e.ptr(s)
    cs = e.ptr(e.const(_char(e)))
    vol = e.volatile(i)
    arr = e.array(s, 2)
    btf = parse_btf(e.build())
    assert member_type_str(btf, s) == "composite"
    assert member_type_str(btf, u) == "composite"
    assert member_type_str(btf, anon) == "composite"
    assert member_type_str(btf, en) == "enum"
    assert member_type_str(btf, en64) == "enum"
    # Only the member's own type counts: typedefs and qualifiers are rendered.
    assert member_type_str(btf, td_s) == "S_t"
    assert member_type_str(btf, td_e) == "E_t"
    assert member_type_str(btf, c_s) == "const struct S"
    assert member_type_str(btf, p_s) == "struct S *"
    assert member_type_str(btf, arr) == "struct S[2]"
    assert member_type_str(btf, cs) == "const char *"
    assert member_type_str(btf, vol) == "volatile int"
    assert member_type_str(btf, i) == "int"


# --- what has no C spelling, and hostile graphs -------------------------------------------


@pytest.mark.parametrize("kind", ["VAR", "FUNC", "DATASEC", "DECL_TAG"])
def test_non_c_types_raise(kind: str) -> None:
    e = Enc()
    i = _int(e)
    fp = e.func_proto(i, [])
    v = e.var("v", i)
    ids = {
        "VAR": v,
        "FUNC": e.func("f", fp),
        "DATASEC": e.datasec(".data", 4, [(v, 0, 4)]),
        "DECL_TAG": e.decl_tag("t", i),
    }
    btf = parse_btf(e.build())
    want = rf"BTF type {ids[kind]} \({kind} [.\w]+\): a {kind} is not a C type"
    with pytest.raises(BtfError, match=want):
        type_str(btf, ids[kind])
    with pytest.raises(BtfError, match="is not a C type"):
        member_type_str(btf, ids[kind])


def test_param_of_non_c_type_raises() -> None:
    e = Enc()
    i = _int(e)
    v = e.var("v", i)
    p = e.ptr(e.func_proto(i, [("", v)]))
    with pytest.raises(BtfError, match=rf"BTF type {p} \(PTR\): cannot write as C: it refers to "):
        type_str(parse_btf(e.build()), p)


def test_bad_return_type_raises() -> None:
    e = Enc()
    p = e.ptr(e.func_proto(77, []))
    with pytest.raises(BtfError, match="type id 77 out of range"):
        type_str(parse_btf(e.build()), p)


@pytest.mark.parametrize("strip", [True, False])
def test_reference_loop_raises(strip: bool) -> None:
    e = Enc()
    e.ptr(2)  # 1 -> 2
    e.const(3)  # 2 -> 3
    e.volatile(1)  # 3 -> 1
    btf = parse_btf(e.build())
    for type_id in (1, 2, 3):
        with pytest.raises(BtfError, match=r"type chain longer than 32 \(reference loop\?\)"):
            type_str(btf, type_id, strip_mods=strip)


def test_typedef_loop_is_just_a_name() -> None:
    # A typedef ends a declaration (its name is printed), so a typedef that
    # reaches itself through const is still printable; layout.py catches it.
    e = Enc()
    e.typedef("t", 2)  # 1 -> 2
    e.const(1)  # 2 -> 1
    btf = parse_btf(e.build())
    assert type_str(btf, 1) == "t"
    assert type_str(btf, 2, strip_mods=False) == "const t"


def test_chain_too_long_raises() -> None:
    e = Enc()
    t = _ptr_chain(40)(e)
    with pytest.raises(BtfError, match="type chain longer than 32"):
        type_str(parse_btf(e.build()), t)


def test_prototype_nesting_bounded() -> None:
    e = Enc()
    t = e.func_proto(0, [])
    for _ in range(40):
        t = e.func_proto(0, [("", e.ptr(t))])
    with pytest.raises(BtfError, match="function prototypes nested deeper than 32"):
        type_str(parse_btf(e.build()), t)


def test_exponential_prototype_fanout_is_capped() -> None:
    # Each level's 8 parameters all point at the next level: 8**12 paths.
    e = Enc()
    t = e.ptr(e.func_proto(0, []))
    for _ in range(12):
        t = e.ptr(e.func_proto(0, [("", t)] * 8))
    with pytest.raises(BtfError, match="declaration needs more than 16384 types"):
        type_str(parse_btf(e.build()), t)


def test_kind_of_void() -> None:
    btf = parse_btf(Enc().build())
    assert btf.kind_of(0) == Kind.UNKN
    assert member_type_str(btf, 0) == "void"
