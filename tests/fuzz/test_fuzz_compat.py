"""Fuzz ``ecc check --kernel``'s readers: any bytes give a verdict or our own error.

The object side (ELF, .BTF, the .BTF.ext CO-RE records, the code the guard
analysis walks) goes through ``analyze_object``, which may raise ElfError or
BtfError and nothing else; the kernel side (a target BTF, indexed by
ecc/compat/target.py) goes through ``check_kernel``, which must always return a
verdict, its ``error`` set when the BTF is unreadable. Seeds are objects built
from tests/data/compat/{core,matches}.bpf.c (checked in as tests/data/fuzz/compat/*.o), and
their own .BTF serves as a target that resolves their relocations, so mutations
reach the resolution and guard code rather than stopping at the first check.
Mutations are aimed at one region at a time: the .BTF.ext section, the code,
the .BTF section, or anywhere.

No crasher turned up while developing (also not in 2 x 200 s of plain random
mutation runs); instead, hand-made hostile records below pin down what each kind
of damage gives. ``ECC_FUZZ_EXAMPLES`` raises the example count.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.compat import analyze_object, check_kernel
from ecc.compat.report import ObjectFacts
from ecc.compat.target import index_target
from ecc.compat.wasmobj import embedded_objects
from ecc.elf import read_object
from ecc.errors import BtfError, ElfError, WasmError

DATA = Path(__file__).resolve().parent.parent / "data" / "fuzz" / "compat"
SEEDS = sorted(DATA.glob("*.o"))
EXAMPLES = int(os.environ.get("ECC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 300, deadline=5000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BOUNDARY = st.sampled_from([0, 1, 2, 3, 4, 7, 8, 12, 16, 24, 32, 0x7FFF, 0xFFFF,
                            0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])


@cache
def seeds() -> tuple[tuple[bytes, dict[str, tuple[int, int]]], ...]:
    """Each seed object and the (offset, size) of the regions worth aiming at."""
    out = []
    for path in SEEDS:
        data = path.read_bytes()
        obj = read_object(data)
        regions = {"all": (0, len(data))}
        for sec in obj.sections:
            if sec.name in (".BTF", ".BTF.ext") or sec.executable:
                regions["code" if sec.executable else sec.name] = (sec.offset, sec.size)
        out.append((data, regions))
    return tuple(out)


@cache
def facts(index: int) -> ObjectFacts:
    return analyze_object(seeds()[index][0])


@cache
def own_btf(index: int) -> bytes:
    btf = read_object(seeds()[index][0]).btf
    assert btf is not None
    return btf


# Renamed in a copy of the seed's own BTF (same lengths, so it stays valid): the
# relocations on them then fail there, and the guard analysis walks the code.
_RENAMES = ((b"\0__state\0", b"\0__statX\0"), (b"\0total_vm\0", b"\0total_vX\0"),
            (b"\0PIDTYPE_TGID\0", b"\0PIDTYPE_TGIX\0"), (b"\0mm_struct\0", b"\0mm_strucX\0"))


@cache
def poisoning_btf(index: int) -> bytes:
    data = own_btf(index)
    for old, new in _RENAMES:
        data = data.replace(old, new)
    return data


def test_seeds_have_relocations_of_every_family() -> None:
    assert len(SEEDS) == 2, "tests/data/fuzz/compat/*.o missing"
    kinds = set()
    for index in range(len(SEEDS)):
        verdict = check_kernel(facts(index), "own", own_btf(index), (6, 1))
        assert not verdict.error and verdict.relocations
        kinds |= {r.kind for r in verdict.relocations}
    poisoned = check_kernel(facts(0), "renamed", poisoning_btf(0), (6, 1))
    assert {r.outcome for r in poisoned.relocations} >= {"ok", "poisoned", "absent"}
    assert any(r.guarded_by for r in poisoned.relocations)
    assert {"FIELD_BYTE_OFFSET", "FIELD_EXISTS", "ENUMVAL_VALUE", "TYPE_SIZE",
            "TYPE_MATCHES", "FIELD_LSHIFT_U64"} <= kinds


@st.composite
def mutated(draw: st.DrawFn, region: str | None = None) -> tuple[int, bytes]:
    index = draw(st.integers(0, len(seeds()) - 1))
    data, regions = seeds()[index]
    blob = bytearray(data)
    start, size = regions[region or draw(st.sampled_from(sorted(regions)))]
    for _ in range(draw(st.integers(1, 6))):
        if size < 8:
            break
        pos = start + draw(st.integers(0, size - 4))
        how = draw(st.integers(0, 3))
        if how == 0:
            blob[pos] ^= 1 << draw(st.integers(0, 7))
        elif how == 1:
            struct.pack_into("<I", blob, pos, draw(BOUNDARY))
        elif how == 2:  # small values make plausible ids, counts, offsets, registers
            struct.pack_into("<I", blob, pos, draw(st.integers(0, 300)))
        else:
            del blob[pos:pos + draw(st.integers(1, 16))]
            start, size = start, max(0, size - 16)
    return index, bytes(blob)


def judge_object(data: bytes, index: int) -> None:
    try:
        object_facts = analyze_object(data)
    except (ElfError, BtfError):
        return
    for target in (own_btf(index), poisoning_btf(index)):
        verdict = check_kernel(object_facts, "own", target, (6, 1))
        verdict.as_dict()
        assert isinstance(verdict.failures, list)


def judge_target(index: int, target: bytes) -> None:
    verdict = check_kernel(facts(index), "fuzzed", target, None)
    verdict.as_dict()
    if verdict.error:
        assert verdict.error.startswith("its BTF cannot be read: ")


@FUZZ
@given(mutated(".BTF.ext"))
def test_mutated_core_records(case: tuple[int, bytes]) -> None:
    judge_object(case[1], case[0])


@FUZZ
@given(mutated("code"))
def test_mutated_code(case: tuple[int, bytes]) -> None:
    judge_object(case[1], case[0])


@FUZZ
@given(mutated())
def test_mutated_objects(case: tuple[int, bytes]) -> None:
    judge_object(case[1], case[0])


@st.composite
def mutated_target(draw: st.DrawFn) -> tuple[int, bytes]:
    index = draw(st.integers(0, len(seeds()) - 1))
    blob = bytearray(own_btf(index))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(blob) - 4))
        how = draw(st.integers(0, 3))
        if how == 0:
            blob[pos] ^= 1 << draw(st.integers(0, 7))
        elif how == 1:
            struct.pack_into("<I", blob, pos, draw(BOUNDARY))
        elif how == 2:
            struct.pack_into("<I", blob, pos, draw(st.integers(0, 300)))
        else:
            del blob[draw(st.integers(0, len(blob))):]
        if len(blob) < 8:
            break
    return index, bytes(blob)


@FUZZ
@given(mutated_target())
def test_mutated_targets(case: tuple[int, bytes]) -> None:
    judge_target(*case)


@settings(FUZZ, max_examples=EXAMPLES or 200)
@given(st.binary(max_size=400))
def test_random_target_bytes(blob: bytes) -> None:
    judge_target(0, blob)
    with contextlib.suppress(BtfError):
        index_target(blob, {"task_struct", "pid_type"})


# --- a WebAssembly app's data segments ---------------------------------------------------


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@cache
def wasm_app() -> bytes:
    """A module as a wasm32 linker lays one out: a type section, then a data section
    whose active segment holds the object between other constant bytes, and a
    passive segment."""
    obj = seeds()[0][0]
    active = b"\0\x41" + _leb(1024) + b"\x0b" + _leb(len(obj) + 12) + b"x" * 8 + obj + b"tail"
    passive = b"\x01" + _leb(5) + b"hello"
    data = _leb(2) + active + passive
    types = b"\x01\x60\x00\x00"
    return (b"\0asm\x01\0\0\0" + b"\x01" + _leb(len(types)) + types
            + b"\x0b" + _leb(len(data)) + data)


def test_wasm_app_seed() -> None:
    assert embedded_objects(wasm_app()) == (seeds()[0][0],)


@FUZZ
@given(st.data())
def test_mutated_wasm_apps(data: st.DataObject) -> None:
    blob = bytearray(wasm_app())
    for _ in range(data.draw(st.integers(1, 4))):
        if not blob:
            break
        pos = data.draw(st.integers(0, min(len(blob), 80) - 1))  # the module's framing
        how = data.draw(st.integers(0, 2))
        if how == 0:
            blob[pos] = data.draw(st.integers(0, 255))
        elif how == 1:
            blob[pos:pos + 5] = b"\xff\xff\xff\xff\x0f"
        else:
            del blob[data.draw(st.integers(0, len(blob))):]
    try:
        objects = embedded_objects(bytes(blob))
    except WasmError:
        return
    for obj in objects:
        with contextlib.suppress(ElfError, BtfError):
            analyze_object(obj)


# --- hostile records, one edit each, and what must come of them -----------------------------


def _edited(field: str, value: int) -> bytes:
    """Seed 0 with one field of its first CO-RE record block overwritten."""
    data = bytearray(seeds()[0][0])
    ext_start, _ = seeds()[0][1][".BTF.ext"]
    hdr_len, = struct.unpack_from("<I", data, ext_start + 4)
    core_off, = struct.unpack_from("<I", data, ext_start + 24)
    core = ext_start + hdr_len + core_off  # rec_size, then sec_name_off, num_info, records
    where = {"rec_size": 0, "sec_name_off": 4, "num_info": 8, "insn_off": 12, "type_id": 16,
             "access_str_off": 20, "kind": 24}[field]
    if value < 0:  # -1: the block's own section name, as an access string
        value, = struct.unpack_from("<I", data, core + 4)
    struct.pack_into("<I", data, core + where, value)
    return bytes(data)


@pytest.mark.parametrize(("field", "value", "expect"), [
    ("num_info", 0xFFFFFFFF, "claims 4294967295 records, more than the section holds"),
    ("rec_size", 0xFFFFFFF0, "more than the section holds"),
    ("rec_size", 6, "core_relo record size 6 (want at least 16)"),
    ("sec_name_off", 0xFFFFFF, ".BTF.ext: core_relo block at offset "),
    ("access_str_off", 0xFFFFFF, "access string: string offset 16777215 outside"),
    ("insn_off", 0xFFFFFFF8, "is outside its"),
])
def test_hostile_block_is_our_error(field: str, value: int, expect: str) -> None:
    with pytest.raises(BtfError, match=re.escape(expect)):
        analyze_object(_edited(field, value))


@pytest.mark.parametrize(("field", "value", "expect"), [
    ("kind", 99, "unrecognized CO-RE relocation kind 99"),
    ("type_id", 0xFFFFFF, "malformed BTF"),
    ("access_str_off", -1, "bad access string 'kprobe/do_nanosleep'"),
])
def test_hostile_record_refuses_that_relocation(field: str, value: int, expect: str) -> None:
    verdict = check_kernel(analyze_object(_edited(field, value)), "own", own_btf(0), (6, 1))
    first = verdict.relocations[0]
    assert (first.outcome, first.failing) == ("error", True)
    assert expect in first.detail, first.detail
    assert verdict.failures[0].startswith(f"{first.relo.program}: ")


def test_hostile_target_header_is_an_unreadable_kernel() -> None:
    target = bytearray(own_btf(0))
    struct.pack_into("<I", target, 12, 0xFFFFFF00)  # type_len
    verdict = check_kernel(facts(0), "bad", bytes(target), (6, 1))
    assert verdict.error.startswith("its BTF cannot be read: ") and not verdict.ok
    assert verdict.failures == [verdict.error]
