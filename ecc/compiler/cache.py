"""The user's cache folder for ecc (generated vmlinux.h, precompiled headers, toolchain
facts): where it is, keys that name content, its size limit and hit counters."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def key_digest(text: str, length: int) -> str:
    """A hex digest naming a cache entry (or a folder) after what it was made from.

    BLAKE2 is built into CPython; hashlib would load OpenSSL first, a few ms
    of every build before clang can start.
    """
    try:
        from _blake2 import blake2b
    except ImportError:  # another Python implementation
        from hashlib import blake2b
    return blake2b(text.encode(errors="surrogateescape"), digest_size=32).hexdigest()[:length]


def cache_dir() -> Path:
    """``$ECC_CACHE_DIR``, else ``$XDG_CACHE_HOME/ecc``, else ``~/.cache/ecc``."""
    explicit = os.environ.get("ECC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ecc"


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/lock`` exclusively: one process (or thread) fills an entry at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def file_identity(path: str) -> str:
    """Path, size and mtime: what says a file is still the one a cache entry was made from."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"


def per_binary(binary: str, name: str, compute: Callable[[], T],
               valid: Callable[[Any], bool]) -> T:
    """A fact about a tool binary (its include dirs, its version), cached per binary.

    Asking costs a process start; the answer cannot change while the binary's
    path, size and mtime stay the same. A cache that cannot be read or written
    only costs time.
    """
    os.stat(binary)  # a binary that is gone is the caller's error, not a cache miss
    key = key_digest(file_identity(binary), 20)
    cache_file = cache_dir() / "tools" / f"{name}-{key}.json"
    cached = read_json(cache_file)
    if cached is not _UNREADABLE and valid(cached):
        return cached  # type: ignore[no-any-return]
    value = compute()
    write_json(cache_file, value)
    return value


_UNREADABLE: Any = object()


def read_json(path: Path) -> Any:
    """A cache file's JSON value; ``_UNREADABLE`` when it is missing, unreadable or not
    JSON (a cache that cannot be read only costs time)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return _UNREADABLE


def write_json(path: Path, value: Any) -> None:
    """Write a cache file atomically, its folder made first; a cache that cannot be
    written only costs time."""
    try:
        from ..package import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(str(path), json.dumps(value))
    except OSError:
        pass


def content_digest(path: str) -> str:
    """A digest of the file's bytes, remembered under its stat identity.

    Cache keys name content, so that two folders with the same vmlinux.h share
    an entry; hashing 3 MB on every build would cost more than the stat and
    the small read that find it again. A file rewritten in place changes its
    ctime, so a stale memo cannot be found.
    """
    st = os.stat(path)
    # The inode names the file wherever it is reached from; no realpath needed.
    identity = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    memo = cache_dir() / "digests" / key_digest(identity, 32)
    try:
        known = memo.read_text()
        if len(known) == 64 and known.isalnum():
            return known
    except OSError:
        pass
    with open(path, "rb") as fh:
        digest = bytes_digest(fh.read())
    with contextlib.suppress(OSError):
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(digest)  # a half-written memo has the wrong length: not trusted
    return digest


def bytes_digest(data: bytes) -> str:
    try:
        from _blake2 import blake2b
    except ImportError:  # another Python implementation
        from hashlib import blake2b
    return blake2b(data, digest_size=32).hexdigest()


# --- how much the cache may hold, and what it has done -----------------------------

DEFAULT_MAX = 1 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", re.I)
_warned: set[str] = set()


def parse_size(text: str) -> int | None:
    """``500M``, ``1G``, ``1.5GiB``, ``2048`` (bytes): binary units; None when unreadable."""
    match = _SIZE.fullmatch(text)
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def max_size() -> int:
    """``$ECC_CACHE_MAX``, else 1 GiB; a value that is not a size warns once."""
    text = os.environ.get("ECC_CACHE_MAX")
    if not text:
        return DEFAULT_MAX
    size = parse_size(text)
    if size is None:
        warn_once(f"ECC_CACHE_MAX={text!r} is not a size (like 500M or 2G); "
                  f"using {DEFAULT_MAX >> 20}M")
        return DEFAULT_MAX
    return size


def warn_once(message: str) -> None:
    """A warning line on stderr, once per process: a cache problem slows builds down but
    is not theirs to fail over, and a batch of builds should not repeat it."""
    if message in _warned:
        return
    _warned.add(message)
    print(f"ecc: warning: {message}", file=sys.stderr)


def cache_unusable(exc: OSError) -> None:
    """The cache folder cannot be written (read-only, full, not a folder)."""
    root = cache_dir()
    if any(m.startswith("the cache folder") for m in _warned):
        return
    reason = exc.strerror or str(exc)
    warn_once(f"the cache folder {root} cannot be used ({reason}); building without the cache")


def disk_usage(path: Path) -> int:
    """Bytes the folder takes on disk, like ``du``: what a limit on the cache is about."""
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in (*files, *dirs):
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


STATS = "stats"


def count(event: str) -> None:
    """One more hit or miss: a byte appended, no lock and no read, so that parallel
    builds can count without waiting on each other; the count is the file's size."""
    path = cache_dir() / STATS / event
    with contextlib.suppress(OSError):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)


def counted(event: str) -> int:
    try:
        return (cache_dir() / STATS / event).stat().st_size
    except OSError:
        return 0
