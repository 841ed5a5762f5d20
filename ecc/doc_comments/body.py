"""What a doc comment says: ``@key value`` lines (spec §5) and the ``@cmdarg`` checks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ecc.errors import AnnotationError

from .records import Diagnostic

# ---------------------------------------------------------------------------
# Comment bodies (spec §5)

_KEY_LINE_RE = re.compile(r"@([A-Za-z_][A-Za-z0-9_-]*)(?:\s+(.*))?\Z", re.DOTALL)
_DOC_KEYS = frozenset({"brief", "details", "version"})


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which no loader could read back.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} overflows a double")
    return value


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays are not worth a crash.
        return False, None


def _bracket_scan(text: str, depth: int, in_string: bool) -> tuple[int, bool, bool]:
    """Track JSON bracket depth over ``text``; True third when it drops to 0."""
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{" or ch == "[":
            depth += 1
        elif ch == "}" or ch == "]":
            depth -= 1
            if depth <= 0:
                return depth, in_string, True
    return depth, in_string, False


def parse_comment_body(
    lines: Sequence[tuple[int, str]], *, doc_keys: bool = False
) -> tuple[dict[str, Any], dict[str, int], list[Diagnostic]]:
    """Parse comment lines ``(line number, text without markers)`` per spec §5.

    Returns the annotations, the line of each key, and warnings. With
    ``doc_keys`` (the LICENSE comment), ``@brief``, ``@details`` and
    ``@version`` take free text up to the next ``@`` command.
    """
    annotations: dict[str, Any] = {}
    keys_lines: dict[str, int] = {}
    warnings: list[Diagnostic] = []
    plain: list[str] = []
    explicit_description = False
    count = len(lines)
    i = 0
    while i < count:
        number, raw = lines[i]
        text = raw.strip()
        i += 1
        if not text:
            continue
        match = _KEY_LINE_RE.match(text)
        if match is None:
            if not plain:
                # Reserve the slot so description keeps its place in the output.
                annotations.setdefault("description", None)
                keys_lines.setdefault("description", number)
            plain.append(text)
            continue
        key = match.group(1)
        rest = (match.group(2) or "").strip()
        value: Any
        if doc_keys and key in _DOC_KEYS:
            value, i = _free_text(lines, i, rest)
        elif rest[:1] in ("{", "["):
            value, i = _json_block(lines, i, rest, key, number, warnings)
        else:
            value = _one_line_value(rest, key, number, warnings)
        if key == "description":
            if explicit_description:
                warnings.append(
                    Diagnostic(number, f"'@{key}' given twice; the later value is kept")
                )
            explicit_description = True
        elif key in annotations:
            warnings.append(Diagnostic(number, f"'@{key}' given twice; the later value is kept"))
        annotations[key] = value
        keys_lines[key] = number
    if plain and not explicit_description:
        joined = " ".join(plain)
        ok, parsed = _parse_json(joined)
        annotations["description"] = parsed if ok else joined
    return annotations, keys_lines, warnings


def _free_text(lines: Sequence[tuple[int, str]], i: int, rest: str) -> tuple[str, int]:
    """``@brief`` and friends: the text up to the next ``@`` command; where it ends."""
    parts = [rest] if rest else []
    while i < len(lines):
        following = lines[i][1].strip()
        if _KEY_LINE_RE.match(following):
            break
        if following:
            parts.append(following)
        i += 1
    return "\n".join(parts).strip(), i


def _json_block(lines: Sequence[tuple[int, str]], i: int, rest: str, key: str, number: int,
                warnings: list[Diagnostic]) -> tuple[Any, int]:
    """A JSON object or array that may run over several lines; where it ends."""
    collected = [rest]
    depth, in_string, closed = _bracket_scan(rest, 0, False)
    while not closed and i < len(lines):
        following = lines[i][1].strip()
        i += 1
        if following:
            collected.append(following)
            depth, in_string, closed = _bracket_scan(following, depth, in_string)
    value = "\n".join(collected)
    if not closed:
        warnings.append(Diagnostic(number, f"'@{key}' JSON value is not closed"))
        return value, i
    ok, parsed = _parse_json(value)
    if ok:
        return parsed, i
    warnings.append(Diagnostic(number, f"'@{key}' value is not JSON, kept as a string: {value}"))
    return value, i


def _one_line_value(rest: str, key: str, number: int, warnings: list[Diagnostic]) -> Any:
    if not rest:
        return True
    ok, parsed = _parse_json(rest)
    # A description is prose; asking for JSON there would only be noise.
    if not ok and key != "description":
        warnings.append(
            Diagnostic(number, f"'@{key}' value is not JSON, kept as a string: {rest}")
        )
    return parsed if ok else rest


# ---------------------------------------------------------------------------
# @cmdarg checks

_LONG_OPTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def validate_cmdargs(entries: Sequence[tuple[str, int, object]], filename: str) -> None:
    """Check ``@cmdarg`` objects: shape, option syntax, and clashes.

    ``entries`` are (variable name, line, cmdarg) in source order. Pass ``{}``
    for variables without ``@cmdarg``: loaders still give each one a
    ``--NAME`` option, which can clash. Raises ``AnnotationError``.
    """
    shorts: dict[str, tuple[str, int]] = {}
    longs: dict[str, tuple[str, int]] = {}
    for var, line, cmdarg in entries:
        where = f"{filename}:{line}"
        if not isinstance(cmdarg, Mapping):
            raise AnnotationError(
                f"{where}: @cmdarg of '{var}' must be a JSON object like "
                '{"short": "p", "long": "pid"}'
            )
        short: str | None = None
        if "short" in cmdarg:
            value = cmdarg["short"]
            if not (
                isinstance(value, str) and len(value) == 1 and value.isascii() and value.isalnum()
            ):
                raise AnnotationError(
                    f"{where}: @cmdarg short option of '{var}' must be one letter or digit, "
                    f"got {_json_text(value)}"
                )
            short = value
        long = var
        if "long" in cmdarg:
            value = cmdarg["long"]
            if not (isinstance(value, str) and _LONG_OPTION_RE.fullmatch(value)):
                raise AnnotationError(
                    f"{where}: @cmdarg long option of '{var}' must be letters, digits, "
                    f"'-' or '_', got {_json_text(value)}"
                )
            long = value
        if short == "h":
            raise AnnotationError(f"{where}: option -h of '{var}' is reserved for --help")
        if long == "help":
            raise AnnotationError(f"{where}: option --help of '{var}' is reserved for --help")
        if short is not None:
            if short in shorts:
                other, other_line = shorts[short]
                raise AnnotationError(
                    f"{where}: option -{short} of '{var}' clashes with '{other}' at line "
                    f'{other_line}; give one of them another "short"'
                )
            shorts[short] = (var, line)
        if long in longs:
            other, other_line = longs[long]
            raise AnnotationError(
                f"{where}: option --{long} of '{var}' clashes with '{other}' at line "
                f'{other_line}; give one of them another "long"'
            )
        longs[long] = (var, line)
