"""Differential tests: ecc.btf against bpftool (libbpf) on the same bytes.

- raw dump: ``bpftool -j btf dump file F`` id by id (kind, name, sizes,
  references, members, enum values, params, DATASEC entries);
- declarations: every member and typedef line of ``bpftool btf dump file F
  format c`` against ``type_decl`` (libbpf's ``btf_dump__emit_type_decl``
  with a field name);
- acceptance: on mutated blobs, bpftool and ``parse_btf`` accept and reject
  the same inputs.

Inputs: the checked-in objects (both byte orders) and the running kernel's
/sys/kernel/btf/vmlinux. Skipped with a reason when bpftool or vmlinux BTF
is missing (tests/conftest.py: capabilities "bpftool", "kernel-btf").
"""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import needs, require
from elftools.elf.elffile import ELFFile

from ecc.btf import Btf, Kind, parse_btf, type_decl
from ecc.btf.types import (
    Array,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Struct,
    Typedef,
    Union,
    Var,
)
from ecc.errors import BtfError

DATA = Path(__file__).resolve().parent / "data" / "btf"
OBJECTS = sorted(DATA.glob("kinds-*.o"))
VMLINUX = Path("/sys/kernel/btf/vmlinux")
BPFTOOL = shutil.which("bpftool") or (
    "/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None
)

needs_bpftool = needs("bpftool")


def _vmlinux_param() -> Any:
    return pytest.param(
        VMLINUX,
        id="vmlinux",
        marks=needs("kernel-btf"),
    )


INPUTS = [pytest.param(p, id=p.name) for p in OBJECTS] + [_vmlinux_param()]


def test_objects_are_present() -> None:
    assert [p.name for p in OBJECTS] == ["kinds-eb.o", "kinds-el.o"]


def btf_bytes(path: Path) -> bytes:
    if path.suffix == ".o":
        with path.open("rb") as f:
            section = ELFFile(f).get_section_by_name(".BTF")
            assert section is not None
            return bytes(section.data())
    return path.read_bytes()


@cache
def ours(path: Path) -> Btf:
    return parse_btf(btf_bytes(path))


def bpftool(*args: str) -> subprocess.CompletedProcess[str]:
    assert BPFTOOL is not None
    return subprocess.run(
        [BPFTOOL, *args], capture_output=True, text=True, errors="replace", check=False
    )


@cache
def bpftool_raw(path: Path) -> list[dict[str, Any]]:
    proc = bpftool("-j", "btf", "dump", "file", str(path))
    assert proc.returncode == 0, f"bpftool cannot dump {path}: {proc.stderr.strip()}"
    types: list[dict[str, Any]] = json.loads(proc.stdout)["types"]
    return types


# --- raw dump ------------------------------------------------------------------------

INT_ENCODINGS = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
LINKAGES = {0: "static", 1: "global", 2: "extern"}


def expected_json(btf: Btf, type_id: int) -> dict[str, Any]:
    """What bpftool's JSON dump should say about ``type_id``, from our decode."""
    t = btf[type_id]
    d: dict[str, Any] = {"id": type_id, "kind": t.kind.name, "name": t.name or "(anon)"}
    if isinstance(t, Int):
        enc = (1 if t.signed else 0) | (2 if t.char else 0) | (4 if t.bool else 0)
        d.update(
            size=t.size,
            bits_offset=t.offset,
            nr_bits=t.bits,
            encoding=INT_ENCODINGS.get(enc, "UNKN"),
        )
    elif isinstance(t, Array):
        d.update(type_id=t.type, index_type_id=t.index_type, nr_elems=t.nelems)
    elif isinstance(t, Struct | Union):
        members = []
        for m in t.members:
            bit_offset, bitfield_size = _as_bpftool_member(
                btf, t, m.type, m.bit_offset, m.bitfield_size
            )
            md: dict[str, Any] = {
                "name": m.name or "(anon)",
                "type_id": m.type,
                "bits_offset": bit_offset,
            }
            if bitfield_size:
                md["bitfield_size"] = bitfield_size
            members.append(md)
        d.update(size=t.size, vlen=len(t.members), members=members)
    elif isinstance(t, Enum | Enum64):
        d.update(
            encoding="SIGNED" if t.signed else "UNSIGNED",
            size=t.size,
            vlen=len(t.values),
            values=[
                {"name": v.name or "(anon)", "val": _bpftool_enum_val(t, v.value)} for v in t.values
            ],
        )
    elif isinstance(t, Fwd):
        d["fwd_kind"] = "union" if t.is_union else "struct"
    elif isinstance(t, Func):
        d.update(type_id=t.type, linkage=LINKAGES.get(t.linkage, "(unknown)"))
    elif isinstance(t, FuncProto):
        params = [{"name": p.name or "(anon)", "type_id": p.type} for p in t.params]
        if t.variadic:
            params.append({"name": "(anon)", "type_id": 0})
        d.update(ret_type_id=t.return_type, vlen=len(params), params=params)
    elif isinstance(t, Var):
        d.update(type_id=t.type, linkage=LINKAGES.get(t.linkage, "(unknown)"))
    elif isinstance(t, Datasec):
        d.update(
            size=t.size,
            vlen=len(t.vars),
            vars=[{"type_id": v.type, "offset": v.offset, "size": v.size} for v in t.vars],
        )
    elif isinstance(t, Float):
        d["size"] = t.size
    elif isinstance(t, DeclTag):
        d.update(type_id=t.type, component_idx=t.component_idx)
    else:  # PTR TYPEDEF VOLATILE CONST RESTRICT TYPE_TAG
        d["type_id"] = t.type  # type: ignore[union-attr]
    return d


def _bpftool_enum_val(t: Enum | Enum64, value: int) -> int:
    # bpftool 7.5 prints an unsigned 32-bit value from the __s32 btf_enum.val
    # with jsonw_uint_field, so values >= 2**31 come out sign-extended to 64
    # bits (F_B = 0x80000000 shows as 18446744071562067968). Its text dump
    # and btf_dump's C output print 2147483648, as we decode it.
    if isinstance(t, Enum) and not t.signed and value >= 1 << 31:
        return value | 0xFFFFFFFF00000000
    return value


def _as_bpftool_member(
    btf: Btf, parent: Struct | Union, m_type: int, bit_offset: int, bitfield_size: int
) -> tuple[int, int]:
    """bpftool prints a legacy-encoded bitfield raw (the bit size stays in
    the INT); undo our decoding of it so the dumps compare."""
    if not bitfield_size:
        return bit_offset, 0
    raw_is_kflag = any(m.bitfield_size for m in parent.members) and _has_kind_flag(btf, parent.id)
    if raw_is_kflag:
        return bit_offset, bitfield_size
    t = btf[m_type]
    while isinstance(t, Typedef) or t.kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
        t = btf[t.type]  # type: ignore[union-attr]
    assert isinstance(t, Int)
    return bit_offset - t.offset, 0


def _has_kind_flag(btf: Btf, type_id: int) -> bool:
    # Read the record's info word straight from the blob; Btf keeps it private.
    off = btf._offsets[type_id]
    fmt = "<I" if btf.byte_order == "little" else ">I"
    return bool(struct.unpack_from(fmt, btf._buf, off + 4)[0] >> 31)


@needs_bpftool
@pytest.mark.parametrize("path", INPUTS)
def test_raw_dump_matches_bpftool(path: Path) -> None:
    btf = ours(path)
    theirs = bpftool_raw(path)
    assert len(theirs) == len(btf) - 1  # bpftool does not list void
    mismatches = []
    for entry in theirs:
        mine = expected_json(btf, entry["id"])
        if mine != entry:
            mismatches.append((mine, entry))
    assert not mismatches[:5], f"{len(mismatches)} types differ"


# --- declarations (format c) ---------------------------------------------------------------

_ANON = re.compile(r"\b(struct|union|enum)\b(?!\s+[A-Za-z_])")
_PADDING = re.compile(r"^\t(long|int|short|char): \d+;$")


@cache
def bpftool_c(path: Path) -> str:
    proc = bpftool("btf", "dump", "file", str(path), "format", "c")
    assert proc.returncode == 0, f"bpftool cannot dump {path} as C: {proc.stderr.strip()}"
    return proc.stdout


def _blocks(text: str) -> dict[str, list[str]]:
    """``struct NAME`` / ``union NAME`` -> its depth-1 member lines."""
    blocks: dict[str, list[str]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(struct|union) (\w+) \{$", lines[i])
        i += 1
        if not m:
            continue
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("}"):
            line = lines[i]
            if line.startswith("\t") and not line.startswith("\t\t"):
                body.append(line)
            i += 1
        blocks[f"{m.group(1)} {m.group(2)}"] = body
    return blocks


def _ambiguous_names(btf: Btf) -> set[str]:
    """Names libbpf would print with a ___N suffix (used by several types)."""
    seen: dict[tuple[str, bool], int] = {}
    for t in btf:
        if t.name and t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.TYPEDEF):
            key = (t.name, t.kind == Kind.TYPEDEF)
            seen[key] = seen.get(key, 0) + 1
    return {name for (name, _), n in seen.items() if n > 1}


def _comparable(text: str, ambiguous: set[str]) -> bool:
    if _ANON.search(text):  # bpftool inlines anonymous definitions
        return False
    return not any(tok in ambiguous for tok in re.findall(r"\w+", text))


def _member_decls(btf: Btf, ambiguous: set[str]) -> Iterator[tuple[str, str, list[str]]]:
    """(struct key, member name, acceptable bpftool lines) per comparable member."""
    for t in btf:
        if not isinstance(t, Struct | Union) or not t.name or t.name in ambiguous:
            continue
        key = f"{'struct' if isinstance(t, Struct) else 'union'} {t.name}"
        for m in t.members:
            if not m.name or not _comparable(type_decl(btf, m.type), ambiguous):
                continue
            decl = type_decl(btf, m.type, m.name)
            if m.bitfield_size:
                decl += f": {m.bitfield_size}"
            yield key, m.name, [decl + ";", decl + " __attribute__("]


@needs_bpftool
@pytest.mark.parametrize("path", INPUTS)
def test_member_declarations_match_bpftool(path: Path) -> None:
    btf = ours(path)
    blocks = _blocks(bpftool_c(path))
    ambiguous = _ambiguous_names(btf)
    cursor: dict[str, int] = {}
    compared = 0
    mismatches = []
    for key, member, wants in _member_decls(btf, ambiguous):
        body = blocks.get(key)
        if body is None:
            continue
        # Members appear in order, possibly with padding or inline
        # definitions in between: search forward from the last match.
        start = cursor.get(key, 0)
        for i in range(start, len(body)):
            line = body[i][1:]
            if line == wants[0] or line.startswith(wants[1]):
                cursor[key] = i + 1
                compared += 1
                break
        else:
            mismatches.append((key, member, wants[0], body[start : start + 3]))
    assert compared > (10000 if path == VMLINUX else 40)
    assert not mismatches[:5], f"{len(mismatches)} of {compared + len(mismatches)} differ"


@needs_bpftool
@pytest.mark.parametrize("path", INPUTS)
def test_typedef_declarations_match_bpftool(path: Path) -> None:
    btf = ours(path)
    text = set(bpftool_c(path).splitlines())
    ambiguous = _ambiguous_names(btf)
    compared = 0
    missing = []
    for t in btf:
        # libbpf never emits typedefs for compiler builtins.
        if not isinstance(t, Typedef) or t.name in ambiguous or t.name.startswith("__builtin_"):
            continue
        if not _comparable(type_decl(btf, t.type), ambiguous):
            continue
        decl = type_decl(btf, t.type, t.name)
        # libbpf skips typedefs of a type with the same name as a builtin
        # (e.g. `typedef _Bool bool` stays); only compare those it printed.
        line = f"typedef {decl};"
        compared += 1
        if line not in text:
            missing.append(line)
    assert compared > 0
    assert not missing[:5], f"{len(missing)} of {compared} typedefs differ"


# --- acceptance parity -------------------------------------------------------------------------


def _mutants(seed_blob: bytes, n: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    order = "<" if seed_blob[:2] == b"\x9f\xeb" else ">"
    hdr_len = struct.unpack_from(order + "I", seed_blob, 4)[0]
    type_len = struct.unpack_from(order + "I", seed_blob, 12)[0]
    fields = [(6, "I"), (8, "I"), (12, "I"), (16, "I"), (20, "I"), (4, "I"), (2, "B"), (3, "B")]
    for i in range(n):
        b = bytearray(seed_blob)
        how = i % 5
        if how == 0:
            off, fmt = rng.choice(fields)
            off = 4 if off == 6 else off
            value = rng.choice(
                [0, 1, 4, 23, 24, 25, 32, rng.randrange(1 << 8 if fmt == "B" else 1 << 32)]
            )
            if fmt == "I":
                value = (
                    max(0, struct.unpack_from(order + "I", b, off)[0] + rng.randint(-16, 16))
                    if rng.random() < 0.5
                    else value
                )
            struct.pack_into(order + fmt, b, off, value & (0xFF if fmt == "B" else 0xFFFFFFFF))
            yield f"header@{off}={value}", bytes(b)
        elif how == 1:
            cut = rng.randrange(len(b))
            yield f"truncate@{cut}", bytes(b[:cut])
        elif how == 2:
            word = hdr_len + 4 * rng.randrange(max(1, type_len // 4))
            value = rng.randrange(1, 140)
            struct.pack_into(order + "I", b, word, value)
            yield f"word@{word}={value}", bytes(b)
        elif how == 3:
            pos = rng.randrange(len(b))
            b[pos] ^= 1 << rng.randrange(8)
            yield f"flip@{pos}", bytes(b)
        else:
            # Set an info word's kind nibble to something random.
            word = hdr_len + 4 * rng.randrange(max(1, type_len // 4))
            b[word if order == ">" else word + 3] = rng.randrange(256)
            yield f"kindbyte@{word}", bytes(b)


@needs_bpftool
@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in OBJECTS])
def test_accepts_and_rejects_like_bpftool(path: Path, tmp_path: Path) -> None:
    blob = btf_bytes(path)
    disagreements = []
    for name, mutant in _mutants(blob, 150, seed=len(blob)):
        f = tmp_path / "m.btf"
        f.write_bytes(mutant)
        theirs = bpftool("btf", "dump", "file", str(f)).returncode == 0
        try:
            parse_btf(mutant)
            mine = True
        except BtfError:
            mine = False
        if mine != theirs:
            disagreements.append((name, mine, theirs))
    assert not disagreements


@needs_bpftool
def test_foreign_byte_order_needs_plain_header(tmp_path: Path) -> None:
    # libbpf refuses a non-native blob whose header is not exactly 24 bytes.
    foreign = "kinds-eb.o" if sys.byteorder == "little" else "kinds-el.o"
    blob = bytearray(btf_bytes(DATA / foreign))
    fmt = ">" if sys.byteorder == "little" else "<"
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(fmt + "IIIII", blob, 4)
    longer = (
        blob[:4]
        + struct.pack(fmt + "IIIII", 32, type_off, type_len, str_off, str_len)
        + b"\0" * 8
        + blob[24:]
    )
    f = tmp_path / "long.btf"
    f.write_bytes(longer)
    assert bpftool("btf", "dump", "file", str(f)).returncode != 0
    with pytest.raises(BtfError, match="header length 32 not supported"):
        parse_btf(bytes(longer))


# --- declarations without a name, straight from libbpf --------------------------------------
# bpftool's `format c` shows declarations only with a name and qualifiers
# kept. For the bare, optionally stripped strings spec section 4 uses, ask
# libbpf itself: a 30-line C program calling btf_dump__emit_type_decl for
# every id, built against the system libbpf if clang and libbpf-dev exist.

EMIT_DECL_C = r"""
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static char buf[1 << 16];
static size_t len;

static void emit(void *ctx, const char *fmt, va_list args)
{
    if (len < sizeof(buf))
        len += vsnprintf(buf + len, sizeof(buf) - len, fmt, args);
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
    return 0;
}

int main(int argc, char **argv)
{
    libbpf_set_print(quiet);
    struct btf *btf = btf__parse(argv[1], NULL);
    if (!btf)
        return 2;
    struct btf_dump *d = btf_dump__new(btf, emit, NULL, NULL);
    printf("%u.%u\n", libbpf_major_version(), libbpf_minor_version());
    for (unsigned int id = 0; id < btf__type_cnt(btf); id++) {
        for (int strip = 0; strip < 2; strip++) {
            LIBBPF_OPTS(btf_dump_emit_type_decl_opts, opts, .field_name = "",
                    .strip_mods = strip);
            len = 0;
            btf_dump__emit_type_decl(d, id, &opts);
            buf[len < sizeof(buf) ? len : sizeof(buf) - 1] = 0;
            for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\t')
                    *p = ' ';
            printf("%u\t%d\t%s\n", id, strip, buf);
        }
    }
    return 0;
}
"""


_ATTR_TAG = re.compile(r"__attribute__\(\((?!btf_type_tag)")


@pytest.fixture(scope="module")
def emit_decl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("clang", "libbpf-dev")
    clang = shutil.which("clang-19")
    assert clang is not None
    d = tmp_path_factory.mktemp("emit_decl")
    (d / "emit_decl.c").write_text(EMIT_DECL_C)
    proc = subprocess.run(
        [clang, "-O1", "-o", str(d / "emit_decl"), str(d / "emit_decl.c"), "-lbpf"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"cannot build the libbpf oracle: {proc.stderr}"
    return d / "emit_decl"


@pytest.mark.parametrize("path", INPUTS)
def test_bare_declarations_match_libbpf(path: Path, emit_decl: Path) -> None:
    from ecc.btf import type_str

    btf = ours(path)
    proc = subprocess.run(
        [str(emit_decl), str(path)], capture_output=True, text=True, errors="replace", check=False
    )
    assert proc.returncode == 0, proc.stderr
    version, *rows = proc.stdout.splitlines()
    major, minor = map(int, version.split("."))
    ambiguous = _ambiguous_names(btf)
    compared = 0
    mismatches = []
    for row in rows:
        id_text, strip_text, theirs = row.split("\t", 2)
        type_id, strip = int(id_text), strip_text == "1"
        if btf.kind_of(type_id) in (Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG):
            continue  # libbpf warns and prints nothing; we raise
        mine = type_str(btf, type_id, strip_mods=strip)
        if "{" in theirs or not _comparable(mine, ambiguous):
            continue  # anonymous definitions inlined, or ___N renames
        if (major, minor) < (1, 6) and _ATTR_TAG.search(mine):
            # Type tags with kind_flag set (`__attribute__((address_space(1)))`,
            # Linux 6.14+) print as btf_type_tag("...") before libbpf 1.6.
            continue
        if (major, minor) < (1, 5):
            # libbpf < 1.5 printed a parameterless prototype as `()`;
            # 1.5 (bpftool 7.5) prints `(void)`, as we do.
            theirs = theirs.replace("()", "(void)")
        compared += 1
        if mine != theirs:
            mismatches.append((type_id, strip, mine, theirs))
    assert compared > (100000 if path == VMLINUX else 100)
    assert not mismatches[:5], f"{len(mismatches)} of {compared} differ"


# --- every object the tests build ------------------------------------------------------

def _built_case_names() -> list[str]:
    from builds import CASES, all_units

    return [u.name for u in all_units(CASES)
            if not (CASES / u.name / "expected-error.txt").exists()]


@needs_bpftool
@pytest.mark.parametrize("name", _built_case_names())
def test_built_objects_match_bpftool(name: str, built: dict[str, Any]) -> None:
    """Issue 3, item 3: our parser agrees with bpftool on every object ecc builds, id by id."""
    case = built[f"cases/{name}"]
    assert case.result is not None, case.error
    stem = case.unit.source.name.split(".", 1)[0]
    test_raw_dump_matches_bpftool(case.out_dir / f"{stem}.bpf.o")
