"""Compiling a guest program to ``<stem>.wasm`` with clang's wasm32-wasi target."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ecc.errors import CompileError

from .. import tools

# ecc's libbpf-wasm.h: searched last, so that a project's own copy wins.
GUEST_INCLUDE_DIR = str(Path(__file__).resolve().parent / "include")
TOOLCHAIN_PACKAGES = "wasi-libc lld-19 libclang-rt-19-dev-wasm32"
TOOLCHAIN_FIX = (f"install the wasm32 toolchain (Debian: apt-get install {TOOLCHAIN_PACKAGES}; "
                 "scripts/install.sh does)")

# What clang says when the wasm32-wasi target is not all there, rather than
# the program being wrong: no linker, no C library, no compiler runtime.
_TOOLCHAIN_MISSING = re.compile(
    r"unable to execute command: Executable \"wasm-ld\"|"
    r"wasm-ld.*: (?:cannot|unable to) find -lc\b|"
    r"unable to find library -lc\b|"
    r"libclang_rt\.builtins-wasm32\.a: No such file|"
    r"cannot open .*libclang_rt\.builtins.*wasm32|"
    r"'(?:stdio|stdint|stdlib|string|errno)\.h' file not found|"
    r"No available targets are compatible with triple \"wasm32")


def wasm_flags(source_dir: str, generated_dir: str) -> list[str]:
    """Everything but clang, the input and the output.

    ``--allow-undefined``: the ``wasm_bpf`` functions are the host's imports.
    ``--export-table``: a callback reaches the host as its index in the
    function table (``bpf_buffer__poll``), which the host must see to call it.
    """
    return ["--target=wasm32-wasi", "-O2",
            f"-I{source_dir}", f"-I{generated_dir}", f"-I{GUEST_INCLUDE_DIR}",
            "-Wl,--allow-undefined", "-Wl,--export-table"]


def compile_app(app: str, output: str, generated_dir: str, *, clang: str | None = None,
                cflags: Sequence[str] = ()) -> None:
    """clang ``app`` (a C file) into ``output`` (a .wasm); CompileError on failure.

    ``generated_dir`` holds the skeleton and export header; the app's own
    folder is searched before it, ecc's guest header folder after.
    """
    if not os.path.isfile(app):
        raise CompileError(f"{app}: no such file; give the wasm program's C source "
                           "(--wasm FILE)")
    clang_bin = tools.find_tool("clang", clang)
    source_dir = os.path.dirname(os.path.abspath(app))
    argv = [clang_bin, *wasm_flags(source_dir, generated_dir), *cflags, app, "-o", output]
    result = tools.run(argv, what=f"compiling {os.path.basename(app)} for wasm32",
                       check=False)
    diagnostics = result.stderr.decode(errors="replace").strip()
    if result.returncode == 0:
        return
    name = os.path.basename(app)
    if _TOOLCHAIN_MISSING.search(diagnostics):
        raise CompileError(f"{name}: clang cannot build for wasm32-wasi; {TOOLCHAIN_FIX}",
                           details=diagnostics or None)
    errors = len(re.findall(r": (?:fatal )?error: ", diagnostics))
    summary = f"{errors} error{'s' if errors != 1 else ''}" if errors else "errors"
    raise CompileError(f"{name}: clang (wasm32) reported {summary}; fix the source and "
                       "build again", details=diagnostics or None)
