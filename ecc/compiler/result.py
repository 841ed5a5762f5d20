"""What a build returns: the outputs and what went into them (mutable records).

Apart from pipeline.py because nothing needs them until clang is done. Records
(ecc/record.py), not dataclasses: a warm build imports neither :mod:`dataclasses`
nor the :mod:`inspect` it brings.
"""

from __future__ import annotations

from typing import Any

from ..record import MutableRecord


class BuildResult(MutableRecord):
    """Behaves as the ``@dataclass`` it was: positional or keyword construction,
    list/dict fields default to new empty ones, equality and ``repr`` by field."""

    __slots__ = ("outputs", "meta", "object_bytes", "warnings", "diagnostics", "timings",
                 "arch", "sources", "inputs", "commands")
    outputs: list[str]
    meta: dict[str, Any]
    object_bytes: bytes
    warnings: list[str]
    diagnostics: str
    timings: dict[str, float]
    # For the build report and depfile (report.py): what was read and run.
    arch: str
    sources: list[str]              # absolute
    inputs: list[Any]               # provenance.InputFile: sources, headers
    commands: list[dict[str, Any]]

    def __init__(self, outputs: list[str], meta: dict[str, Any], object_bytes: bytes,
                 warnings: list[str] | None = None, diagnostics: str = "",
                 timings: dict[str, float] | None = None, arch: str = "",
                 sources: list[str] | None = None, inputs: list[Any] | None = None,
                 commands: list[dict[str, Any]] | None = None) -> None:
        self.outputs = outputs
        self.meta = meta
        self.object_bytes = object_bytes
        self.warnings = [] if warnings is None else warnings
        self.diagnostics = diagnostics
        self.timings = {} if timings is None else timings
        self.arch = arch
        self.sources = [] if sources is None else sources
        self.inputs = [] if inputs is None else inputs
        self.commands = [] if commands is None else commands


class Compiled(MutableRecord):
    __slots__ = ("object_bytes", "diagnostics", "depends", "flags", "path_map", "hashing")
    object_bytes: bytes             # stripped of DWARF
    diagnostics: str
    depends: list[str]              # every file clang read (its -MD list), ecc's own left out
    flags: list[str]                # the compile flags, for provenance
    path_map: Any                   # repro.PathMap
    hashing: list[Any]              # provenance.Hashing: inputs' digests

    def __init__(self, object_bytes: bytes, diagnostics: str, depends: list[str],
                 flags: list[str], path_map: Any, hashing: list[Any] | None = None) -> None:
        self.object_bytes = object_bytes
        self.diagnostics = diagnostics
        self.depends = depends
        self.flags = flags
        self.path_map = path_map
        self.hashing = [] if hashing is None else hashing

    def digests(self) -> dict[str, str | None]:
        """Each input's SHA-256 that ``hashing`` made (None: unreadable); waits for it."""
        out: dict[str, str | None] = {}
        for one in self.hashing:
            out.update(one.digests())
        return out
