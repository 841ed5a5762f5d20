"""Reading a package from wherever it is, and checking it before anything is loaded.

A package may be a ``package.json``/``package.yaml``, a ``.skel.json`` beside
its ``.bpf.o``, or ``-`` (standard input). Every check names the package and
the field, so a broken package is one clear line, not a libbpf failure later.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

from ..btf import Btf, Kind, parse_btf
from ..btf.types import Struct
from ..elf import BpfObject, read_object
from ..errors import BtfError, ElfError, PackageError
from ..fileio import parse_json_or_yaml, read_limited
from ..record import Record, replace, set_field
from .codec import MAX_OBJECT_BYTES, parse_package

# A package is the object (base64 of zlib) plus metadata; far below this.
MAX_PACKAGE_BYTES = 256 * 1024 * 1024


class LoadedPackage(Record):
    """A package read and checked: its object, meta, the object's ELF and BTF."""

    __slots__ = ("origin", "object_bytes", "meta", "elf", "btf", "btf_archive")
    origin: str            # how messages name the package
    object_bytes: bytes
    meta: dict[str, Any]
    elf: BpfObject
    btf: Btf | None
    # A --btfgen tar's kernel BTF files, '<distro>/<version>/<arch>/<kernel>.btf' -> bytes.
    btf_archive: dict[str, bytes] | None

    def __init__(self, origin: str, object_bytes: bytes, meta: dict[str, Any], elf: BpfObject,
                 btf: Btf | None, btf_archive: dict[str, bytes] | None = None) -> None:
        set_field(self, "origin", origin)
        set_field(self, "object_bytes", object_bytes)
        set_field(self, "meta", meta)
        set_field(self, "elf", elf)
        set_field(self, "btf", btf)
        set_field(self, "btf_archive", btf_archive)

    @property
    def obj_name(self) -> str:
        return str(self.meta["bpf_skel"]["obj_name"])


def _read_bytes(path: str) -> bytes:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_PACKAGE_BYTES + 1)
        if len(data) > MAX_PACKAGE_BYTES:
            raise PackageError(f"{path}: larger than {MAX_PACKAGE_BYTES} bytes; not a package")
        return data
    return read_limited(path, label=path, limit=MAX_PACKAGE_BYTES, error=PackageError,
                        directory_hint="; give its package.json", too_large="; not a package")


def parse_document(origin: str, data: bytes, yaml_first: bool) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackageError(f"{origin}: not UTF-8 text (byte {exc.start}); not a package") from exc
    return parse_json_or_yaml(origin, text, yaml_first, PackageError)


# A named tuple: every run defines this class, and a dataclass costs a run's start more.
class PackageDocument(NamedTuple):
    """A package file read and parsed, not yet checked."""

    origin: str
    document: Any                       # the package; the meta alone for a .skel file
    skel_object: bytes | None = None    # a .skel file's object, read from beside it
    btf_archive: dict[str, bytes] | None = None


def read_document(path: str, *, limit: int = MAX_OBJECT_BYTES) -> PackageDocument:
    """A package.json/.yaml, a --btfgen tar, a .skel file with its object, or ``-``."""
    origin = "<stdin>" if path == "-" else path
    base = os.path.basename(path)
    yaml_first = base.endswith((".yaml", ".yml"))
    data, archive = _read_bytes(path), None
    # ecc build --btfgen's <stem>.tar; by name, or by its magic (POSIX, GNU) from stdin.
    if base.endswith(".tar") or data[257:263] == b"ustar\0" or data[257:265] == b"ustar  \0":
        from .tar import read_tar  # tarfile only for a tar: not on every run's path

        tar = read_tar(origin, data)
        data, archive, base = tar.package_bytes, tar.btfs, "package.json"
    skel_suffix = next((s for s in (".skel.json", ".skel.yaml", ".skel.yml")
                        if base.endswith(s)), None)
    if skel_suffix is None:
        if len(data) > MAX_PACKAGE_BYTES:
            raise PackageError(f"{origin}: larger than {MAX_PACKAGE_BYTES} bytes; not a package")
        return PackageDocument(origin, parse_document(origin, data, yaml_first),
                               btf_archive=archive)
    document = parse_document(origin, data, yaml_first)
    if not isinstance(document, dict) or "bpf_skel" not in document:
        raise PackageError(f"{origin}: a .skel file must hold the meta object (bpf_skel)")
    object_path = path[: -len(skel_suffix)] + ".bpf.o"
    try:
        with open(object_path, "rb") as fh:
            object_bytes = fh.read(limit + 1)
    except OSError as exc:
        raise PackageError(
            f"{origin}: its object {object_path} cannot be read ({exc.strerror}); "
            f"keep the .bpf.o beside the .skel file") from exc
    if len(object_bytes) > limit:
        raise PackageError(f"{object_path}: over the {limit}-byte limit")
    return PackageDocument(origin, document, skel_object=object_bytes)


def read_package(path: str, *, limit: int = MAX_OBJECT_BYTES) -> LoadedPackage:
    """Read and check a package; :class:`PackageError` says what is wrong with it."""
    read = read_document(path, limit=limit)
    if read.skel_object is not None:
        return check_package(read.origin, read.skel_object, read.document)
    loaded = _check_document(read.origin, read.document, limit)
    if read.btf_archive is not None:
        return replace(loaded, btf_archive=read.btf_archive)
    return loaded


def read_package_data(origin: str, data: bytes, *, yaml_first: bool = False,
                      limit: int = MAX_OBJECT_BYTES) -> LoadedPackage:
    """Check a package held in memory (from a URL, a registry, a standalone file) like a file."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError(f"{origin}: larger than {MAX_PACKAGE_BYTES} bytes; not a package")
    return _check_document(origin, parse_document(origin, data, yaml_first), limit)


def _check_document(origin: str, document: Any, limit: int) -> LoadedPackage:
    try:
        package = parse_package(document, limit=limit)
    except PackageError as exc:
        raise PackageError(f"{origin}: {exc}") from exc
    return check_package(origin, package.object_bytes, package.meta)


def check_package(origin: str, object_bytes: bytes, meta: dict[str, Any]) -> LoadedPackage:
    """The object must be a BPF object that holds what the metadata names."""
    loaded, problems = inspect_package(origin, object_bytes, meta)
    if problems or loaded is None:
        raise PackageError(problems[0])
    return loaded


def inspect_package(origin: str, object_bytes: bytes, meta: dict[str, Any],
                    ) -> tuple[LoadedPackage | None, list[str]]:
    """The package read, and every way its metadata and object disagree, in order.

    The package is None when the object cannot be read at all (then that is the
    one problem); ``ecc run`` stops at the first problem, ``ecc check`` lists all.
    """
    skel = meta.get("bpf_skel")
    if not isinstance(skel, dict) or not isinstance(skel.get("obj_name"), str):
        return None, [f"{origin}: field 'meta.bpf_skel.obj_name' must be a string"]
    try:
        elf = read_object(object_bytes)
        btf = parse_btf(elf.btf) if elf.btf is not None else None
    except (ElfError, BtfError) as exc:
        return None, [f"{origin}: its BPF object is broken: {exc}"]
    problems: list[str] = []
    sections = {s.name for s in elf.sections}
    for index, entry in enumerate(_objects(origin, skel, "maps", "meta.bpf_skel", problems)):
        if not isinstance(entry.get("name"), str):
            problems.append(f"{origin}: 'meta.bpf_skel.maps[{index}]' has no name")
    for index, prog in enumerate(_objects(origin, skel, "progs", "meta.bpf_skel", problems)):
        if not isinstance(prog.get("name"), str):
            problems.append(f"{origin}: 'meta.bpf_skel.progs[{index}]' has no name")
            continue
        attach = prog.get("attach")
        if isinstance(attach, str) and attach not in sections:
            problems.append(
                f"{origin}: program '{prog['name']}' names section '{attach}', "
                f"which the object does not have")
    for index, section in enumerate(_objects(origin, skel, "data_sections", "meta.bpf_skel",
                                             problems)):
        name = section.get("name")
        if not isinstance(name, str):
            problems.append(f"{origin}: 'meta.bpf_skel.data_sections[{index}]' has no name")
            continue
        where = f"meta.bpf_skel.data_sections[{index}]"
        for number, var in enumerate(_objects(origin, section, "variables", where, problems)):
            if not isinstance(var.get("name"), str) or not isinstance(var.get("type"), str):
                problems.append(
                    f"{origin}: '{where}.variables[{number}]' needs a name and a type")
        if name not in sections and name != ".kconfig":
            problems.append(
                f"{origin}: data section '{name}' is not in the object; "
                f"the package does not belong to this object (rebuild it)")
    for index, export in enumerate(_objects(origin, meta, "export_types", "meta", problems)):
        problem = _export_problem(origin, index, export, btf)
        if problem:
            problems.append(problem)
    return LoadedPackage(origin, object_bytes, meta, elf, btf), problems


def _objects(origin: str, parent: dict[str, Any], key: str, where: str,
             problems: list[str]) -> list[dict[str, Any]]:
    """A list-of-objects field; missing or null reads as empty (as eunomia's loaders do)."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"{origin}: field '{where}.{key}' must be a list of objects")
        return []
    return value


def _export_problem(origin: str, index: int, export: Any, btf: Btf | None) -> str | None:
    where = f"{origin}: export_types[{index}]"
    if not isinstance(export, dict):
        return f"{where} must be an object"
    name, type_id, members = export.get("name"), export.get("type_id"), export.get("members")
    if not isinstance(type_id, int) or isinstance(type_id, bool):
        return f"{where} ({name}): 'type_id' must be an integer"
    if btf is None:
        return f"{where} ({name}): the object has no BTF to decode events with"
    if not 0 < type_id < len(btf):
        return (f"{where} ({name}): type_id {type_id} is not in the object's BTF "
                f"(ids 1 to {len(btf) - 1}); rebuild the package")
    found = btf[type_id]
    if not isinstance(found, Struct) or found.name != name:
        actual = f"{Kind(found.kind).name} '{found.name}'" if found.name else Kind(
            found.kind).name
        return (f"{where}: type_id {type_id} is {actual} in the object's BTF, not struct "
                f"{name}; rebuild the package")
    if isinstance(members, list) and len(members) != len(found.members):
        return (f"{where}: struct {name} has {len(found.members)} members in the object's BTF, "
                f"but the package lists {len(members)}; rebuild the package")
    return None
