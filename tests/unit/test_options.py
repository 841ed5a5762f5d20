"""ecc.run.options: package variables as command-line options.

Most tests use a real object, tests/data/options/vars.bpf.c compiled with
clang-19 for both byte orders at test time. The property tests use hand-made
specs so they run without clang too.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc.btf import Btf, Kind, parse_btf
from ecc.btf.types import Datasec, Var
from ecc.compiler.compile import parse_include_dirs
from ecc.elf import BpfObject, read_object
from ecc.errors import AnnotationError, EccError, PackageError
from ecc.meta.skel import build_meta
from ecc.record import replace as replace_record
from ecc.run.options import (
    ByteOrder,
    OptionKind,
    OptionSpec,
    decode_value,
    describe,
    option_specs,
    parse_value,
    read_current,
)
from ecc.run.sections import apply_defaults, apply_values

SOURCE = Path(__file__).resolve().parent.parent / "data" / "options" / "vars.bpf.c"
CLANG = shutil.which("clang-19")
DATA_SECTIONS = (".rodata", ".data", ".data.cfg", ".bss")

# Every variable that becomes an option, in package order, with what the
# object says about it: (section, type string, kind, size).
VARIABLES: dict[str, tuple[str, str, str, int]] = {
    "c_int": (".rodata", "int", "int", 4),
    "c_u64": (".rodata", "unsigned long long", "int", 8),
    "c_bool": (".rodata", "bool", "bool", 1),
    "c_raw_bool": (".rodata", "_Bool", "bool", 1),
    "c_pid": (".rodata", "pid_t", "int", 4),
    "c_mode": (".rodata", "enum mode", "enum", 4),
    "c_big": (".rodata", "enum big", "enum", 8),
    "c_neg8": (".rodata", "enum neg8", "enum", 1),
    "c_anon": (".rodata", "enum", "enum", 4),
    "c_comm": (".rodata", "char[16]", "string", 16),
    "c_name": (".rodata", "name_t", "string", 8),
    "c_double": (".rodata", "double", "float", 8),
    "c_float": (".rodata", "float", "float", 4),
    "c_pair": (".rodata", "struct pair", "unsupported", 8),
    "c_u8": (".rodata", "unsigned char", "int", 1),
    "c_s8": (".rodata", "signed char", "int", 1),
    "c_s16": (".rodata", "short", "int", 2),
    "c_u16": (".rodata", "unsigned short", "int", 2),
    "c_u32": (".rodata", "__u32", "int", 4),
    "c_long": (".rodata", "long", "int", 8),
    "c_i128": (".rodata", "__int128", "int", 16),
    "c_u128": (".rodata", "unsigned __int128", "int", 16),
    "c_ints": (".rodata", "int[3]", "unsupported", 12),
    "c_mac": (".rodata", "__u8[6]", "unsupported", 6),
    "c_ch": (".rodata", "char", "int", 1),
    "c_ptr": (".rodata", "int *", "unsupported", 8),
    "d_count": (".data", "int", "int", 4),
    "d_big": (".data", "__u64", "int", 8),
    "cfg_level": (".data.cfg", "int", "int", 4),
    "cfg_port": (".data.cfg", "unsigned short", "int", 2),
    "b_zero": (".bss", "int", "int", 4),
    "b_name": (".bss", "char[8]", "string", 8),
}

# Integer options and the C range their (size, signedness) allows.
INT_RANGES: dict[str, tuple[int, int]] = {
    "c_int": (-(2**31), 2**31 - 1),
    "c_u64": (0, 2**64 - 1),
    "c_pid": (-(2**31), 2**31 - 1),
    "c_u8": (0, 255),
    "c_s8": (-128, 127),
    "c_s16": (-32768, 32767),
    "c_u16": (0, 65535),
    "c_u32": (0, 2**32 - 1),
    "c_long": (-(2**63), 2**63 - 1),
    "c_i128": (-(2**127), 2**127 - 1),
    "c_u128": (0, 2**128 - 1),
    "c_ch": (-128, 127),
    "d_count": (-(2**31), 2**31 - 1),
    "d_big": (0, 2**64 - 1),
    "cfg_level": (-(2**31), 2**31 - 1),
    "cfg_port": (0, 65535),
    "b_zero": (-(2**31), 2**31 - 1),
}

# The annotations a doc comment would have given; added to the meta by hand.
ANNOTATIONS: dict[str, dict[str, Any]] = {
    "c_pid": {"cmdarg": {"long": "pid", "short": "p", "help": "process to trace"},
              "description": "not the help: cmdarg.help wins"},
    "c_int": {"description": "an int"},
    "c_mode": {"cmdarg": {"long": "mode"}},
    "b_name": {"cmdarg": {"long": "comm"}},
    "c_bool": {"cmdarg": {"default": False}},
    "c_comm": {"value": "zsh"},
    "d_count": {"value": 100, "description": "how many"},
    "cfg_level": {"cmdarg": {"default": "0x10"}, "value": 5},
    "c_double": {"description": {"json": "description"}},
}


@dataclass(frozen=True)
class Built:
    data: bytes
    obj: BpfObject
    btf: Btf
    meta: dict[str, Any]
    initial: dict[str, bytes]
    specs: dict[str, OptionSpec]

    def spec(self, var: str) -> OptionSpec:
        return self.specs[var]


def _compile(target: str, out: Path) -> bytes:
    assert CLANG is not None
    probe = subprocess.run([CLANG, "-v", "-E", "-x", "c", "-", "-o", "/dev/null"],
                           input=b"", capture_output=True, check=True)
    # -target bpf does not search the host's multiarch dir, where asm/types.h lives.
    incs = [a for d in parse_include_dirs(probe.stderr.decode()) for a in ("-idirafter", d)]
    obj = out / f"vars-{target}.o"
    subprocess.run([CLANG, "-g", "-O2", "-target", target, *incs, "-c", str(SOURCE),
                    "-o", str(obj)], check=True, capture_output=True)
    return obj.read_bytes()


def _section_bytes(data: bytes) -> dict[str, bytes]:
    """What libbpf's bpf_map__initial_value gives: the section data, zeros for .bss."""
    elf = ELFFile(io.BytesIO(data))
    out = {}
    for name in DATA_SECTIONS:
        sec = elf.get_section_by_name(name)
        assert sec is not None, name
        if sec["sh_type"] == "SHT_NOBITS":
            out[name] = bytes(sec["sh_size"])
        else:
            out[name] = bytes(sec.data())
    return out


def annotated_meta(obj: BpfObject, btf: Btf) -> dict[str, Any]:
    meta = build_meta(obj, btf, object_name="vars_bpf", version="t", export=None)
    for section in meta["bpf_skel"]["data_sections"]:
        for var in section["variables"]:
            var.update(ANNOTATIONS.get(var["name"], {}))
    return meta


def _load(data: bytes) -> Built:
    obj = read_object(data)
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    meta = annotated_meta(obj, btf)
    initial = _section_bytes(data)
    specs = option_specs(meta, obj, btf, initial)
    return Built(data, obj, btf, meta, initial, {s.var: s for s in specs})


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    require("clang")
    assert CLANG is not None
    out = tmp_path_factory.mktemp("options")
    return {target: _compile(target, out) for target in ("bpfel", "bpfeb")}


@pytest.fixture(scope="module", params=["bpfel", "bpfeb"])
def both(request: pytest.FixtureRequest, objects: dict[str, bytes]) -> Built:
    """The object in each byte order."""
    return _load(objects[request.param])


@pytest.fixture(scope="module")
def el(objects: dict[str, bytes]) -> Built:
    return _load(objects["bpfel"])


@pytest.fixture(scope="module")
def eb(objects: dict[str, bytes]) -> Built:
    return _load(objects["bpfeb"])


def mk(kind: OptionKind, size: int, *, signed: bool = False, type_name: str = "t",
       choices: tuple[tuple[str, int], ...] = (), byte_order: ByteOrder = "little") -> OptionSpec:
    """A spec without an object, for tests that need no clang."""
    return OptionSpec(
        section=".rodata", var="v", long="v", short=None, help="", type_name=type_name,
        type_id=1, default=None, kind=kind, choices=tuple(n for n, _ in choices),
        offset=0, size=size, signed=signed, choice_values=tuple(v for _, v in choices),
        byte_order=byte_order, section_size=size,
    )


def le(value: int, size: int, signed: bool = True) -> bytes:
    return value.to_bytes(size, "little", signed=signed)


def error_of(spec: OptionSpec, text: str) -> str:
    with pytest.raises(EccError) as info:
        parse_value(spec, text)
    return str(info.value)


# ---------------------------------------------------------------------------
# option_specs on a real object

clang = pytest.mark.clang


@clang
def test_one_spec_per_option_variable_in_package_order(both: Built) -> None:
    # Statics (c_static, d_static), the __eunomia_dummy_ pointer and LICENSE are not options.
    assert list(both.specs) == list(VARIABLES)
    for name, (section, type_name, kind, size) in VARIABLES.items():
        spec = both.spec(name)
        assert (spec.section, spec.type_name, spec.kind, spec.size) == (
            section, type_name, kind, size), name
        assert spec.byte_order == both.btf.byte_order


@clang
def test_offsets_come_from_the_elf_symbols(both: Built) -> None:
    sections = {s.name: s for s in both.obj.sections}
    for spec in both.specs.values():
        sec = sections[spec.section]
        [sym] = [s for s in both.obj.symbols
                 if s.name == spec.var and s.section_index == sec.index]
        assert (spec.offset, spec.size, spec.section_size) == (sym.value, sym.size, sec.size)


@clang
def test_btf_offsets_really_are_zero_in_a_clang_object(both: Built) -> None:
    # The premise for reading offsets from symbols: clang leaves DATASEC offsets 0.
    ds = both.btf.by_name(".rodata", Kind.DATASEC)
    assert isinstance(ds, Datasec) and ds.size == 0
    offsets = {both.btf[v.type].name: v.offset for v in ds.vars
               if isinstance(both.btf[v.type], Var)}
    assert offsets["c_u64"] == 0 and both.spec("c_u64").offset == 8


@clang
def test_type_ids_are_the_btf_var_types(el: Built) -> None:
    for spec in el.specs.values():
        ds = el.btf.by_name(spec.section, Kind.DATASEC)
        assert isinstance(ds, Datasec)
        [var] = [el.btf[v.type] for v in ds.vars if el.btf[v.type].name == spec.var]
        assert isinstance(var, Var) and spec.type_id == var.type


@clang
def test_option_names_and_help(el: Built) -> None:
    pid = el.spec("c_pid")
    assert (pid.long, pid.short, pid.help) == ("pid", "p", "process to trace")
    assert (el.spec("c_int").long, el.spec("c_int").short, el.spec("c_int").help) == (
        "c_int", None, "an int")
    assert el.spec("b_name").long == "comm"
    assert el.spec("c_u64").help == ""
    # A description that parsed as JSON is shown as JSON, not as a Python repr.
    assert el.spec("c_double").help == '{"json": "description"}'


@clang
def test_enum_choices(el: Built) -> None:
    mode = el.spec("c_mode")
    assert (mode.choices, mode.choice_values, mode.signed) == (
        ("MODE_A", "MODE_B", "MODE_C"), (0, 1, 7), False)
    big = el.spec("c_big")
    assert (big.choices, big.choice_values, big.signed) == (
        ("BIG_LO", "BIG_HI"), (-5, 0x7FFFFFFFFF), True)
    assert el.spec("c_neg8").choice_values == (-1, 1)
    assert el.spec("c_int").choices == ()


DEFAULTS: dict[str, Any] = {
    "c_int": -7, "c_u64": 0x1122334455667788, "c_bool": False, "c_raw_bool": False,
    "c_pid": 0, "c_mode": "MODE_C", "c_big": "BIG_HI", "c_neg8": "N8_MINUS",
    "c_anon": "ANON_TWO", "c_comm": "zsh", "c_name": "init", "c_double": 2.5,
    "c_float": -0.5, "c_pair": None, "c_u8": 200, "c_s8": -100, "c_s16": -300,
    "c_u16": 60000, "c_u32": 4000000000, "c_long": -1, "c_i128": -2, "c_u128": 3,
    "c_ints": None, "c_mac": None, "c_ch": ord("x"), "c_ptr": None, "d_count": 100,
    "d_big": 0xDEADBEEF, "cfg_level": 16, "cfg_port": 8080, "b_zero": 0, "b_name": "",
}


@clang
def test_defaults_are_annotations_else_the_compiled_in_values(both: Built) -> None:
    assert {n: s.default for n, s in both.specs.items()} == DEFAULTS
    sources = {n: s.default_source for n, s in both.specs.items() if s.default_source != "initial"}
    assert sources == {"c_bool": "cmdarg", "c_comm": "value", "d_count": "value",
                       "cfg_level": "cmdarg"}


@clang
def test_read_current_decodes_the_section_bytes(both: Built) -> None:
    current = {n: read_current(s, both.initial) for n, s in both.specs.items()}
    # Where an annotation set the default, the object still holds the C initializer.
    assert current == DEFAULTS | {"c_bool": True, "c_comm": "bash", "d_count": 42,
                                  "cfg_level": 3}


@clang
def test_a_section_without_bytes_reads_as_zeros(el: Built) -> None:
    # The ELF gives .bss no data; a loader may pass b"" or leave it out.
    for initial in ({}, {".bss": b""}):
        specs = {s.var: s for s in option_specs(el.meta, el.obj, el.btf, initial)}
        assert specs["b_zero"].default == 0 and specs["b_name"].default == ""
        assert specs["c_int"].default == 0 and specs["c_mode"].default == "MODE_A"


DESCRIBED = {
    "c_int": "int (default: -7)",
    "c_bool": "bool (default: false)",
    "c_mode": "enum mode (default: MODE_C)",
    "c_comm": 'char[16] (default: "zsh")',
    "b_name": 'char[8] (default: "")',
    "c_double": "double (default: 2.5)",
    "c_u128": "unsigned __int128 (default: 3)",
    "c_pair": "struct pair (not settable from the command line)",
    "c_ptr": "int * (not settable from the command line)",
    "c_pid": "pid_t (default: 0)",
}


@clang
@pytest.mark.parametrize("var", list(DESCRIBED))
def test_describe(el: Built, var: str) -> None:
    assert describe(el.spec(var)) == DESCRIBED[var]


def test_describe_without_a_default() -> None:
    assert describe(mk("int", 4, type_name="int")) == "int"
    assert describe(replace_record(mk("string", 4, type_name="char[4]"), default='a"b')) == (
        'char[4] (default: "a\\"b")')


@clang
def test_kconfig_and_dummies_are_skipped(el: Built) -> None:
    meta = annotated_meta(el.obj, el.btf)
    # .kconfig is filled by libbpf from the running kernel; it is never looked up.
    meta["bpf_skel"]["data_sections"].append(
        {"name": ".kconfig", "variables": [{"name": "LINUX_KERNEL_VERSION", "type": "int"}]})
    names = [s.var for s in option_specs(meta, el.obj, el.btf, el.initial)]
    assert names == list(VARIABLES)
    assert not any(n.startswith("__eunomia_dummy") for n in names)


@clang
def test_no_data_sections_means_no_options(el: Built) -> None:
    assert option_specs({"bpf_skel": {"data_sections": []}}, el.obj, el.btf, {}) == []
    assert option_specs({"bpf_skel": {}}, el.obj, el.btf, {}) == []


@clang
def test_type_string_falls_back_to_btf(el: Built) -> None:
    meta = annotated_meta(el.obj, el.btf)
    for section in meta["bpf_skel"]["data_sections"]:
        for var in section["variables"]:
            del var["type"]
    specs = {s.var: s for s in option_specs(meta, el.obj, el.btf, el.initial)}
    assert {n: s.type_name for n, s in specs.items()} == {n: v[1] for n, v in VARIABLES.items()}


def _with(el: Built, var: str, **annotations: Any) -> dict[str, Any]:
    meta = annotated_meta(el.obj, el.btf)
    for section in meta["bpf_skel"]["data_sections"]:
        for entry in section["variables"]:
            if entry["name"] == var:
                entry.update(annotations)
    return meta


BAD_ANNOTATIONS = [
    ("c_int", {"cmdarg": {"short": "pp"}},
     "variable 'c_int' (.rodata): @cmdarg short option must be one letter or digit, got \"pp\""),
    ("c_int", {"cmdarg": {"long": "--x"}},
     "variable 'c_int' (.rodata): @cmdarg long option must be letters, digits, '-' or '_', "
     'got "--x"'),
    ("c_int", {"cmdarg": "p"},
     "variable 'c_int' (.rodata): @cmdarg must be a JSON object, got \"p\""),
    ("c_int", {"cmdarg": {"long": "pid"}},
     "variables 'c_int' (.rodata) and 'c_pid' (.rodata) both use option --pid; "
     'give one of them another "long" in @cmdarg'),
    ("b_zero", {"cmdarg": {"short": "p"}},
     "variables 'c_pid' (.rodata) and 'b_zero' (.bss) both use option -p; "
     'give one of them another "short" in @cmdarg'),
    ("c_int", {"cmdarg": {"default": "abc"}},
     "default of option --c_int (@cmdarg): 'abc' is not a valid int: "
     "expected an integer like 42 or 0x2a"),
    ("c_u8", {"value": 256},
     "default of option --c_u8 (@value): 256 is out of range for unsigned char (0 to 255)"),
    ("c_int", {"value": [1]},
     "default of option --c_int (@value): [1] must be a number, a string or a bool"),
    ("c_pair", {"value": 1},
     "default of option --c_pair (@value): a struct pair variable cannot be given a "
     "default; remove it"),
    ("c_name", {"cmdarg": {"default": "toolong!"}},
     "default of option --c_name (@cmdarg): 'toolong!' is too long for name_t "
     "(at most 7 bytes and a NUL)"),
]


@clang
@pytest.mark.parametrize(("var", "annotations", "message"), BAD_ANNOTATIONS)
def test_bad_annotations(el: Built, var: str, annotations: dict[str, Any],
                         message: str) -> None:
    meta = _with(el, var, **annotations)
    with pytest.raises(AnnotationError) as info:
        option_specs(meta, el.obj, el.btf, el.initial)
    assert str(info.value) == message


@clang
def test_json_defaults_of_each_kind(el: Built) -> None:
    cases: list[tuple[str, Any, Any]] = [
        ("c_bool", True, True), ("c_bool", 0, False), ("c_bool", "off", False),
        ("c_int", 5.0, 5), ("c_int", "-0x10", -16), ("c_mode", "MODE_B", "MODE_B"),
        ("c_mode", 1, "MODE_B"), ("c_double", 1, 1.0), ("c_float", "0.25", 0.25),
        ("c_comm", 123, "123"), ("c_int", None, -7),  # JSON null: as if absent
    ]
    for var, value, default in cases:
        specs = {s.var: s for s in option_specs(
            _with(el, var, cmdarg={"default": value}), el.obj, el.btf, el.initial)}
        assert specs[var].default == default, (var, value)


@clang
def test_an_underscore_variable_name_is_a_fine_option(el: Built) -> None:
    # Only an explicit @cmdarg "long" is checked; C names are always acceptable.
    meta = _with(el, "c_int", cmdarg={"long": "x_1-y"})
    assert {s.var: s for s in option_specs(meta, el.obj, el.btf, el.initial)}[
        "c_int"].long == "x_1-y"


@clang
def test_without_a_symbol_the_btf_offset_is_used(el: Built) -> None:
    # Static variables keep real BTF offsets (libbpf does not fix them up); a
    # package may list one (eunomia's compiler does not filter them everywhere).
    meta = {"bpf_skel": {"data_sections": [
        {"name": ".data", "variables": [{"name": "d_static", "type": "int"}]}]}}
    no_symbols = replace_record(el.obj, symbols=())
    [spec] = option_specs(meta, no_symbols, el.btf, el.initial)
    assert (spec.offset, spec.size, spec.default) == (16, 4, 5)
    [spec] = option_specs(meta, el.obj, el.btf, el.initial)
    assert spec.offset == 16


@clang
def test_a_variable_outside_its_section_is_refused(el: Built) -> None:
    meta = {"bpf_skel": {"data_sections": [
        {"name": ".data", "variables": [{"name": "d_big", "type": "__u64"}]}]}}
    sym = next(s for s in el.obj.symbols if s.name == "d_big")
    moved = replace_record(el.obj, symbols=(replace_record(sym, value=16),))
    with pytest.raises(PackageError, match=re.escape(
            "variable 'd_big' (8 bytes at offset 16) lies outside section .data (20 bytes)")):
        option_specs(meta, moved, el.btf, el.initial)


@clang
def test_package_and_object_must_agree(el: Built) -> None:
    meta = annotated_meta(el.obj, el.btf)
    meta["bpf_skel"]["data_sections"][0]["variables"].append({"name": "ghost", "type": "int"})
    with pytest.raises(PackageError, match=r"^variable 'ghost' of data section \.rodata is "
                                           r"not in the object's BTF$"):
        option_specs(meta, el.obj, el.btf, el.initial)
    meta = annotated_meta(el.obj, el.btf)
    meta["bpf_skel"]["data_sections"].append({"name": ".rodata.x", "variables": [
        {"name": "a", "type": "int"}]})
    with pytest.raises(PackageError, match=r"^data section \.rodata\.x of the package is not "
                                           r"in its object$"):
        option_specs(meta, el.obj, el.btf, el.initial)
    with pytest.raises(PackageError, match="must be a list"):
        option_specs({"bpf_skel": {"data_sections": {}}}, el.obj, el.btf, el.initial)


# ---------------------------------------------------------------------------
# parse_value on the real specs: integers


@clang
@pytest.mark.parametrize("var", list(INT_RANGES))
def test_integer_range_edges(both: Built, var: str) -> None:
    spec = both.spec(var)
    lo, hi = INT_RANGES[var]
    order = both.btf.byte_order
    for value in (lo, hi, 0, 1):
        assert parse_value(spec, str(value)) == value.to_bytes(
            spec.size, order, signed=lo < 0)
        assert parse_value(spec, hex(value)) == parse_value(spec, str(value))
    for value in (lo - 1, hi + 1):
        assert error_of(spec, str(value)) == (
            f"option --{spec.long}: {value} is out of range for {spec.type_name} "
            f"({lo} to {hi})")


@clang
@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("-42", -42), ("+42", 42), ("0x2a", 42), ("0X2A", 42), ("-0x2a", -42),
    ("0o52", 42), ("0b101010", 42), ("4_2", 42), (" 42\n", 42), ("0", 0), ("-0", 0),
    ("00", 0), ("0x7fffffff", 2**31 - 1), ("-0x80000000", -(2**31)),
])
def test_integer_syntax(el: Built, text: str, value: int) -> None:
    assert parse_value(el.spec("c_int"), text) == le(value, 4)


@clang
@pytest.mark.parametrize("text", [
    "abc", "", " ", "4 2", "42abc", "1.5", "1e3", "0x", "0xg", "--1", "4__2", "_42", "42_",
    "٤٢", "４２", "true", "0b2", "0o8",
])
def test_integer_syntax_errors(el: Built, text: str) -> None:
    assert error_of(el.spec("c_pid"), text) == (
        f"option --pid: {text!r} is not a valid pid_t: expected an integer like 42 or 0x2a")


@clang
def test_the_brief_messages(el: Built) -> None:
    assert error_of(el.spec("c_pid"), "abc") == (
        "option --pid: 'abc' is not a valid pid_t: expected an integer like 42 or 0x2a")
    assert error_of(el.spec("c_int"), "4294967296") == (
        "option --c_int: 4294967296 is out of range for int (-2147483648 to 2147483647)")
    assert error_of(el.spec("b_name"), "a-very-long-string") == (
        "option --comm: 'a-very-long-string' is too long for char[8] (at most 7 bytes and a NUL)")
    assert error_of(el.spec("c_mode"), "x") == (
        "option --mode: 'x' is not a valid enum mode: expected one of MODE_A, MODE_B, MODE_C "
        "or a number")


@clang
def test_a_leading_zero_is_refused_not_guessed(el: Built) -> None:
    assert error_of(el.spec("c_int"), "0755") == (
        "option --c_int: '0755' is not a valid int: a leading 0 is ambiguous; "
        "write 755 for decimal or 0o755 for octal")
    assert error_of(el.spec("c_int"), "-089") == (
        "option --c_int: '-089' is not a valid int: a leading 0 is ambiguous; "
        "write -89 for decimal")


@clang
def test_huge_numbers_are_out_of_range_not_invalid(el: Built) -> None:
    # Python refuses decimal strings over 4300 digits; the user still deserves "out of range".
    huge = "9" * 5000
    assert error_of(el.spec("c_u128"), huge) == (
        f"option --c_u128: {'9' * 57}... is out of range for unsigned __int128 "
        f"(0 to {2**128 - 1})")
    assert "out of range" in error_of(el.spec("c_u128"), "0x" + "f" * 5000)


@clang
def test_integers_are_written_in_the_btf_byte_order(eb: Built) -> None:
    assert parse_value(eb.spec("c_int"), "1") == b"\0\0\0\x01"
    assert parse_value(eb.spec("c_u16"), "0x1234") == b"\x12\x34"
    assert parse_value(eb.spec("c_i128"), "-2") == b"\xff" * 15 + b"\xfe"


@clang
def test_char_is_a_number(el: Built) -> None:
    assert parse_value(el.spec("c_ch"), "65") == b"A"
    assert parse_value(el.spec("c_ch"), "-1") == b"\xff"
    assert "is not a valid char" in error_of(el.spec("c_ch"), "A")


# ---------------------------------------------------------------------------
# bool, enum, string, float


@clang
@pytest.mark.parametrize(("text", "value"), [
    ("true", 1), ("TRUE", 1), ("True", 1), ("1", 1), ("yes", 1), ("YeS", 1), ("on", 1),
    ("false", 0), ("False", 0), ("0", 0), ("no", 0), ("off", 0), ("OFF", 0), (" on ", 1),
])
def test_bool_words(both: Built, text: str, value: int) -> None:
    assert parse_value(both.spec("c_bool"), text) == bytes([value])
    assert parse_value(both.spec("c_raw_bool"), text) == bytes([value])


@clang
@pytest.mark.parametrize("text", ["2", "y", "n", "", "truee", "-1", "enable"])
def test_bool_errors(el: Built, text: str) -> None:
    assert error_of(el.spec("c_bool"), text) == (
        f"option --c_bool: {text!r} is not a valid bool: "
        "expected true/false, yes/no, on/off or 1/0")


@clang
def test_enums(both: Built) -> None:
    order = both.btf.byte_order

    def enc(v: int, size: int) -> bytes:
        return v.to_bytes(size, order, signed=True)

    mode = both.spec("c_mode")
    assert parse_value(mode, "MODE_C") == enc(7, 4)
    assert parse_value(mode, "mode_b") == enc(1, 4)          # unambiguous case-fold
    assert parse_value(mode, "7") == enc(7, 4)
    assert parse_value(mode, "0x10") == enc(16, 4)           # flag-style values are fine
    assert parse_value(mode, str(2**32 - 1)) == b"\xff" * 4
    assert error_of(mode, "-1") == (
        "option --mode: -1 is out of range for enum mode (0 to 4294967295)")
    big = both.spec("c_big")
    assert parse_value(big, "BIG_HI") == enc(0x7FFFFFFFFF, 8)
    assert parse_value(big, "BIG_LO") == enc(-5, 8)
    assert parse_value(big, str(-(2**63))) == enc(-(2**63), 8)
    neg8 = both.spec("c_neg8")
    assert parse_value(neg8, "N8_MINUS") == b"\xff"
    assert error_of(neg8, "128") == (
        "option --c_neg8: 128 is out of range for enum neg8 (-128 to 127)")
    assert error_of(both.spec("c_anon"), "THREE") == (
        "option --c_anon: 'THREE' is not a valid enum: expected one of ANON_ONE, ANON_TWO "
        "or a number")


def test_enum_case_fold_must_be_unambiguous() -> None:
    spec = mk("enum", 4, type_name="enum e", choices=(("Ab", 1), ("AB", 2), ("c", 3)))
    assert parse_value(spec, "AB") == le(2, 4)
    assert parse_value(spec, "C") == le(3, 4)
    assert error_of(spec, "ab") == (
        "option --v: 'ab' is not a valid enum e: expected one of Ab, AB, c or a number")


def test_enum_with_many_enumerators_lists_a_few() -> None:
    spec = mk("enum", 4, type_name="enum e", choices=tuple((f"E{i}", i) for i in range(40)))
    message = error_of(spec, "nope")
    assert message.endswith("E14, E15, ... (24 more) or a number")


@clang
def test_strings(both: Built) -> None:
    comm = both.spec("c_comm")
    assert parse_value(comm, "sshd") == b"sshd" + bytes(12)
    assert parse_value(comm, "") == bytes(16)
    assert parse_value(comm, " a b ") == b" a b " + bytes(11)   # text is not stripped
    assert parse_value(comm, "x" * 15) == b"x" * 15 + b"\0"
    assert error_of(comm, "x" * 16) == (
        f"option --c_comm: {'x' * 16!r} is too long for char[16] (at most 15 bytes and a NUL)")
    name = both.spec("c_name")
    assert parse_value(name, "é" * 3) == "é".encode() * 3 + b"\0\0"
    # The limit is in bytes: four 2-byte characters do not fit in 7.
    assert error_of(name, "é" * 4) == (
        "option --c_name: 'éééé' is too long for name_t (at most 7 bytes and a NUL)")
    assert error_of(name, "a\0b") == (
        "option --c_name: 'a\\x00b' is not a valid name_t: it contains a NUL character")


@clang
def test_string_bytes_from_argv_pass_through(el: Built) -> None:
    # Python decodes non-UTF-8 argv bytes with surrogateescape; they must come back.
    text = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert parse_value(el.spec("c_comm"), text) == b"\xff\xfe" + bytes(14)
    assert error_of(el.spec("c_comm"), "\ud800") == (
        "option --c_comm: '\\ud800' is not a valid char[16]: it contains a character that "
        "cannot be written as UTF-8")


@clang
@pytest.mark.parametrize(("text", "value"), [
    ("1.5", 1.5), ("-2", -2.0), ("2e-3", 2e-3), ("1_000.5", 1000.5), (" .5 ", 0.5),
    ("inf", math.inf), ("-Infinity", -math.inf), ("0x1p-2", 0.25), ("1e-400", 0.0),
    ("1.7976931348623157e308", 1.7976931348623157e308),
])
def test_doubles(both: Built, text: str, value: float) -> None:
    fmt = "<d" if both.btf.byte_order == "little" else ">d"
    assert parse_value(both.spec("c_double"), text) == struct.pack(fmt, value)


@clang
def test_floats(both: Built) -> None:
    fmt = "<f" if both.btf.byte_order == "little" else ">f"
    spec = both.spec("c_float")
    assert parse_value(spec, "0.1") == struct.pack(fmt, 0.1)
    assert parse_value(spec, "3.4e38") == struct.pack(fmt, 3.4e38)
    assert math.isnan(struct.unpack(fmt, parse_value(spec, "nan"))[0])
    assert error_of(spec, "1e39") == (
        "option --c_float: 1e39 is out of range for float (±3.4028234663852886e+38)")


@clang
@pytest.mark.parametrize(("text", "message"), [
    ("1e999", "option --c_double: 1e999 is out of range for double (±1.7976931348623157e+308)"),
    ("0x1p2000",
     "option --c_double: 0x1p2000 is out of range for double (±1.7976931348623157e+308)"),
    ("abc", "option --c_double: 'abc' is not a valid double: "
            "expected a number like 1.5, 2e-3 or inf"),
    ("", "option --c_double: '' is not a valid double: expected a number like 1.5, 2e-3 or inf"),
    ("１", "option --c_double: '１' is not a valid double: "
           "expected a number like 1.5, 2e-3 or inf"),
    ("0xzz", "option --c_double: '0xzz' is not a valid double: "
             "expected a number like 1.5, 2e-3 or inf"),
])
def test_double_errors(el: Built, text: str, message: str) -> None:
    assert error_of(el.spec("c_double"), text) == message


@clang
@pytest.mark.parametrize("var", ["c_pair", "c_ints", "c_mac", "c_ptr"])
def test_unsupported_types_cannot_be_set(el: Built, var: str) -> None:
    spec = el.spec(var)
    assert not spec.settable
    assert error_of(spec, "1") == (
        f"option --{var}: a {spec.type_name} variable cannot be set from the command line")


def test_long_values_are_cut_in_messages() -> None:
    message = error_of(mk("int", 4, type_name="int"), "z" * 1000)
    assert message == f"option --v: {'z' * 57 + '...'!r} is not a valid int: " \
                      "expected an integer like 42 or 0x2a"


# ---------------------------------------------------------------------------
# apply_values


def _changed(before: bytes, after: bytes) -> list[int]:
    assert len(before) == len(after)
    return [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]


@clang
def test_apply_values_writes_each_variable_and_nothing_else(both: Built) -> None:
    specs = list(both.specs.values())
    values = {"pid": "1234", "c_u64": "1", "mode": "MODE_A", "comm": "bash",
              "c_double": "-1.25", "d_big": "0", "cfg_port": "22", "c_bool": "yes"}
    out = apply_values(specs, values, both.initial)
    assert set(out) == set(DATA_SECTIONS)
    written = {s.long: s for s in specs if s.long in values or s.default_bytes is not None}
    for name in DATA_SECTIONS:
        allowed: set[int] = set()
        for spec in written.values():
            if spec.section == name:
                allowed |= set(range(spec.offset, spec.offset + spec.size))
        assert set(_changed(both.initial[name], out[name])) <= allowed, name
    for spec in written.values():
        expected = (parse_value(spec, values[spec.long]) if spec.long in values
                    else spec.default_bytes)
        assert out[spec.section][spec.offset:spec.offset + spec.size] == expected
    assert read_current(both.spec("c_pid"), out) == 1234
    assert read_current(both.spec("b_name"), out) == "bash"
    assert read_current(both.spec("c_bool"), out) is True
    assert read_current(both.spec("cfg_port"), out) == 22
    assert read_current(both.spec("c_double"), out) == -1.25


@clang
def test_apply_values_round_trips_every_settable_option(both: Built) -> None:
    samples = {"int": "-1", "bool": "true", "enum": "1", "string": "ab", "float": "0.5"}
    for spec in both.specs.values():
        if not spec.settable:
            continue
        text = "1" if spec.kind == "int" and not spec.signed else samples[spec.kind]
        out = apply_values([spec], {spec.long: text}, both.initial)
        assert out[spec.section][spec.offset:spec.offset + spec.size] == parse_value(spec, text)
        assert decode_value(spec, parse_value(spec, text)) == read_current(spec, out)


@clang
def test_annotation_defaults_are_written_and_options_win(el: Built) -> None:
    specs = list(el.specs.values())
    out = apply_defaults(specs, el.initial)
    assert read_current(el.spec("d_count"), out) == 100
    assert read_current(el.spec("cfg_level"), out) == 16
    assert read_current(el.spec("c_comm"), out) == "zsh"
    assert read_current(el.spec("c_bool"), out) is False
    # Variables without an annotation keep the compiled-in bytes.
    assert read_current(el.spec("c_int"), out) == -7
    assert out == apply_values(specs, {}, el.initial)
    out = apply_values(specs, {"d_count": "7", "c_bool": "on"}, el.initial)
    assert read_current(el.spec("d_count"), out) == 7
    assert read_current(el.spec("c_bool"), out) is True
    assert read_current(el.spec("cfg_level"), out) == 16
    untouched = apply_values(specs, {}, el.initial, defaults=False)
    assert untouched == el.initial


@clang
def test_apply_values_builds_a_missing_bss(el: Built) -> None:
    specs = list(el.specs.values())
    initial = {k: v for k, v in el.initial.items() if k != ".bss"}
    out = apply_values(specs, {"b_zero": "5"}, initial)
    assert out[".bss"] == le(5, 4) + bytes(el.spec("b_name").section_size - 4)
    out = apply_values(specs, {"comm": "x"}, initial | {".bss": b""})
    assert len(out[".bss"]) == el.spec("b_zero").section_size
    # A section no option touches is not invented.
    assert ".bss" not in apply_values(specs, {}, initial)


@clang
def test_apply_values_errors(el: Built) -> None:
    specs = list(el.specs.values())
    with pytest.raises(EccError, match=r"^unknown option --nope$"):
        apply_values(specs, {"nope": "1"}, el.initial)
    with pytest.raises(EccError, match=r"^option --pid: 'x' is not a valid pid_t"):
        apply_values(specs, {"pid": "x"}, el.initial)
    with pytest.raises(EccError, match=re.escape(
            "option --c_u64: section .rodata is 4 bytes, too small for variable 'c_u64' "
            "(8 bytes at offset 8)")):
        apply_values(specs, {"c_u64": "1"}, el.initial | {".rodata": bytes(4)})
    with pytest.raises(EccError, match="cannot be set from the command line"):
        apply_values(specs, {"c_pair": "1"}, el.initial)


@clang
def test_apply_values_does_not_modify_its_input(el: Built) -> None:
    before = dict(el.initial)
    apply_values(list(el.specs.values()), {"pid": "1"}, el.initial)
    assert el.initial == before


# ---------------------------------------------------------------------------
# Properties (hand-made specs: no clang needed)

CHAR8 = mk("string", 8, type_name="char[8]")
CHAR1 = mk("string", 1, type_name="char[1]")
DOUBLE_BE = mk("float", 8, type_name="double", byte_order="big")
PROPERTY_SPECS = [
    mk("int", 1, signed=True, type_name="signed char"),
    mk("int", 2, type_name="unsigned short", byte_order="big"),
    mk("int", 4, signed=True, type_name="int"),
    mk("int", 8, type_name="unsigned long long"),
    mk("int", 16, signed=True, type_name="__int128", byte_order="big"),
    mk("int", 16, type_name="unsigned __int128"),
    mk("bool", 1, type_name="bool"),
    mk("enum", 4, type_name="enum m", choices=(("A", 0), ("B", 1), ("C", 7))),
    mk("enum", 1, signed=True, type_name="enum s", choices=(("M", -1),)),
    mk("enum", 8, signed=True, type_name="enum b", choices=(("LO", -(2**63)),),
       byte_order="big"),
    CHAR8,
    CHAR1,
    mk("float", 4, type_name="float"),
    DOUBLE_BE,
    mk("unsupported", 8, type_name="struct s"),
]

NUMBERISH = st.from_regex(
    r"\A\s?[+-]{0,2}(0[xXoObB])?[0-9a-fA-F_.eEpP]{0,45}(inf|nan)?\s?\Z", fullmatch=True)


@settings(max_examples=400, deadline=None)
@given(spec=st.sampled_from(PROPERTY_SPECS), text=st.text() | NUMBERISH)
def test_parse_value_raises_only_ecc_error(spec: OptionSpec, text: str) -> None:
    try:
        data = parse_value(spec, text)
    except EccError as exc:
        message = str(exc)
        assert message.startswith("option --v: ") and "\n" not in message
        assert len(message) < 400
    else:
        assert isinstance(data, bytes) and len(data) == spec.size


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_integers_round_trip(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from([s for s in PROPERTY_SPECS if s.kind == "int"]))
    bits = 8 * spec.size
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if spec.signed else (0, (1 << bits) - 1)
    value = data.draw(st.integers(lo, hi))
    text = data.draw(st.sampled_from([str(value), hex(value), oct(value), bin(value)]))
    encoded = parse_value(spec, text)
    assert encoded == value.to_bytes(spec.size, spec.byte_order, signed=spec.signed)
    assert decode_value(spec, encoded) == value
    outside = data.draw(st.integers(max_value=lo - 1) | st.integers(min_value=hi + 1))
    with pytest.raises(EccError, match="is out of range for"):
        parse_value(spec, str(outside))


@settings(max_examples=200, deadline=None)
@given(value=st.floats(allow_nan=False))
def test_doubles_round_trip(value: float) -> None:
    spec = DOUBLE_BE
    assert decode_value(spec, parse_value(spec, repr(value))) == value
    assert decode_value(spec, parse_value(spec, value.hex())) == value


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_characters="\0",
                                           exclude_categories=["Cs"]), max_size=7))
def test_strings_round_trip(text: str) -> None:
    spec = CHAR8
    if len(text.encode()) <= 7:
        assert decode_value(spec, parse_value(spec, text)) == text
    else:
        with pytest.raises(EccError, match="is too long for char"):
            parse_value(spec, text)


def test_char1_holds_only_the_empty_string() -> None:
    spec = CHAR1
    assert parse_value(spec, "") == b"\0"
    assert error_of(spec, "a") == (
        "option --v: 'a' is too long for char[1] (at most 0 bytes and a NUL)")
