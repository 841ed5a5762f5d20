"""The ELF reader on hostile bytes: ElfError or a result, never another exception or a hang.

Inputs are mutations of real BPF objects checked in under tests/data/btf/ (both
byte orders). Any crasher found is saved under tests/data/fuzz/elf/ and replayed
by test_saved_crashers from then on.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.elf import read_object
from ecc.errors import ElfError

DATA = Path(__file__).resolve().parent.parent / "data"
SEEDS = sorted((DATA / "btf").glob("*.o")) + sorted((DATA / "elf").glob("*.o"))
CRASHERS = sorted((DATA / "fuzz" / "elf").glob("*"))
assert SEEDS, "no seed objects under tests/data/btf: the glob matched nothing"


def read_or_error(data: bytes) -> None:
    try:
        obj = read_object(data)
    except ElfError:
        return
    # What a caller touches next must not blow up either.
    for sec in obj.sections:
        assert isinstance(sec.name, str)
    for sym in obj.symbols:
        assert isinstance(sym.name, str)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seed = bytearray(SEEDS[draw(st.integers(0, len(SEEDS) - 1))].read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        choice = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(seed) - 1))
        if choice == 0:  # flip a byte
            seed[pos] = draw(st.integers(0, 255))
        elif choice == 1:  # overwrite a header-ish word with an extreme value
            if draw(st.booleans()) and len(seed) > 8:
                pos = draw(st.integers(0, min(len(seed), 64) - 8))
            value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 40]))
            word = struct.pack("<Q", value)
            seed[pos:pos + 8] = word[: len(seed) - pos]
        elif choice == 2:  # truncate
            del seed[pos:]
            if not seed:
                seed = bytearray(b"\x7fELF")
        else:  # splice a chunk elsewhere
            end = min(len(seed), pos + draw(st.integers(1, 64)))
            chunk = seed[pos:end]
            at = draw(st.integers(0, len(seed)))
            seed[at:at] = chunk
    return bytes(seed)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_objects(data: bytes) -> None:
    read_or_error(data)


@settings(max_examples=100, deadline=2000)
@given(st.binary(max_size=512))
def test_random_bytes_after_magic(tail: bytes) -> None:
    read_or_error(b"\x7fELF" + tail)


def test_not_elf() -> None:
    with pytest.raises(ElfError, match=r"^not an ELF file \(bad magic\)$"):
        read_object(b"hello")


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
def test_saved_crashers(path: Path) -> None:
    read_or_error(path.read_bytes())


def meta_or_error(data: bytes) -> None:
    """The whole reading path of a build and of `ecc run`: ours, or one of our errors."""
    from ecc.btf import parse_btf
    from ecc.errors import EccError
    from ecc.meta.exports import ExportSpec
    from ecc.meta.skel import build_meta
    from ecc.package.source import check_package

    try:
        obj = read_object(data)
        btf = parse_btf(obj.btf) if obj.btf is not None else None
        meta = build_meta(obj, btf, object_name="fuzz_bpf", version="0",
                          export=ExportSpec("fuzz.h", ("event",)))
    except EccError:
        return
    try:
        check_package("fuzz", data, meta)
    except EccError:
        return


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_objects_through_meta_and_package_checks(data: bytes) -> None:
    meta_or_error(data)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_objects_through_the_extern_check(data: bytes) -> None:
    """The check every warm build makes (compiler/externs.py) reads the object with the
    stripper's reader and parses BTF: our own errors only, or a list of names."""
    from ecc.compiler.externs import externs_without_btf
    from ecc.errors import BtfError

    try:
        names = externs_without_btf(data)
    except (ElfError, BtfError):
        return
    assert all(isinstance(n, str) for n in names)
