"""``ecc build -s``: the package and its loader in one executable file (a Python zipapp).

The file is a zip archive behind a ``#!/usr/bin/env python3`` line; Python runs
its ``__main__.py``, which is ``ecc run <this file> ARGS``. So ``./prog.out
--help`` is ``ecc run package.json --help``, by construction: the same click
command turns the program's variables into options. The target needs Python
3.11+ and ``libbpf.so.1``; nothing is fetched or installed at run time.

With ``--wasm APP.c``, ``-s`` makes the standalone file of the WebAssembly program
instead: ``<stem>.out`` beside each ``<stem>.wasm``, whose payload is the module
(which carries the BPF object inside it), and ``./<stem>.out ARGS`` is ``ecc run
<stem>.wasm ARGS``. That is what ``-s`` means -- one file that runs what you would
run -- and with ``--wasm`` what you run is the module: the package's standalone file
would take the same name and do something else (run the package without the
guest). The runtime, wasmtime, is a native library that a zipapp cannot carry: the
target also needs ``pip install wasmtime``, and the file says so in one line when
it is missing.

Inside:

- ``__main__.py``: checks the Python version (and for a module that wasmtime is
  installed), then runs ``ecc run <this file> ARGS``.
- ``package.json``: the package, always JSON (no PyYAML needed on the target); or
  ``module.wasm``: the WebAssembly module, byte for byte the ``<stem>.wasm``.
- ``ecc/``: only the modules ``ecc run`` imports (:func:`ecc_modules`).
- ``click/``: copied from the build machine's installed copy, its license under
  ``licenses/``. click (BSD-3-Clause, which allows redistribution with its
  notice) because reusing ``ecc run``'s own command is what makes the options
  and help identical. ``ecc/elf.py`` reads objects with ``struct``, so no ELF
  library is carried.

Each module is stored as source and as a ``.pyc`` compiled for the building
Python: zipimport cannot cache bytecode, so without them every start would
compile the loader and click from source again on every start. Another Python
version ignores the ``.pyc`` files (their magic number differs) and compiles the
sources. The bytecode is made once per set of sources and Python and kept in
ecc's cache folder, so ``-s`` adds about 0.2 s to a build. Entries are sorted
and carry a fixed timestamp, so the same package always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import EccError
from ..package.embedded import MAIN_NAME, MODULE_NAME, PACKAGE_NAME, wasm_problem

SHEBANG = b"#!/usr/bin/env python3\n"
# What `ecc run` imports is found by reading the import statements (ecc_modules), from
# these roots: the command line (module level only: its commands import lazily) and
# every module of ecc/run. The standalone tests run the file under `python -I -S`, so a
# module missed here fails them.
ROOTS = ("cli", "run")
# Reached from ecc/run but never by a standalone file: its package is always the embedded
# one, never an OCI reference to pull (ecc.oci, which needs oras), and nothing compiles.
NOT_BUNDLED = ("ecc.oci", "ecc.compiler")
# import name -> distribution name (for its license)
VENDORED = {"click": "click"}
# zip's earliest representable time: a fixed stamp keeps the output reproducible.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)

MAIN_SOURCE = '''\
# Written by `ecc build -s`: runs the eBPF program in this file like `ecc run package.json`.
import sys

if sys.version_info < (3, 11):
    sys.exit("%s: error: needs Python 3.11 or newer, this is %d.%d"
             % (sys.argv[0], sys.version_info[0], sys.version_info[1]))

from ecc.cli import main

main(["run", sys.argv[0], *sys.argv[1:]])
'''

MODULE_MAIN_SOURCE = '''\
# Written by `ecc build --wasm APP.c -s`: runs the WebAssembly program in this file like
# `ecc run APP.wasm`.
import importlib.util
import os
import sys

if sys.version_info < (3, 11):
    sys.exit("%s: error: needs Python 3.11 or newer, this is %d.%d"
             % (sys.argv[0], sys.version_info[0], sys.version_info[1]))
if importlib.util.find_spec("wasmtime") is None:
    sys.exit("ecc: error: %s: running this WebAssembly program needs the Python package "
             "wasmtime, which is not installed here: pip install wasmtime"
             % os.path.basename(sys.argv[0]))

from ecc.cli import main

main(["run", sys.argv[0], *sys.argv[1:]])
'''


def write_standalone(out_dir: str, stem: str, object_bytes: bytes,
                     meta: dict[str, Any]) -> str:
    """Write ``<stem>.out`` into ``out_dir`` (temp file, then rename); its path."""
    from ..package import dumps_json, make_package

    data = standalone_bytes(dumps_json(make_package(object_bytes, meta)))
    path = os.path.join(out_dir, f"{stem}.out")
    _write_executable(path, data)
    return path


def write_standalone_module(wasm_path: str) -> str:
    """Write ``<stem>.out`` beside the WebAssembly module ``<stem>.wasm``; its path."""
    with open(wasm_path, "rb") as fh:
        module = fh.read()
    path = os.path.splitext(wasm_path)[0] + ".out"
    _write_executable(path, module_standalone_bytes(module, origin=wasm_path))
    return path


def standalone_bytes(package_json: str) -> bytes:
    """The whole executable of a package: shebang, then the zip archive."""
    return _zipapp(MAIN_SOURCE, PACKAGE_NAME, package_json.encode())


def module_standalone_bytes(module: bytes, *, origin: str = "module") -> bytes:
    """The whole executable of a WebAssembly module; the module's header is checked."""
    problem = wasm_problem(module)
    if problem:
        raise EccError(f"{origin}: {problem}; no standalone file written")
    return _zipapp(MODULE_MAIN_SOURCE, MODULE_NAME, module)


def _zipapp(main_source: str, payload_name: str, payload: bytes) -> bytes:
    import zipfile

    entries: dict[str, bytes] = {MAIN_NAME: main_source.encode(), payload_name: payload}
    entries.update(_runtime_entries())
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    # Level 6: within 1% of 9's size, in a quarter of the time.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=6) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name], compresslevel=6)
    return buffer.getvalue()


def _runtime_entries() -> dict[str, bytes]:
    """The loader's modules, the vendored libraries and their licenses, with bytecode."""
    ecc_root = Path(__file__).resolve().parents[1]
    sources = {f"ecc/{rel}": (ecc_root / rel).read_bytes() for rel in ecc_modules(ecc_root)}
    entries: dict[str, bytes] = {}
    for module, dist in VENDORED.items():
        root = _package_dir(module)
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            if "__pycache__" in rel.parts or "tests" in rel.parts:
                continue
            sources[f"{module}/{rel.as_posix()}"] = path.read_bytes()
        for name, text in _licenses(dist).items():
            entries[f"licenses/{dist}/{name}"] = text
    compiled = _compiled(sources)
    for name, source in sources.items():
        entries[name] = source
        entries[name + "c"] = compiled[name]
    return entries


def _compiled(sources: dict[str, bytes]) -> dict[str, bytes]:
    """The .pyc of every source; from ecc's cache when this Python compiled this exact set.

    Compiling ~190 modules costs ~0.45 s, most of an ``ecc build -s``. The key
    is every name and source hash plus the interpreter; a broken entry is redone.
    """
    import hashlib
    import importlib.util
    import marshal

    from ..package import write_atomic
    from .cache import cache_dir

    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + sys.version.encode())
    for name in sorted(sources):
        key.update(name.encode() + b"\0" + hashlib.sha256(sources[name]).digest())
    folder = cache_dir() / "standalone"
    path = folder / f"{key.hexdigest()[:32]}.marshal"
    with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
        cached = marshal.loads(path.read_bytes())
        if isinstance(cached, dict) and cached.keys() == sources.keys() and all(
                isinstance(v, bytes) for v in cached.values()):
            return cached
    compiled = {name: _bytecode(name, source) for name, source in sources.items()}
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(str(path), marshal.dumps(compiled))
        # One entry per ecc version and Python: keep the few most recent.
        old = sorted(folder.glob("*.marshal"), key=lambda p: p.stat().st_mtime)[:-4]
        for stale in old:
            stale.unlink(missing_ok=True)
    return compiled


def ecc_modules(ecc_root: Path) -> list[str]:
    """The files of ecc that ``ecc run`` can import, relative to ``ecc_root``, sorted.

    Follows every import statement (lazy ones too, but not ``if TYPE_CHECKING:``)
    from :data:`ROOTS`, skipping :data:`NOT_BUNDLED`; ``cli.py`` only at module
    level, because its other commands import the compiler lazily.
    """
    import ast

    def file_of(module: str) -> str | None:
        rel = module.split(".")[1:]
        for candidate in ("/".join(rel) + ".py", "/".join([*rel, "__init__.py"])):
            if candidate.strip("/") and (ecc_root / candidate).is_file():
                return candidate.lstrip("/")
        return None

    def imports(rel: str) -> set[str]:
        tree = ast.parse((ecc_root / rel).read_bytes(), rel)
        package = "ecc." + rel[: -len(".py")].replace("/", ".")
        if not rel.endswith("__init__.py"):
            package = package.rsplit(".", 1)[0]
        else:
            package = package[: -len(".__init__")]
        nodes: list[ast.AST] = list(tree.body) if rel == "cli.py" else [tree]
        found: set[str] = set()
        while nodes:
            node = nodes.pop()
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name | ast.Attribute) \
                    and "TYPE_CHECKING" in ast.unparse(node.test):
                nodes.extend(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")
                    parent = parent[: len(parent) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            if rel != "cli.py" or isinstance(node, ast.Try):
                # Imports are statements: expressions need no visit (a tenth of the nodes).
                nodes.extend(c for c in ast.iter_child_nodes(node)
                             if isinstance(c, ast.stmt | ast.excepthandler | ast.match_case))
        return {m for m in found if m == "ecc" or m.startswith("ecc.")}

    todo = ["ecc", *(f"ecc.{r}" for r in ROOTS if (ecc_root / f"{r}.py").is_file())]
    # Every module below a folder root: `ecc run` reaches some only from cli.py's command
    # bodies (ecc.run.wasm for APP.wasm), which are not followed.
    todo += [".".join(("ecc", *p.relative_to(ecc_root).with_suffix("").parts)).removesuffix(
             ".__init__") for r in ROOTS if (ecc_root / r).is_dir()
             for p in sorted((ecc_root / r).rglob("*.py"))]
    files: set[str] = set()
    while todo:
        module = todo.pop()
        if any(module == x or module.startswith(x + ".") for x in NOT_BUNDLED):
            continue
        rel = file_of(module)
        if rel is None or rel in files:
            continue
        files.add(rel)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
        todo += sorted(imports(rel))
    return sorted(files)


def _package_dir(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise EccError(f"--standalone bundles the Python package '{module}', which is not "
                       f"installed here (pip install {VENDORED[module]})")
    return Path(locations[0])


def _licenses(dist: str) -> dict[str, bytes]:
    """The distribution's license files: redistributing it means shipping them too."""
    import importlib.metadata

    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found: dict[str, bytes] = {}
    for file in files:
        base = file.name.upper()
        if base.startswith(("LICENSE", "LICENCE", "COPYING")):
            found[file.name] = Path(str(file.locate())).read_bytes()
    if not found:
        # Debian's python3-* packages keep it outside the Python metadata.
        copyright_file = Path(f"/usr/share/doc/python3-{dist}/copyright")
        if copyright_file.is_file():
            found["copyright"] = copyright_file.read_bytes()
    if not found:
        raise EccError(f"--standalone bundles {dist}, but its license file is not installed; "
                       f"reinstall it with pip (pip install --force-reinstall {dist})")
    return found


def _bytecode(name: str, source: bytes) -> bytes:
    """A PEP 552 unchecked hash-based .pyc: valid whatever the zip entries' timestamps."""
    import importlib.util
    import marshal

    code = compile(source, name, "exec", dont_inherit=True)
    flags = (0b01).to_bytes(4, "little")  # hash-based, source not checked
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + \
        marshal.dumps(code)


def _write_executable(path: str, data: bytes) -> None:
    """Temp file in the same folder, made executable, then renamed over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
