"""The standalone container (``ecc build -s``): a zipapp whose payload is the program.

The payload is ``package.json`` (an eBPF package, run like ``ecc run package.json``)
or, for ``ecc build --wasm APP.c -s``, ``module.wasm`` (a WebAssembly module, run
like ``ecc run APP.wasm``). ecc/compiler/standalone.py writes it; ``ecc run FILE``
and ``ecc check FILE`` read the payload back out of it here.

Also where a WebAssembly module's first bytes are checked (:func:`wasm_problem`),
for everything that receives one from outside: ``ecc push``, ``ecc pull``, a URL,
a standalone file. This module is in the "format" layer, below both the registry
client and the loader, and imports nothing.
"""

from __future__ import annotations

from ..errors import PackageError

PACKAGE_NAME = "package.json"
MODULE_NAME = "module.wasm"
MAIN_NAME = "__main__.py"
# The embedded payload is written by ecc itself; far larger means this is not our file.
MAX_EMBEDDED_BYTES = 256 * 1024 * 1024

# A WebAssembly core module: the magic "\0asm", then version 1 (little-endian u32).
# A component (version 0x0d, layer 1) starts with the same magic; ecc runs modules only.
WASM_MAGIC = b"\0asm"
WASM_VERSION = b"\x01\x00\x00\x00"


def wasm_problem(data: bytes) -> str | None:
    """Why ``data`` is not a WebAssembly module, or None when its header says it is one."""
    if data[:4] != WASM_MAGIC:
        head = data[:8]
        return (f"not a WebAssembly module (it starts {head!r}, not {WASM_MAGIC!r})"
                if head else "not a WebAssembly module (it is empty)")
    if data[4:8] != WASM_VERSION:
        version = data[4:8]
        if len(version) < 4:
            return "not a WebAssembly module (it ends inside its 8-byte header)"
        if version[2:4] == b"\x01\x00":
            return "a WebAssembly component, not a module; ecc runs core modules (version 1)"
        return (f"not a WebAssembly module of version 1 (its header says version "
                f"{int.from_bytes(version, 'little')})")
    return None


def read_embedded(path: str) -> bytes | None:
    """The package inside a standalone file, or None when ``path`` is not one of a package."""
    return _read_member(path, PACKAGE_NAME)


def read_embedded_module(path: str) -> bytes | None:
    """The WebAssembly module inside a standalone file of a wasm program, checked to be
    one; None when ``path`` is not such a file."""
    data = _read_member(path, MODULE_NAME)
    if data is None:
        return None
    problem = wasm_problem(data)
    if problem:
        raise PackageError(f"{path}: its {MODULE_NAME} is {problem}; not a standalone file "
                           f"of ecc")
    return data


def _read_member(path: str, name: str) -> bytes | None:
    import zipfile
    import zlib

    try:
        with open(path, "rb") as fh:
            if fh.read(2) not in (b"#!", b"PK"):
                return None
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if MAIN_NAME not in names or name not in names:
                return None
            info = archive.getinfo(name)
            if info.file_size > MAX_EMBEDDED_BYTES:
                raise PackageError(f"{path}: its {name} claims {info.file_size} bytes; "
                                   f"not a standalone file of ecc")
            with archive.open(info) as member:
                return member.read(MAX_EMBEDDED_BYTES + 1)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
