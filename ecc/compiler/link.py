"""Several sources, one package: ``ecc build a.bpf.c b.bpf.c --link NAME``.

Each source is compiled as in a single build (same flags, PCH, reproducible
paths), then libbpf's BPF static linker (``bpftool gen object``) joins the
objects: a map defined in one file and declared ``extern`` in another
becomes one map, and BTF is deduplicated. The linked object is then read and
packaged as usual, with each source's doc comments.

Exported structs (the ``.h`` inputs, or each source's ``<stem>.h``) get their
dummy pointers (spec 3.5) in one translation unit only, the first that
includes the header: two definitions of the same global would not link.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BtfError, CompileError, EccError, ElfError

if TYPE_CHECKING:
    from . import BuildOptions
    from .result import BuildResult


@dataclass(frozen=True)
class LinkSpec:
    name: str                       # the package's object is <stem of name>.bpf.o
    sources: tuple[str, ...]
    headers: tuple[str, ...]        # export headers


def link_spec(name: str, inputs: Sequence[str]) -> LinkSpec:
    """The sources (files, or folders of ``*.bpf.c``) and ``.h`` inputs of ``--link``."""
    from ..meta import names
    from .batch import expand_sources

    if not names.stem(name) or "/" in name:
        raise EccError(f"--link {name}: give a plain name such as 'prog' (the package's object "
                       f"is then prog.bpf.o)")
    headers = tuple(p for p in inputs if p.endswith(".h") and not os.path.isdir(p))
    sources = tuple(expand_sources([p for p in inputs if p not in headers]))
    if not sources:
        raise EccError(f"--link {name}: no source file to link; give .bpf.c files or a folder")
    stems: dict[str, str] = {}
    for source in sources:
        stem = names.stem(source)
        if stem in stems:
            raise EccError(f"--link: {stems[stem]} and {source} have the same name '{stem}'; "
                           f"rename one")
        stems[stem] = source
    if not headers:
        # As for several programs: each source's <stem>.h beside it is its export header.
        beside = (os.path.join(os.path.dirname(s), f"{names.stem(s)}.h") for s in sources)
        headers = tuple(h for h in beside if os.path.isfile(h))
    return LinkSpec(name, sources, headers)


def _includes(source_text: str, header: str) -> bool:
    base = re.escape(os.path.basename(header))
    return re.search(rf'^\s*#\s*include\s*["<](?:[^">]*/)?{base}[">]', source_text,
                     re.M) is not None


def build_linked(opts: BuildOptions, spec: LinkSpec) -> BuildResult:
    from . import tools

    with tools.recording() as commands:
        result = _build_linked(opts, spec)
    result.commands = commands
    return result


def _build_linked(opts: BuildOptions, spec: LinkSpec) -> BuildResult:
    from .. import __version__
    from ..arch import TARGET_ARCHES, host_arch
    from ..meta import names
    from ..meta.exports import ExportSpec, exported_struct_names
    from . import (
        CompileJob,
        _import_readers,
        _read_text,
        _Timer,
        _workspace,
        compile_object,
        tools,
        write_outputs,
    )
    from .provenance import record
    from .result import BuildResult

    for flag in ("header_only", "btfgen", "standalone"):
        if getattr(opts, flag, False):
            raise EccError(f"--link does not combine with --{flag.replace('_', '-')}; "
                           f"build the linked package without it")
    timer = _Timer()
    texts = [_read_text(s, "source file") for s in spec.sources]
    header_texts = [_read_text(h, "export header") for h in spec.headers]
    stem = names.stem(spec.name)
    out_dir = os.path.abspath(opts.output_dir or os.path.dirname(os.path.abspath(
        spec.sources[0])))
    if not os.path.isdir(out_dir):
        if os.path.exists(out_dir):
            raise EccError(f"output folder {out_dir} is not a directory")
        os.makedirs(out_dir, exist_ok=True)
    clang = tools.find_tool("clang", opts.clang)
    llvm_strip = tools.find_tool("llvm-strip", opts.llvm_strip) if opts.llvm_strip else None
    bpftool = tools.find_tool("bpftool", opts.bpftool)
    arch = opts.arch or host_arch()
    if arch not in TARGET_ARCHES:
        raise EccError(f"--arch {arch}: unknown; use one of {', '.join(TARGET_ARCHES)}")

    # Each header's structs get their dummy pointers in the first source that includes it.
    dummies: list[list[str]] = [[] for _ in spec.sources]
    all_structs: dict[str, None] = {}
    for header, text in zip(spec.headers, header_texts, strict=True):
        owner = next((i for i, t in enumerate(texts) if _includes(t, header)), 0)
        for struct in exported_struct_names(text):
            if struct not in all_structs:
                all_structs[struct] = None
                dummies[owner].append(struct)
    export = ExportSpec(", ".join(os.path.basename(h) for h in spec.headers),
                        tuple(all_structs)) if spec.headers else None

    root = os.path.commonpath([os.path.dirname(os.path.abspath(s)) for s in spec.sources])
    object_file = f"{stem}.bpf.o"
    with _workspace(opts) as workspace:
        compiled = []
        objects = []
        for index, (source, text, structs) in enumerate(
                zip(spec.sources, texts, dummies, strict=True)):
            job = CompileJob(source, text, None, tuple(structs), arch, root)
            # The readers' imports overlap with the first clang, as in a single build.
            one = compile_object(opts, job, clang, llvm_strip, workspace, timer,
                                 _import_readers if index == 0 else None)
            path = os.path.join(workspace, f"{names.stem(source)}.part.o")
            with open(path, "wb") as fh:
                fh.write(one.object_bytes)
            compiled.append(one)
            objects.append(path)
        linked = os.path.join(workspace, f"{stem}.linked.o")
        try:
            tools.run([bpftool, "gen", "object", linked, *objects],
                      what=f"linking {len(objects)} objects into {object_file}")
        except CompileError as exc:
            raise _link_error(exc, objects, spec.sources, object_file) from exc
        with open(linked, "rb") as fh:
            obj_bytes = fh.read()
        timer.lap("link")

    from ..btf import parse_btf
    from ..elf import read_object
    from ..meta.skel import build_meta

    try:
        obj = read_object(obj_bytes)
        btf = parse_btf(obj.btf) if obj.btf is not None else None
        meta = build_meta(obj, btf, object_name=names.obj_name(object_file),
                          version=__version__, export=export)
    except (ElfError, BtfError) as exc:
        raise type(exc)(f"{object_file}: {exc}") from exc
    timer.lap("read")
    warnings: list[str] = []
    if not opts.no_doc:
        from ..doc_comments import extract_doc_comments
        from ..meta.annotate import apply_doc_comments

        for source, text in zip(spec.sources, texts, strict=True):
            warnings += apply_doc_comments(meta, extract_doc_comments(text), source, text)
        timer.lap("doc")
    inputs = record(meta, compiled, arch=arch, clang=clang, sources=spec.sources,
                    headers=spec.headers, linker=bpftool)
    outputs = write_outputs(opts, out_dir, stem, obj_bytes, meta)
    timer.lap("write")
    return BuildResult(outputs, meta, obj_bytes, warnings,
                       "\n".join(c.diagnostics for c in compiled if c.diagnostics),
                       timer.timings, arch=arch,
                       sources=[os.path.abspath(s) for s in spec.sources], inputs=inputs)


def _link_error(exc: CompileError, objects: Sequence[str], sources: Sequence[str],
                object_file: str) -> CompileError:
    """The static linker's complaint, naming the user's sources instead of our temp objects."""
    details = exc.details or ""
    for obj, source in zip(objects, sources, strict=True):
        details = details.replace(f"'{obj}'", source).replace(obj, source)
    reason = next((line.removeprefix("libbpf: ").strip() for line in details.splitlines()
                   if line.startswith("libbpf: ")), None)
    names = ", ".join(os.path.basename(s) for s in sources)
    return CompileError(f"linking {names} into {object_file} failed"
                        + (f": {reason}" if reason else " (bpftool gen object; see above)"),
                        details=details or None)
