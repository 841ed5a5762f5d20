"""Command-line options for a package's global variables (package format 3.4 and 5).

Every variable of ``meta.bpf_skel.data_sections`` becomes an option of the
program (``ecc run package.json -- --min_duration_ns 100``). This module is
the pure part of that: it describes each option (:class:`OptionSpec`), turns
option text into the bytes of the variable's BTF type (:func:`parse_value`),
and ``ecc.run.sections`` writes values into the initial bytes of the sections.
The loader passes those bytes to libbpf before load.

Where a variable lives: clang leaves DATASEC offsets (and the DATASEC size)
at 0 in a ``.o`` and libbpf fixes them from the ELF symbol table at open, so
the offset is the symbol's ``st_value``, the section size its ELF header's
``sh_size``; the BTF offset is used only when no symbol names the variable.

Value syntax, decided here once so every type reads alike:

* integers: decimal, ``0x`` hex, ``0o`` octal, ``0b`` binary, an optional
  sign, ``_`` between digits (Python's integer literal syntax, ASCII only).
  A C-style leading ``0`` (``0755``) is refused rather than guessed at: C
  would read octal, most people mean decimal. Range-checked by the type's
  size and signedness, 128-bit included.
* bool: ``true/false``, ``yes/no``, ``on/off``, ``1/0``, any case.
* enum: an enumerator's name (exact, or case-insensitively when that is
  unambiguous) or any number in the enum's range (flag-style enums hold
  values that are not enumerators).
* ``char[N]``: the text as UTF-8 (argv bytes that are not UTF-8 pass through
  unchanged via ``surrogateescape``), NUL-padded; at most N-1 bytes, so the
  program always sees a terminated string.
* ``float``/``double``: a decimal or ``0x`` hex float, ``inf``, ``nan``; a
  finite number too large for the type is an error, not infinity.
* a single ``char`` is a number (``--sep 44``): reading ``1`` as the
  character ``'1'`` or the number 1 would be a guess.

Structs, unions, pointers and arrays other than ``char[N]`` are
``unsupported``: listed in ``--help`` but not settable.

Defaults: ``@cmdarg {"default": ...}`` (else ``@value``) is written even when
the option is not given, as eunomia's loaders do; an explicit option wins.
Without either, the compiled-in initial value stays and is what ``--help``
shows.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..btf import Btf, Kind, resolve_size, skip_mods_and_typedefs, type_str
from ..btf.types import Array, Datasec, Enum, Enum64, Float, Int, Var
from ..elf import BpfObject
from ..errors import AnnotationError, BtfError, EccError, PackageError
from ..record import Record, replace, set_field

__all__ = [
    "ByteOrder",
    "DefaultSource",
    "OptionKind",
    "OptionSpec",
    "decode_value",
    "describe",
    "option_specs",
    "parse_value",
    "read_current",
]

OptionKind = Literal["int", "bool", "enum", "string", "float", "unsupported"]
ByteOrder = Literal["little", "big"]
DefaultSource = Literal["cmdarg", "value", "initial"]

KCONFIG = ".kconfig"
# eunomia's loaders test this prefix (no trailing "_"), so we do too.
DUMMY_PREFIX = "__eunomia_dummy"
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
# Values longer than this are cut in messages: an error is one line.
_SHOWN_CHARS = 60
# An enum with hundreds of enumerators would make the message useless.
_SHOWN_CHOICES = 16
# Patterns, compiled (and cached by ``re``) when first matched: most runs match few of them.
_LONG_OPTION_RE = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_DECIMAL_RE = r"[+-]?[0-9][0-9_]*"
_LEADING_ZERO_RE = r"[+-]?0[0-9_]+"
_OCTAL_DIGITS_RE = r"[0-7_]+"
_HEX_FLOAT_RE = r"[+-]?0[xX]"


class OptionSpec(Record):
    """One command-line option: which variable it sets, and how to read its text.

    ``default`` is the value the program starts with, as ``decode_value``
    gives it (int, bool, str, float, an enumerator name; None for
    ``unsupported``): the annotation default normalized (``"0x10"`` shows as
    16), else the section's current bytes.

    The fields after ``size`` are what :func:`parse_value` needs that would
    otherwise require the BTF: signedness, enumerator values, byte order, the
    section's size (to build a section the caller has no bytes for) and the
    encoded annotation default.
    """

    __slots__ = ("section", "var", "long", "short", "help", "type_name", "type_id", "default",
                 "kind", "choices", "offset", "size", "signed", "choice_values", "byte_order",
                 "section_size", "default_bytes", "default_source")
    section: str
    var: str
    long: str
    short: str | None
    help: str
    type_name: str
    type_id: int
    default: Any
    kind: OptionKind
    choices: tuple[str, ...]
    offset: int
    size: int
    signed: bool
    choice_values: tuple[int, ...]
    byte_order: ByteOrder
    section_size: int
    # @cmdarg default / @value, encoded; None when the compiled-in value stays.
    default_bytes: bytes | None
    default_source: DefaultSource

    def __init__(self, section: str, var: str, long: str, short: str | None, help: str,
                 type_name: str, type_id: int, default: Any, kind: OptionKind,
                 choices: tuple[str, ...], offset: int, size: int, signed: bool = False,
                 choice_values: tuple[int, ...] = (), byte_order: ByteOrder = "little",
                 section_size: int = 0, default_bytes: bytes | None = None,
                 default_source: DefaultSource = "initial") -> None:
        set_field(self, "section", section)
        set_field(self, "var", var)
        set_field(self, "long", long)
        set_field(self, "short", short)
        set_field(self, "help", help)
        set_field(self, "type_name", type_name)
        set_field(self, "type_id", type_id)
        set_field(self, "default", default)
        set_field(self, "kind", kind)
        set_field(self, "choices", choices)
        set_field(self, "offset", offset)
        set_field(self, "size", size)
        set_field(self, "signed", signed)
        set_field(self, "choice_values", choice_values)
        set_field(self, "byte_order", byte_order)
        set_field(self, "section_size", section_size)
        set_field(self, "default_bytes", default_bytes)
        set_field(self, "default_source", default_source)

    @property
    def settable(self) -> bool:
        return self.kind != "unsupported"


# ---------------------------------------------------------------------------
# Building the specs


def option_specs(
    meta: Mapping[str, Any], obj: BpfObject, btf: Btf, initial: Mapping[str, bytes]
) -> list[OptionSpec]:
    """One spec per variable of ``meta.bpf_skel.data_sections``, in package order.

    ``initial`` maps section names to their current bytes (libbpf's
    ``bpf_map__initial_value`` or the ELF section data); a section missing
    from it reads as zeros, which is what ``.bss`` holds. Skips ``.kconfig``
    (libbpf fills it from the running kernel) and ecc's ``__eunomia_dummy_*``
    pointers. Raises ``PackageError`` when meta and object disagree and
    ``AnnotationError`` for a bad ``@cmdarg``/``@value``.
    """
    skel = meta.get("bpf_skel") if isinstance(meta, Mapping) else None
    sections = skel.get("data_sections") if isinstance(skel, Mapping) else None
    if sections is None:
        return []
    if not isinstance(sections, list):
        raise PackageError("meta.bpf_skel.data_sections must be a list")
    specs: list[OptionSpec] = []
    for section in sections:
        if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
            raise PackageError("every entry of meta.bpf_skel.data_sections needs a \"name\"")
        name: str = section["name"]
        if name == KCONFIG:
            continue
        variables = section.get("variables") or []
        if not isinstance(variables, list):
            raise PackageError(f"data section {name}: \"variables\" must be a list")
        wanted = [
            v for v in variables
            if not (isinstance(v, Mapping) and str(v.get("name", "")).startswith(DUMMY_PREFIX))
        ]
        if wanted:
            specs += _section_specs(name, wanted, obj, btf, initial.get(name))
    _check_clashes(specs)
    return specs


def _section_specs(
    sec_name: str,
    variables: Sequence[Any],
    obj: BpfObject,
    btf: Btf,
    data: bytes | None,
) -> list[OptionSpec]:
    elf_sec = obj.section(sec_name)
    if elf_sec is None:
        raise PackageError(f"data section {sec_name} of the package is not in its object")
    found = btf.by_name(sec_name, Kind.DATASEC)
    if not isinstance(found, Datasec):
        raise PackageError(f"data section {sec_name} has no BTF description in the object")
    btf_vars: dict[str, tuple[Var, int, int]] = {}
    for info in found.vars:
        var = btf[info.type]
        if isinstance(var, Var):
            btf_vars.setdefault(var.name, (var, info.offset, info.size))
    symbols = {
        sym.name: sym for sym in reversed(obj.symbols) if sym.section_index == elf_sec.index
    }
    specs = []
    for entry in variables:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise PackageError(f"data section {sec_name}: every variable needs a \"name\"")
        var_name: str = entry["name"]
        if var_name not in btf_vars:
            raise PackageError(
                f"variable '{var_name}' of data section {sec_name} is not in the object's BTF"
            )
        var, btf_offset, btf_size = btf_vars[var_name]
        sym = symbols.get(var_name)
        offset = sym.value if sym is not None else btf_offset
        try:
            size = resolve_size(btf, var.type)
            sized = True
        except BtfError:
            size = sym.size if sym is not None else btf_size
            sized = False
        if offset < 0 or offset + size > elf_sec.size:
            raise PackageError(
                f"variable '{var_name}' ({size} bytes at offset {offset}) lies outside "
                f"section {sec_name} ({elf_sec.size} bytes)"
            )
        specs.append(_spec(sec_name, entry, var, offset, size, sized, elf_sec.size, btf, data))
    return specs


def _spec(
    sec_name: str,
    entry: Mapping[str, Any],
    var: Var,
    offset: int,
    size: int,
    sized: bool,
    section_size: int,
    btf: Btf,
    data: bytes | None,
) -> OptionSpec:
    cmdarg = entry.get("cmdarg", {})
    if cmdarg is None:
        cmdarg = {}
    where = f"variable '{var.name}' ({sec_name})"
    if not isinstance(cmdarg, Mapping):
        raise AnnotationError(f"{where}: @cmdarg must be a JSON object, got {_json(cmdarg)}")
    # The variable's own name needs no check: any C identifier is a fine option
    # name, even one starting with '_', which @cmdarg "long" may not.
    long = cmdarg.get("long", var.name)
    if "long" in cmdarg and not (isinstance(long, str) and re.fullmatch(_LONG_OPTION_RE, long)):
        raise AnnotationError(
            f"{where}: @cmdarg long option must be letters, digits, '-' or '_', got {_json(long)}"
        )
    short = cmdarg.get("short")
    if short is not None and not (
        isinstance(short, str) and len(short) == 1 and short.isascii() and short.isalnum()
    ):
        raise AnnotationError(
            f"{where}: @cmdarg short option must be one letter or digit, got {_json(short)}"
        )
    help_text = cmdarg.get("help")
    if help_text is None:
        help_text = entry.get("description")
    if help_text is None:
        help_text = ""
    elif not isinstance(help_text, str):
        help_text = _json(help_text)
    type_name = entry.get("type")
    if not isinstance(type_name, str):
        type_name = type_str(btf, var.type, strip_mods=True)

    kind, signed, choices, values = _classify(btf, var.type) if sized else _UNSUPPORTED
    spec = OptionSpec(
        section=sec_name, var=var.name, long=long, short=short, help=help_text,
        type_name=type_name, type_id=var.type, default=None, kind=kind, choices=choices,
        offset=offset, size=size, signed=signed, choice_values=values,
        byte_order=btf.byte_order, section_size=section_size,
    )
    sources: tuple[tuple[DefaultSource, Any], ...] = (
        ("cmdarg", cmdarg.get("default")), ("value", entry.get("value")),
    )
    for source, annotated in sources:
        if annotated is not None:
            encoded = _encode_default(spec, annotated, source)
            return replace(spec, default=decode_value(spec, encoded), default_bytes=encoded,
                           default_source=source)
    return replace(spec, default=read_current(spec, {sec_name: data} if data else {}))


_UNSUPPORTED: tuple[OptionKind, bool, tuple[str, ...], tuple[int, ...]] = (
    "unsupported", False, (), ()
)


def _classify(
    btf: Btf, type_id: int
) -> tuple[OptionKind, bool, tuple[str, ...], tuple[int, ...]]:
    """(kind, signed, enumerator names, enumerator values) of a variable's type."""
    t = btf[skip_mods_and_typedefs(btf, type_id)]
    if isinstance(t, Int):
        return ("bool" if t.bool else "int"), t.signed, (), ()
    if isinstance(t, Enum | Enum64):
        return ("enum", t.signed, tuple(v.name for v in t.values),
                tuple(v.value for v in t.values))
    if isinstance(t, Float) and t.size in (4, 8):
        return "float", True, (), ()
    if isinstance(t, Array) and t.nelems > 0:
        elem = btf[skip_mods_and_typedefs(btf, t.type)]
        # Only plain char: __u8/unsigned char arrays are usually binary (a MAC
        # address), where reading text would silently store the wrong bytes.
        if isinstance(elem, Int) and elem.size == 1 and (elem.char or elem.name == "char"):
            return "string", False, (), ()
    return _UNSUPPORTED


def _check_clashes(specs: Iterable[OptionSpec]) -> None:
    longs: dict[str, OptionSpec] = {}
    shorts: dict[str, OptionSpec] = {}
    for spec in specs:
        other = longs.setdefault(spec.long, spec)
        if other is not spec:
            raise AnnotationError(
                f"variables '{other.var}' ({other.section}) and '{spec.var}' ({spec.section}) "
                f'both use option --{spec.long}; give one of them another "long" in @cmdarg'
            )
        if spec.short is not None:
            other = shorts.setdefault(spec.short, spec)
            if other is not spec:
                raise AnnotationError(
                    f"variables '{other.var}' ({other.section}) and '{spec.var}' "
                    f"({spec.section}) both use option -{spec.short}; give one of them "
                    f'another "short" in @cmdarg'
                )


# ---------------------------------------------------------------------------
# Text -> bytes


def parse_value(spec: OptionSpec, text: str) -> bytes:
    """Option text -> exactly ``spec.size`` bytes in the BTF's byte order.

    Raises ``EccError`` with a one-line message naming the option; nothing else.
    """
    return _parse(spec, text, f"option --{spec.long}")


def _parse(spec: OptionSpec, text: str, what: str) -> bytes:
    if spec.kind == "int":
        return _int_bytes(spec, _parse_int(spec, text, what), text, what)
    if spec.kind == "bool":
        return _parse_bool(spec, text, what)
    if spec.kind == "enum":
        return _parse_enum(spec, text, what)
    if spec.kind == "string":
        return _parse_string(spec, text, what)
    if spec.kind == "float":
        return _parse_float(spec, text, what)
    raise EccError(f"{what}: a {spec.type_name} variable cannot be set from the command line")


def _show(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _quote(text: str) -> str:
    return repr(_show(text))


def _int_range(spec: OptionSpec) -> tuple[int, int]:
    bits = 8 * spec.size
    if spec.signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _int_bytes(spec: OptionSpec, value: int, text: str, what: str) -> bytes:
    lo, hi = _int_range(spec)
    if not lo <= value <= hi:
        raise EccError(
            f"{what}: {_show(text.strip())} is out of range for {spec.type_name} ({lo} to {hi})"
        )
    return value.to_bytes(spec.size, spec.byte_order, signed=spec.signed)


def _parse_int(spec: OptionSpec, text: str, what: str) -> int:
    s = text.strip()
    bad = f"{what}: {_quote(text)} is not a valid {spec.type_name}"
    if not s.isascii():
        # int() would take Arabic-Indic or full-width digits; a C option should not.
        raise EccError(f"{bad}: expected an integer like 42 or 0x2a")
    if re.fullmatch(_LEADING_ZERO_RE, s) and s.strip("+-0_"):
        digits = s.lstrip("+-").lstrip("0_")
        sign = "-" if s.startswith("-") else ""
        octal = f" or {sign}0o{digits} for octal" if re.fullmatch(_OCTAL_DIGITS_RE, digits) else ""
        raise EccError(
            f"{bad}: a leading 0 is ambiguous; write {sign}{digits} for decimal{octal}"
        )
    try:
        return int(s, 0)
    except ValueError:
        if re.fullmatch(_DECIMAL_RE, s) and "__" not in s and not s.endswith("_"):
            # Python refuses decimal strings past 4300 digits; such a number is
            # valid syntax, just far out of any C type's range.
            lo, hi = _int_range(spec)
            raise EccError(
                f"{what}: {_show(s)} is out of range for {spec.type_name} ({lo} to {hi})"
            ) from None
        raise EccError(f"{bad}: expected an integer like 42 or 0x2a") from None


def _parse_bool(spec: OptionSpec, text: str, what: str) -> bytes:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        value = 1
    elif word in FALSE_WORDS:
        value = 0
    else:
        raise EccError(
            f"{what}: {_quote(text)} is not a valid {spec.type_name}: "
            "expected true/false, yes/no, on/off or 1/0"
        )
    return value.to_bytes(spec.size, spec.byte_order)


def _parse_enum(spec: OptionSpec, text: str, what: str) -> bytes:
    s = text.strip()
    for name, value in zip(spec.choices, spec.choice_values, strict=True):
        if name == s:
            return _int_bytes(spec, value, str(value), what)
    folded = [
        value for name, value in zip(spec.choices, spec.choice_values, strict=True)
        if name.lower() == s.lower()
    ]
    if len(folded) == 1:
        return _int_bytes(spec, folded[0], str(folded[0]), what)
    if s.isascii() and s and (s[0].isdigit() or s[0] in "+-"):
        try:
            number = _parse_int(spec, s, what)
        except EccError:
            pass
        else:
            return _int_bytes(spec, number, s, what)
    names = list(spec.choices[:_SHOWN_CHOICES])
    if len(spec.choices) > _SHOWN_CHOICES:
        names.append(f"... ({len(spec.choices) - _SHOWN_CHOICES} more)")
    expected = f"one of {', '.join(names)} or a number" if names else "a number"
    raise EccError(f"{what}: {_quote(text)} is not a valid {spec.type_name}: expected {expected}")


def _parse_string(spec: OptionSpec, text: str, what: str) -> bytes:
    if "\0" in text:
        raise EccError(
            f"{what}: {_quote(text)} is not a valid {spec.type_name}: it contains a NUL character"
        )
    try:
        # surrogateescape: argv bytes that are not UTF-8 reach the program unchanged.
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise EccError(
            f"{what}: {_quote(text)} is not a valid {spec.type_name}: "
            "it contains a character that cannot be written as UTF-8"
        ) from None
    if len(data) >= spec.size:
        raise EccError(
            f"{what}: {_quote(text)} is too long for {spec.type_name} "
            f"(at most {spec.size - 1} bytes and a NUL)"
        )
    return data.ljust(spec.size, b"\0")


def _parse_float(spec: OptionSpec, text: str, what: str) -> bytes:
    s = text.strip()
    bad = f"{what}: {_quote(text)} is not a valid {spec.type_name}"
    if not s.isascii():
        raise EccError(f"{bad}: expected a number like 1.5, 2e-3 or inf")
    try:
        value = float.fromhex(s) if re.match(_HEX_FLOAT_RE, s) else float(s)
    except OverflowError:  # only fromhex raises it, for a hex float beyond double
        return _float_overflow(spec, s, what)
    except ValueError:
        raise EccError(f"{bad}: expected a number like 1.5, 2e-3 or inf") from None
    # float() turns 1e999 into inf silently; only a spelled-out inf may be infinite.
    if math.isinf(value) and "inf" not in s.lower():
        return _float_overflow(spec, s, what)
    fmt = ("<" if spec.byte_order == "little" else ">") + ("f" if spec.size == 4 else "d")
    try:
        return struct.pack(fmt, value)
    except OverflowError:
        return _float_overflow(spec, s, what)


def _float_overflow(spec: OptionSpec, text: str, what: str) -> bytes:
    limit = "3.4028234663852886e+38" if spec.size == 4 else "1.7976931348623157e+308"
    raise EccError(f"{what}: {_show(text)} is out of range for {spec.type_name} (±{limit})")


def _encode_default(spec: OptionSpec, value: Any, source: str) -> bytes:
    """A JSON default from the package -> bytes, or ``AnnotationError``."""
    what = f"default of option --{spec.long} (@{source})"
    if spec.kind == "unsupported":
        raise AnnotationError(
            f"{what}: a {spec.type_name} variable cannot be given a default; remove it"
        )
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | str):
        text = str(value)
    elif isinstance(value, float):
        # An integral JSON number written as 5.0 is still 5 for an int option.
        text = str(int(value)) if spec.kind in ("int", "enum") and value.is_integer() \
            else repr(value)
    else:
        raise AnnotationError(f"{what}: {_json(value)} must be a number, a string or a bool")
    try:
        return _parse(spec, text, what)
    except EccError as exc:
        raise AnnotationError(str(exc)) from None


def _json(value: object) -> str:
    try:
        return _show(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError):
        return _show(repr(value))


# ---------------------------------------------------------------------------
# Bytes -> value


def decode_value(spec: OptionSpec, data: bytes) -> Any:
    """A variable's bytes -> int, bool, str (a string, or an enumerator name),
    float, or None for unsupported kinds. Short ``data`` reads as zero-padded."""
    data = data[: spec.size].ljust(spec.size, b"\0")
    if spec.kind == "int":
        return int.from_bytes(data, spec.byte_order, signed=spec.signed)
    if spec.kind == "bool":
        return any(data)
    if spec.kind == "enum":
        number = int.from_bytes(data, spec.byte_order, signed=spec.signed)
        for name, value in zip(spec.choices, spec.choice_values, strict=True):
            if value == number:
                return name
        return number
    if spec.kind == "string":
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")
    if spec.kind == "float":
        fmt = ("<" if spec.byte_order == "little" else ">") + ("f" if spec.size == 4 else "d")
        return struct.unpack(fmt, data)[0]
    return None


def read_current(spec: OptionSpec, initial: Mapping[str, bytes]) -> Any:
    """The variable's value in ``initial`` (a missing section reads as zeros)."""
    data = initial.get(spec.section, b"")
    return decode_value(spec, data[spec.offset : spec.offset + spec.size])


def describe(spec: OptionSpec) -> str:
    """The help line's type part: ``unsigned long long (default: 0)``."""
    if spec.kind == "unsupported":
        return f"{spec.type_name} (not settable from the command line)"
    default = spec.default
    if default is None:
        return spec.type_name
    if isinstance(default, bool):
        shown = "true" if default else "false"
    elif spec.kind == "string":
        shown = json.dumps(default, ensure_ascii=False)
    else:
        shown = str(default)
    return f"{spec.type_name} (default: {shown})"
