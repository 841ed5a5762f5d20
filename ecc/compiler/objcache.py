"""A cache of compiled objects: a program built again from the same bytes takes the
object an earlier build made, without running clang (ccache's "direct mode").

The key is known before clang would start: ecc's version, clang (path, size,
mtime), how the object is stripped, clang's whole command line and the wrapper
it compiles (the build's temporary folder written as ``<workspace>``, so
that two builds of one program share the key), the folder it runs in and the
environment variables clang reads. A precompiled header is not in the key:
with or without one the object is the same (pch.py).

Under the key: the stripped object, and the manifest of the build that made it,
every file clang read (its ``-MD`` list) with its SHA-256, and clang's diagnostics,
which a build that takes the object prints as the compile did. A later build takes
the object only when each of those files still has those bytes, and when no
folder clang searches has a file that could stand in for one of them now
(a header put earlier in the search path): else it compiles, and its object
replaces the entry.

What a manifest cannot see is never stored: flags that make clang read files it
does not list (``@file``, plugins, ``-Xclang``, ``--config``), sources or headers
that ask whether a file exists (``__has_include``, ``__has_embed``), embed one
(``#embed``), read the clock (``__DATE__``, ``__TIME__``, ``__TIMESTAMP__``) or
include through ``..``. Entries are bounded with the precompiled headers
(``ECC_CACHE_MAX``, least recently used first); ``--no-cache`` neither reads nor
writes them, nor does ``ECC_OBJECT_CACHE=0``, which keeps the precompiled headers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .. import __version__, log
from .cache import bytes_digest, cache_dir, count, counted, file_identity, key_digest

FOLDER = "objects"
MANIFEST = "manifest.json"
OBJECT = "object.o"
_FORMAT = 1

# What clang reads from the environment (the driver and the preprocessor).
_CLANG_ENV = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH",
              "OBJCPLUS_INCLUDE_PATH", "SOURCE_DATE_EPOCH", "CCC_OVERRIDE_OPTIONS",
              "COMPILER_PATH", "CLANG_CONFIG_FILE_SYSTEM_DIR", "CLANG_CONFIG_FILE_USER_DIR")
# Flags after which clang reads files its -MD list does not name.
_UNLISTED = ("@", "-fplugin", "-Xclang", "--config", "-fprofile", "-fsanitize", "-B",
             "--gcc-toolchain", "--sysroot", "-isysroot", "-load")
# Stores between two walks of the cache to keep it under ECC_CACHE_MAX: an object is small.
EVICT_EVERY = 16
# A file changed this long before a compile began is taken to be the one clang read
# (a rewrite within the clock's granularity could keep even the ctime: git's "racy" case).
SETTLED_NS = 2_000_000_000
# Preprocessing that depends on more than the bytes of the files clang read.
_WORDS = (b"__has_include", b"__has_embed", b"__DATE__", b"__TIME__", b"__TIMESTAMP__")
_EMBED = re.compile(rb"#[ \t]*embed\b")
_PARENT = re.compile(rb"#[ \t]*include(?:_next)?[ \t]*[\"<][^\">\n]*\.\.[/\\]")


def _depends_on_more(text: bytes) -> bool:
    # find() per word first: a regular expression over all of vmlinux.h costs far more.
    return any(word in text for word in _WORDS) or (
        b"embed" in text and _EMBED.search(text) is not None) or (
        b".." in text and _PARENT.search(text) is not None)


class Hit(NamedTuple):
    object_bytes: bytes
    diagnostics: str
    depends: list[str]
    digests: dict[str, str]

    def to_hashing(self) -> Known:
        return Known(self.digests)


class Known(NamedTuple):
    """Digests already made, in the shape of provenance.Hashing."""

    known: Mapping[str, str]

    def digests(self) -> dict[str, str | None]:
        return dict(self.known)


def enabled() -> bool:
    """``ECC_OBJECT_CACHE`` is not 0 (or off, no, false)."""
    return os.environ.get("ECC_OBJECT_CACHE", "1").strip().lower() not in ("0", "off", "no",
                                                                           "false")


def key_for(clang: str, strip_tool: str | None, argv: Sequence[str], wrapper_text: str,
            cwd: str | None, workspace: str) -> str | None:
    """The entry's key for this compile; None when it must not be cached (a flag
    that makes clang read a file it does not list)."""
    if any(arg.startswith(_UNLISTED) for arg in argv[1:]):
        return None
    ws = _folder(workspace)

    def unplaced(text: str) -> str:
        return text.replace(ws, _WORKSPACE)

    key = json.dumps([
        _FORMAT, __version__, file_identity(clang),
        "in-process" if strip_tool is None else file_identity(strip_tool),
        [unplaced(a) for a in argv[1:]], unplaced(wrapper_text), unplaced(cwd or os.getcwd()),
        {name: os.environ[name] for name in _CLANG_ENV if name in os.environ},
    ])
    return key_digest(key, 32)


_WORKSPACE = "<workspace>/"


def _folder(workspace: str) -> str:
    return os.path.join(os.path.abspath(workspace), "")


def _entry(key: str) -> Path:
    return cache_dir() / FOLDER / key


def find(key: str, searched: Sequence[str], workspace: str) -> Hit | None:
    """The entry's object when every file its build read still has the same bytes and
    none could be shadowed now (``searched``: :func:`search_order`); else None
    (counted as a miss). Its diagnostics name this build's ``workspace``."""
    folder = _entry(key)
    hit = _check(folder, searched, workspace)
    count("object-hits" if hit is not None else "object-misses")
    if hit is not None:
        with contextlib.suppress(OSError):
            os.utime(folder)  # used now: evicted last
    return hit


def _check(folder: Path, searched: Sequence[str], workspace: str) -> Hit | None:
    from .provenance import digest

    manifest = _read_manifest(folder / MANIFEST)
    if manifest is None:
        return None
    try:
        object_bytes = (folder / OBJECT).read_bytes()
        if bytes_digest(object_bytes) != manifest.object:
            return None
        if any(digest(path) != sha for path, sha in manifest.inputs.items()):
            return None
        if _shadowed(manifest.inputs, searched):
            log.info("a header could come from another folder now; compiling")
            return None
    except (OSError, ValueError):  # an input is gone (or a damaged manifest names no file)
        return None
    return Hit(object_bytes, manifest.diagnostics.replace(_WORKSPACE, _folder(workspace)),
               list(manifest.depends), dict(manifest.inputs))


class Manifest(NamedTuple):
    object: str                     # the object's digest (cache.bytes_digest)
    diagnostics: str
    depends: list[str]
    inputs: dict[str, str]          # absolute path -> SHA-256


def _read_manifest(path: Path) -> Manifest | None:
    """The manifest, or None when it is missing or not one this version wrote whole: a
    damaged entry is a miss, never an error."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        return None
    obj, diagnostics = doc.get("object"), doc.get("diagnostics")
    depends, inputs = doc.get("depends"), doc.get("inputs")
    if not (isinstance(obj, str) and isinstance(diagnostics, str)
            and isinstance(depends, list) and all(isinstance(d, str) for d in depends)
            and isinstance(inputs, dict) and set(inputs) == set(depends)
            and all(isinstance(v, str) and os.path.isabs(k) for k, v in inputs.items())):
        return None
    return Manifest(obj, diagnostics, depends, inputs)


def snapshot(folder: str) -> dict[str, tuple[int, int, int]]:
    """(size, mtime, ctime) of the files in ``folder``, taken before the build links them
    into its mirror (repro.py): a new link changes a file's ctime, not its bytes."""
    out = {}
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                st = entry.stat()
                out[entry.path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return out


def store(key: str, object_bytes: bytes, diagnostics: str, depends: Sequence[str],
          digests: Mapping[str, str | None], *, workspace: str, started: int,
          before: Mapping[str, tuple[int, int, int]]) -> bool:
    """Keep the object under ``key`` when a later build can trust its manifest; whether
    it was kept. ``digests``: the SHA-256 of each of ``depends`` (provenance), made
    after clang read them; so only files last changed ``SETTLED_NS`` before the
    compile began (``started``, time.time_ns()) are taken to be what clang read:
    by their mtime and ctime, the ctime as ``before`` (:func:`snapshot`) had it."""
    if any(digests.get(path) is None for path in depends):
        return False
    for path in depends:
        try:
            st = os.stat(path)
        except OSError:
            return False
        then = before.get(path)
        if then is not None and then[:2] != (st.st_size, st.st_mtime_ns):
            return False
        if max(st.st_mtime_ns, st.st_ctime_ns if then is None else then[2]) > \
                started - SETTLED_NS:
            return False  # perhaps changed while clang read it: not known what it read
    for path in depends:
        if not _plain(path, str(digests[path])):
            log.info(f"not caching the object: {path} depends on more than bytes")
            return False
    from ..package import write_atomic
    from .pch import evict

    folder = _entry(key)
    manifest = {"format": _FORMAT, "object": bytes_digest(object_bytes),
                "diagnostics": diagnostics.replace(_folder(workspace), _WORKSPACE),
                "depends": list(depends), "inputs": {p: digests[p] for p in depends}}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(str(folder / OBJECT), object_bytes)
        write_atomic(str(folder / MANIFEST), json.dumps(manifest))
    except OSError:
        return False  # a cache that cannot be written only costs time
    count("object-stores")
    if counted("object-stores") % EVICT_EVERY == 0:  # a walk of the cache, for a small entry
        evict(keep=folder)
    return True


def _plain(path: str, sha: str) -> bool:
    """Whether the file (of SHA-256 ``sha``) preprocesses by its bytes alone; the verdict
    is kept by digest, as a vmlinux.h is read by every build and is 3 MB."""
    if sha in _PLAIN:
        return True
    mark = cache_dir() / "digests" / f"plain-{sha[:40]}"
    if mark.exists():
        _PLAIN.add(sha)
        return True
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError:
        return False
    from .provenance import sha256_hex

    if sha256_hex(text) != sha or _depends_on_more(text):
        return False  # changed since it was hashed, or depends on more
    _PLAIN.add(sha)
    with contextlib.suppress(OSError):
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()
    return True


_PLAIN: set[str] = set()


_ORDER = {"-iquote": 0, "-I": 1, "-isystem": 2, "-idirafter": 3}


def search_order(flags: Sequence[str], cwd: str, alias: str, real: str) -> list[str]:
    """The folders ``flags`` make clang search, in the order it searches them (``-iquote``
    ones, ``-I``, ``-isystem``, ``-idirafter``), real paths, the mirror ``alias`` as
    the folder ``real`` it stands for."""
    from .compile import search_dir_flags

    found = sorted(enumerate(search_dir_flags(flags)), key=lambda f: (_ORDER[f[1][0]], f[0]))
    out = []
    for _, (_, folder) in found:
        folder = os.path.normpath(os.path.join(cwd, folder))
        out.append(real if folder == os.path.normpath(alias) else os.path.realpath(folder))
    return list(dict.fromkeys(out))


def _shadowed(inputs: Iterable[str], searched: Sequence[str]) -> bool:
    """Whether a file other than an input now sits where clang would find it first: an
    input found below a searched folder has a name there (``linux/bpf.h``), and no
    folder searched before that one (nor the folder of any input, where ``#include
    "..."`` looks first) may hold another file under that name. An input below no
    searched folder was found beside its includer, which nothing comes before."""
    paths = [os.path.realpath(p) for p in inputs]
    known = set(paths)
    beside = list(dict.fromkeys(os.path.dirname(p) for p in paths))
    for path in paths:
        for k, base in enumerate(searched):
            if not path.startswith(os.path.join(base, "")):
                continue
            name = path[len(base) + 1:]
            for other in (*beside, *searched[:k]):
                found = os.path.join(other, name)
                if other != base and os.path.lexists(found) and \
                        os.path.realpath(found) not in known:
                    return True
    return False
