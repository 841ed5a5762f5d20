"""ecc.elf against pyelftools on hostile bytes: where both read a mutated object, the
records are the same; ecc.elf itself only ever returns or raises ElfError, in bounded
time (hypothesis' deadline), whatever pyelftools does.

The mutations are test_fuzz_elf.py's (real objects of both byte orders, bytes
flipped, header words set to extremes, truncated, spliced), plus ones aimed at the
fields this reader checks itself: section header entries and symbol entries.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # elf_oracle beside the tests
from elf_oracle import differences, oracle_read  # noqa: E402
from test_fuzz_elf import SEEDS, mutated  # noqa: E402

from ecc.elf import BpfObject, read_object  # noqa: E402
from ecc.errors import ElfError  # noqa: E402


def ours_or_none(data: bytes) -> BpfObject | None:
    try:
        return read_object(data)
    except ElfError:
        return None


def compare(data: bytes) -> None:
    ours = ours_or_none(data)
    try:
        theirs = oracle_read(data)
    except Exception:  # noqa: BLE001 - pyelftools fails in many ways on hostile bytes
        return
    if ours is not None:
        assert differences(ours, theirs) == []


@st.composite
def header_mutated(draw: st.DrawFn) -> bytes:
    """A seed with one field of one section header (or of the ELF header's section
    numbers) set to a value drawn near the edges."""
    seed = bytearray(SEEDS[draw(st.integers(0, len(SEEDS) - 1))].read_bytes())
    order = "<" if seed[5] == 1 else ">"
    shoff, = struct.unpack_from(order + "Q", seed, 40)
    shnum, = struct.unpack_from(order + "H", seed, 60)
    # (offset in a section header, width): name, type, flags, offset, size, link, entsize
    fields = [(0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (56, 8)]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            at, width = draw(st.sampled_from([(58, 2), (60, 2), (62, 2), (40, 8)]))
        else:
            rel, width = draw(st.sampled_from(fields))
            at = shoff + 64 * draw(st.integers(0, max(shnum - 1, 0))) + rel
        value = draw(st.one_of(st.integers(0, 64), st.sampled_from(
            [0x800, 0xFFF1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, len(seed), len(seed) - 1, 1 << 40])))
        value &= (1 << (8 * width)) - 1
        if at + width <= len(seed):
            seed[at:at + width] = value.to_bytes(width, "little" if order == "<" else "big")
    return bytes(seed)


@settings(max_examples=500, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_objects_agree_with_pyelftools(data: bytes) -> None:
    compare(data)


@settings(max_examples=500, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(header_mutated())
def test_mutated_headers_agree_with_pyelftools(data: bytes) -> None:
    compare(data)
