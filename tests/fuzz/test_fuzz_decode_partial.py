"""Fuzz decoding of events of any length (issue 30): every struct and union of the
checked-in clang objects (tests/data/btf/kinds-el.o and kinds-eb.o: bitfields,
nested and anonymous members, multi-dimensional arrays, a flexible array
member), random bytes, random lengths from empty to longer than the type.

The properties: decode takes exactly the bytes given (a ``memoryview`` of
that length: a read past it raises, which fails the test) and returns a dict
or, only when not one member fits, ``PackageError``; the members come in
field order, all of them for a whole event; and each member of a cut event is
what the same bytes padded with zeros to the full size decode to, or, for an
array the cut ends in, a prefix of it (zero padding ends a cut string exactly
where the cut does).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.btf import Btf, parse_btf
from ecc.btf.types import Struct, Union
from ecc.errors import BtfError, PackageError
from ecc.run.decode import Decoder, EventTally

TESTS = Path(__file__).resolve().parent.parent
OBJECTS = sorted((TESTS / "data" / "btf").glob("kinds-*.o"))

EXAMPLES = int(os.environ.get("ECC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 400,
    deadline=2000,
    database=None,  # keep .hypothesis/ out of the source tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def decoders() -> tuple[Decoder, ...]:
    out = []
    for path in OBJECTS:
        with path.open("rb") as f:
            section = ELFFile(f).get_section_by_name(".BTF")
            assert section is not None
            btf: Btf = parse_btf(section.data())
        for t in btf:
            if isinstance(t, Struct | Union) and t.size:
                try:
                    out.append(Decoder(btf, t.id))
                except BtfError:
                    continue  # e.g. a member of a kind no event can hold (function pointer)
    return tuple(out)


def test_there_are_structs_to_fuzz() -> None:
    # Both byte orders, and the big event struct with its arrays among them.
    assert len(OBJECTS) == 2
    assert sum(d.name == "event" for d in decoders()) == 2
    assert len(decoders()) >= 8


@FUZZ
@given(st.data())
def test_any_length_decodes_as_far_as_it_goes(data: st.DataObject) -> None:
    d = data.draw(st.sampled_from(decoders()))
    n = data.draw(st.integers(0, d.size + 16))
    raw = data.draw(st.binary(min_size=n, max_size=n))
    tally = EventTally()
    kind = tally.check("events", d, n)
    try:
        got = d.decode(memoryview(raw))
    except PackageError:
        assert n < d.least
        assert kind == "short"
        return
    assert n >= d.least
    assert list(got) == [f for f in d.fields if f in got]
    if n >= d.size:
        assert list(got) == list(d.fields)
        assert kind == ("long" if n >= d.size + 8 else None)
        assert same(got, d.decode(raw[: d.size]))
        return
    assert kind is None
    whole = d.decode(raw + bytes(d.size - n))
    for name, value in got.items():
        full = whole[name]
        if not same(value, full):
            # Only an array the data ends in may differ: a prefix of whole elements.
            assert isinstance(value, list), (name, value, full)
            assert isinstance(full, list) and len(value) < len(full)
            assert same(full[: len(value)], value)


def same(a: object, b: object) -> bool:
    # Random bytes make NaNs, which never equal themselves; repr shows floats exactly.
    return repr(a) == repr(b)
