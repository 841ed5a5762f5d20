"""``ecc check PACKAGE``: every way a package is wrong, one line each.

Three judges, none of them the code that wrote the package:
- the package format's JSON Schema, shipped inside ecc (ecc/schema.py);
- the object against its metadata, as ``ecc run`` checks it before loading
  (every program's section, data section and export type id is in the object);
- libbpf, which opens the object as any loader would and must find each map
  and program under the name the package gives it, in the same order, and
  each export type id naming that struct with that many members.
A check that cannot run here (no libbpf on the machine) is a note, not a problem.

``ecc check PACKAGE --kernel BTF`` / ``--btfhub-archive DIR`` asks instead which
kernels can run the package (or the BPF objects inside a WebAssembly app): each
kernel's BTF is read here (plain or BTFHub's ``.btf.tar.xz``) and judged by
ecc/compat, the kernels spread over processes.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import jsonschema

from .compat import (
    KernelVerdict,
    ObjectFacts,
    analyze_object,
    check_kernel,
    kernel_version,
    matrix,
)
from .compat.wasmobj import embedded_objects
from .errors import EccError, LibbpfError, PackageError, ToolNotFoundError
from .package import MAX_OBJECT_BYTES, parse_package
from .package.embedded import read_embedded
from .package.schema import package_schema
from .package.source import PackageDocument, inspect_package, parse_document, read_document
from .run.libbpf import BpfObject, load_libbpf
from .run.wasm import read_wasm

BTF_KIND_STRUCT = 4


@dataclass(frozen=True)
class CheckResult:
    origin: str
    problems: tuple[str, ...]   # each a line that names the package and the field
    notes: tuple[str, ...]      # checks that could not run here, with why
    checked: str                # what a package without problems was found to hold

    @property
    def ok(self) -> bool:
        return not self.problems


def check_file(path: str) -> CheckResult:
    """Check one package file (JSON, YAML, --btfgen tar, .skel file, standalone file).

    A file that is no package at all raises :class:`PackageError`, like ``ecc run``.
    """
    read = _standalone(path) or read_document(path)
    origin, document = read.origin, read.document
    skel_only = read.skel_object is not None
    problems = [f"{origin}: {line}" for line in schema_problems(document, meta_only=skel_only)]
    if skel_only:
        object_bytes, meta = read.skel_object, document
    else:
        try:
            package = parse_package(document, limit=MAX_OBJECT_BYTES)
        except PackageError as exc:
            return CheckResult(origin, (*problems, f"{origin}: {exc}"), (), "")
        object_bytes, meta = package.object_bytes, package.meta
    assert object_bytes is not None
    loaded, found = inspect_package(origin, object_bytes, meta)
    problems += found
    notes: list[str] = []
    if loaded is not None:
        try:
            problems += [f"{origin}: {line}" for line in libbpf_problems(object_bytes, meta)]
        except ToolNotFoundError as exc:
            notes.append(f"{origin}: not opened by libbpf: {exc}")
    skel = meta.get("bpf_skel")
    checked = ""
    if isinstance(skel, dict):
        count = {key: len(skel.get(key) or ()) for key in ("maps", "progs")}
        exports = len(meta.get("export_types") or ())
        checked = (f"{_count(count['maps'], 'map')}, {_count(count['progs'], 'program')}, "
                   f"{_count(exports, 'export type')}")
    return CheckResult(origin, tuple(_unique(problems)), tuple(notes), checked)


def _standalone(path: str) -> PackageDocument | None:
    """The package inside a standalone file (``ecc build --standalone``), else None."""
    if path == "-":
        return None
    embedded = read_embedded(path)
    if embedded is None:
        return None
    return PackageDocument(path, parse_document(path, embedded, False))


def schema_problems(document: Any, *, meta_only: bool = False) -> list[str]:
    """Where the document breaks the package schema: 'field PATH: what', sorted by path."""
    schema = package_schema()
    if meta_only:  # a .skel file holds the meta alone
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"],
                  "$ref": "#/$defs/meta"}
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        field = _field_path(error.absolute_path, "meta" if meta_only else "")
        lines.append(f"field '{field}': {_message(error)}" if field else _message(error))
    return lines


def _field_path(path: Any, root: str) -> str:
    out = root
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    """jsonschema's message, with a long offending value cut short."""
    text = str(error.message)
    instance = json.dumps(error.instance, default=str)
    if len(instance) > 80 and instance in text:
        text = text.replace(instance, instance[:60] + "...")
    return text


def libbpf_problems(object_bytes: bytes, meta: dict[str, Any]) -> list[str]:
    """What libbpf, opening the object, finds different from the metadata."""
    load_libbpf()
    skel = meta["bpf_skel"]
    problems: list[str] = []
    try:
        obj = BpfObject.open_mem(object_bytes, object_name=skel["obj_name"])
    except LibbpfError as exc:
        return [f"libbpf cannot open the object: {exc}"]
    with obj:
        names = [e.get("name") for e in skel.get("maps") or ()]
        missing = [n for n in names if not isinstance(n, str) or obj.find_map(n) is None]
        problems += [f"map '{n}': libbpf finds no map of that name" for n in missing]
        if not missing:
            # bpf_map__name of the map each name finds (a long internal name is cut).
            want = [str(obj.find_map(n).name) for n in names]  # type: ignore[union-attr]
            have = [m.name for m in obj.maps()]
            if have != want:
                problems.append(f"maps: libbpf has {have}, the package lists {want}")
        progs = [(p.get("name"), p.get("attach")) for p in skel.get("progs") or ()]
        actual = [(p.name, p.section_name) for p in obj.programs()]
        if actual != progs:
            problems.append(f"progs: libbpf has {actual}, the package lists {progs}")
        for index, export in enumerate(meta.get("export_types") or ()):
            if not isinstance(export, dict) or not isinstance(export.get("type_id"), int):
                continue
            kind, name, vlen = obj.btf_type(export["type_id"]) or (0, "", 0)
            listed = export.get("members")
            count = len(listed) if isinstance(listed, list) else vlen
            if (kind, name, vlen) != (BTF_KIND_STRUCT, export.get("name"), count):
                problems.append(
                    f"export_types[{index}]: libbpf's BTF has type {export['type_id']} as "
                    f"kind {kind} '{name}' with {vlen} members, not struct "
                    f"{export.get('name')} with {count}")
    return problems


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- which kernels can run it (--kernel, --btfhub-archive) ------------------------------

RUNNING_KERNEL_BTF = "/sys/kernel/btf/vmlinux"
# Below this many kernels, starting worker processes costs more than it saves.
_PARALLEL_MIN = 8


@dataclass(frozen=True)
class KernelSource:
    name: str                 # how the matrix names it (the archive's relative path)
    path: str
    compressed: bool
    version: tuple[int, int] | None


@dataclass(frozen=True)
class KernelReport:
    origin: str
    verdicts: tuple[KernelVerdict, ...]
    warnings: tuple[str, ...]   # archive files that could not be used
    seconds: float

    @property
    def failed(self) -> int:
        return sum(1 for v in self.verdicts if not v.ok)

    def lines(self) -> list[str]:
        """What the user reads: a summary line, then the matrix, a row per kernel."""
        summary = (f"{self.origin}: {len(self.verdicts)} kernels, {self.failed} failing "
                   f"({self.seconds:.2f} s)")
        return [summary, *matrix(list(self.verdicts))]

    def as_dict(self) -> dict[str, Any]:
        return {"package": self.origin, "kernels": [v.as_dict() for v in self.verdicts],
                "failed": self.failed, "warnings": list(self.warnings),
                "seconds": round(self.seconds, 3)}


def package_objects(path: str) -> tuple[str, tuple[bytes, ...]]:
    """The origin and BPF object(s) of any package file ``ecc check`` takes; a
    WebAssembly app (``ecc build --wasm``) gives the objects embedded in it."""
    wasm = read_wasm(path) if path != "-" else None
    if wasm is not None:
        try:
            objects = embedded_objects(wasm)
        except EccError as exc:
            raise EccError(f"{path}: {exc}") from None
        if not objects:
            raise PackageError(f"{path}: no BPF object inside this WebAssembly module; "
                               "ecc build --wasm embeds one (through its .skel.h)")
        return path, objects
    read = _standalone(path) or read_document(path)
    if read.skel_object is not None:
        return read.origin, (read.skel_object,)
    package = parse_package(read.document, limit=MAX_OBJECT_BYTES)
    if package.object_bytes is None:
        raise PackageError(f"{read.origin}: the package holds no BPF object")
    return read.origin, (package.object_bytes,)


def kernel_sources(files: Sequence[str], archive: str | None,
                   ) -> tuple[list[KernelSource], list[str]]:
    """The kernels named by --kernel and found in --btfhub-archive, and archive warnings.

    A kernel's version comes from its file name (BTFHub names files by ``uname -r``);
    the running kernel's BTF file gets the running kernel's release.
    """
    from .compiler.btfgen import find_kernels

    sources: list[KernelSource] = []
    for path in files:
        if not os.path.isfile(path):
            raise EccError(f"--kernel {path}: no such file; give a kernel BTF file "
                           f"(such as {RUNNING_KERNEL_BTF})")
        name = os.path.basename(path)
        version = kernel_version(name.removesuffix(".tar.xz"))
        if os.path.realpath(path) == RUNNING_KERNEL_BTF:
            version = kernel_version(os.uname().release)
        sources.append(KernelSource(path, path, path.endswith(".tar.xz"), version))
    warnings: list[str] = []
    if archive is not None:
        if not os.path.isdir(archive):
            raise EccError(f"--btfhub-archive {archive}: not a folder; give a BTFHub archive "
                           "(<distro>/<version>/<arch>/<kernel>.btf or .btf.tar.xz)")
        found, warnings = find_kernels(archive)
        sources += [KernelSource(k.rel, k.source, k.compressed,
                                 kernel_version(k.rel.rsplit("/", 1)[-1])) for k in found]
    return sources, warnings


def check_kernels(path: str, files: Sequence[str] = (), archive: str | None = None,
                  jobs: int | None = None) -> KernelReport:
    """Judge the package of ``path`` against each kernel of ``files`` and ``archive``.

    An app embedding several objects gets a row per object and kernel, the kernel's
    name followed by ``[object N]``."""
    start = time.perf_counter()
    origin, objects = package_objects(path)
    sources, warnings = kernel_sources(files, archive)
    if not sources:
        raise EccError(f"{archive}: no kernel BTF files found" if archive
                       else "give --kernel BTF or --btfhub-archive DIR")
    return judge_objects(origin, objects, sources, warnings, jobs, start)


def check_built_object(origin: str, object_bytes: bytes, kernels: Sequence[str],
                       jobs: int | None = None) -> KernelReport:
    """``ecc build --check-kernels``: judge a just-built object against each of
    ``kernels``, a kernel BTF file or a BTFHub archive folder each."""
    start = time.perf_counter()
    sources: list[KernelSource] = []
    warnings: list[str] = []
    for given in kernels:
        if os.path.isdir(given):
            found, missed = kernel_sources((), given)
            if not found:
                raise EccError(f"--check-kernels {given}: no kernel BTF files found; give a "
                               "BTFHub archive (<distro>/<version>/<arch>/<kernel>.btf "
                               "or .btf.tar.xz) or a kernel BTF file")
            sources += found
            warnings += missed
        elif os.path.isfile(given):
            sources += kernel_sources((given,), None)[0]
        else:
            raise EccError(f"--check-kernels {given}: no such file or folder; give a kernel "
                           f"BTF file (such as {RUNNING_KERNEL_BTF}) or a BTFHub archive folder")
    return judge_objects(origin, (object_bytes,), sources, warnings, jobs, start)


def judge_objects(origin: str, objects: Sequence[bytes], sources: list[KernelSource],
                  warnings: Sequence[str], jobs: int | None, start: float) -> KernelReport:
    """Every object against every kernel: one verdict each."""
    verdicts: list[KernelVerdict] = []
    for number, object_bytes in enumerate(objects, 1):
        judged = _judge_all(object_bytes, sources, jobs)
        if len(objects) > 1:
            judged = [replace(v, kernel=f"{v.kernel} [object {number}]") for v in judged]
        verdicts += judged
    return KernelReport(origin, tuple(verdicts), tuple(warnings), time.perf_counter() - start)


def _judge_all(object_bytes: bytes, sources: list[KernelSource], jobs: int | None,
               ) -> list[KernelVerdict]:
    facts = analyze_object(object_bytes)
    workers = min(jobs or os.cpu_count() or 1, len(sources))
    if workers <= 1 or len(sources) < _PARALLEL_MIN:
        return [_judge(facts, source) for source in sources]
    with ProcessPoolExecutor(workers, initializer=_worker_init,
                             initargs=(object_bytes,)) as pool:
        return list(pool.map(_worker_judge, sources, chunksize=4))


_FACTS: ObjectFacts | None = None


def _worker_init(object_bytes: bytes) -> None:
    global _FACTS
    _FACTS = analyze_object(object_bytes)


def _worker_judge(source: KernelSource) -> KernelVerdict:
    assert _FACTS is not None
    return _judge(_FACTS, source)


def _judge(facts: ObjectFacts, source: KernelSource) -> KernelVerdict:
    try:
        data = _read_kernel_btf(source)
    except EccError as exc:
        return KernelVerdict(source.name, source.version, (), (), str(exc))
    return check_kernel(facts, source.name, data, source.version)


def _read_kernel_btf(source: KernelSource) -> bytes:
    from .compiler.btfgen import MAX_BTF_BYTES, KernelBtf, UnusableKernelBtf, unpack_xz

    try:
        if not source.compressed:
            with open(source.path, "rb") as fh:
                data = fh.read(MAX_BTF_BYTES + 1)
            if len(data) > MAX_BTF_BYTES:
                raise EccError(f"{source.path}: over {MAX_BTF_BYTES} bytes; not a kernel BTF")
            return data
        rel = source.name if source.name.endswith(".btf") else (
            os.path.basename(source.path).removesuffix(".tar.xz"))
        with tempfile.TemporaryDirectory(prefix="ecc-check-") as tmp:
            dest = os.path.join(tmp, "kernel.btf")
            unpack_xz(KernelBtf(rel, source.path, source.path, True), dest)
            with open(dest, "rb") as fh:
                return fh.read()
    except UnusableKernelBtf as exc:
        raise EccError(f"{source.path}: {exc}") from None
    except OSError as exc:
        raise EccError(f"{source.path}: cannot read it ({exc.strerror or exc})") from None
