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

from ..errors import CompileError, EccError
from . import tools

if TYPE_CHECKING:
    from ..meta.exports import ExportSpec
    from .pipeline import BuildOptions, Timer, Toolchain
    from .result import BuildResult, Compiled


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
    with tools.recording() as commands:
        result = _build_linked(opts, spec)
    result.commands = commands
    return result


def _build_linked(opts: BuildOptions, spec: LinkSpec) -> BuildResult:
    from ..meta import names
    from .pipeline import Made, Outputs, Timer, Toolchain, finish, read_text

    for flag in ("header_only", "btfgen", "standalone"):
        if getattr(opts, flag, False):
            raise EccError(f"--link does not combine with --{flag.replace('_', '-')}; "
                           f"build the linked package without it")
    timer = Timer()
    texts = [read_text(s, "source file") for s in spec.sources]
    header_texts = [read_text(h, "export header") for h in spec.headers]
    outputs = Outputs.prepare(opts, spec.sources[0], names.stem(spec.name))
    chain = Toolchain.find(opts)
    bpftool = tools.find_tool("bpftool", opts.bpftool)
    dummies, export = _exports(spec, texts, header_texts)
    compiled, obj_bytes = _compile_and_link(opts, spec, texts, dummies, chain, bpftool,
                                            outputs.object_file, timer)
    made = Made(obj_bytes, compiled, spec.sources, texts, [None] * len(texts), spec.headers,
                export, linker=bpftool)
    return finish(opts, made, outputs, chain, timer)


def _exports(spec: LinkSpec, texts: Sequence[str], header_texts: Sequence[str],
             ) -> tuple[list[list[str]], ExportSpec | None]:
    """Each source's structs to give dummy pointers, and the package's export spec."""
    from ..meta.exports import ExportSpec, exported_struct_names

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
    return dummies, export


def _compile_and_link(opts: BuildOptions, spec: LinkSpec, texts: Sequence[str],
                      dummies: Sequence[Sequence[str]], chain: Toolchain, bpftool: str,
                      object_file: str, timer: Timer) -> tuple[list[Compiled], bytes]:
    from ..meta import names
    from .compile_object import CompileJob, compile_object
    from .pipeline import import_readers, workspace

    root = os.path.commonpath([os.path.dirname(os.path.abspath(s)) for s in spec.sources])
    with workspace(opts) as folder:
        compiled = []
        objects = []
        for index, (source, text, structs) in enumerate(
                zip(spec.sources, texts, dummies, strict=True)):
            job = CompileJob(source, text, None, tuple(structs), chain.arch, root)
            # The readers' imports overlap with the first clang, as in a single build.
            one = compile_object(opts, job, chain.clang, chain.llvm_strip, folder, timer,
                                 import_readers if index == 0 else None)
            path = os.path.join(folder, f"{names.stem(source)}.part.o")
            with open(path, "wb") as fh:
                fh.write(one.object_bytes)
            compiled.append(one)
            objects.append(path)
        linked = os.path.join(folder, f"{names.stem(object_file)}.linked.o")
        try:
            tools.run([bpftool, "gen", "object", linked, *objects],
                      what=f"linking {len(objects)} objects into {object_file}")
        except CompileError as exc:
            raise _link_error(exc, objects, spec.sources, object_file) from exc
        with open(linked, "rb") as fh:
            obj_bytes = fh.read()
        timer.lap("link")
    return compiled, obj_bytes


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
