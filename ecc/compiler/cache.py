"""The user's cache folder for ecc (generated vmlinux.h, toolchain facts)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
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
