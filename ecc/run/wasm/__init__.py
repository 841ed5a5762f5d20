"""WebAssembly user space for BPF: ``ecc run APP.wasm`` (eunomia's wasm-bpf ABI).

A WASI guest loads, attaches and polls its BPF objects through six ``wasm_bpf``
imports (``host``); ``runtime`` is the one module of ecc that imports wasmtime,
and is imported only when a module runs, so ecc works without wasmtime installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...errors import EccError

WASM_MAGIC = b"\0asm"

__all__ = ["WASM_MAGIC", "read_wasm", "run_module"]


def read_wasm(package: str) -> bytes | None:
    """The bytes of ``package`` when it is a WebAssembly module (named ``*.wasm``, or a
    file starting with ``\\0asm``), else None: then it is a BPF package."""
    path = Path(package)
    if package.endswith(".wasm"):
        try:
            return path.read_bytes()
        except OSError as exc:
            raise EccError(f"{package}: cannot read: {exc.strerror}") from None
    try:
        with path.open("rb") as fh:
            head = fh.read(len(WASM_MAGIC))
    except OSError:
        return None  # not a readable file: a URL, an OCI reference, stdin
    return path.read_bytes() if head == WASM_MAGIC else None


def run_module(wasm: bytes, origin: str, argv: Sequence[str], *,
               env: Mapping[str, str] | None = None,
               dirs: Sequence[tuple[str, str]] = ()) -> int:
    """Run a WASI command module with the wasm_bpf imports; its exit status.

    ``argv`` is the guest's whole argv (argv[0] included). ``env`` is the guest's
    environment (none by default: the host's may hold secrets). ``dirs`` are
    (host directory, guest path) pairs the guest may open; none by default.
    SIGINT and SIGTERM stop the guest (status 128 + the signal number). Raises
    WasmError (one line) when the module is broken or breaks the ABI; whatever it
    loaded is detached and closed in every case.
    """
    try:
        from .runtime import run_wasi
    except ImportError as exc:
        if exc.name != "wasmtime":
            raise
        raise EccError(f"{origin}: running a WebAssembly module needs the Python package "
                       f"wasmtime (pip install 'ecc-bpf[wasm]')") from None
    for host_dir, _ in dirs:
        if not os.path.isdir(host_dir):
            raise EccError(f"{origin}: --dir {host_dir}: not a directory")
    return run_wasi(wasm, origin, argv, env=sorted((env or {}).items()), dirs=dirs)
