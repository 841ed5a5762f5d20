"""A cache of precompiled headers for the ``vmlinux.h`` prefix of a program.

Most of a CO-RE build is clang parsing ~3 MB of ``vmlinux.h`` again. When a
source starts with ``#include "vmlinux.h"`` (then, optionally, libbpf's
``<bpf/...>`` headers) and nothing before it, that prefix is compiled once
into a PCH, keyed by everything that could change it, and every build of
such a source passes ``-include-pch``. The source's own includes of those
headers are then no-ops (they have include guards), so the program means the
same, and its code is the same instruction for instruction.

Every eligible build uses the PCH, the first one included (it makes the
entry, under a lock, before compiling): clang numbers BTF types in a
different order with a PCH than without, so using it only when it happens
to exist would make the package depend on the state of the cache. With a
PCH, clang 19's BTF type order also depends on heap addresses, so PCH
builds run with address randomization off (``setarch -R``); where that is
not allowed (a container's seccomp profile), there is no PCH. A stale
or corrupt entry is caught by clang's own PCH checks; it is rebuilt, never
fatal. ``--no-cache`` compiles without it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import log
from ..errors import CompileError
from . import tools
from .cache import cache_dir, file_identity, key_digest, locked

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_INCLUDE = re.compile(r'#\s*include\s*(["<])([^">]+)[">]\s*$')
# What clang says when a PCH cannot be used: the entry is then rebuilt.
PCH_FAILURE_MARKERS = ("precompiled header", "PCH file", "AST file")


def prefix_includes(source_text: str) -> tuple[str, ...] | None:
    """The include lines a PCH may stand for, or None when the source is not eligible.

    Eligible: the first thing after comments and blank lines is an include of
    ``vmlinux.h``; the prefix goes on over directly following includes of
    ``<bpf/...>`` headers. Anything else first (a #define, a declaration)
    could change what the headers mean, so then no PCH.
    """
    lines: list[str] = []
    # Comments become blank lines, so a commented-out include is no include.
    text = _COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), source_text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _INCLUDE.match(line)
        if match is None:
            break
        bracket, name = match.groups()
        if not lines and name != "vmlinux.h":
            return None
        if lines and not (bracket == "<" and name.startswith("bpf/")):
            break
        closing = ">" if bracket == "<" else '"'
        lines.append(f"#include {bracket}{name}{closing}")
    return tuple(lines) if lines else None


_GUARD = re.compile(r"\A\s*(?:#\s*pragma\s+once\b|#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\b)")


def has_include_guard(header_path: str) -> bool:
    """A header the PCH stands for is included a second time by the program itself;
    that is a no-op only when the header guards against it."""
    try:
        with open(header_path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(16384)
    except OSError:
        return False
    return _GUARD.match(_COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), head)) is not None


@dataclass(frozen=True)
class PchEntry:
    folder: Path
    header: Path
    pch: Path
    flags: tuple[str, ...]
    includes: tuple[str, ...]

    def ready(self) -> bool:
        try:
            return self.pch.stat().st_size > 0
        except OSError:
            return False


def entry_for(clang: str, flags: Sequence[str], includes: Sequence[str],
              vmlinux_header: str) -> PchEntry:
    """The cache entry for these inputs: clang, every flag, the prefix, and vmlinux.h."""
    key = json.dumps([file_identity(clang), list(flags), list(includes),
                      file_identity(vmlinux_header)])
    folder = cache_dir() / "pch" / key_digest(key, 24)
    return PchEntry(folder, folder / "prefix.h", folder / "prefix.h.pch", tuple(flags),
                    tuple(includes))


def ensure(clang: str, entry: PchEntry) -> Path | None:
    """The PCH, made first if missing; None when it cannot be made (build without it).

    Also None where address randomization cannot be turned off: a PCH build
    would then not be reproducible, and reproducible beats fast.
    """
    if tools.no_aslr_prefix() is None:
        log.info("no precompiled header: setarch -R is not available here")
        return None
    if entry.ready():
        return entry.pch
    try:
        with locked(entry.folder):
            if entry.ready():
                return entry.pch
            # The header sits alone in its folder, so "vmlinux.h" is found through
            # the same -I folders as from the program.
            entry.header.write_text("".join(line + "\n" for line in entry.includes))
            tmp = entry.folder / f"prefix.h.pch.{os.getpid()}.tmp"
            try:
                tools.run([*(tools.no_aslr_prefix() or []), clang, *entry.flags, "-x",
                           "c-header", str(entry.header), "-o", str(tmp)],
                          what="precompiling the vmlinux.h prefix")
                os.replace(tmp, entry.pch)
            finally:
                tmp.unlink(missing_ok=True)
    except (OSError, CompileError) as exc:
        # The compile without the PCH will show any real error in the headers.
        log.info("no precompiled header: %s", exc)
        return None
    return entry.pch


def invalidate(entry: PchEntry) -> None:
    entry.pch.unlink(missing_ok=True)


def is_pch_failure(diagnostics: str) -> bool:
    return any(marker in diagnostics for marker in PCH_FAILURE_MARKERS)
