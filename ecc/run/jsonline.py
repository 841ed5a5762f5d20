"""Text that stays one printable line: plain strings escaped, JSON written compactly.

Plain text escapes non-printable characters the way libbpf's
``btf_dump_string_data`` shows them (``\\x07``); JSON escapes what ``json.dumps``
leaves raw but a terminal or a line splitter may act on (DEL, C1 controls,
U+2028) as ``\\uXXXX``.
"""

from __future__ import annotations

import json as _json
import math
from typing import Any


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


def dumps(value: Any) -> str:
    # Fast path first: almost every event holds only ints and strings.
    try:
        text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):
        text = _json.dumps(
            _jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    return text if text.isprintable() else _printable_json(text)


def _printable_json(text: str) -> str:
    # json.dumps escapes only U+0000..U+001F; DEL, C1 controls and line
    # separators (U+0085, U+2028) would reach a terminal raw or split the line
    # for str.splitlines(). Outside strings JSON has only ASCII, so every such
    # character is inside a string, where a \u escape means the same.
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)
