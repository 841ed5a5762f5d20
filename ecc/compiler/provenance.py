"""How a package was built, recorded inside it (``meta.provenance``).

Where: eunomia's loaders read ``meta`` with serde structs (bpf-loader-rs,
``EunomiaObjectMeta``; the package itself is ``ComposedObjectInner``) that do
not set ``deny_unknown_fields``, so an unknown key is skipped, in ``meta`` as
at the top level. It goes in ``meta`` so that the ``.skel.json`` (which is
``meta`` alone) carries it too, and the package schema allows extra keys there.

What: ecc's version, the target arch, the compiler (and linker) versions, the
flags, and a SHA-256 of every source and header clang read. Paths are written
through the build's :class:`~ecc.compiler.repro.PathMap` (``./prog.bpf.c``,
``<cache>/vmlinux/<id>/vmlinux.h``), so the record is as reproducible as the
object: two builds in different folders record the same thing.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import __version__
from . import tools
from .cache import per_binary
from .repro import RECORDED_FLAGS, PathMap

if TYPE_CHECKING:
    from .result import Compiled

KEY = "provenance"


@dataclass(frozen=True)
class InputFile:
    path: str       # absolute
    sha256: str


# Digests made in this process, by path and stat: several builds at once (-j)
# would each hash the same 3 MB vmlinux.h, ~3.5 ms of a core apiece. The stat
# has the ctime, which a rewrite changes even when it puts the mtime back; and
# only files last changed over two seconds ago are kept, since a rewrite within
# the clock's granularity could keep even the ctime (git's "racy" case).
_MEMO: dict[str, tuple[tuple[int, ...], str]] = {}
_SETTLED_NS = 2_000_000_000


def digest(path: str) -> str:
    """The file's SHA-256, hex."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        known = _MEMO.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        h = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    value = h.hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
        _MEMO[path] = (stamp, value)
    return value


def hash_inputs(paths: Iterable[str], known: Mapping[str, str | None] | None = None,
                ) -> list[InputFile]:
    """Each readable file once, in the order given (unreadable ones are left out).

    ``known``: digests already made (:class:`Hashing`), None for an unreadable file.
    """
    out: dict[str, InputFile] = {}
    for path in paths:
        path = os.path.abspath(path)
        if path in out:
            continue
        sha = known[path] if known is not None and path in known else _digest_or_none(path)
        if sha is not None:  # else a header clang listed and that is gone now
            out[path] = InputFile(path, sha)
    return list(out.values())


def _digest_or_none(path: str) -> str | None:
    try:
        return digest(path)
    except OSError:
        return None


class Hashing:
    """Digests of files, made on a thread as soon as clang has named them.

    File reads and hashlib release the GIL, so this overlaps with reading the
    object and making its meta instead of adding to the build's time.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = list(dict.fromkeys(os.path.abspath(p) for p in paths))
        self._digests: dict[str, str | None] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for path in self._paths:
            self._digests[path] = _digest_or_none(path)

    def missing(self, paths: Iterable[str]) -> list[str]:
        """Those of ``paths`` this one does not hash."""
        mine = set(self._paths)
        return [p for p in (os.path.abspath(p) for p in paths) if p not in mine]

    def digests(self) -> dict[str, str | None]:
        self._thread.join()
        return self._digests


_VERSION_LINE = re.compile(r"\bv?\d+\.\d+")


def tool_version(tool: str) -> str:
    """The first line of ``tool --version`` that names a version, cached per binary."""
    def ask() -> str:
        result = tools.run([tool, "--version"],
                           what=f"asking {os.path.basename(tool)} its version", check=False)
        text = (result.stdout or result.stderr).decode(errors="replace")
        return next((line.strip() for line in text.splitlines() if _VERSION_LINE.search(line)),
                    "unknown")

    try:
        return per_binary(tool, "version", ask, lambda v: isinstance(v, str))
    except OSError:
        return "unknown"


def make_provenance(*, arch: str, clang: str, flags: Sequence[str],
                    sources: Sequence[InputFile], headers: Sequence[InputFile],
                    path_map: PathMap, linker: str | None = None) -> dict[str, Any]:
    """The ``meta.provenance`` object; every path through ``path_map``."""
    source_paths = {f.path for f in sources}

    def entries(files: Iterable[InputFile]) -> list[dict[str, str]]:
        named = sorted((path_map.portable(f.path), f.sha256) for f in files)
        return [{"path": p, "sha256": h} for p, h in named]

    record: dict[str, Any] = {
        "ecc_version": __version__,
        "arch": arch,
        "clang": tool_version(clang),
    }
    if linker is not None:
        record["linker"] = tool_version(linker)
    record["flags"] = [path_map.portable_flag(f) for f in flags] + list(RECORDED_FLAGS)
    record["sources"] = entries(sources)
    record["headers"] = entries(h for h in headers if h.path not in source_paths)
    return record



def record(meta: dict[str, Any], compiled: Sequence[Compiled], *, arch: str, clang: str,
           sources: Sequence[str], headers: Sequence[str] = (),
           linker: str | None = None) -> list[InputFile]:
    """Put ``meta["provenance"]`` (last, so meta's other keys keep their order) and
    return every input, sources first, for the report and the depfile."""
    hashed: dict[str, str | None] = {}
    for one in compiled:
        for hashing in one.hashing:
            hashed.update(hashing.digests())
    source_files = hash_inputs(sources, hashed)
    known = {f.path for f in source_files}
    header_paths = [p for c in compiled for p in c.depends] + [os.path.abspath(h) for h in headers]
    header_files = [f for f in hash_inputs(header_paths, hashed) if f.path not in known]
    meta[KEY] = make_provenance(arch=arch, clang=clang, flags=compiled[0].flags,
                                sources=source_files, headers=header_files,
                                path_map=compiled[0].path_map, linker=linker)
    return source_files + header_files
