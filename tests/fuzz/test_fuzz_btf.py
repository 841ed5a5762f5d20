"""Fuzz the BTF reader: on any input, success or BtfError, never another exception.

Inputs are the checked-in objects' .BTF sections, mutated (bit flips,
truncation, splices, header fields and type-section words overwritten with
random or boundary values), plus plain random bytes. Each accepted blob is
walked completely: every type decoded, rendered both ways, sized, aligned.

Crashers found while developing are kept in tests/data/fuzz/btf/ and replay
as plain tests (``test_replay``). ``ECC_FUZZ_EXAMPLES`` raises the example
count for a longer local run.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.btf import (
    Btf,
    Kind,
    member_type_str,
    parse_btf,
    resolve_alignment,
    resolve_size,
    skip_mods,
    skip_mods_and_typedefs,
    type_decl,
    type_str,
)
from ecc.btf.types import Struct, Union
from ecc.errors import BtfError

TESTS = Path(__file__).resolve().parent.parent
OBJECTS = sorted((TESTS / "data" / "btf").glob("kinds-*.o"))
CRASHERS = sorted((TESTS / "data" / "fuzz" / "btf").glob("*.btf"))

EXAMPLES = int(os.environ.get("ECC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 500,
    deadline=2000,  # ms per example; a whole walk of a seed takes a few ms
    database=None,  # keep .hypothesis/ out of the source tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def seeds() -> tuple[bytes, ...]:
    out = []
    for path in OBJECTS:
        with path.open("rb") as f:
            section = ELFFile(f).get_section_by_name(".BTF")
            assert section is not None
            out.append(bytes(section.data()))
    return tuple(out)


def test_seeds_present_and_valid() -> None:
    assert len(seeds()) == 2, "tests/data/btf/kinds-*.o missing"
    for blob in seeds():
        exercise(blob)
        assert len(parse_btf(blob)) > 100


def _try(fn: Callable[..., object], *args: object, **kwargs: object) -> None:
    with contextlib.suppress(BtfError):
        fn(*args, **kwargs)


def exercise(blob: bytes) -> None:
    """Parse and then touch everything; only BtfError may come out."""
    try:
        btf = parse_btf(blob)
    except BtfError:
        return
    walk(btf)


def walk(btf: Btf) -> None:
    count = len(btf)
    for type_id in range(count):
        try:
            t = btf[type_id]
        except BtfError:
            continue
        assert t.id == type_id
        _try(type_str, btf, type_id)
        _try(type_str, btf, type_id, strip_mods=False)
        _try(type_decl, btf, type_id, "x")
        _try(member_type_str, btf, type_id)
        _try(resolve_size, btf, type_id)
        _try(resolve_alignment, btf, type_id)
        _try(skip_mods, btf, type_id)
        _try(skip_mods_and_typedefs, btf, type_id)
        if isinstance(t, Struct | Union):
            for m in t.members:
                _try(member_type_str, btf, m.type)
        if t.name:
            assert type_id in btf.ids_by_name(t.name)
    _try(btf.by_name, "event", Kind.STRUCT)
    _try(btf.string_at, 1)
    _try(btf.__getitem__, count)


# --- strategies ---------------------------------------------------------------------------

BOUNDARY = st.sampled_from([0, 1, 3, 4, 12, 16, 23, 24, 25, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
U32 = st.one_of(BOUNDARY, st.integers(0, 0xFFFFFFFF))
HEADER_FIELDS = [(2, "B"), (3, "B"), (4, "I"), (8, "I"), (12, "I"), (16, "I"), (20, "I")]


@st.composite
def mutation(draw: st.DrawFn, blob: bytearray) -> None:
    n = len(blob)
    how = draw(st.sampled_from(["flip", "truncate", "splice", "header", "word", "small", "delete"]))
    little = blob[:2] == b"\x9f\xeb"
    order = "<" if little else ">"
    if how == "flip" and n:
        pos = draw(st.integers(0, n - 1))
        blob[pos] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        del blob[draw(st.integers(0, n)) :]
    elif how == "splice":
        donor = draw(st.sampled_from(seeds()))
        a = draw(st.integers(0, len(donor)))
        b = draw(st.integers(a, min(len(donor), a + 64)))
        at = draw(st.integers(0, n))
        blob[at:at] = donor[a:b]
    elif how == "header" and n >= 24:
        off, fmt = draw(st.sampled_from(HEADER_FIELDS))
        value = draw(U32) & (0xFF if fmt == "B" else 0xFFFFFFFF)
        struct.pack_into(order + fmt, blob, off, value)
    elif how in ("word", "small") and n >= 28:
        # Overwrite a u32 past the header: small values make plausible ids,
        # vlens and name offsets, which is how reference loops get built.
        pos = 24 + 4 * draw(st.integers(0, (n - 28) // 4))
        value = draw(st.integers(0, 150)) if how == "small" else draw(U32)
        struct.pack_into(order + "I", blob, pos, value)
    elif how == "delete" and n:
        a = draw(st.integers(0, n - 1))
        del blob[a : a + draw(st.integers(1, 16))]


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    blob = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 4))):
        draw(mutation(blob))
    return bytes(blob)


@st.composite
def header_then_noise(draw: st.DrawFn) -> bytes:
    """A header that is plausible for the random body behind it."""
    body = draw(st.binary(max_size=400))
    little = draw(st.booleans())
    p = "<" if little else ">"
    type_len = draw(st.integers(0, len(body)))
    str_off = draw(st.integers(type_len, len(body)))
    str_len = len(body) - str_off
    hdr = struct.pack(p + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, type_len, str_off, str_len)
    return hdr + body


# --- properties ----------------------------------------------------------------------------


@FUZZ
@given(mutated_seed())
def test_mutated_objects(blob: bytes) -> None:
    exercise(blob)


@settings(FUZZ, max_examples=EXAMPLES or 300)
@given(st.binary(max_size=600))
def test_random_bytes(blob: bytes) -> None:
    exercise(blob)


@settings(FUZZ, max_examples=EXAMPLES or 300)
@given(header_then_noise())
def test_valid_header_random_body(blob: bytes) -> None:
    exercise(blob)


# --- saved crashers ---------------------------------------------------------------------------


def test_crashers_present() -> None:
    # An empty glob would make test_replay vanish silently.
    assert CRASHERS, "tests/data/fuzz/btf/*.btf missing"


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
def test_replay(path: Path) -> None:
    exercise(path.read_bytes())
