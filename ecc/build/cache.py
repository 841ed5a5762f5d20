"""The user's cache folder for ecc (generated vmlinux.h, toolchain facts)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$ECC_CACHE_DIR``, else ``$XDG_CACHE_HOME/ecc``, else ``~/.cache/ecc``."""
    explicit = os.environ.get("ECC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ecc"
