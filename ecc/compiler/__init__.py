"""``ecc build``: compile -> read the object -> meta -> write the package (spec section 1).

What a build needs before clang can start is kept cheap to import: its records
are NamedTuples (a class costs ~0.2 ms to make, a frozen dataclass ~0.6 ms, and
the first one imports :mod:`dataclasses` and :mod:`inspect`, ~6 ms more). The
results (result.py) and the readers are dataclasses, imported while clang runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import __version__, log
from ..errors import BtfError, CompileError, EccError, ElfError

if TYPE_CHECKING:
    from .result import BuildResult as BuildResult
    from .result import Compiled


class BuildOptions(NamedTuple):
    source: str
    export_header: str | None = None
    output_dir: str | None = None
    yaml: bool = False
    header_only: bool = False
    wasm_header: bool = False
    workspace: str | None = None
    cflags: tuple[str, ...] = ()
    clang: str | None = None
    llvm_strip: str | None = None
    bpftool: str | None = None
    no_package_json: bool = False
    arch: str | None = None
    vmlinux: str | None = None
    btf: str | None = None               # a BTF file to generate vmlinux.h from (--btf)
    no_doc: bool = False
    cache: bool = True
    btfgen: bool = False                 # also write <stem>.tar with tailored BTF (btfgen.py)
    btfhub_archive: str | None = None
    standalone: bool = False             # also write <stem>.out (ecc/standalone.py)


def __getattr__(name: str) -> Any:
    # BuildResult lives in result.py (a dataclass): imported on first use.
    if name == "BuildResult":
        from .result import BuildResult

        return BuildResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A C source or header this large is not something to compile.
MAX_SOURCE_BYTES = 64 * 1024 * 1024


def _read_text(path: str, what: str) -> str:
    from ..fileio import read_limited

    data = read_limited(path, label=f"{what} {path}", limit=MAX_SOURCE_BYTES, error=EccError,
                        directory_hint=", expected a file")
    return data.decode("utf-8", errors="surrogateescape")


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._last
        self._last = now


def build(opts: BuildOptions) -> BuildResult:
    from . import tools

    deferred: list[Callable[[], None]] = []
    with tools.recording() as commands:
        try:
            result = _build(opts, deferred)
        finally:
            for start in deferred:  # after the outputs are written: not competing with them
                start()
    result.commands = commands
    return result


def _build(opts: BuildOptions, deferred: list[Callable[[], None]]) -> BuildResult:
    from ..meta import names
    from ..meta.exports import ExportSpec, exported_struct_names
    from . import compile as cc
    from . import tools

    timer = _Timer()
    source = opts.source
    source_text = _read_text(source, "source file")
    header = opts.export_header
    if opts.header_only:
        if header is not None:
            raise EccError("--header-only takes the header as the only input; drop the second file")
        header = source
    header_text = _read_text(header, "export header") if header else None

    out_dir = os.path.abspath(opts.output_dir or os.path.dirname(os.path.abspath(source)))
    if not os.path.isdir(out_dir):
        if opts.output_dir is None or os.path.exists(out_dir):
            raise EccError(f"output folder {out_dir} is not a directory")
        os.makedirs(out_dir, exist_ok=True)

    if opts.btfgen or opts.btfhub_archive is not None:
        from .btfgen import check_options

        check_options(opts.btfgen, opts.btfhub_archive)  # before compiling: no wasted build
    clang = tools.find_tool("clang", opts.clang)
    # Stripping is in-process (strip.py) unless the user names an llvm-strip.
    llvm_strip = tools.find_tool("llvm-strip", opts.llvm_strip) if opts.llvm_strip else None
    arch = opts.arch or cc.host_arch()
    if arch not in cc.TARGET_ARCHES:
        raise EccError(f"--arch {arch}: unknown; use one of {', '.join(cc.TARGET_ARCHES)}")

    export: ExportSpec | None = None
    if header_text is not None and header is not None:
        export = ExportSpec(os.path.basename(header), exported_struct_names(header_text))

    stem = names.stem(source)
    docs: Any = None

    def while_compiling() -> None:
        # While clang works, do everything that does not need its output: the
        # imports of the readers and the doc-comment scan. It overlaps on a
        # second core instead of adding to the build's wall time.
        nonlocal docs
        docs = None if opts.no_doc else _prepare_docs(source_text)
        _import_readers()

    job = CompileJob(source, source_text, header_text,
                     export.struct_names if export else (), arch,
                     os.path.dirname(os.path.abspath(source)))
    with _workspace(opts) as workspace:
        compiled = compile_object(opts, job, clang, llvm_strip, workspace, timer,
                                  while_compiling, deferred)
    obj_bytes, diagnostics = compiled.object_bytes, compiled.diagnostics

    from ..btf import parse_btf
    from ..elf import read_object
    from ..meta.skel import build_meta

    object_name = names.obj_name(names.object_file_name(source))
    try:
        obj = read_object(obj_bytes)
        btf = parse_btf(obj.btf) if obj.btf is not None else None
        meta = build_meta(obj, btf, object_name=object_name, version=__version__, export=export)
    except (ElfError, BtfError) as exc:
        raise type(exc)(f"{names.object_file_name(source)}: {exc}") from exc
    timer.lap("read")
    warnings: list[str] = []
    if not opts.no_doc:
        from ..meta.annotate import apply_doc_comments

        warnings += apply_doc_comments(meta, docs or (), source, source_text)
        timer.lap("doc")
    from . import provenance

    inputs = provenance.record(meta, [compiled], arch=arch, clang=clang, sources=[source],
                    headers=[header] if header and not opts.header_only else [])
    timer.lap("provenance")

    btf_tar = None
    if opts.btfgen:
        # Before write_outputs, so that an unusable archive leaves earlier outputs untouched.
        from ..package import dumps_json, make_package
        from .btfgen import write_btfgen_tar

        btf_tar = write_btfgen_tar(
            opts.btfhub_archive or "", stem=stem, out_dir=out_dir, object_bytes=obj_bytes,
            package_json=dumps_json(make_package(obj_bytes, meta)), bpftool=opts.bpftool,
            workspace=opts.workspace)
        warnings += btf_tar.warnings
        timer.lap("btfgen")
    outputs = write_outputs(opts, out_dir, stem, obj_bytes, meta)
    outputs += [btf_tar.path] if btf_tar is not None else []
    timer.lap("write")
    if opts.standalone:
        from .standalone import write_standalone

        outputs.append(write_standalone(out_dir, stem, obj_bytes, meta))
        timer.lap("standalone")
    from .result import BuildResult

    return BuildResult(outputs, meta, obj_bytes, warnings, diagnostics, timer.timings,
                       arch=arch, sources=[os.path.abspath(source)], inputs=inputs)


class CompileJob(NamedTuple):
    """One translation unit: a build compiles one, a --link build one per source."""

    source: str
    source_text: str
    header_text: str | None
    struct_names: tuple[str, ...]   # exported structs that get a dummy pointer here
    arch: str
    source_root: str                # the folder the object names "." (repro.PathMap)


@contextlib.contextmanager
def _workspace(opts: BuildOptions) -> Iterator[str]:
    if opts.workspace is None:
        workspace = tempfile.mkdtemp(prefix="ecc-")
        try:
            yield workspace
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
    else:
        workspace = os.path.abspath(opts.workspace)
        os.makedirs(workspace, exist_ok=True)
        yield workspace


def compile_object(opts: BuildOptions, job: CompileJob, clang: str, llvm_strip: str | None,
                   workspace: str, timer: _Timer,
                   while_compiling: Callable[[], None] | None = None,
                   deferred: list[Callable[[], None]] | None = None) -> Compiled:
    """clang (with the PCH when it applies), then strip -g: source -> object bytes.

    Work for later builds (making the PCH) is appended to ``deferred`` when given,
    for the caller to start once its build is done; else it starts at once."""
    from ..meta import names
    from . import compile as cc
    from . import pch, vmlinux
    from .cache import cache_dir
    from .report import depfile_flags, parse_depfile
    from .repro import PathMap, mirror_folder, unalias

    source, source_text, header_text, arch = job.source, job.source_text, job.header_text, job.arch
    source_dir = os.path.dirname(os.path.abspath(source))
    include_dirs: list[str] = []
    wants_vmlinux = vmlinux.includes_vmlinux(source_text) or (
        header_text is not None and vmlinux.includes_vmlinux(header_text))
    vmlinux_dir = None
    if opts.vmlinux:
        vmlinux_dir = vmlinux.header_dir_for(opts.vmlinux, workspace)
    elif opts.btf:
        vmlinux_dir = vmlinux.generated_header_dir(
            _existing(opts.btf, "--btf"), source_name=os.path.basename(source),
            bpftool=opts.bpftool)
    elif wants_vmlinux and not vmlinux.has_own_vmlinux(source_dir, opts.cflags):
        from .targets import check_host_vmlinux

        check_host_vmlinux(arch, source)  # the kernel's own BTF is for the host's arch
        vmlinux_dir = vmlinux.generated_header_dir(
            source_name=os.path.basename(source), bpftool=opts.bpftool)
    if vmlinux_dir is not None:
        from .targets import check_explicit_vmlinux

        check_explicit_vmlinux(opts, source_dir, vmlinux_dir)
        include_dirs.append(vmlinux_dir)
    timer.lap("prepare")

    stem = names.stem(source)
    # clang reads the program's folder through a path of fixed length (repro.py).
    alias = mirror_folder(source_dir, workspace) or source_dir
    wrapper = os.path.join(workspace, f"{stem}.ecc.c")
    with open(wrapper, "w") as out:
        out.write(cc.wrapper_source(os.path.join(alias, os.path.basename(source)),
                                    job.struct_names))
    raw_obj = os.path.join(workspace, f"{stem}.unstripped.o")
    final_obj = os.path.join(workspace, names.object_file_name(source))
    depfile = os.path.join(workspace, f"{stem}.d")
    cache = os.path.abspath(cache_dir())
    path_map = PathMap.for_build(job.source_root, workspace=workspace, cache=cache,
                                 vmlinux_dir=vmlinux_dir, aliases={alias: source_dir})
    req = cc.CompileRequest(
        wrapper=wrapper, output=raw_obj, source_dir=alias, arch=arch,
        include_dirs=tuple(include_dirs), cflags=tuple(opts.cflags),
        extra_flags=(*path_map.debug_flags(), *depfile_flags(depfile)),
        cwd=path_map.line_root(),
    )
    entry = None
    if opts.cache and wants_vmlinux:
        entry = _pch_entry(clang, req, source_text, source_dir, opts.cflags, include_dirs)
        if entry is not None and entry.ready() and not pch.loses_externs(entry, source_text):
            req = req._replace(pch=str(entry.pch))
        timer.lap("pch")
    display = os.path.basename(source)

    def finish(running: Any, req: Any) -> str:
        try:
            return unalias(cc.finish_compile(running, req, display_name=display), alias,
                           source_dir)
        except CompileError as exc:
            raise CompileError(str(exc), unalias(exc.details or "", alias, source_dir)
                               or None) from exc

    running = cc.start_compile(clang, req, display_name=display)
    try:
        from .provenance import Hashing

        # The big inputs known before clang runs are hashed while it runs (provenance).
        prehashed = Hashing([os.path.abspath(source), *(
            [os.path.join(vmlinux_dir, "vmlinux.h")] if vmlinux_dir else [])])
        if while_compiling is not None:
            while_compiling()
    except BaseException:
        running.kill()
        raise
    try:
        diagnostics = finish(running, req)
    except CompileError as exc:
        if not (req.pch and entry):
            raise
        # Whatever went wrong, the program's own diagnostics are those of a compile
        # without the cache: the PCH must never change the outcome.
        if pch.is_pch_failure(exc.details or ""):
            log.info("precompiled header unusable; making it again")
            pch.invalidate(entry)
        req = req._replace(pch=None)
        diagnostics = finish(cc.start_compile(clang, req, display_name=display), req)
    if entry is not None and req.pch is None:
        # Made after clang is done (after the whole build, given ``deferred``), so that
        # it does not slow this build down: the next build gets it, and this one's
        # object is the same as with it.
        start = functools.partial(pch.start_making, clang, entry)
        if deferred is None:
            start()
        else:
            deferred.append(start)
    timer.lap("clang")
    obj_bytes = cc.strip_debug(llvm_strip, raw_obj, final_obj)
    if req.pch and entry:
        from .externs import externs_without_btf

        lost = externs_without_btf(obj_bytes)
        if lost:
            # clang said nothing, but the object differs from one built without the
            # PCH and libbpf would refuse it: that one is the object (externs.py).
            log.info("the precompiled header lost the BTF of extern %s; compiling without it",
                     ", ".join(lost))
            pch.mark_loses_externs(entry, source_text)
            req = req._replace(pch=None)
            diagnostics = finish(cc.start_compile(clang, req, display_name=display), req)
            obj_bytes = cc.strip_debug(llvm_strip, raw_obj, final_obj)
    try:
        with open(depfile, encoding="utf-8", errors="surrogateescape") as dep:
            depends = parse_depfile(unalias(dep.read(), alias, source_dir))
    except OSError:
        depends = []
    pch_dir = os.path.join(cache, "pch", "")
    depends = [d for d in (os.path.abspath(p) for p in depends)
               if d != wrapper and not d.startswith(pch_dir)]
    hashing = [prehashed, Hashing(prehashed.missing(depends))]
    timer.lap("strip")
    from .result import Compiled

    return Compiled(obj_bytes, diagnostics, depends,
                    cc.compile_flags(req, cc.system_include_dirs(clang)), path_map, hashing)


def _existing(path: str, option: str) -> str:
    if not os.path.isfile(path):
        raise EccError(f"{option} {path}: no such file")
    return path


def _pch_entry(clang: str, req: Any, source_text: str, source_dir: str,
               cflags: tuple[str, ...], include_dirs: list[str]) -> Any:
    """The PCH entry for this build, or None when the source is not eligible."""
    from . import compile as cc
    from . import pch, vmlinux

    includes = pch.prefix_includes(source_text)
    header = vmlinux.resolve_header(source_dir, cflags, include_dirs)
    if includes is None or header is None or not pch.has_include_guard(header):
        return None
    # Leave the program's own folder out of the key unless it can change what the
    # prefix resolves to, so that programs in different folders share one PCH.
    own = any(os.path.exists(os.path.join(source_dir, n)) for n in ("vmlinux.h", "bpf"))
    flags = cc.compile_flags(req, cc.system_include_dirs(clang), with_source_dir=own)
    return pch.entry_for(clang, flags, includes, header)


def _prepare_docs(source_text: str) -> tuple[Any, ...]:
    from ..doc_comments import extract_doc_comments

    return extract_doc_comments(source_text)


def _import_readers() -> None:
    from .. import elf, package  # noqa: F401
    from ..btf import parse  # noqa: F401
    from ..meta import annotate, skel  # noqa: F401
    from . import btforder, provenance, result, strip  # noqa: F401

    elf.preload()


def write_outputs(opts: BuildOptions, out_dir: str, stem: str, obj_bytes: bytes,
                  meta: dict[str, Any]) -> list[str]:
    """Everything is encoded in memory first, so a failure writes nothing at all."""
    from ..package import dumps_json, dumps_yaml, make_package, wasm_header, write_atomic

    dump = dumps_yaml if opts.yaml else dumps_json
    ext = "yaml" if opts.yaml else "json"
    files: list[tuple[str, bytes | str]] = [
        (os.path.join(out_dir, f"{stem}.bpf.o"), obj_bytes),
        (os.path.join(out_dir, f"{stem}.skel.{ext}"), dump(meta)),
    ]
    if not opts.no_package_json:
        package = make_package(obj_bytes, meta)
        files.append((os.path.join(out_dir, f"package.{ext}"), dump(package)))
        if opts.wasm_header:
            files.append((os.path.join(out_dir, "ewasm-skel.h"),
                          wasm_header(dumps_json(package))))
    for path, data in files:
        write_atomic(path, data)
    return [path for path, _ in files]
