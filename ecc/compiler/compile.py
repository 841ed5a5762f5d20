"""clang with the reference flags (spec section 7), through a wrapper translation unit."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

from .. import log

# The arch tables live in ecc/arch.py, shared with ecc run; re-exported for callers here.
from ..arch import HOST_ARCHES as HOST_ARCHES
from ..arch import TARGET_ARCHES as TARGET_ARCHES
from ..arch import host_arch as host_arch
from ..errors import CompileError
from . import tools
from .cache import per_binary


def dummy_declarations(struct_names: Sequence[str]) -> str:
    """One pointer per exported struct, so the struct survives into BTF even if only sizeof'd."""
    return "".join(
        f"const volatile struct {name} * __eunomia_dummy_{name}_ptr __attribute__((unused));\n"
        for name in struct_names
    )


def wrapper_source(user_file: str, struct_names: Sequence[str]) -> str:
    """A translation unit that includes the user's file by absolute path, then adds our decls.

    The user's file is neither copied nor edited, so clang's diagnostics name it
    and its lines (we drop the one "In file included from <wrapper>" line).
    """
    quoted = json.dumps(os.path.abspath(user_file))
    return f"#include {quoted}\n{dummy_declarations(struct_names)}"


def system_include_dirs(clang: str) -> list[str]:
    """The host's default include dirs, which ``-target bpf`` would otherwise not search."""
    def ask() -> list[str]:
        result = tools.run([clang, "-v", "-E", "-x", "c", "-", "-o", os.devnull],
                           what="asking clang for its include directories", input_bytes=b"")
        return parse_include_dirs(result.stderr.decode(errors="replace"))

    return per_binary(clang, "sysinc", ask,
                      lambda v: isinstance(v, list) and all(isinstance(d, str) for d in v))


def parse_include_dirs(verbose_output: str) -> list[str]:
    dirs: list[str] = []
    inside = False
    for line in verbose_output.splitlines():
        if line.startswith("#include <...> search starts here"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside:
            dirs.append(line.strip().removesuffix(" (framework directory)"))
    return dirs


SEARCH_FLAGS = ("-I", "-isystem", "-idirafter", "-iquote")


def search_dir_flags(flags: Sequence[str]) -> list[tuple[str, str]]:
    """The folders clang's ``flags`` add to the include search, in order, each with the
    flag that adds it; given apart (``-I dir``) or joined (``-Idir``)."""
    found: list[tuple[str, str]] = []
    args = list(flags)
    for i, arg in enumerate(args):
        for flag in SEARCH_FLAGS:
            if arg == flag and i + 1 < len(args):
                found.append((flag, args[i + 1]))
            elif arg.startswith(flag) and len(arg) > len(flag) and not arg.startswith("-include"):
                found.append((flag, arg[len(flag):]))
    return found


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class CompileRequest(NamedTuple):
    wrapper: str            # path of the generated translation unit
    output: str             # object clang writes
    source_dir: str
    arch: str
    include_dirs: tuple[str, ...]   # ours (vmlinux.h), searched after the user's
    cflags: tuple[str, ...]
    pch: str | None = None          # a precompiled vmlinux.h prefix (see pch.py)
    # Flags that name things but do not change the program (debug path maps, the
    # depfile: see repro.py, report.py), so they stay out of the PCH key.
    extra_flags: tuple[str, ...] = ()
    cwd: str | None = None          # where clang runs: see repro.PathMap.line_root


def compile_flags(req: CompileRequest, sysinc: Sequence[str], *,
                  with_source_dir: bool = True) -> list[str]:
    """Every flag but the input and output: what a precompiled header must share.

    ``-gdwarf-4``: the DWARF is stripped, and the stripped object (code, BTF in
    canonical order, BTF.ext) is the same as with the default DWARF 5; but DWARF 5
    makes clang hash every header for its file checksums, 3 MB for vmlinux.h, ~3%
    of a warm build. A ``-g`` flag of the user's comes later and wins.
    """
    flags = ["-g", "-gdwarf-4", "-O2", "-target", "bpf", "-Wno-unknown-attributes",
             f"-D__TARGET_ARCH_{req.arch}"]
    flags += list(req.cflags)
    if with_source_dir:
        flags.append(f"-I{req.source_dir}")
    flags += [f"-I{d}" for d in req.include_dirs]
    for d in sysinc:
        flags += ["-idirafter", d]
    return flags


def clang_argv(clang: str, req: CompileRequest, sysinc: Sequence[str]) -> list[str]:
    argv = [clang, *compile_flags(req, sysinc), *req.extra_flags]
    if req.pch:
        argv += ["-include-pch", req.pch]
    argv += ["-c", req.wrapper, "-o", req.output]
    return argv


def start_compile(clang: str, req: CompileRequest, *, display_name: str) -> tools.Running:
    argv = clang_argv(clang, req, system_include_dirs(clang))
    return tools.start(argv, what=f"compiling {display_name}", cwd=req.cwd, check=False,
                       env=tools.clang_env())


def finish_compile(running: tools.Running, req: CompileRequest, *, display_name: str) -> str:
    """Wait for clang; on failure raise CompileError carrying clang's diagnostics."""
    result = running.wait()
    diagnostics = clean_diagnostics(result.stderr.decode(errors="replace"), req.wrapper)
    if result.returncode != 0:
        errors = len(re.findall(r": (?:fatal )?error: ", diagnostics))
        summary = f"{errors} error{'s' if errors != 1 else ''}" if errors else "errors"
        raise CompileError(
            f"{display_name}: clang reported {summary}; fix the source and build again",
            details=diagnostics,
        )
    return diagnostics


def clean_diagnostics(text: str, wrapper: str) -> str:
    """Drop the lines that would name our wrapper instead of the user's file."""
    marker = f"In file included from {wrapper}:"
    return "\n".join(line for line in text.splitlines() if not line.startswith(marker)).strip()


def strip_debug(llvm_strip: str | None, src: str, dst: str) -> bytes:
    """``llvm-strip -g src -o dst``, in-process (strip.py) unless a tool is named
    (``--llvm-strip-bin``) or the object is one strip.py leaves to llvm-strip.

    Either way the BTF is then put in canonical order (strip.canonicalize_sections),
    which the in-process rewrite does in the same pass."""
    from .strip import StripUnsupported
    from .strip import strip_debug as rewrite

    if llvm_strip is None:
        with open(src, "rb") as fh:
            raw = fh.read()
        try:
            data = rewrite(raw, canonical_btf=True)
        except StripUnsupported as exc:
            log.info("llvm-strip instead of the in-process strip: %s", exc)
            llvm_strip = tools.find_tool("llvm-strip")
    if llvm_strip is not None:
        tools.run([llvm_strip, "-g", src, "-o", dst], what="stripping DWARF (llvm-strip -g)")
        with open(dst, "rb") as fh:
            data = fh.read()
        with contextlib.suppress(StripUnsupported):  # nothing left to strip: the BTF order
            data = rewrite(data, canonical_btf=True)
    with open(dst, "wb") as out:
        out.write(data)
    return data
