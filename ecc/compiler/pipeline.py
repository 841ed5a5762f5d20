"""One build, top to bottom: read the inputs -> compile (or link, link.py) -> read the
object -> meta -> doc comments -> provenance -> write the outputs (spec section 1).

What a build needs before clang can start is kept cheap to import: its records
are NamedTuples (a class costs ~0.2 ms to make, a frozen dataclass ~0.6 ms, and
the first one imports :mod:`dataclasses` and :mod:`inspect`, ~6 ms more). The
results (result.py) and the readers are records (ecc/record.py), imported while clang runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import __version__
from ..errors import BtfError, EccError, ElfError
from .options import BuildOptions as BuildOptions

if TYPE_CHECKING:
    from ..doc_comments import DocComment
    from ..meta.exports import ExportSpec
    from .result import BuildResult, Compiled


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
    from .compile_object import CompileJob, compile_object

    timer = Timer()
    source = opts.source
    source_text = read_text(source, "source file")
    header = opts.export_header
    if opts.header_only:
        if header is not None:
            raise EccError("--header-only takes the header as the only input; drop the second file")
        header = source
    header_text = read_text(header, "export header") if header else None
    outputs = Outputs.prepare(opts, source, names.stem(source))
    if opts.btfgen or opts.btfhub_archive is not None:
        from .btfgen import check_options

        check_options(opts.btfgen, opts.btfhub_archive)  # before compiling: no wasted build
    chain = Toolchain.find(opts)
    export: ExportSpec | None = None
    if header_text is not None and header is not None:
        export = ExportSpec(os.path.basename(header), exported_struct_names(header_text))

    docs: list[Sequence[DocComment] | None] = [None]

    def while_compiling() -> None:
        # While clang works, do everything that does not need its output: the
        # imports of the readers and the doc-comment scan. It overlaps on a
        # second core instead of adding to the build's wall time.
        docs[0] = None if opts.no_doc else _scan_docs(source_text)
        import_readers()

    job = CompileJob(source, source_text, header_text,
                     export.struct_names if export else (), chain.arch,
                     os.path.dirname(os.path.abspath(source)))
    with workspace(opts) as folder:
        compiled = compile_object(opts, job, chain.clang, chain.llvm_strip, folder, timer,
                                  while_compiling, deferred)
    made = Made(compiled.object_bytes, [compiled], [source], [source_text], docs,
                [header] if header and not opts.header_only else [], export)
    return finish(opts, made, outputs, chain, timer)


# --- the stages' records -----------------------------------------------------------

class Outputs(NamedTuple):
    """Where a build writes: the folder and stem, once; every file's path from them."""

    folder: str                     # absolute
    stem: str
    yaml: bool = False

    @staticmethod
    def folder_for(output_dir: str | None, first_source: str) -> str:
        """``-o DIR``, else the folder of the (first) source; absolute."""
        return os.path.abspath(output_dir or os.path.dirname(os.path.abspath(first_source)))

    @classmethod
    def prepare(cls, opts: BuildOptions, first_source: str, stem: str) -> Outputs:
        """The outputs of a build, their folder made when ``-o`` names a new one."""
        folder = cls.folder_for(opts.output_dir, first_source)
        if not os.path.isdir(folder):
            if opts.output_dir is None or os.path.exists(folder):
                raise EccError(f"output folder {folder} is not a directory")
            os.makedirs(folder, exist_ok=True)
        return cls(folder, stem, opts.yaml)

    @property
    def object_file(self) -> str:
        return f"{self.stem}.bpf.o"

    @property
    def ext(self) -> str:
        return "yaml" if self.yaml else "json"

    @property
    def object(self) -> str:
        return os.path.join(self.folder, self.object_file)

    @property
    def skel(self) -> str:
        return os.path.join(self.folder, f"{self.stem}.skel.{self.ext}")

    @property
    def package(self) -> str:
        return os.path.join(self.folder, f"package.{self.ext}")

    @property
    def wasm_header(self) -> str:
        return os.path.join(self.folder, "ewasm-skel.h")


class Toolchain(NamedTuple):
    clang: str
    llvm_strip: str | None          # None: stripped in-process (strip.py)
    arch: str

    @classmethod
    def find(cls, opts: BuildOptions) -> Toolchain:
        from ..arch import TARGET_ARCHES, host_arch
        from . import tools

        clang = tools.find_tool("clang", opts.clang)
        # Stripping is in-process (strip.py) unless the user names an llvm-strip.
        llvm_strip = tools.find_tool("llvm-strip", opts.llvm_strip) if opts.llvm_strip else None
        arch = opts.arch or host_arch()
        if arch not in TARGET_ARCHES:
            raise EccError(f"--arch {arch}: unknown; use one of {', '.join(TARGET_ARCHES)}")
        return cls(clang, llvm_strip, arch)


class Made(NamedTuple):
    """An object and what went into it: what the tail of a build or a --link reads."""

    object_bytes: bytes
    compiled: Sequence[Compiled]
    sources: Sequence[str]
    texts: Sequence[str]
    # Each source's doc comments when scanned already (while clang ran); None: scan now.
    docs: Sequence[Sequence[DocComment] | None]
    headers: Sequence[str]          # export headers, for provenance
    export: ExportSpec | None
    linker: str | None = None       # bpftool, for a --link


# --- the tail: object -> meta -> docs -> provenance -> outputs ---------------------------

def finish(opts: BuildOptions, made: Made, outputs: Outputs, chain: Toolchain,
           timer: Timer) -> BuildResult:
    from . import provenance
    from .result import BuildResult

    meta = read_meta(made, outputs.object_file)
    timer.lap("read")
    warnings: list[str] = []
    if not opts.no_doc:
        warnings += _apply_docs(meta, made)
        timer.lap("doc")
    inputs = provenance.record(meta, made.compiled, arch=chain.arch, clang=chain.clang,
                               sources=made.sources, headers=made.headers, linker=made.linker)
    if made.linker is None:  # a --link build has always counted this in its "write"
        timer.lap("provenance")
    btf_tar = None
    if opts.btfgen:
        # Before write_outputs, so that an unusable archive leaves earlier outputs untouched.
        from ..package import dumps_json, make_package
        from .btfgen import write_btfgen_tar

        btf_tar = write_btfgen_tar(
            opts.btfhub_archive or "", stem=outputs.stem, out_dir=outputs.folder,
            object_bytes=made.object_bytes,
            package_json=dumps_json(make_package(made.object_bytes, meta)), bpftool=opts.bpftool,
            workspace=opts.workspace)
        warnings += btf_tar.warnings
        timer.lap("btfgen")
    wasm = _build_wasm(opts, made, outputs, chain, meta) if opts.wasm else []
    if opts.wasm:
        timer.lap("wasm")
    written = write_outputs(opts, outputs, made.object_bytes, meta)
    written += [btf_tar.path] if btf_tar is not None else []
    written += wasm
    timer.lap("write")
    if opts.standalone:
        from .standalone import write_standalone, write_standalone_module

        if opts.wasm:  # what runs is the module: each <app>.wasm gets its <app>.out
            written += [write_standalone_module(p) for p in wasm if p.endswith(".wasm")]
        else:
            written.append(write_standalone(outputs.folder, outputs.stem, made.object_bytes,
                                            meta))
        timer.lap("standalone")
    if opts.py_skel:
        from ..package import dumps_json, make_package
        from .pyskel import write_py_skeleton

        written.append(write_py_skeleton(outputs.folder, outputs.stem, made.object_bytes, meta,
                                         dumps_json(make_package(made.object_bytes, meta))))
        timer.lap("py_skel")
    return BuildResult(written, meta, made.object_bytes, warnings,
                       "\n".join(c.diagnostics for c in made.compiled if c.diagnostics),
                       timer.timings, arch=chain.arch,
                       sources=[os.path.abspath(s) for s in made.sources], inputs=inputs)


def _build_wasm(opts: BuildOptions, made: Made, outputs: Outputs, chain: Toolchain,
                meta: dict[str, Any]) -> list[str]:
    """``--wasm``: the guest's headers and programs (wasm/), before the package is written,
    so that an app that does not compile leaves the earlier outputs untouched."""
    from .wasm import build_wasm

    source_dir = os.path.dirname(os.path.abspath(made.sources[0]))
    apps = []
    for app in opts.wasm:
        if app.endswith(".bpf.c"):
            raise EccError(f"--wasm {app}: that is a BPF source; --wasm takes the program's "
                           f"user-space C file, after the source: ecc build SOURCE --wasm [APP.c]")
        apps.append(app or os.path.join(source_dir, f"{outputs.stem}.c"))
    export = made.export
    return build_wasm(made.object_bytes, meta, None, export.struct_names if export else (),
                      apps, outputs.folder, outputs.stem,
                      header=export.header if export else None, clang=chain.clang)


def read_meta(made: Made, object_file: str) -> dict[str, Any]:
    from ..btf import parse_btf
    from ..elf import read_object
    from ..meta import names
    from ..meta.skel import build_meta

    try:
        obj = read_object(made.object_bytes)
        btf = parse_btf(obj.btf) if obj.btf is not None else None
        return build_meta(obj, btf, object_name=names.obj_name(object_file),
                          version=__version__, export=made.export)
    except (ElfError, BtfError) as exc:
        raise type(exc)(f"{object_file}: {exc}") from exc


def _apply_docs(meta: dict[str, Any], made: Made) -> list[str]:
    from ..meta.annotate import apply_doc_comments

    warnings: list[str] = []
    for source, text, docs in zip(made.sources, made.texts, made.docs, strict=True):
        scanned = _scan_docs(text) if docs is None else docs
        warnings += apply_doc_comments(meta, scanned, source, text)
    return warnings


def write_outputs(opts: BuildOptions, outputs: Outputs, obj_bytes: bytes,
                  meta: dict[str, Any]) -> list[str]:
    """Everything is encoded in memory first, so a failure writes nothing at all."""
    from ..package import dumps_json, dumps_yaml, make_package, wasm_header, write_atomic

    dump = dumps_yaml if opts.yaml else dumps_json
    files: list[tuple[str, bytes | str]] = [(outputs.object, obj_bytes),
                                            (outputs.skel, dump(meta))]
    if not opts.no_package_json:
        package = make_package(obj_bytes, meta)
        files.append((outputs.package, dump(package)))
        if opts.wasm_header:
            files.append((outputs.wasm_header, wasm_header(dumps_json(package))))
    for path, data in files:
        write_atomic(path, data)
    return [path for path, _ in files]


# --- helpers of every stage ------------------------------------------------------------

# A C source or header this large is not something to compile.
MAX_SOURCE_BYTES = 64 * 1024 * 1024


def read_text(path: str, what: str) -> str:
    from ..fileio import read_limited

    data = read_limited(path, label=f"{what} {path}", limit=MAX_SOURCE_BYTES, error=EccError,
                        directory_hint=", expected a file")
    return data.decode("utf-8", errors="surrogateescape")


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._last
        self._last = now


@contextlib.contextmanager
def workspace(opts: BuildOptions) -> Iterator[str]:
    if opts.workspace is None:
        folder = tempfile.mkdtemp(prefix="ecc-")
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        folder = os.path.abspath(opts.workspace)
        os.makedirs(folder, exist_ok=True)
        yield folder


def _scan_docs(source_text: str) -> Sequence[DocComment]:
    from ..doc_comments import extract_doc_comments

    return extract_doc_comments(source_text)


def import_readers() -> None:
    """What the tail needs, imported while clang runs (it overlaps on a second core)."""
    from .. import elf, package  # noqa: F401
    from ..btf import parse  # noqa: F401
    from ..meta import annotate, skel  # noqa: F401
    from . import provenance, result, strip  # noqa: F401
