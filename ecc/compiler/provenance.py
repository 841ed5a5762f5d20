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

import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..record import Record, set_field
from . import tools
from .cache import cache_dir, key_digest, per_binary
from .repro import RECORDED_FLAGS, PathMap

if TYPE_CHECKING:
    from .result import Compiled

KEY = "provenance"


class InputFile(Record):
    __slots__ = ("path", "sha256")
    path: str       # absolute
    sha256: str

    def __init__(self, path: str, sha256: str) -> None:
        set_field(self, "path", path)
        set_field(self, "sha256", sha256)


# Digests made in this process, by path and stat: several builds at once (-j)
# would each hash the same 3 MB vmlinux.h. The stat has the ctime, which a
# rewrite changes even when it puts the mtime back; and only files last changed
# over two seconds ago are kept, since a rewrite within the clock's granularity
# could keep even the ctime (git's "racy" case). A big file's digest is also
# kept in the cache, under the same stat, for the separate `ecc build`
# processes of a CI job or a Makefile: each would hash that vmlinux.h again.
_MEMO: dict[str, tuple[tuple[int, ...], str]] = {}
_SETTLED_NS = 2_000_000_000
# Below this, hashing costs less than finding the digest in the cache.
_KEPT_ON_DISK = 256 * 1024


def digest(path: str) -> str:
    """The file's SHA-256, hex."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        known = _MEMO.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        settled = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS
        on_disk = _disk_memo(stamp) if settled and st.st_size >= _KEPT_ON_DISK else None
        value = _read_memo(on_disk) if on_disk is not None else None
        if value is None:
            value = sha256_hex(fh.read())
            if on_disk is not None:
                _write_memo(on_disk, value)
    if settled:
        _MEMO[path] = (stamp, value)
    return value


def sha256_hex(data: bytes) -> str:
    if len(data) >= _KEPT_ON_DISK:  # OpenSSL's is several times faster; its import costs ms
        import hashlib

        return hashlib.sha256(data).hexdigest()
    return _builtin_sha256(data)


def _builtin_sha256(data: bytes) -> str:
    """CPython's own SHA-256 (no OpenSSL to load): the module is _sha2 from 3.12, _sha256
    before; hashlib's on another Python implementation."""
    if not _BUILTIN:  # found once: a failed import searches the whole path
        import importlib

        for name in ("_sha2", "_sha256", "hashlib"):
            try:
                _BUILTIN.append(importlib.import_module(name).sha256)
                break
            except ImportError:
                continue
    return str(_BUILTIN[0](data).hexdigest())


_BUILTIN: list[Any] = []


def _disk_memo(stamp: tuple[int, ...]) -> Path:
    # Beside the cache keys' content digests (cache.content_digest), a different key.
    return cache_dir() / "digests" / key_digest("sha256 " + ":".join(map(str, stamp)), 32)


def _read_memo(memo: Path) -> str | None:
    try:
        known = memo.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    # A half-written or damaged memo is not trusted: it is hashed again.
    return known if len(known) == 64 and all(c in "0123456789abcdef" for c in known) else None


def _write_memo(memo: Path, value: str) -> None:
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(value)
    except OSError:  # a cache that cannot be written only costs time
        pass


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

    File reads and hashing release the GIL, so this overlaps with reading the
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
        hashed.update(one.digests())
    source_files = hash_inputs(sources, hashed)
    known = {f.path for f in source_files}
    header_paths = [p for c in compiled for p in c.depends] + [os.path.abspath(h) for h in headers]
    header_files = [f for f in hash_inputs(header_paths, hashed) if f.path not in known]
    meta[KEY] = make_provenance(arch=arch, clang=clang, flags=compiled[0].flags,
                                sources=source_files, headers=header_files,
                                path_map=compiled[0].path_map, linker=linker)
    return source_files + header_files
