"""``ecc cache info`` and ``ecc cache clean``: what the cache folder holds, and emptying it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from . import pch
from .cache import cache_dir, counted, disk_usage, max_size


class CacheInfo(NamedTuple):
    folder: Path
    size: int
    limit: int
    entries: int        # precompiled headers
    entries_size: int
    headers: int        # vmlinux.h files generated from a kernel's BTF
    hits: int
    misses: int
    objects: int = 0    # compiled objects (objcache.py)
    objects_size: int = 0
    object_hits: int = 0
    object_misses: int = 0

    def lines(self) -> list[str]:
        looked = self.hits + self.misses
        rate = f"{100 * self.hits / looked:.0f}%" if looked else "none yet"
        return [
            f"folder:   {self.folder}",
            f"size:     {mib(self.size)} of {mib(self.limit)} (ECC_CACHE_MAX)",
            f"entries:  {self.entries} precompiled header{'s' * (self.entries != 1)} "
            f"({mib(self.entries_size)}), {self.headers} generated vmlinux.h",
            f"hit rate: {rate} ({self.hits} hits, {self.misses} misses)",
            f"objects:  {self.objects} compiled object{'s' * (self.objects != 1)} "
            f"({mib(self.objects_size)}), reused {self.object_hits} times, "
            f"compiled {self.object_misses} times",
        ]


def mib(size: int) -> str:
    return f"{size / (1 << 20):.1f}M"


def _entries(root: Path, kind: str = "pch") -> list[Path]:
    """The entry folders of one kind: "pch" (pch.py) or "objects" (objcache.py)."""
    try:
        return sorted(p for p in (root / kind).iterdir() if p.is_dir())
    except OSError:
        return []


def info() -> CacheInfo:
    root = cache_dir()
    entries = [e for e in _entries(root) if (e / "prefix.h.pch").is_file()]
    try:
        headers = sum(1 for p in (root / "vmlinux").iterdir() if (p / "vmlinux.h").is_file())
    except OSError:
        headers = 0
    objects = _entries(root, "objects")
    return CacheInfo(root, disk_usage(root), max_size(), len(entries),
                     sum(disk_usage(e) for e in entries), headers, counted("hits"),
                     counted("misses"), len(objects), sum(disk_usage(o) for o in objects),
                     counted("object-hits"), counted("object-misses"))


class Cleaned(NamedTuple):
    freed: int
    removed: int        # precompiled headers
    busy: int           # being made right now, so kept

    def line(self) -> str:
        kept = f"; {self.busy} being made, kept" if self.busy else ""
        return (f"ecc: removed {self.removed} precompiled header"
                f"{'s' * (self.removed != 1)}, freed {mib(self.freed)}{kept}")


def clean() -> Cleaned:
    """Everything in the cache folder goes, but an entry a build is making (its maker
    holds the lock): the counters start again from zero."""
    root = cache_dir()
    before = disk_usage(root)
    removed = busy = 0
    for entry in _entries(root):
        if pch.remove_entry(entry):
            removed += 1
        else:
            busy += 1
    try:
        others = [p for p in root.iterdir() if p.name != "pch"]
    except OSError:
        others = []
    for path in others:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return Cleaned(max(0, before - disk_usage(root)), removed, busy)
