"""ecc.run.output: exact text of event rows, JSON lines, histograms and map reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ecc.run.output import (
    EventFormatter,
    escape,
    format_value,
    kv_table,
    linear_hist,
    log2_hist,
    sample_map_json,
    sample_map_report,
)

TS = datetime(2024, 5, 1, 13, 2, 3, 456789, tzinfo=UTC)
TS_PLUS2 = datetime(2024, 5, 1, 13, 2, 3, tzinfo=timezone(timedelta(hours=2)))


def lines(*rows: str) -> str:
    return "\n".join(rows)


# --- single values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bash", "bash"),
        ("with space", "with space"),
        ("bell\x07", "bell\\x07"),
        ("two\nlines\ttab", "two\\x0alines\\x09tab"),
        ("\x7f\x85", "\\x7f\\x85"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tag\U000e0001", "tag\\U000e0001"),
        ("é ünï \ufffd", "é ünï \ufffd"),  # printable non-ASCII stays readable
        ("back\\slash", "back\\slash"),
        ("", ""),
    ],
)
def test_escape(text: str, expected: str) -> None:
    assert escape(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (-42, "-42"),
        (2**127, str(2**127)),
        (True, "true"),
        (False, "false"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
        ("comm\n", "comm\\x0a"),
        ([1, 2, 3], "[1,2,3]"),
        ([[1], ["a"]], '[[1],["a"]]'),
        ({"x": 1, "tag": "ab"}, '{"x":1,"tag":"ab"}'),
        ({"s": "\x07"}, '{"s":"\\u0007"}'),
        ([float("nan"), 1.5], '["nan",1.5]'),
        ({"s": "\u2028"}, '{"s":"\\u2028"}'),
        (None, ""),
    ],
)
def test_format_value(value: Any, expected: str) -> None:
    assert format_value(value) == expected


# --- event rows ------------------------------------------------------------------------

FIELDS = ("pid", "ppid", "exit_code", "duration_ns", "comm", "filename", "exit_event")
WIDTHS = (7, 7, 7, 12, 15, 32, 5)  # what Decoder.widths gives for bootstrap's event
EVENT = {"pid": 4242, "ppid": 1, "exit_code": 0, "duration_ns": 123456789,
         "comm": "bash", "filename": "/usr/bin/ls", "exit_event": False}


def test_plain_header_and_rows() -> None:
    f = EventFormatter(FIELDS, json=False, widths=WIDTHS)
    assert f.header() == (
        "TIME     PID     PPID    EXIT_CODE DURATION_NS  COMM            "
        "FILENAME                         EXIT_EVENT"
    )
    assert f.row(EVENT, TS) == (
        "13:02:03 4242    1       0         123456789    bash            "
        "/usr/bin/ls                      false"
    )


def test_plain_columns_line_up() -> None:
    f = EventFormatter(FIELDS, json=False, widths=WIDTHS)
    header = f.header()
    assert header is not None
    row = f.row(EVENT, TS)
    for name in ("PID", "COMM", "FILENAME", "EXIT_EVENT"):
        field = name.lower()
        assert row.index(format_value(EVENT[field]), header.index(name)) == header.index(name)


def test_plain_without_widths_or_time() -> None:
    f = EventFormatter(("pid", "comm", "a"), json=False, time=False)
    assert f.header() == "PID    COMM   A"
    assert f.row({"pid": 1, "comm": "sh", "a": [1, 2]}, TS) == "1      sh     [1,2]"


def test_plain_long_values_push_right_and_stay_on_one_line() -> None:
    f = EventFormatter(("comm", "pid"), json=False, widths=(4, 3))
    assert f.header() == "TIME     COMM PID"
    row = f.row({"comm": "a-very-long\nname", "pid": 1}, TS)
    assert row == "13:02:03 a-very-long\\x0aname 1"
    assert "\n" not in row


def test_plain_trailing_spaces_are_dropped() -> None:
    f = EventFormatter(("comm", "s"), json=False, widths=(16, 16))
    assert f.row({"comm": "x", "s": ""}, TS) == "13:02:03 x"
    assert f.header() == "TIME     COMM             S"


def test_plain_time_from_a_float() -> None:
    ts = datetime(2024, 1, 2, 3, 4, 5).timestamp()  # local time, like time.time()
    f = EventFormatter(("pid",), json=False)
    assert f.row({"pid": 1}, ts) == "03:04:05 1"


def test_json_rows() -> None:
    f = EventFormatter(FIELDS, json=True, widths=WIDTHS)
    assert f.header() is None
    row = f.row(EVENT, TS)
    assert row == (
        '{"time":"2024-05-01T13:02:03.456789+00:00","pid":4242,"ppid":1,"exit_code":0,'
        '"duration_ns":123456789,"comm":"bash","filename":"/usr/bin/ls","exit_event":false}'
    )
    assert list(json.loads(row)) == ["time", *FIELDS]


def test_json_without_time_and_awkward_values() -> None:
    f = EventFormatter(("s", "f", "big", "nested"), json=True, time=False)
    row = f.row({"s": "é\n\x07", "f": float("inf"), "big": 2**100,
                 "nested": {"a": [1.5, float("nan")]}}, TS)
    assert row == (
        '{"s":"é\\n\\u0007","f":"inf","big":1267650600228229401496703205376,'
        '"nested":{"a":[1.5,"nan"]}}'
    )
    assert json.loads(row)["big"] == 2**100


def test_json_time_key_never_shadows_a_field() -> None:
    f = EventFormatter(("time", "_time"), json=True)
    assert f.row({"time": 1, "_time": 2}, TS_PLUS2) == (
        '{"__time":"2024-05-01T13:02:03.000000+02:00","time":1,"_time":2}'
    )


def test_widths_must_match_fields() -> None:
    with pytest.raises(ValueError, match="2 widths for 1 fields"):
        EventFormatter(("a",), json=False, widths=(1, 2))


# --- histograms ------------------------------------------------------------------------


def test_log2_hist() -> None:
    assert log2_hist([1, 0, 2, 4, 8, 40, 0, 0], "usecs") == lines(
        "     usecs               : count    distribution",
        "         0 -> 1          : 1        |*                                       |",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 2        |**                                      |",
        "         8 -> 15         : 4        |****                                    |",
        "        16 -> 31         : 8        |********                                |",
        "        32 -> 63         : 40       |****************************************|",
    )


def test_log2_hist_prints_leading_zero_rows_from_slot_0() -> None:
    assert log2_hist([0, 0, 0, 3], "msecs") == lines(
        "     msecs               : count    distribution",
        "         0 -> 1          : 0        |                                        |",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 0        |                                        |",
        "         8 -> 15         : 3        |****************************************|",
    )


def test_log2_hist_wide_after_33_slots() -> None:
    slots = [0] * 40
    slots[0] = 1
    slots[33] = 2
    out = log2_hist(slots, "nsecs").split("\n")
    assert len(out) == 1 + 34
    assert out[0] == "               nsecs                         : count    distribution"
    assert out[1] == (
        "                   0 -> 1                    : 1        |**********          |"
    )
    assert out[-1] == (
        "          8589934592 -> 17179869183          : 2        |********************|"
    )


@pytest.mark.parametrize("slots", [[], [0, 0, 0]])
def test_empty_histograms_print_nothing(slots: list[int]) -> None:
    assert log2_hist(slots, "usecs") == ""
    assert linear_hist(slots, 0, 1, "usecs") == ""


def test_log2_hist_stars_round_down() -> None:
    out = log2_hist([1, 3], "x").split("\n")
    assert out[1].endswith("|" + "*" * 13 + " " * 27 + "|")  # 1 * 40 // 3


def test_linear_hist_shows_only_nonzero_slots() -> None:
    assert linear_hist([0, 0, 3, 0, 6, 0], 100, 10, "ms") == lines(
        "     ms            : count     distribution",
        "        120        : 3        |********************                    |",
        "        140        : 6        |****************************************|",
    )


# --- sample maps ----------------------------------------------------------------------

LOG2 = {"interval": 1000, "type": "log2_hist", "unit": "usecs"}


def test_report_log2_per_struct_key_with_comm() -> None:
    entries = [
        ({"pid": 20}, {"slots": [0, 2, 1], "comm": "zsh"}),
        ({"pid": 3}, {"slots": [1], "comm": "bash"}),
        ({"pid": 7}, {"slots": [0, 0, 0], "comm": "idle"}),  # empty: left out
    ]
    assert sample_map_report("hists", entries, LOG2) == lines(
        "pid = 3 comm = bash",
        "     usecs               : count    distribution",
        "         0 -> 1          : 1        |****************************************|",
        "",
        "pid = 20 comm = zsh",
        "     usecs               : count    distribution",
        "         0 -> 1          : 0        |                                        |",
        "         2 -> 3          : 2        |****************************************|",
        "         4 -> 7          : 1        |********************                    |",
    ) + "\n"


def test_report_log2_scalar_key_array_value() -> None:
    entries = [(2, [0, 1]), (1, [4])]
    assert sample_map_report("h", entries, {"type": "log2_hist"}) == lines(
        "key = 1",
        "     (unit)              : count    distribution",
        "         0 -> 1          : 4        |****************************************|",
        "",
        "key = 2",
        "     (unit)              : count    distribution",
        "         0 -> 1          : 0        |                                        |",
        "         2 -> 3          : 1        |****************************************|",
    ) + "\n"


def test_report_key_with_escaped_string() -> None:
    out = sample_map_report("h", [({"comm": "a\nb"}, [1])], LOG2)
    assert out.split("\n")[0] == "comm = a\\x0ab"


def test_report_linear() -> None:
    sample = {"type": "linear_hist", "unit": "ms", "base": 10, "step": 5}
    assert sample_map_report("h", [(0, {"slots": [0, 2]})], sample) == lines(
        "key = 0",
        "     ms            : count     distribution",
        "        15         : 2        |****************************************|",
    ) + "\n"


def test_report_linear_ignores_junk_base_and_step() -> None:
    sample = {"type": "linear_hist", "base": "ten", "step": True}
    assert sample_map_report("h", [(0, [1])], sample).split("\n")[2].startswith(
        "        0          : 1"
    )


def test_report_nothing_to_show() -> None:
    assert sample_map_report("h", [], LOG2) == ""
    assert sample_map_report("h", [(1, [0, 0])], LOG2) == ""
    assert sample_map_report("h", [], {}) == ""


def test_report_falls_back_to_a_table_without_slots() -> None:
    entries = [(1, {"count": 5})]
    assert sample_map_report("h", entries, LOG2) == lines("KEY  COUNT", "  1      5") + "\n"


def test_report_default_kv() -> None:
    entries = [
        ({"pid": 12345, "comm": "bash"}, {"count": 2, "bytes": 1024}),
        ({"pid": 3, "comm": "a"}, {"count": 100, "bytes": 7}),
    ]
    assert sample_map_report("m", entries, {"type": "default_kv"}) == lines(
        "  PID  COMM  COUNT  BYTES",
        "    3  a       100      7",
        "12345  bash      2   1024",
    ) + "\n"


def test_kv_table_scalars_and_names() -> None:
    assert kv_table([(3, 100), (1, 2)], key_name="pid", value_name="count") == lines(
        "PID  COUNT",
        "  1      2",
        "  3    100",
    )


def test_kv_table_mixed_columns() -> None:
    # Strings, bools and nested values are left-aligned; a column with any
    # non-number is a text column.
    entries = [("b", {"ok": True, "v": [1, 2]}), ("a", {"ok": False, "v": None})]
    assert kv_table(entries) == lines(
        "KEY  OK     V",
        "a    false",
        "b    true   [1,2]",
    )


def test_keys_of_mixed_types_sort_deterministically() -> None:
    # Numbers (NaN last among them), then strings, lists, dicts.
    entries = [("x", 1), (2, 1), ([1], 1), (1.5, 1), (float("nan"), 1), ({"a": 1}, 1), (True, 1)]
    keys = [e["key"] for e in json.loads(sample_map_json("m", entries, {}))["entries"]]
    assert keys == [True, 1.5, 2, "nan", "x", [1], {"a": 1}]
    assert kv_table([]) == ""


def test_kv_table_union_of_columns() -> None:
    # Keys of one map share a type; a differing one still gets every column.
    assert kv_table([({"a": 1}, 5), ({"a": 2, "b": "x"}, 6)]) == lines(
        "A  B  VALUE",
        "1         5",
        "2  x      6",
    )


def test_sample_json() -> None:
    entries = [({"pid": 2}, {"slots": [1, 0]}), ({"pid": 1}, {"slots": [0, 3]})]
    line = sample_map_json("hists", entries, LOG2)
    assert line == (
        '{"type":"hist","map":"hists","sample":"log2_hist","entries":['
        '{"key":{"pid":1},"value":{"slots":[0,3]}},'
        '{"key":{"pid":2},"value":{"slots":[1,0]}}]}'
    )
    assert sample_map_report("hists", entries, LOG2, json=True) == line + "\n"


def test_sample_json_time_and_default_type() -> None:
    assert sample_map_json("m", [(1, 2.5)], {}, TS) == (
        '{"type":"kv","map":"m","time":"2024-05-01T13:02:03.456789+00:00",'
        '"sample":"default_kv","entries":[{"key":1,"value":2.5}]}'
    )
    assert sample_map_report("m", [], {}, json=True) == (
        '{"type":"kv","map":"m","sample":"default_kv","entries":[]}\n'
    )
