"""What a build returns: the outputs and what went into them (dataclasses).

Apart from pipeline.py because nothing needs them until clang is done:
importing them (and :mod:`dataclasses`) then overlaps with clang's work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuildResult:
    outputs: list[str]
    meta: dict[str, Any]
    object_bytes: bytes
    warnings: list[str] = field(default_factory=list)
    diagnostics: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    # For the build report and depfile (report.py): what was read and run.
    arch: str = ""
    sources: list[str] = field(default_factory=list)   # absolute
    inputs: list[Any] = field(default_factory=list)    # provenance.InputFile: sources, headers
    commands: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Compiled:
    object_bytes: bytes             # stripped of DWARF
    diagnostics: str
    depends: list[str]              # every file clang read (its -MD list), ecc's own left out
    flags: list[str]                # the compile flags, for provenance
    path_map: Any                   # repro.PathMap
    hashing: list[Any] = field(default_factory=list)  # provenance.Hashing: inputs' digests
