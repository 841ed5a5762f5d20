"""ecc.run.decode on events shorter than their type (issue 30): cut at every byte.

The structs are built by clang for both byte orders; where each member lies
comes from clang too (``offsetof``/``sizeof`` stored in globals), not from
the decoder, so the expected values below are an independent oracle: a
member wholly inside the cut is what the full event decodes to, a cut array
keeps the whole elements received, anything else is absent.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from typing import Any, Literal

import pytest
from conftest import require
from test_btf_encoder import Enc
from test_decode import Compiled

from ecc.btf import Kind, parse_btf
from ecc.btf.types import Struct
from ecc.errors import PackageError
from ecc.run.decode import Decoder, EventTally

Order = Literal["little", "big"]
TARGETS = {"little": "bpf", "big": "bpfeb"}

# Members of struct ev (anonymous ones by their flattened names) and what
# kind of value they are: "scalar" and "struct" must arrive whole; "chars" is a
# char array (a str), "array" any other array (a list).
EV_MEMBERS = {
    "kind": "scalar", "pid": "scalar", "in": "struct", "u": "scalar", "i": "scalar",
    "a2": "scalar", "b2": "scalar", "ts": "scalar", "nums": "array", "path": "array",
    "names": "array", "comm": "chars", "args": "chars",
}
BITFIELDS = ("flags", "level")

C_SOURCE = r"""
#define OFF(s, m) const unsigned long g_off_##s##_##m = __builtin_offsetof(struct s, m); \
    const unsigned long g_size_##s##_##m = sizeof(((struct s *)0)->m);
#define ELEM(s, m) const unsigned long g_elem_##s##_##m = sizeof(((struct s *)0)->m[0]);

struct point { short x; short y; };
struct inner { int id; struct point pts[2]; char tag[5]; };
struct ev {
    unsigned char kind;
    int pid;
    struct inner in;
    union { unsigned int u; int i; };
    struct { short a2, b2; };
    unsigned int flags : 3, level : 5;
    long long ts;
    int nums[3];
    struct point path[3];
    char names[2][4];
    char comm[8];
    char args[64];
};
struct ev g_ev = {
    .kind = 7, .pid = 4242,
    .in = {.id = -1, .pts = {{1, 2}, {3, 4}}, .tag = "tag"},
    .u = 0x80000001u, .a2 = -5, .b2 = 6, .flags = 5, .level = 17,
    .ts = -1234567890123LL, .nums = {10, -20, 30},
    .path = {{-1, -2}, {-3, -4}, {-5, -6}},
    .names = {"one", "four"}, .comm = "bash",
    .args = "/bin/true alpha beta",
};
OFF(ev, kind) OFF(ev, pid) OFF(ev, in) OFF(ev, u) OFF(ev, i) OFF(ev, a2) OFF(ev, b2)
OFF(ev, ts) OFF(ev, nums) OFF(ev, path) OFF(ev, names) OFF(ev, comm) OFF(ev, args)
ELEM(ev, nums) ELEM(ev, path) ELEM(ev, names) ELEM(ev, comm) ELEM(ev, args)

/* Trailing arrays of other element types. */
struct shorts { int n; unsigned short vals[6]; };
struct shorts g_shorts = {.n = 3, .vals = {1, 2, 3, 65535, 0, 9}};
struct points { int n; struct point pts[4]; };
struct points g_points = {.n = 4, .pts = {{1, -1}, {2, -2}, {3, -3}, {4, -4}}};
OFF(shorts, n) OFF(shorts, vals) ELEM(shorts, vals)
OFF(points, n) OFF(points, pts) ELEM(points, pts)
"""

FULL_EV: dict[str, Any] = {
    "kind": 7, "pid": 4242,
    "in": {"id": -1, "pts": [{"x": 1, "y": 2}, {"x": 3, "y": 4}], "tag": "tag"},
    "u": 0x80000001, "i": -(2**31) + 1, "a2": -5, "b2": 6, "flags": 5, "level": 17,
    "ts": -1234567890123, "nums": [10, -20, 30],
    "path": [{"x": -1, "y": -2}, {"x": -3, "y": -4}, {"x": -5, "y": -6}],
    "names": ["one", "four"], "comm": "bash", "args": "/bin/true alpha beta",
}


class Layout(Compiled):
    """A clang object with clang's own record of where each member lies."""

    def where(self, struct_name: str, member: str) -> tuple[int, int, int]:
        """(offset, size, element size or 0) of a member, as clang laid it out."""
        order = self.btf.byte_order

        def num(kind: str) -> int:
            raw = self.globals.get(f"g_{kind}_{struct_name}_{member}")
            return 0 if raw is None else int.from_bytes(raw, order)

        return num("off"), num("size"), num("elem")

    def bitfield_end(self, struct_name: str, member: str) -> int:
        """The bytes a bitfield needs: up to the one holding its last bit (from BTF,
        as C has no offsetof for bitfields)."""
        t = self.btf.by_name(struct_name, Kind.STRUCT)
        assert isinstance(t, Struct)
        m = next(m for m in t.members if m.name == member)
        assert m.bitfield_size
        return (m.bit_offset + m.bitfield_size + 7) // 8


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Layout]:
    require("clang")
    clang = shutil.which("clang-19")
    assert clang is not None
    tmp = tmp_path_factory.mktemp("decode-partial")
    src = tmp / "cut.c"
    src.write_text(C_SOURCE)
    out = {}
    for order, target in TARGETS.items():
        obj = tmp / f"cut-{target}.o"
        subprocess.run([clang, "-g", "-O2", "-target", target, "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
        out[order] = Layout(obj)
    return out


def expected_cut(layout: Layout, struct_name: str, kinds: dict[str, str],
                 full: dict[str, Any], n: int) -> dict[str, Any]:
    """What a cut at ``n`` must give, from clang's offsets and the full values."""
    out = {}
    for name, kind in kinds.items():
        off, size, elem = layout.where(struct_name, name)
        if off + size <= n:
            out[name] = full[name]
        elif kind in ("chars", "array") and off + elem <= n:
            out[name] = full[name][: (n - off) // elem]
    return out


@pytest.mark.clang
@pytest.mark.parametrize("order", ["little", "big"])
def test_struct_ev_cut_at_every_byte(layouts: dict[str, Layout], order: Order) -> None:
    layout = layouts[order]
    d = layout.decoder("ev")
    data = layout.globals["g_ev"]
    assert len(data) == d.size
    assert d.decode(data) == FULL_EV
    # The struct's layout as clang made it: the cut points below are the real ones.
    assert layout.where("ev", "args")[:2] == (d.size - 64, 64)
    kinds = dict(EV_MEMBERS)
    seen_cut_arrays = set()
    for n in range(d.size):
        view = memoryview(data)[:n]  # exactly n bytes: a read past them would fail
        if n < 1:
            with pytest.raises(PackageError, match=r"^event of 0 bytes is shorter than the first "
                                                   r"member of struct ev \(1 bytes\)$"):
                d.decode(view)
            continue
        got = d.decode(view)
        want = expected_cut(layout, "ev", kinds, FULL_EV, n)
        for bitfield in BITFIELDS:
            if layout.bitfield_end("ev", bitfield) <= n:
                want[bitfield] = FULL_EV[bitfield]
        assert got == want, n
        assert list(got) == [f for f in d.fields if f in got], n  # field order kept
        seen_cut_arrays |= {k for k in got if got[k] != FULL_EV[k]}
    # Every array member was seen cut (a prefix), and the nested struct never.
    assert seen_cut_arrays == {"nums", "path", "names", "comm", "args"}


@pytest.mark.clang
@pytest.mark.parametrize("order", ["little", "big"])
def test_trailing_char_array_stops_at_data_end_or_nul(layouts: dict[str, Layout],
                                                      order: Order) -> None:
    layout = layouts[order]
    d = layout.decoder("ev")
    data = bytearray(layout.globals["g_ev"])
    off = layout.where("ev", "args")[0]
    base = {k: v for k, v in FULL_EV.items() if k != "args"}
    assert d.decode(bytes(data[: off + 4])) == {**base, "args": "/bin"}
    assert "args" not in d.decode(bytes(data[:off]))  # not one byte of it arrived
    # execsnoop-style: the last argument's NUL arrived; bytes after it are not text.
    data[off: off + 12] = b"ls\0\xff\xfe junk"
    assert d.decode(bytes(data[: off + 12]))["args"] == "ls"


@pytest.mark.clang
@pytest.mark.parametrize("order", ["little", "big"])
@pytest.mark.parametrize(("name", "full"), [
    ("shorts", {"n": 3, "vals": [1, 2, 3, 65535, 0, 9]}),
    ("points", {"n": 4, "pts": [{"x": i, "y": -i} for i in range(1, 5)]}),
])
def test_trailing_arrays_of_other_types(layouts: dict[str, Layout], order: Order, name: str,
                                        full: dict[str, Any]) -> None:
    layout = layouts[order]
    d = layout.decoder(name)
    data = layout.globals[f"g_{name}"]
    assert d.decode(data) == full
    array = next(iter(k for k in full if k != "n"))
    off, _, elem = layout.where(name, array)
    assert elem > 1
    for n in range(d.least, d.size):
        got = d.decode(memoryview(data)[:n])
        want = {"n": full["n"]}
        if n >= off + elem:
            want[array] = full[array][: (n - off) // elem]
        assert got == want, n


def test_longer_events_decode_from_their_first_bytes() -> None:
    e = Enc()
    i32 = e.int_("int", 4, signed=True)
    s = e.struct("ev", 8, [("pid", i32, 0, 0), ("tid", i32, 32, 0)])
    d = Decoder(parse_btf(e.build()), s)
    data = struct.pack("<ii", 1, 2)
    assert d.decode(data + b"\xff" * 100) == {"pid": 1, "tid": 2}
    assert [d.too_long(n) for n in (8, 15, 16, 200)] == [False, False, True, True]


def test_tally_counts_each_kind_once() -> None:
    e = Enc()
    i32 = e.int_("int", 4, signed=True)
    s = e.struct("ev", 12, [("pid", i32, 0, 0), ("tid", i32, 32, 0), ("cpu", i32, 64, 0)])
    d = Decoder(parse_btf(e.build()), s)
    tally = EventTally()
    # Regular records: whole, padded by a perf buffer, and cut after a member.
    assert [tally.check("events", d, n) for n in (12, 16, 19, 4, 8)] == [None] * 5
    assert tally.check("events", d, 3) == "short"
    assert tally.check("events", d, 0) is None  # counted, not announced again
    assert tally.check("events", d, 2) is None
    assert tally.check("events", d, 20) == "long"
    assert tally.check("other", d, 1) == "short"  # per map
    assert tally.counts() == {("events", "short"): 3, ("events", "long"): 1,
                              ("other", "short"): 1}
    assert tally.summary() == [
        "map events: 3 events shorter than the first member of struct ev (4 bytes) skipped "
        "(0 to 3 bytes)",
        "map events: 1 event longer than struct ev (12 bytes) decoded from their first 12 "
        "bytes (20 bytes)",
        "map other: 1 event shorter than the first member of struct ev (4 bytes) skipped "
        "(1 bytes)",
    ]
    assert tally.summary() == []  # reported once


def test_cut_union_and_empty_struct() -> None:
    e = Enc()
    i32 = e.int_("int", 4, signed=True)
    i8 = e.int_("signed char", 1, signed=True)
    u = e.union("u", 4, [("big", i32, 0, 0), ("small", i8, 0, 0)])
    empty = e.struct("nothing", 0, [])
    btf = parse_btf(e.build())
    assert Decoder(btf, u).decode(b"\xff\x00") == {"small": -1}
    assert Decoder(btf, empty).decode(b"") == {}
    assert Decoder(btf, empty).least == 0


def test_output_of_a_cut_event() -> None:
    """Members that did not arrive: an empty plain column, no JSON key."""
    from ecc.run.output import EventFormatter

    fields = ("pid", "comm", "args")
    values = {"pid": 7, "comm": "sh"}  # args did not arrive
    plain = EventFormatter(fields, json=False, time=False, widths=(4, 4, 4))
    assert plain.header() == "PID  COMM ARGS"
    assert plain.row(values, 0) == "7    sh"
    assert plain.row({"pid": 7, "args": "x y"}, 0) == "7         x y"
    js = EventFormatter(fields, json=True, time=False)
    assert js.row(values, 0) == '{"pid":7,"comm":"sh"}'
