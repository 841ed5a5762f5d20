"""Counting the events that do not fit their type, so each kind is reported once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .decode import Decoder


class EventTally:
    """Events that do not fit their type, counted per (source, kind).

    A loader calls ``check`` for every record; what it counts is reported once
    per kind with a count (``summary``), not once per event: a tool such as
    execsnoop sends thousands, and one bad layout would flood stderr. Kinds:
    ``short`` (holds no member: skipped) and ``long`` (longer than the type
    beyond perf padding: decoded from its first ``size`` bytes).
    """

    __slots__ = ("_kinds",)

    def __init__(self) -> None:
        # (source, kind) -> [count, shortest, longest, type description, type size]
        self._kinds: dict[tuple[str, str], list[Any]] = {}

    def check(self, source: str, decoder: Decoder, n: int) -> str | None:
        """Count a record of ``n`` bytes from ``source`` (a map name) if it is
        irregular; the kind when it is the first of its kind, else None."""
        if n < decoder.least:
            kind = "short"
        elif decoder.too_long(n):
            kind = "long"
        else:
            return None
        entry = self._kinds.get((source, kind))
        if entry is not None:
            entry[0] += 1
            entry[1] = min(entry[1], n)
            entry[2] = max(entry[2], n)
            return None
        what = decoder.what
        size = decoder.least if kind == "short" else decoder.size
        self._kinds[(source, kind)] = [1, n, n, what, size]
        return kind

    def counts(self) -> dict[tuple[str, str], int]:
        return {key: entry[0] for key, entry in self._kinds.items()}

    def summary(self) -> list[str]:
        """One line per (source, kind) seen, then forget them."""
        lines = []
        for (source, kind), (count, low, high, what, size) in self._kinds.items():
            events = "1 event" if count == 1 else f"{count} events"
            lengths = f"{low} bytes" if low == high else f"{low} to {high} bytes"
            if kind == "short":
                lines.append(f"map {source}: {events} shorter than the first member of {what} "
                             f"({size} bytes) skipped ({lengths})")
            else:
                lines.append(f"map {source}: {events} longer than {what} ({size} bytes) "
                             f"decoded from their first {size} bytes ({lengths})")
        self._kinds.clear()
        return lines
