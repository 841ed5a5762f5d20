"""Is a package built for this machine's architecture?

A package from ``ecc build`` records its target arch in ``meta.provenance``
(ecc/compiler/provenance.py). Code built for another arch reads the wrong
registers (``PT_REGS_PARM1`` is ``regs[0]`` on arm64, ``di`` on x86), and the
kernel cannot tell: it loads, and reports garbage. So ``ecc run`` refuses it,
unless ``--force``. Packages without provenance (the reference ecc's) pass.
"""

from __future__ import annotations

from typing import Any

from ..arch import host_arch
from ..errors import EccError, PackageError


def recorded_arch(meta: Any) -> str | None:
    record = meta.get("provenance") if isinstance(meta, dict) else None
    arch = record.get("arch") if isinstance(record, dict) else None
    return arch if isinstance(arch, str) else None


def check_arch(origin: str, meta: Any, *, force: bool) -> str | None:
    """Raise when the package is for another arch; with ``force``, return a warning."""
    arch = recorded_arch(meta)
    if arch is None:
        return None
    try:
        host = host_arch()
    except EccError:
        return None  # a host libbpf does not name: nothing to compare with
    if arch == host:
        return None
    if force:
        return f"{origin}: built for {arch}, loading it on {host} anyway (--force)"
    raise PackageError(
        f"{origin}: built for {arch} (meta.provenance.arch), but this machine is {host}; "
        f"rebuild it with --arch {host}, or pass --force to load it anyway")
