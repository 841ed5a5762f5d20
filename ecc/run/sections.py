"""Option values written into the initial bytes of a package's data sections.

``apply_values`` writes option text (by long name) and annotation defaults into
the sections; ``section_overrides`` is what ``ecc run`` and the exporter both want
from it: the sections whose bytes change, for the loader to hand to libbpf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import EccError
from .options import OptionSpec, option_specs, parse_value

if TYPE_CHECKING:
    from ..package.source import LoadedPackage

__all__ = ["OptionValue", "apply_defaults", "apply_values", "option_text", "section_overrides"]

# How a value given by name may be typed: text from the command line, or a scalar of
# an exporter configuration.
OptionValue = str | bool | int | float


def option_text(value: OptionValue) -> str:
    """A value as option text; bools as ``true``/``false``, which every bool option reads."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def section_overrides(package: LoadedPackage, values: Mapping[str, OptionValue],
                      specs: Sequence[OptionSpec] | None = None) -> dict[str, bytes]:
    """The data sections that ``values`` (by long option name) and the annotation
    defaults change -> their new initial bytes; the unchanged ones are left out.

    ``specs`` saves building the option specs again when the caller has them.
    """
    initial = package.elf.data_sections
    if specs is None:
        btf = package.btf
        specs = option_specs(package.meta, package.elf, btf, initial) if btf is not None else []
    texts = {name: option_text(value) for name, value in values.items()}
    new = apply_values(specs, texts, initial)
    return {name: data for name, data in new.items() if data != initial.get(name)}


def apply_values(
    specs: Sequence[OptionSpec],
    values: Mapping[str, str],
    initial: Mapping[str, bytes],
    *,
    defaults: bool = True,
) -> dict[str, bytes]:
    """New bytes for every section of ``initial`` and of ``specs``.

    ``values`` maps long option names to their text. For an option not given,
    its annotation default is written (unless ``defaults`` is false); without
    one, the section's bytes stay. A section absent from ``initial`` (or
    given as ``b""``, as an ELF ``.bss`` is) starts as ``section_size`` zeros.
    """
    by_long = {spec.long: spec for spec in specs}
    for name in values:
        if name not in by_long:
            raise EccError(f"unknown option --{name}")
    out = {name: bytearray(data) for name, data in initial.items()}
    for spec in specs:
        if spec.long in values:
            encoded = parse_value(spec, values[spec.long])
        elif defaults and spec.default_bytes is not None:
            encoded = spec.default_bytes
        else:
            continue
        buf = out.get(spec.section)
        if not buf:
            buf = out[spec.section] = bytearray(spec.section_size)
        if spec.offset + spec.size > len(buf):
            raise EccError(
                f"option --{spec.long}: section {spec.section} is {len(buf)} bytes, too small "
                f"for variable '{spec.var}' ({spec.size} bytes at offset {spec.offset})"
            )
        buf[spec.offset : spec.offset + spec.size] = encoded
    return {name: bytes(buf) for name, buf in out.items()}


def apply_defaults(
    specs: Sequence[OptionSpec], initial: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Only the annotation defaults: ``apply_values`` with no option given."""
    return apply_values(specs, {}, initial)
