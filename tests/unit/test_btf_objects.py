"""The BTF reader on real clang-19 objects (tests/data/btf/, both byte orders)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from ecc.btf import (
    Btf,
    Kind,
    Linkage,
    member_type_str,
    parse_btf,
    resolve_alignment,
    resolve_size,
    type_str,
)
from ecc.btf.types import (
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Func,
    FuncProto,
    Fwd,
    Member,
    Param,
    Struct,
    TypeTag,
    Var,
)
from ecc.errors import BtfError

DATA = Path(__file__).resolve().parent.parent / "data" / "btf"
OBJECTS = sorted(DATA.glob("kinds-*.o"))


def test_objects_are_present() -> None:
    # A glob that silently matches nothing would make every test below vacuous.
    assert [p.name for p in OBJECTS] == ["kinds-eb.o", "kinds-el.o"]


@cache
def load(name: str) -> Btf:
    with (DATA / name).open("rb") as f:
        section = ELFFile(f).get_section_by_name(".BTF")
        assert section is not None, f"{name} has no .BTF"
        return parse_btf(section.data())


@pytest.fixture(params=[p.name for p in OBJECTS])
def btf(request: pytest.FixtureRequest) -> Btf:
    return load(request.param)


def test_byte_orders() -> None:
    assert load("kinds-el.o").byte_order == "little"
    assert load("kinds-eb.o").byte_order == "big"


def test_both_orders_decode_to_the_same_types() -> None:
    assert list(load("kinds-el.o")) == list(load("kinds-eb.o"))


def test_every_kind_is_covered(btf: Btf) -> None:
    # Kind.UNKN is void; every other kind appears in kinds.c.
    assert {t.kind for t in btf} == set(Kind)


def _struct(btf: Btf, name: str) -> Struct:
    t = btf.by_name(name, Kind.STRUCT)
    assert isinstance(t, Struct)
    return t


# The export_types member rule (spec section 4) on struct event.
EVENT_MEMBERS = [
    ("pid", "pid_t"),
    ("uid", "__u32"),
    ("ts", "__u64"),
    ("comm", "char[16]"),
    ("grid", "int[2][3][4]"),
    ("name", "const char *"),
    ("fixed", "char * const"),
    ("vol", "volatile int"),
    ("cv", "volatile const int"),
    ("rp", "int * restrict"),
    ("arr_ptr", "int(*)[4]"),
    ("ptr_arr", "int *[4]"),
    ("fp", "int (*)(void *, int)"),
    ("fpr", "char * (*)(int)"),
    ("fparr", "int (*[2])(void)"),
    ("varfn", "void (*)(int, ...)"),
    ("h", "handler_t"),
    ("fwd", "struct fwd_only *"),
    ("fwdu", "union fwd_union *"),
    ("c", "enum"),
    ("w", "enum"),
    ("n64", "enum"),
    ("fl", "enum"),
    ("b", "composite"),
    ("num", "composite"),
    ("anon_s", "composite"),
    ("anon_u", "composite"),
    ("anon_e", "enum"),
    ("uptr", 'int __attribute__((btf_type_tag("user"))) *'),
    ("ld", "long double"),
    ("big", "__int128"),
    ("ubig", "unsigned __int128"),
    ("sc", "signed char"),
    ("uc", "unsigned char"),
    ("sh", "short"),
    ("ush", "unsigned short"),
    ("l", "long"),
    ("ul", "unsigned long"),
    ("ll", "long long"),
    ("ull", "unsigned long long"),
    ("ok", "bool"),
    ("flex", "int[0]"),
]


def test_event_members(btf: Btf) -> None:
    event = _struct(btf, "event")
    assert event.size == 432
    assert [(m.name, member_type_str(btf, m.type)) for m in event.members] == EVENT_MEMBERS
    assert resolve_size(btf, event.id) == 432
    assert resolve_alignment(btf, event.id) == 8


def test_event_members_stripped(btf: Btf) -> None:
    event = _struct(btf, "event")
    stripped = {m.name: type_str(btf, m.type) for m in event.members}
    assert stripped["name"] == "char *"
    assert stripped["cv"] == "int"
    assert stripped["uptr"] == "int *"
    assert stripped["b"] == "struct bits"
    assert stripped["anon_s"] == "struct"
    assert stripped["anon_u"] == "union"
    assert stripped["anon_e"] == "enum"


# (section, [(variable, linkage, data_sections type string)])
DATASECS = [
    (
        ".bss",
        [
            ("const_ev_ptr", Linkage.GLOBAL, "struct event *"),
            ("last_event", Linkage.GLOBAL, "struct event *"),
            ("matrix", Linkage.GLOBAL, "int[3][4]"),
            ("zero_event", Linkage.GLOBAL, "struct event"),
            ("zero_float", Linkage.GLOBAL, "float"),
            ("zero_double", Linkage.GLOBAL, "double"),
            ("cb", Linkage.GLOBAL, "handler_t"),
            ("zero_num", Linkage.GLOBAL, "union number"),
            ("zero_color", Linkage.GLOBAL, "enum color"),
        ],
    ),
    (".data", [("counter", Linkage.GLOBAL, "int"), ("hidden", Linkage.STATIC, "int")]),
    (
        ".kconfig",
        [
            ("LINUX_KERNEL_VERSION", Linkage.EXTERN, "int"),
            ("CONFIG_BPF_SYSCALL", Linkage.EXTERN, "bool"),
        ],
    ),
    (
        ".rodata",
        [("min_duration", Linkage.GLOBAL, "int"), ("greeting", Linkage.GLOBAL, "char[16]")],
    ),
    ("license", [("LICENSE", Linkage.GLOBAL, "char[4]")]),
]


def test_data_sections(btf: Btf) -> None:
    for name, want in DATASECS:
        sec = btf.by_name(name, Kind.DATASEC)
        assert isinstance(sec, Datasec), name
        got = []
        for info in sec.vars:
            var = btf[info.type]
            assert isinstance(var, Var)
            got.append((var.name, var.linkage, type_str(btf, var.type)))
            # The DATASEC's per-variable size is the variable's type size.
            assert resolve_size(btf, var.id) == info.size == resolve_size(btf, var.type)
        assert got == want
    ksyms = btf.by_name(".ksyms", Kind.DATASEC)
    assert isinstance(ksyms, Datasec)
    kfunc = btf[ksyms.vars[0].type]
    assert isinstance(kfunc, Func) and kfunc.name == "bpf_fake_kfunc"
    assert kfunc.linkage == Linkage.EXTERN


def test_bitfields(btf: Btf) -> None:
    bits = _struct(btf, "bits")
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in bits.members] == [
        ("lo", 0, 3),
        ("mid", 3, 13),
        ("neg", 16, 4),
        ("wide", 20, 40),
        ("flag", 60, 1),
        ("after", 64, 0),
    ]
    assert resolve_alignment(btf, bits.id) == 8


def test_enums(btf: Btf) -> None:
    assert btf.by_name("color") == Enum(
        btf.ids_by_name("color")[0],
        "color",
        4,
        True,
        (EnumValue("RED", 0), EnumValue("GREEN", 5), EnumValue("BLUE", -1)),
    )
    flags = btf.by_name("flags", Kind.ENUM)
    assert isinstance(flags, Enum) and not flags.signed
    assert flags.values[1] == EnumValue("F_B", 0x80000000)
    wide = btf.by_name("wide", Kind.ENUM64)
    assert isinstance(wide, Enum64) and not wide.signed
    assert wide.values == (EnumValue("W_SMALL", 1), EnumValue("W_BIG", 0xFFFFFFFF00000001))
    neg = btf.by_name("neg64", Kind.ENUM64)
    assert isinstance(neg, Enum64) and neg.signed
    assert neg.values[0] == EnumValue("N_MIN", -(1 << 63))


def test_functions_and_tags(btf: Btf) -> None:
    linkages = {t.name: t.linkage for t in btf if isinstance(t, Func)}
    assert linkages == {
        "helper_global": Linkage.GLOBAL,
        "handle_exec": Linkage.GLOBAL,
        "bpf_fake_kfunc": Linkage.EXTERN,
        "helper_static": Linkage.STATIC,
    }
    helper = btf.by_name("helper_static", Kind.FUNC)
    assert isinstance(helper, Func)
    proto = btf[helper.type]
    assert isinstance(proto, FuncProto)
    assert [p.name for p in proto.params] == ["a", "b"]
    assert type_str(btf, proto.id) == "int(int a, struct bits *b)"
    tags = {(t.name, btf[t.type].name, t.component_idx) for t in btf if isinstance(t, DeclTag)}
    assert tags == {
        ("global_fn", "helper_global", -1),
        ("param_a", "helper_static", 0),
        ("event_struct", "event", -1),
        ("uid_member", "event", 1),
    }
    tag = btf.by_name("user", Kind.TYPE_TAG)
    assert isinstance(tag, TypeTag) and not tag.attr
    assert btf.by_name("fwd_union") == Fwd(btf.ids_by_name("fwd_union")[0], "fwd_union", True)
    handler = btf.by_name("handler_t", Kind.TYPEDEF)
    assert handler is not None
    assert type_str(btf, handler.id) == "handler_t"


def test_variadic_pointer(btf: Btf) -> None:
    event = _struct(btf, "event")
    varfn = next(m for m in event.members if m.name == "varfn")
    ptr = btf[varfn.type]
    proto = btf[ptr.type]  # type: ignore[union-attr]
    assert isinstance(proto, FuncProto)
    assert proto.variadic
    assert proto.params == (Param("", btf.ids_by_name("int", Kind.INT)[0]),)


def test_every_type_renders_or_says_why(btf: Btf) -> None:
    for t in btf:
        try:
            text = type_str(btf, t.id, strip_mods=False)
        except BtfError as exc:
            assert t.kind in (Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG), exc
        else:
            assert text


def test_union_member_offsets(btf: Btf) -> None:
    num = btf.by_name("number", Kind.UNION)
    assert num is not None
    assert num.members == (  # type: ignore[union-attr]
        Member("i", btf.ids_by_name("int")[0], 0, 0),
        Member("f", btf.ids_by_name("float")[0], 0, 0),
        Member("d", btf.ids_by_name("double")[0], 0, 0),
        Member("raw", num.members[3].type, 0, 0),  # type: ignore[union-attr]
    )
