"""Fuzz `ecc run`'s output (issue 28): random bytes as events (every struct and union of
the checked-in clang objects, tests/data/btf/kinds-*.o, both byte orders), as sample
map keys and values (those types and their members' types, with random annotations),
as iterator output (text, records of a named or exported struct, or neither) and as
trace pipe lines, rendered in both modes.

The properties: each JSON line parses to one object with a known ``type`` and is
printable (no control character, no line separator); plain output has no control
character except the newline ending each line; decoding never raises anything but
``PackageError``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.btf import Btf, parse_btf
from ecc.btf.types import Struct, Union
from ecc.errors import BtfError, PackageError
from ecc.run.decode import Decoder, decode_value
from ecc.run.output import EventFormatter, iter_report, printk_line, sample_map_report

TESTS = Path(__file__).resolve().parent.parent
OBJECTS = sorted((TESTS / "data" / "btf").glob("kinds-*.o"))
TYPES = {"event", "hist", "kv", "iter", "iter_record", "iter_bytes", "printk"}

EXAMPLES = int(os.environ.get("ECC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 300,
    deadline=2000,
    database=None,  # keep .hypothesis/ out of the source tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def decoders() -> tuple[tuple[Btf, Decoder], ...]:
    out = []
    for path in OBJECTS:
        with path.open("rb") as f:
            section = ELFFile(f).get_section_by_name(".BTF")
            assert section is not None
            btf = parse_btf(section.data())
        for t in btf:
            if isinstance(t, Struct | Union) and t.size:
                try:
                    out.append((btf, Decoder(btf, t.id)))
                except BtfError:
                    continue  # a member of a kind no event can hold (function pointer)
    return tuple(out)


@cache
def value_types() -> tuple[tuple[Btf, int], ...]:
    """Every struct/union and every member type of one: what a map key or value may be."""
    out: list[tuple[Btf, int]] = []
    for btf, d in decoders():
        t = btf.by_name(d.name) if d.name != "(anonymous)" else None
        if isinstance(t, Struct | Union):
            out.append((btf, t.id))
            out.extend((btf, m.type) for m in t.members)
    return tuple(out)


def check_json(text: str) -> list[dict[str, Any]]:
    assert text == "" or text.endswith("\n")
    objs = []
    for line in text[:-1].split("\n") if text else []:
        assert line.isprintable(), repr(line)
        obj = json.loads(line)
        assert isinstance(obj, dict) and obj["type"] in TYPES
        objs.append(obj)
    return objs


def check_plain(text: str) -> None:
    for line in text.split("\n"):
        assert line.isprintable(), repr(line)


def test_there_is_something_to_fuzz() -> None:
    assert len(OBJECTS) == 2 and len(decoders()) >= 8 and len(value_types()) >= 20


@FUZZ
@given(st.data())
def test_events(data: st.DataObject) -> None:
    btf, d = data.draw(st.sampled_from(decoders()))
    raw = data.draw(st.binary(max_size=d.size + 16))
    try:
        values = d.decode(raw)
    except PackageError:
        return
    envelope = {"type": "event", "map": data.draw(st.text(max_size=8))}
    row = EventFormatter(d.fields, json=True, widths=d.widths, envelope=envelope).row(values, 0)
    [obj] = check_json(row + "\n")
    assert obj["type"] == "event"
    plain = EventFormatter(d.fields, json=False, widths=d.widths)
    check_plain(f"{plain.header()}\n{plain.row(values, 0)}")


ANNOTATION = st.fixed_dictionaries(
    {"type": st.sampled_from(["log2_hist", "linear_hist", "default_kv", "junk"])},
    optional={"unit": st.text(max_size=6), "base": st.integers(-5, 5),
              "step": st.integers(1, 4)})


@FUZZ
@given(st.data())
def test_samples(data: st.DataObject) -> None:
    btf, key_id = data.draw(st.sampled_from(value_types()))
    _, value_id = data.draw(st.sampled_from(value_types()))
    entries = []
    for _ in range(data.draw(st.integers(0, 4))):
        try:
            key = decode_value(btf, key_id, data.draw(st.binary(max_size=80)))
            value = decode_value(btf, value_id, data.draw(st.binary(max_size=80)))
        except (PackageError, BtfError):
            continue
        entries.append((key, value))
    sample = data.draw(ANNOTATION)
    [obj] = check_json(sample_map_report("m", entries, sample, json=True))
    assert obj["type"] == ("hist" if sample["type"] in ("log2_hist", "linear_hist") else "kv")
    check_plain(sample_map_report("m", entries, sample))


@FUZZ
@given(st.data())
def test_iterator_output(data: st.DataObject) -> None:
    raw = data.draw(st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    ))
    named = data.draw(st.one_of(st.none(), st.sampled_from([d for _, d in decoders()])))
    candidates = data.draw(st.lists(st.sampled_from([d for _, d in decoders()]), max_size=3))
    text, how = iter_report("it", raw, json=True, named=named, candidates=candidates)
    objs = check_json(text)
    assert {o["program"] for o in objs} <= {"it"}
    if how == "bytes":
        assert bytes.fromhex("".join(o["hex"] for o in objs)) == raw
    plain, how_plain = iter_report("it", raw, json=False, named=named, candidates=candidates)
    assert how_plain == how
    check_plain(plain)


@FUZZ
@given(st.text(max_size=200), st.binary(max_size=100))
def test_printk_lines(line: str, junk: bytes) -> None:
    for text in (line, f"  {line}-12 [001] d..31 5.5: bpf_trace_printk: {line}",
                 junk.decode("utf-8", "backslashreplace")):
        [obj] = check_json(printk_line(text, json=True) + "\n")
        assert obj["type"] == "printk"
        check_plain(printk_line(text, json=False))
