"""What an iterator program writes, printed once it is attached (``ecc run``).

The bytes are read by ``output.iter_report``; this module picks the structs it
may decode them with, from the package's BTF and the program's ``@export``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from ..errors import EccError
from ..package.source import LoadedPackage


def print_iter(package: LoadedPackage, name: str, ann: Mapping[str, Any], data: bytes, *,
               json: bool, out: TextIO, say: Callable[[str], None]) -> None:
    """Print what iterator ``name`` wrote: text lines, records of the struct it
    names (``@export``) or of an export type whose size divides the output, else
    a hex dump; never the raw bytes, which may hold anything."""
    from .output import iter_report

    named, candidates = iter_decoders(package, name, ann, say)
    report, how = iter_report(name, data, json=json, named=named, candidates=candidates)
    if how == "bytes":
        say(f"ecc: iterator {name}: {len(data)} bytes of binary output and no struct "
            "to decode them with (name one with @export); shown in hex")
    out.write(report)
    out.flush()


def iter_reading_of(package: LoadedPackage, name: str, data: bytes,
                    say: Callable[[str], None]) -> tuple[str, Any]:
    """How the Python API reads what iterator ``name`` wrote, by ``ecc run``'s
    rule (``output.iter_reading``) over the structs ``iter_decoders`` picks:
    ``("records", Decoder)``, ``("text", None)`` or ``("bytes", None)``."""
    from .output import iter_reading

    progs = package.meta.get("bpf_skel", {}).get("progs") or []
    ann = next((p for p in progs if isinstance(p, dict) and p.get("name") == name), {})
    named, candidates = iter_decoders(package, name, ann, say)
    return iter_reading(data, named, candidates)


def iter_decoders(package: LoadedPackage, name: str, ann: Mapping[str, Any],
                  say: Callable[[str], None]) -> tuple[Any, list[Any]]:
    """The decoder of the struct iterator ``name`` names with ``@export`` (None
    without one), and those of the package's export types."""
    from ..btf.types import Kind
    from .decode import Decoder

    btf = package.btf
    if btf is None:
        return None, []
    exports = [e for e in package.meta.get("export_types") or []
               if isinstance(e, dict) and isinstance(e.get("type_id"), int)]
    candidates = []
    for export in exports:
        with contextlib.suppress(EccError):
            candidates.append(Decoder(btf, export["type_id"]))
    wanted = ann.get("export")
    if wanted is None:
        return None, candidates
    if isinstance(wanted, str):
        wanted = wanted.removeprefix("struct ").strip()
        type_id = next((e["type_id"] for e in exports if e.get("name") == wanted), None)
        if type_id is None:
            ids = btf.ids_by_name(wanted, Kind.STRUCT) + btf.ids_by_name(wanted, Kind.UNION)
            type_id = ids[0] if ids else None
        if type_id is not None:
            with contextlib.suppress(EccError):
                return Decoder(btf, type_id), candidates
    say(f"ecc: warning: iterator {name}: @export {wanted!r} names no struct of the "
        "package's BTF; its output is read as text, an export type, or bytes")
    return None, candidates
