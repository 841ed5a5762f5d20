"""Text and JSON renderings of what a BPF program reports.

Pure functions over already-decoded values (see ``ecc.run.decode``): they
return strings and never print, so ``ecc run`` decides where output goes and
tests compare exact text.

- ``EventFormatter``: one line per ring/perf buffer event, either aligned
  plain columns under an upper-cased header (the layout eunomia's ``ecli``
  prints: ``TIME     PID    COMM ...``) or one compact JSON object per line.
- ``log2_hist`` / ``linear_hist``: the histograms of libbpf-tools'
  ``print_log2_hist`` / ``print_linear_hist`` (runqlat, biolatency), same
  columns, same 40-star bars, same rows shown.
- ``sample_map_report`` / ``sample_map_json``: one interval of a map with a
  ``sample`` annotation, as histograms per key or as a key/value table.

Plain text is always one line per row: control and other non-printable
characters in strings are escaped (``\\x07``), the way libbpf's
``btf_dump_string_data`` shows them.
"""

from __future__ import annotations

import json as _json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "EventFormatter",
    "escape",
    "format_value",
    "kv_table",
    "linear_hist",
    "log2_hist",
    "sample_map_json",
    "sample_map_report",
]

#: Column width used for a field when no width hint is given (eunomia's minimum).
DEFAULT_WIDTH = 6
_TIME_WIDTH = 8  # HH:MM:SS
_STARS = 40
_DEFAULT_UNIT = "(unit)"  # eunomia's default when a sample has no "unit"


# --- single values ----------------------------------------------------------------


def escape(text: str) -> str:
    """``text`` with every non-printable character written as a Python-style
    escape (``\\x07``, ``\\u2028``), so it cannot break a line or a terminal."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return "".join(out)


def format_value(value: Any) -> str:
    """One decoded value as plain text: strings unquoted and escaped, bools
    as ``true``/``false``, lists and dicts as compact JSON."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return ""
    return escape(_dumps(value))


def _jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold replaced: non-finite floats by
    the strings ``"nan"``, ``"inf"``, ``"-inf"``, bytes by a hex string."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _dumps(value: Any) -> str:
    # Fast path first: almost every event holds only ints and strings.
    try:
        return _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):
        return _json.dumps(
            _jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )


def _timestamp(ts: datetime | float) -> datetime:
    return ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts)


def _iso_time(ts: datetime | float) -> str:
    # Always with a UTC offset (local time's when the caller gave none), so
    # JSON lines from different hosts stay comparable.
    dt = _timestamp(ts)
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.isoformat(timespec="microseconds")


def _time_key(names: Iterable[str]) -> str:
    # An event may have its own field called "time"; never overwrite it.
    taken = set(names)
    key = "time"
    while key in taken:
        key = "_" + key
    return key


# --- events ---------------------------------------------------------------------


class EventFormatter:
    """Renders decoded events (``Decoder.decode`` dicts) one line each.

    Plain mode: ``header()`` is the column names upper-cased, ``TIME`` first
    when ``time`` is set; each column is as wide as the larger of its name
    and its width hint (``Decoder.widths``; ``DEFAULT_WIDTH`` without one);
    columns are separated by one space; a value wider than its column pushes
    the rest of its row right rather than being cut. JSON mode: no header;
    each row is one compact JSON object, keys in field order, preceded by
    ``"time"`` (ISO 8601 with UTC offset) when ``time`` is set.
    """

    __slots__ = ("fields", "json", "time", "widths", "_time_key")

    def __init__(
        self,
        fields: Sequence[str],
        *,
        json: bool,
        time: bool = True,
        widths: Sequence[int] | None = None,
    ) -> None:
        self.fields = tuple(fields)
        self.json = json
        self.time = time
        hints = tuple(widths) if widths is not None else (DEFAULT_WIDTH,) * len(self.fields)
        if len(hints) != len(self.fields):
            raise ValueError(f"{len(hints)} widths for {len(self.fields)} fields")
        self.widths = tuple(max(len(f), w) for f, w in zip(self.fields, hints, strict=True))
        self._time_key = _time_key(self.fields)

    def header(self) -> str | None:
        if self.json:
            return None
        cols = [f.upper().ljust(w) for f, w in zip(self.fields, self.widths, strict=True)]
        if self.time:
            cols.insert(0, "TIME".ljust(_TIME_WIDTH))
        return " ".join(cols).rstrip()

    def row(self, values: Mapping[str, Any], ts: datetime | float) -> str:
        if self.json:
            if not self.time:
                return _dumps(dict(values))
            return _dumps({self._time_key: _iso_time(ts), **values})
        cols = [
            format_value(values.get(f)).ljust(w)
            for f, w in zip(self.fields, self.widths, strict=True)
        ]
        if self.time:
            cols.insert(0, _timestamp(ts).strftime("%H:%M:%S"))
        return " ".join(cols).rstrip()


# --- histograms -----------------------------------------------------------------


def _stars(value: int, max_value: int, width: int) -> str:
    n = max(0, min(value, max_value)) * width // max_value
    return "*" * n + " " * (width - n)


def log2_hist(slots: Sequence[int], unit: str) -> str:
    """libbpf-tools ``print_log2_hist``: slot i counts values in
    [2^i, 2^(i+1)) (slot 0 is 0 -> 1). Rows run from slot 0 to the last
    non-zero slot; empty histograms give ``""``. Beyond 33 slots the
    columns widen and the bars halve, as there."""
    last = _last_nonzero(slots)
    if last < 0:
        return ""
    max_value = max(slots)
    wide = last > 32
    num_w = 20 if wide else 10
    stars = _STARS // 2 if wide else _STARS
    indent, unit_w = (15, 29) if wide else (5, 19)
    lines = [" " * indent + unit.ljust(unit_w) + " : count    distribution"]
    for i in range(last + 1):
        low = (1 << (i + 1)) >> 1
        high = (1 << (i + 1)) - 1
        if low == high:
            low -= 1
        value = slots[i]
        lines.append(
            f"{low:>{num_w}} -> {high:<{num_w}} : {value:<8} |{_stars(value, max_value, stars)}|"
        )
    return "\n".join(lines)


def linear_hist(slots: Sequence[int], base: int, step: int, unit: str) -> str:
    """libbpf-tools ``print_linear_hist``: slot i counts values from
    ``base + i * step``; only non-zero slots are shown."""
    last = _last_nonzero(slots)
    if last < 0:
        return ""
    max_value = max(slots)
    lines = [f"     {unit:<13} : count     distribution"]
    for i, value in enumerate(slots[: last + 1]):
        if value > 0:
            lines.append(
                f"        {base + i * step:<10} : {value:<8} |"
                f"{_stars(value, max_value, _STARS)}|"
            )
    return "\n".join(lines)


def _last_nonzero(slots: Sequence[int]) -> int:
    for i in range(len(slots) - 1, -1, -1):
        if slots[i] > 0:
            return i
    return -1


# --- sample maps ------------------------------------------------------------------


def _sort_key(value: Any) -> tuple[Any, ...]:
    """A total order over decoded values of mixed types (numbers, then
    strings, then lists, then dicts), so reports are deterministic."""
    if isinstance(value, bool | int):
        return (0, 0, int(value))
    if isinstance(value, float):
        return (0, 1, 0) if math.isnan(value) else (0, 0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list | tuple):
        return (2, tuple(_sort_key(v) for v in value))
    if isinstance(value, dict):
        return (3, tuple((str(k), _sort_key(v)) for k, v in value.items()))
    return (4, repr(value))


def _sorted(entries: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    return sorted(entries, key=lambda kv: _sort_key(kv[0]))


def _slots_of(value: Any) -> tuple[list[int], dict[str, Any]] | None:
    """(histogram slots, other value fields) or None when ``value`` holds no
    integer array to draw: a ``slots`` member of a struct, or the value itself."""
    if isinstance(value, dict):
        slots = value.get("slots")
        rest = {k: v for k, v in value.items() if k != "slots"}
    else:
        slots, rest = value, {}
    if not isinstance(slots, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in slots
    ):
        return None
    return slots, rest


def _int_opt(sample: Mapping[str, Any], key: str, default: int) -> int:
    # Annotations are user-written JSON; a junk value must not kill the report.
    value = sample.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _pairs(value: Any, name: str) -> list[str]:
    if isinstance(value, dict):
        return [f"{k} = {format_value(v)}" for k, v in value.items()]
    return [f"{name} = {format_value(value)}"]


def sample_map_report(
    name: str,
    entries: Iterable[tuple[Any, Any]],
    sample: Mapping[str, Any],
    *,
    json: bool = False,
    ts: datetime | float | None = None,
    key_name: str = "key",
    value_name: str = "value",
) -> str:
    """One interval of the sampled map ``name``, as complete lines: the
    text ends with a newline, or is ``""`` when there is nothing to show.

    With ``json``, the one line of ``sample_map_json``. Otherwise, by the
    annotation's ``type``: for ``log2_hist`` and ``linear_hist`` (``base``,
    default 0, and ``step``, default 1) each key in key order gets a line of
    ``name = value`` pairs (its struct members, or ``key_name = value`` for a
    scalar key, then the value's members other than ``slots``, e.g. a
    ``comm``) and the histogram of the value's ``slots`` array (or of the
    value itself when it is an array); keys whose histogram is empty are
    left out, and blocks are separated by a blank line. ``default_kv``, no
    type, or values without a usable integer array give ``kv_table``.
    """
    if json:
        return sample_map_json(name, entries, sample, ts) + "\n"
    text = _plain_report(_sorted(entries), sample, key_name, value_name)
    return text + "\n" if text else ""


def _plain_report(
    rows: list[tuple[Any, Any]], sample: Mapping[str, Any], key_name: str, value_name: str
) -> str:
    kind = sample.get("type", "default_kv")
    if kind not in ("log2_hist", "linear_hist"):
        return kv_table(rows, key_name=key_name, value_name=value_name)
    hists = [(key, h) for key, value in rows if (h := _slots_of(value)) is not None]
    if len(hists) != len(rows):
        # Some value has nothing to draw: show the numbers rather than drop them.
        return kv_table(rows, key_name=key_name, value_name=value_name)
    unit = str(sample.get("unit", _DEFAULT_UNIT))
    blocks = []
    for key, (slots, rest) in hists:
        if kind == "log2_hist":
            text = log2_hist(slots, unit)
        else:
            base, step = _int_opt(sample, "base", 0), _int_opt(sample, "step", 1)
            text = linear_hist(slots, base, step, unit)
        if text:
            pairs = _pairs(key, key_name) + (_pairs(rest, value_name) if rest else [])
            blocks.append(" ".join(pairs) + "\n" + text)
    return "\n\n".join(blocks)


def kv_table(
    entries: Iterable[tuple[Any, Any]], *, key_name: str = "key", value_name: str = "value"
) -> str:
    """A key/value table, one row per entry in key order: one column per
    key member then per value member (``key_name``/``value_name`` for a
    scalar), upper-cased headers, numeric columns right-aligned, two spaces
    between columns. ``""`` for no entries."""
    rows = _sorted(entries)
    if not rows:
        return ""
    key_cols = _columns((k for k, _ in rows), key_name)
    value_cols = _columns((v for _, v in rows), value_name)
    names = [name for name, _ in key_cols] + [name for name, _ in value_cols]
    cells: list[list[Any]] = []
    for key, value in rows:
        cells.append(
            [_cell(key, col, scalar) for col, scalar in key_cols]
            + [_cell(value, col, scalar) for col, scalar in value_cols]
        )
    numeric = [
        all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in cells)
        for i in range(len(names))
    ]
    text = [[format_value(c) for c in r] for r in cells]
    widths = [max([len(n)] + [len(r[i]) for r in text]) for i, n in enumerate(names)]
    lines = [_table_line([n.upper() for n in names], widths, numeric)]
    lines += [_table_line(r, widths, numeric) for r in text]
    return "\n".join(lines)


def _columns(values: Iterable[Any], scalar_name: str) -> list[tuple[str, bool]]:
    """(column name, is-the-whole-value) pairs: the union of dict members in
    first-seen order, or the single scalar column."""
    cols: dict[str, bool] = {}
    for v in values:
        if isinstance(v, dict):
            for k in v:
                cols.setdefault(str(k), False)
        else:
            cols.setdefault(scalar_name, True)
    return list(cols.items())


def _cell(value: Any, col: str, scalar: bool) -> Any:
    if scalar:
        return None if isinstance(value, dict) else value
    return value.get(col) if isinstance(value, dict) else None


def _table_line(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    return "  ".join(
        c.rjust(w) if num else c.ljust(w)
        for c, w, num in zip(cells, widths, numeric, strict=True)
    ).rstrip()


def sample_map_json(
    name: str,
    entries: Iterable[tuple[Any, Any]],
    sample: Mapping[str, Any],
    ts: datetime | float | None = None,
) -> str:
    """One interval as one JSON line:
    ``{"time": ..., "map": name, "type": ..., "entries": [{"key": k, "value": v}, ...]}``,
    entries in key order, ``time`` only when ``ts`` is given."""
    obj: dict[str, Any] = {}
    if ts is not None:
        obj["time"] = _iso_time(ts)
    obj["map"] = name
    obj["type"] = sample.get("type", "default_kv")
    obj["entries"] = [{"key": k, "value": v} for k, v in _sorted(entries)]
    return _dumps(obj)
