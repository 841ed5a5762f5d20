"""Bytes a program wrote with no type to read them by: text when they look like it,
else ``hexdump -C`` lines.
"""

from __future__ import annotations

#: Bytes per ``iter_bytes`` JSON object and per plain hex dump line.
JSON_HEX_CHUNK = 64
HEX_LINE = 16


def looks_like_text(data: bytes) -> bool:
    """Whether iterator output is text: it holds no NUL byte. ``seq_printf``
    text never does, while binary records almost always do (small integers,
    padded strings); bytes that are not UTF-8 or are control characters
    inside text (a task may name itself anything) do not make it binary."""
    return b"\0" not in data


def decode_text(data: bytes) -> str:
    """Bytes shown as text: UTF-8, with each byte that is not valid UTF-8
    written as ``\\xNN`` (the rule of char arrays in ``ecc.run.decode``)."""
    return data.decode("utf-8", "backslashreplace")


def hex_dump(data: bytes, start: int = 0) -> str:
    """``hexdump -C`` lines: offset, 16 bytes in hex, the printable ASCII
    ones (others as ``.``); offsets count from ``start``. No final newline."""
    lines = []
    for off in range(0, len(data), HEX_LINE):
        chunk = data[off : off + HEX_LINE]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{start + off:08x}  {left:<23}  {right:<23}  |{ascii_}|")
    return "\n".join(lines)
