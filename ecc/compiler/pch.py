"""A cache of precompiled headers for the ``vmlinux.h`` prefix of a program.

Most of a CO-RE build is clang parsing ~3 MB of ``vmlinux.h`` again. When a
source starts with ``#include "vmlinux.h"`` (then, optionally, libbpf's
``<bpf/...>`` headers) and nothing before it, that prefix is compiled once
into a PCH, keyed by everything that could change it, and every build of
such a source passes ``-include-pch``. The source's own includes of those
headers are then no-ops (they have include guards), so the program means the
same, and its code is the same instruction for instruction.

clang numbers BTF types in another order with a PCH (and, with one, in an
order that follows heap addresses); the object's BTF is put in canonical
order afterwards (btf/canon.py), so a build with the PCH and one without give
the same bytes. That lets the first build go without: it compiles at once, and
when clang is done starts a detached process that makes the entry under the
entry's lock, for the builds after it.
A stale or corrupt entry is caught by clang's own PCH checks; the build
compiles again without it and the entry is made anew, never fatal.
``--no-cache`` compiles without it.

One thing a PCH changes that clang does not say: the BTF of externs declared
in the prefix (externs.py). A build whose object lost some compiles again
without the PCH, and its source is marked in the entry (``loses-externs/``),
so that later builds of it go without the PCH at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .. import log
from ..errors import EccError
from . import tools
from .cache import cache_dir, file_identity, key_digest, locked

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_INCLUDE = re.compile(r'#\s*include\s*(["<])([^">]+)[">]\s*$')
# The background maker runs this very ecc package, loaded from its folder: a
# checkout run with `python -m ecc` is on sys.path only through the current
# folder, and another ecc may come first on PYTHONPATH.
_CHILD = """import importlib.util, sys
package = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    "ecc", package + "/__init__.py", submodule_search_locations=[package])
sys.modules["ecc"] = ecc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ecc)
from ecc.compiler.pch import main
sys.exit(main(sys.argv[2:]))
"""
# A maker that failed leaves this file; no new attempt for an hour.
FAILED = "failed"
RETRY_SECONDS = 3600
# Digests of the sources a build with the entry lost extern BTF for (externs.py).
LOSES_EXTERNS = "loses-externs"
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


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class PchEntry(NamedTuple):
    folder: Path
    header: Path
    pch: Path
    flags: tuple[str, ...]
    includes: tuple[str, ...]

    @classmethod
    def at(cls, folder: Path, flags: Sequence[str], includes: Sequence[str]) -> PchEntry:
        return cls(folder, folder / "prefix.h", folder / "prefix.h.pch", tuple(flags),
                   tuple(includes))

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
    return PchEntry.at(cache_dir() / "pch" / key_digest(key, 24), flags, includes)


def start_making(clang: str, entry: PchEntry) -> None:
    """Make the entry in a detached process, unless one is at it already (or failed lately).

    The lock is taken here and handed to the child, which holds it until the
    PCH is in place: whoever waits on the lock (:func:`wait`) waits for it.
    """
    try:
        entry.folder.mkdir(parents=True, exist_ok=True)
        if _failed_lately(entry):
            log.info("no precompiled header: making it failed within the hour")
            return
        fd = os.open(entry.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.info("no precompiled header: %s", exc)
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another build is making it
        if entry.ready():
            return
        job = json.dumps({"clang": clang, "folder": str(entry.folder), "flags": entry.flags,
                          "includes": entry.includes})
        package = str(Path(__file__).resolve().parents[1])
        tools.detach([sys.executable, "-c", _CHILD, package, job], cwd=str(entry.folder),
                     pass_fds=(fd,), what=f"precompiling the vmlinux.h prefix into {entry.pch}")
    except OSError as exc:
        log.info("no precompiled header: %s", exc)
    finally:
        os.close(fd)  # the child's copy keeps the lock


def make(clang: str, entry: PchEntry) -> None:
    """Make the PCH now; the caller holds the entry's lock."""
    for stale in entry.folder.glob("*.tmp"):  # of a maker that was killed
        stale.unlink(missing_ok=True)
    # The header sits alone in its folder, so "vmlinux.h" is found through
    # the same -I folders as from the program.
    entry.header.write_text("".join(line + "\n" for line in entry.includes))
    tmp = entry.folder / f"prefix.h.pch.{os.getpid()}.tmp"
    try:
        tools.run([clang, *entry.flags, "-x", "c-header", str(entry.header), "-o", str(tmp)],
                  what="precompiling the vmlinux.h prefix", env=tools.clang_env())
        os.replace(tmp, entry.pch)
        (entry.folder / FAILED).unlink(missing_ok=True)
    except (OSError, EccError) as exc:
        # The compile without the PCH shows any real error in the headers.
        with contextlib.suppress(OSError):
            (entry.folder / FAILED).write_text(f"{exc}\n")
        raise
    finally:
        tmp.unlink(missing_ok=True)


def loses_externs(entry: PchEntry, source_text: str) -> bool:
    """Whether a build of this source with the entry lost extern BTF before."""
    return (entry.folder / LOSES_EXTERNS / key_digest(source_text, 24)).exists()


def mark_loses_externs(entry: PchEntry, source_text: str) -> None:
    # Only a speed-up is at stake: a mark that cannot be written costs a compile.
    with contextlib.suppress(OSError):
        (entry.folder / LOSES_EXTERNS).mkdir(exist_ok=True)
        (entry.folder / LOSES_EXTERNS / key_digest(source_text, 24)).touch()


def wait(folder: Path) -> None:
    """Until no process is making the entry in ``folder`` (tests, benchmarks)."""
    with contextlib.suppress(FileNotFoundError), locked(folder):
        pass


def settle(cache: Path) -> list[Path]:
    """Until no process is making any entry of the cache folder ``cache``; its PCH files."""
    for folder in (cache / "pch").glob("*"):
        wait(folder)
    return list((cache / "pch").glob("*/prefix.h.pch"))


def _failed_lately(entry: PchEntry) -> bool:
    try:
        return time.time() - (entry.folder / FAILED).stat().st_mtime < RETRY_SECONDS
    except OSError:
        return False


def invalidate(entry: PchEntry) -> None:
    entry.pch.unlink(missing_ok=True)


def is_pch_failure(diagnostics: str) -> bool:
    return any(marker in diagnostics for marker in PCH_FAILURE_MARKERS)


def main(argv: list[str]) -> int:
    """The background maker (``_CHILD``), holding the lock it was given."""
    os.nice(10)  # after the builds in the foreground
    job = json.loads(argv[0])
    entry = PchEntry.at(Path(job["folder"]), job["flags"], job["includes"])
    try:
        make(job["clang"], entry)
    except (OSError, EccError):
        return 1
    return 0
