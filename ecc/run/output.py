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

- ``iter_report``: what an iterator program wrote: text lines, records
  decoded with a struct, or a hex dump.
- ``printk_line``: one line of the kernel's trace pipe (``bpf_printk``).

Plain text is always one line per row: control and other non-printable
characters in strings are escaped (``\\x07``), the way libbpf's
``btf_dump_string_data`` shows them. JSON is one object per line whose
``"type"`` says what it is (``event``, ``hist``, ``kv``, ``iter``,
``iter_record``, ``iter_bytes``, ``printk``); characters JSON leaves raw
but a terminal or a line splitter may act on (DEL, C1 controls, U+2028)
are written as ``\\uXXXX`` escapes, so a line is printable text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .hexdump import JSON_HEX_CHUNK, decode_text, hex_dump, looks_like_text
from .jsonline import dumps, escape

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "EventFormatter",
    "RecordDecoder",
    "decode_text",
    "escape",
    "format_value",
    "hex_dump",
    "iter_reading",
    "iter_report",
    "looks_like_text",
    "printk_line",
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
    return escape(dumps(value))


def _timestamp(ts: datetime | float) -> datetime:
    # Imported with the first event, not at every start (ecc run prints "running" first).
    from datetime import datetime

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

    A field missing from ``values`` (a member past the end of a short event)
    is an empty column in plain mode and left out of the JSON object, so a
    consumer never mistakes it for a value that arrived (0, "").

    ``envelope`` (``{"type": "event", "map": "rb"}``) opens every JSON object,
    before ``time``. Its keys and ``time`` then always mean what ``ecc run``
    says they mean: a member with one of those names is written with a ``_``
    prefix (``_type``; more when that is taken too). Without an envelope, the
    member keeps its name and ``time`` is the one prefixed.
    """

    __slots__ = ("fields", "json", "time", "widths", "_time_key", "_envelope", "_rename")

    def __init__(
        self,
        fields: Sequence[str],
        *,
        json: bool,
        time: bool = True,
        widths: Sequence[int] | None = None,
        envelope: Mapping[str, Any] | None = None,
    ) -> None:
        self.fields = tuple(fields)
        self.json = json
        self.time = time
        hints = tuple(widths) if widths is not None else (DEFAULT_WIDTH,) * len(self.fields)
        if len(hints) != len(self.fields):
            raise ValueError(f"{len(hints)} widths for {len(self.fields)} fields")
        self.widths = tuple(max(len(f), w) for f, w in zip(self.fields, hints, strict=True))
        self._envelope = dict(envelope) if envelope is not None else None
        self._rename: dict[str, str] = {}
        if self._envelope is None:
            self._time_key = _time_key(self.fields)
        else:
            self._time_key = "time"
            reserved = set(self._envelope) | ({"time"} if time else set())
            taken = reserved | set(self.fields)
            for f in self.fields:
                if f in reserved:
                    key = "_" + f
                    while key in taken:
                        key = "_" + key
                    taken.add(key)
                    self._rename[f] = key

    def header(self) -> str | None:
        if self.json:
            return None
        cols = [escape(f.upper()).ljust(w) for f, w in zip(self.fields, self.widths, strict=True)]
        if self.time:
            cols.insert(0, "TIME".ljust(_TIME_WIDTH))
        return " ".join(cols).rstrip()

    def row(self, values: Mapping[str, Any], ts: datetime | float) -> str:
        if self.json:
            if self._envelope is not None:
                obj = dict(self._envelope)
                if self.time:
                    obj["time"] = _iso_time(ts)
                if self._rename:
                    rename = self._rename
                    obj.update((rename.get(k, k), v) for k, v in values.items())
                else:
                    obj.update(values)
                return dumps(obj)
            if not self.time:
                return dumps(dict(values))
            return dumps({self._time_key: _iso_time(ts), **values})
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
        return [f"{escape(str(k))} = {format_value(v)}" for k, v in value.items()]
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
    if kind not in _HIST_KINDS:
        return kv_table(rows, key_name=key_name, value_name=value_name)
    hists = [(key, h) for key, value in rows if (h := _slots_of(value)) is not None]
    if len(hists) != len(rows):
        # Some value has nothing to draw: show the numbers rather than drop them.
        return kv_table(rows, key_name=key_name, value_name=value_name)
    # The unit is package metadata: as untrusted as the values.
    unit = escape(str(sample.get("unit", _DEFAULT_UNIT)))
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
    widths = [max([len(escape(n))] + [len(r[i]) for r in text]) for i, n in enumerate(names)]
    lines = [_table_line([escape(n.upper()) for n in names], widths, numeric)]
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
    """One interval as one JSON line: ``{"type": "hist" or "kv", "map": name,
    "time": ..., "sample": ..., "entries": [{"key": k, "value": v}, ...]}``.
    ``type`` is ``hist`` for a ``log2_hist``/``linear_hist`` annotation and
    ``kv`` for any other; ``sample`` is the annotation's type as written
    (``default_kv`` when it has none); entries in key order; ``time`` only
    when ``ts`` is given."""
    kind = sample.get("type", "default_kv")
    obj: dict[str, Any] = {"type": "hist" if kind in _HIST_KINDS else "kv", "map": name}
    if ts is not None:
        obj["time"] = _iso_time(ts)
    obj["sample"] = kind
    obj["entries"] = [{"key": k, "value": v} for k, v in _sorted(entries)]
    return dumps(obj)


_HIST_KINDS = ("log2_hist", "linear_hist")


# --- iterators ------------------------------------------------------------------------


class RecordDecoder(Protocol):
    """What ``iter_report`` needs of a struct decoder (``ecc.run.decode.Decoder``)."""

    @property
    def size(self) -> int: ...

    @property
    def fields(self) -> tuple[str, ...]: ...

    @property
    def widths(self) -> tuple[int, ...]: ...

    def decode(self, data: bytes) -> dict[str, Any]: ...


def _bytes_report(program: str, data: bytes, start: int, json: bool) -> list[str]:
    if not json:
        return [hex_dump(data, start)] if data else []
    return [
        dumps({"type": "iter_bytes", "program": program, "offset": start + off,
                "hex": data[off : off + JSON_HEX_CHUNK].hex()})
        for off in range(0, len(data), JSON_HEX_CHUNK)
    ]


def _records_report(program: str, data: bytes, decoder: RecordDecoder, json: bool) -> list[str]:
    size = decoder.size
    count = len(data) // size
    formatter = EventFormatter(decoder.fields, json=json, time=False, widths=decoder.widths,
                               envelope={"type": "iter_record", "program": program})
    lines: list[str] = []
    header = formatter.header()
    if header:
        lines.append(header)
    for i in range(count):
        lines.append(formatter.row(decoder.decode(data[i * size : (i + 1) * size]), 0))
    # A tail shorter than one record is shown, not dropped: it is what the
    # program wrote, and a wrong struct shows up there first.
    return lines + _bytes_report(program, data[count * size :], count * size, json)


def iter_report(
    program: str,
    data: bytes,
    *,
    json: bool,
    named: RecordDecoder | None = None,
    candidates: Sequence[RecordDecoder] = (),
) -> tuple[str, str]:
    """What iterator ``program`` wrote, as complete lines (``""`` for no
    bytes), and how it was read: ``"records"``, ``"text"`` or ``"bytes"``.

    - ``named`` (the struct the program names, ``@export``): records of it,
      whatever the bytes look like;
    - else text (``looks_like_text``): one line per line written; plain
      lines escaped (tabs expanded first, so columns stay), JSON
      ``{"type": "iter", "program": ..., "text": ...}``;
    - else the first of ``candidates`` (the export header's structs) whose
      size divides the length: records of it;
    - else bytes: a hex dump, or ``{"type": "iter_bytes", "program": ...,
      "offset": N, "hex": ...}`` objects of up to 64 bytes.

    Records print like events without a time: a header and aligned rows, or
    ``{"type": "iter_record", "program": ..., <members>}``; a tail shorter
    than one record follows as bytes.
    """
    if not data:
        return "", "text"
    how, decoder = iter_reading(data, named, candidates)
    if decoder is not None:
        return _lines(_records_report(program, data, decoder, json)), "records"
    if how == "text":
        text = decode_text(data)
        rows = text.split("\n")
        if rows[-1] == "":
            rows.pop()  # the newline that ends the last line
        if json:
            lines = [dumps({"type": "iter", "program": program, "text": r}) for r in rows]
        else:
            lines = [escape(r.expandtabs()) for r in rows]
        return _lines(lines), "text"
    return _lines(_bytes_report(program, data, 0, json)), "bytes"


def iter_reading(data: bytes, named: RecordDecoder | None,
                 candidates: Sequence[RecordDecoder]) -> tuple[str, RecordDecoder | None]:
    """How iterator output reads, the rule ``iter_report`` and ``Program.iterate``
    share: ``("records", decoder)``, ``("text", None)`` (no bytes at all read as
    text unless a struct is named) or ``("bytes", None)``; see ``iter_report``."""
    if named is not None and named.size > 0:
        return "records", named
    if not data or looks_like_text(data):
        return "text", None
    for decoder in candidates:
        if decoder.size > 0 and len(data) % decoder.size == 0:
            return "records", decoder
    return "bytes", None


def _lines(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


# --- the trace pipe ----------------------------------------------------------------------

# `<comm>-<pid> [<cpu>] <flags> <seconds>: <event>: <message>`, the trace
# pipe's format; comm may itself hold '-' and spaces, so pid is the last
# '-digits' before the CPU column. The flags column is absent on old kernels.
_TRACE_LINE = (  # compiled by re on first use: only --printk reads the pipe
    r"^\s*(?P<comm>.*)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:\S{4,5}\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>[^:]+):\s?(?P<text>.*)$"
)


def printk_line(line: str, *, json: bool) -> str:
    """One trace pipe line (no newline), as one output line (no newline).

    JSON: ``{"type": "printk", "comm": ..., "pid": N, "cpu": N, "timestamp":
    seconds since boot, "text": the message}``, or only ``type`` and ``text``
    (the whole line) when the line is not in the trace format. Plain: the
    line as the kernel wrote it, leading blanks removed, after ``printk: ``,
    escaped.
    """
    if not json:
        return "printk: " + escape(line.strip().expandtabs())
    m = re.match(_TRACE_LINE, line)
    if m is None:
        return dumps({"type": "printk", "text": line})
    return dumps({"type": "printk", "comm": m["comm"], "pid": int(m["pid"]),
                   "cpu": int(m["cpu"]), "timestamp": float(m["ts"]), "text": m["text"]})
