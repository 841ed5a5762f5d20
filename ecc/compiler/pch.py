"""A cache of precompiled headers for the header prefix (``vmlinux.h``...) of a program.

Most of a CO-RE build is clang parsing ~3 MB of ``vmlinux.h`` again. When a
source starts with ``#include "vmlinux.h"`` (then, optionally, libbpf's
``<bpf/...>`` headers) and nothing before it, the first lines of that prefix
are compiled once into a PCH, and every build of such a source passes
``-include-pch``. The source's own includes of those headers are then no-ops
(they have include guards), so the program means the same, and its code is
the same instruction for instruction.

One entry per content, not per folder: the PCH stands for ``vmlinux.h`` and,
when the program includes it right after, ``<bpf/bpf_helpers.h>``; always a
leading part of the program's own include lines, never a header the program
does not include there, so no program sees a declaration or a macro earlier
than it would without the PCH. Its key is the digest of that vmlinux.h's bytes
(a copy of which sits in the entry, so the PCH refers to no user folder), the
digest of bpf_helpers.h, clang and the flags. Folders with equal vmlinux.h
copies share one entry, or two (with and without bpf_helpers.h); the headers
after them are small.

A program without vmlinux.h (XDP, TC, socket programs) gets an entry for its
leading ``#include <...>`` lines of guarded system headers (:func:`system_prefix`),
keyed by their bytes; what they include, clang checks (size, time) as it reads
the PCH. The entry lists the names under which a search folder gave each header
(``headers.json``): a program whose own folder has one goes without (compile_object.py).

clang numbers BTF types in another order with a PCH (and, with one, in an
order that follows heap addresses); the object's BTF is put in canonical
order afterwards (btf/canon.py), so a build with the PCH and one without give
the same bytes. That lets the first build go without: it compiles at once, and
when clang is done starts a detached process that makes the entry under the
entry's lock, for the builds after it. In a batch (``ecc build -j``, which
calls :func:`batch`) the first build that needs the entry makes it in the
foreground instead, once; a build that finds it being made waits for it when
it is far enough along to be there before a compile without it would end, and
else compiles without it. A build never starts a second maker.

A stale or corrupt entry is caught by clang's own PCH checks; the build
compiles again without it and the entry is made anew, never fatal.
``--no-cache`` compiles without it. The cache is bounded (``ECC_CACHE_MAX``):
after an entry is made, the least recently used entries go.

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
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from .. import log
from ..errors import EccError
from . import tools
from .cache import (
    STATS,
    bytes_digest,
    cache_dir,
    cache_unusable,
    content_digest,
    count,
    disk_usage,
    file_identity,
    key_digest,
    locked,
    max_size,
    warn_once,
)
from .compile import search_dir_flags

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
# The prefix an entry stands for: vmlinux.h (the entry's own copy, found beside
# prefix.h), then bpf_helpers.h when the program includes it right after.
VMLINUX_LINE = '#include "vmlinux.h"'
HELPERS_LINE = "#include <bpf/bpf_helpers.h>"
# Touched by whoever takes the lock to make the entry: how far along it is.
MAKING = "making"
# In the cache's stats/: how long the last make took (+ "-system": of system headers only).
MAKE_SECONDS = "make-seconds"
# In an entry: the headers its PCH read from a search folder, by the name found there.
HEADERS = "headers.json"
# A compile without the PCH takes ~3/4 of making it and one with it ~1/4: waiting
# for a maker pays once it is half done. One running for more than twice the
# usual time is stuck or starved, and not waited for.
WAIT_AFTER = 0.5
STUCK_AFTER = 2.0
DEFAULT_MAKE_SECONDS = 0.5
# An entry is its PCH (~5.8 times vmlinux.h) and the copy of vmlinux.h.
ENTRY_SIZE_FACTOR = 7


def _leading_includes(source_text: str) -> Iterator[tuple[str, str]]:
    """The include lines a source starts with, after comments and blank lines: (bracket, name)."""
    # Comments become blank lines, so a commented-out include is no include.
    text = _COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), source_text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _INCLUDE.match(line)
        if match is None:
            return
        yield match.group(1), match.group(2)


def _line(bracket: str, name: str) -> str:
    return f"#include {bracket}{name}{'>' if bracket == '<' else chr(34)}"


def prefix_includes(source_text: str) -> tuple[str, ...] | None:
    """The include lines a PCH may stand for, or None when the source is not eligible.

    Eligible: the first thing after comments and blank lines is an include of
    ``vmlinux.h``; the prefix goes on over directly following includes of
    ``<bpf/...>`` headers. Anything else first (a #define, a declaration)
    could change what the headers mean, so then no PCH.
    """
    lines: list[str] = []
    for bracket, name in _leading_includes(source_text):
        if not lines and name != "vmlinux.h":
            return None
        if lines and not (bracket == "<" and name.startswith("bpf/")):
            break
        lines.append(_line(bracket, name))
    return tuple(lines) if lines else None


def system_prefix(source_text: str) -> tuple[str, ...] | None:
    """The include lines an entry of system headers may stand for, in a program without
    vmlinux.h: its leading ``#include <...>`` lines (the kernel's UAPI headers, libbpf's,
    the compiler's), up to the first other line; None when there is none."""
    lines = []
    for bracket, name in _leading_includes(source_text):
        if bracket != "<" or name == "vmlinux.h":
            break
        lines.append(_line(bracket, name))
    return tuple(lines) if lines else None


def shared_prefix(includes: Sequence[str], helpers_shareable: bool) -> tuple[str, ...]:
    """The lines an entry stands for, of a program whose prefix is ``includes``: a
    leading part of them, so the PCH declares nothing the program has not yet
    included at that point."""
    if helpers_shareable and len(includes) > 1 and includes[1] == HELPERS_LINE:
        return (VMLINUX_LINE, HELPERS_LINE)
    return (VMLINUX_LINE,)


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class PchEntry(NamedTuple):
    folder: Path
    header: Path
    pch: Path
    flags: tuple[str, ...]
    includes: tuple[str, ...]
    vmlinux: str = ""       # the program's vmlinux.h, copied into the entry when it is made
    digest: str = ""        # of its bytes: the copy must be these

    @classmethod
    def at(cls, folder: Path, flags: Sequence[str], includes: Sequence[str],
           vmlinux: str = "", digest: str = "") -> PchEntry:
        return cls(folder, folder / "prefix.h", folder / "prefix.h.pch", tuple(flags),
                   tuple(includes), vmlinux, digest)

    def ready(self) -> bool:
        try:
            return self.pch.stat().st_size > 0
        except OSError:
            return False


def entry_for(clang: str, flags: Sequence[str], includes: Sequence[str],
              vmlinux_header: str, headers: Sequence[str] = ()) -> PchEntry:
    """The cache entry for these inputs: clang, every flag, the prefix, the bytes of
    vmlinux.h (``""``: a prefix of system headers only) and of the other ``headers`` of
    the prefix (real paths). What those headers include in turn, clang checks
    (size and time) each time it reads the PCH."""
    digest = content_digest(vmlinux_header) if vmlinux_header else ""
    key = json.dumps([file_identity(clang), list(flags), list(includes), digest,
                      [[h, content_digest(h)] for h in headers]])
    return PchEntry.at(cache_dir() / "pch" / key_digest(key, 24), flags, includes,
                       vmlinux_header, digest)


def header_names(depends: Sequence[str], flags: Sequence[str], own: Path) -> list[str]:
    """The names (``linux/types.h``) under which a search folder of ``flags`` gave each
    header the PCH read; not the entry's ``own`` files (its prefix.h, its vmlinux.h)."""
    dirs = [folder for _, folder in search_dir_flags(flags)]
    names = []
    for path in depends:
        if path.startswith(os.path.join(str(own), "")) or not os.path.isabs(path):
            continue
        for folder in dirs:
            if path.startswith(os.path.join(folder, "")):
                names.append(os.path.relpath(path, folder))
                break
    return sorted(set(names))


# Builds of one process that share their entries (a batch): how many batches run.
_batches = 0
_batches_lock = threading.Lock()


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Builds started meanwhile belong to a batch: the first that needs an entry makes
    it in the foreground, once, for the others, instead of leaving a maker behind."""
    global _batches
    with _batches_lock:
        _batches += 1
    try:
        yield
    finally:
        with _batches_lock:
            _batches -= 1


class Decision(NamedTuple):
    use: bool               # compile with the entry's PCH
    make_later: bool        # start a maker once this build is done


def decide(clang: str, entry: PchEntry, source_text: str) -> Decision:
    """Whether this build compiles with the PCH, making it or waiting for it first
    when that is faster; counted as a hit (a PCH this build did not make) or a miss."""
    decision = _decide(clang, entry, source_text)
    count("hits" if decision.use and getattr(_made, "folder", None) != entry.folder
          else "misses")
    return decision


_made = threading.local()  # the entry this thread's last decision made


def _decide(clang: str, entry: PchEntry, source_text: str) -> Decision:
    _made.folder = None
    if loses_externs(entry, source_text):
        return Decision(False, False)
    if entry.ready():
        _touch(entry)
        return Decision(True, False)
    try:
        entry.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(entry.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        cache_unusable(exc)
        return Decision(False, False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Decision(_wait_for_maker(entry, fd), False)
        if entry.ready():  # made between the two looks
            _touch(entry)
            return Decision(True, False)
        if not _batches:
            return Decision(False, True)  # the first compile stays as fast as without
        if _failed_lately(entry) or not _room_for(entry):
            return Decision(False, False)
        try:
            _stamp(entry)
            make(clang, entry)
        except (OSError, EccError) as exc:
            log.info("no precompiled header: %s", exc)
            return Decision(False, False)
        _made.folder = entry.folder
        return Decision(True, False)
    finally:
        os.close(fd)


def _wait_for_maker(entry: PchEntry, fd: int) -> bool:
    """Wait for the process making the entry when it will likely be done before a
    compile without the PCH would be; whether the PCH is there to use."""
    try:
        started = (entry.folder / MAKING).stat().st_mtime
    except OSError:
        return False  # no telling how far along it is
    usual = _make_seconds(entry)
    elapsed = time.time() - started
    if not WAIT_AFTER * usual <= elapsed < STUCK_AFTER * usual:
        return False
    deadline = started + STUCK_AFTER * usual
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() >= deadline:
                return False
            time.sleep(0.005)
    fcntl.flock(fd, fcntl.LOCK_UN)
    if entry.ready():
        _touch(entry)
        return True
    return False


def _make_seconds(entry: PchEntry) -> float:
    try:
        seconds = float((cache_dir() / STATS / _stat_name(entry)).read_text())
    except (OSError, ValueError):
        return DEFAULT_MAKE_SECONDS
    return seconds if 0 < seconds < 600 else DEFAULT_MAKE_SECONDS


def _stat_name(entry: PchEntry) -> str:
    # A prefix of system headers takes a tenth of one with vmlinux.h to make.
    return MAKE_SECONDS if entry.includes[:1] == (VMLINUX_LINE,) else f"{MAKE_SECONDS}-system"


def _stamp(entry: PchEntry) -> None:
    (entry.folder / MAKING).touch()


def _touch(entry: PchEntry) -> None:
    """Used now: the last entry to be evicted (the folder's mtime orders them)."""
    with contextlib.suppress(OSError):
        os.utime(entry.folder)


def _room_for(entry: PchEntry) -> bool:
    """Whether the entry can fit: under the cache's limit, and on the disk."""
    try:
        need = os.path.getsize(entry.vmlinux) * ENTRY_SIZE_FACTOR if entry.vmlinux else 0
        disk = os.statvfs(entry.folder)
    except OSError:
        return True  # making it will tell
    if need > max_size():
        log.info("no precompiled header: it would not fit in ECC_CACHE_MAX")
        return False
    if disk.f_bavail * disk.f_frsize < 2 * need:
        warn_once(f"the disk of the cache folder {cache_dir()} is (nearly) full; "
                  f"building without the precompiled header")
        return False
    return True


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
        cache_unusable(exc)
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another build is making it
        if entry.ready() or not _room_for(entry):
            return
        _stamp(entry)
        job = json.dumps({"clang": clang, "folder": str(entry.folder), "flags": entry.flags,
                          "includes": entry.includes, "vmlinux": entry.vmlinux,
                          "digest": entry.digest})
        package = str(Path(__file__).resolve().parents[1])
        tools.detach([sys.executable, "-c", _CHILD, package, job], cwd=str(entry.folder),
                     pass_fds=(fd,), what=f"precompiling the header prefix into {entry.pch}")
    except OSError as exc:
        cache_unusable(exc)
    finally:
        os.close(fd)  # the child's copy keeps the lock


def make(clang: str, entry: PchEntry) -> None:
    """Make the PCH now; the caller holds the entry's lock. Then the cache is
    brought under its limit."""
    started = time.perf_counter()
    for stale in entry.folder.glob("*.tmp"):  # of a maker that was killed
        stale.unlink(missing_ok=True)
    tmp = entry.folder / f"prefix.h.pch.{os.getpid()}.{threading.get_ident()}.tmp"
    deps = tmp.with_suffix(".d.tmp")
    try:
        _copy_vmlinux(entry)
        # The header sits in the entry's folder, beside its copy of vmlinux.h:
        # "vmlinux.h" is found there first, whatever folders the flags name.
        entry.header.write_text("".join(line + "\n" for line in entry.includes))
        tools.run([clang, *entry.flags, "-x", "c-header", str(entry.header), "-o", str(tmp),
                   "-MD", "-MF", str(deps)],
                  what="precompiling the header prefix", env=tools.clang_env())
        _keep_header_names(entry, deps)
        os.replace(tmp, entry.pch)
        (entry.folder / FAILED).unlink(missing_ok=True)
    except (OSError, EccError) as exc:
        # The compile without the PCH shows any real error in the headers.
        with contextlib.suppress(OSError):
            (entry.folder / FAILED).write_text(f"{exc}\n")
        raise
    finally:
        tmp.unlink(missing_ok=True)
        deps.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        stats = cache_dir() / STATS
        stats.mkdir(parents=True, exist_ok=True)
        (stats / _stat_name(entry)).write_text(f"{time.perf_counter() - started:.3f}")
    evict(keep=entry.folder)


def _keep_header_names(entry: PchEntry, deps: Path) -> None:
    from .report import parse_depfile

    names = header_names(parse_depfile(deps.read_text(errors="surrogateescape")), entry.flags,
                         entry.folder)
    listing = deps.with_suffix(".json.tmp")
    listing.write_text(json.dumps(names))
    os.replace(listing, entry.folder / HEADERS)


def _copy_vmlinux(entry: PchEntry) -> None:
    """The entry's own vmlinux.h: the PCH then names no file of the user's, which
    may change or go. Written once (its mtime is in the PCH), checked against the key."""
    if not entry.vmlinux:
        return
    copy = entry.folder / "vmlinux.h"
    with contextlib.suppress(OSError):
        if bytes_digest(copy.read_bytes()) == entry.digest:
            return
    data = Path(entry.vmlinux).read_bytes()
    if entry.digest and bytes_digest(data) != entry.digest:
        raise EccError(f"{entry.vmlinux} changed while the build was reading it")
    tmp = entry.folder / f"vmlinux.h.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, copy)


def evict(keep: Path | None = None) -> list[Path]:
    """Remove the least recently used entries (precompiled headers and compiled objects)
    until the cache is under ``ECC_CACHE_MAX``; never ``keep`` (just made) nor an
    entry some process holds the lock of. The entries removed."""
    root = cache_dir()
    limit = max_size()
    used = disk_usage(root)
    if used <= limit:
        return []
    folders = []
    for kind in ("pch", "objects"):  # precompiled headers, compiled objects (objcache.py)
        with contextlib.suppress(OSError):
            folders += [p for p in (root / kind).iterdir() if p.is_dir() and p != keep]
    folders.sort(key=_mtime)
    removed = []
    for folder in folders:
        if used <= limit:
            break
        size = disk_usage(folder)
        if remove_entry(folder):
            used -= size
            removed.append(folder)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def remove_entry(folder: Path) -> bool:
    """Remove an entry unless it is being made; whether it is gone. A build that
    chose its PCH a moment before compiles again without it (compile_object.py)."""
    try:
        fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    finally:
        os.close(fd)


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
    entry = PchEntry.at(Path(job["folder"]), job["flags"], job["includes"],
                        job.get("vmlinux", ""), job.get("digest", ""))
    try:
        make(job["clang"], entry)
    except (OSError, EccError):
        return 1
    return 0
