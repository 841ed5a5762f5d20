"""Reproducible builds: the same sources and toolchain give the same bytes, in any folder.

What would otherwise leak the build's whereabouts into the outputs:

- Absolute paths in ``.BTF``/``.BTF.ext`` (the file names of line info): each
  folder a build reads from (the program's, ecc's temporary workspace, the
  cache holding the generated ``vmlinux.h``, the one of ``--vmlinux``) is
  mapped to a fixed name with ``-ffile-prefix-map`` (line info, and
  ``__FILE__`` in the program's strings), and the compilation
  directory is ``.``. clang copies each source line into line info (what
  the verifier prints) by opening the file under its mapped name, so it runs
  in the folder ``.`` stands for (:meth:`PathMap.line_root`). (Not
  ``-gembed-source``: that puts every header, 3 MB of vmlinux.h, into the
  DWARF, and costs a tenth of a warm build.)
- clang's version in ``.comment``: ``-fno-ident`` (provenance records it).
- clang 19's BTF type order depends on heap addresses (with a PCH), on the
  *lengths* of the paths clang holds (measured: folders ``a`` and ``b`` give
  one order, ``abcdefgh`` another) and on whether the PCH is used at all: the
  BTF is put in canonical order after every compile (btf/canon.py), which
  takes all of that out. From before that, clang also reads the program's
  folder through hard links in a folder of fixed length
  (:func:`mirror_folder`; clang learns the real path of every file it opens,
  so a symlink would not do), and its diagnostics and depfile are given back
  the real paths; cheap, and kept.
- JSON: keys in insertion order, fixed zlib level (package.py).

``ecc build --verify`` rebuilds into a temporary folder and compares.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from ..errors import EccError
from .cache import key_digest

# Recorded in provenance: the flags that make a build reproducible. The path maps
# themselves hold the build's own folders, so only their fixed names are recorded.
RECORDED_FLAGS = ("-fdebug-compilation-dir=.", "-fno-ident")
SOURCE_NAME = "."
WORKSPACE_NAME = "<workspace>"
CACHE_NAME = "<cache>"
VMLINUX_NAME = "<vmlinux>"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(os.path.join(folder, ""))


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class PathMap(NamedTuple):
    """Absolute folders and the fixed names they have in what a build writes."""

    pairs: tuple[tuple[str, str], ...]  # (folder, name), shortest folder first
    # Folders clang never sees (it reads them through a mirror): no -ffile-prefix-map
    # for them, as every byte of argv shifts clang's heap, and so its BTF order.
    unseen: tuple[str, ...] = ()

    @classmethod
    def for_build(cls, source_root: str, *, workspace: str | None = None,
                  cache: str | None = None, vmlinux_dir: str | None = None,
                  aliases: dict[str, str] | None = None) -> PathMap:
        """``aliases``: a mirror -> the folder it stands for (see :func:`mirror_folder`)."""
        pairs = {os.path.abspath(source_root): SOURCE_NAME}
        for folder, name in ((workspace, WORKSPACE_NAME), (cache, CACHE_NAME),
                             (vmlinux_dir, VMLINUX_NAME)):
            if folder:
                folder = os.path.abspath(folder)
                # A vmlinux.h inside the program's folder is already named by that.
                if name == VMLINUX_NAME and _inside(folder, os.path.abspath(source_root)):
                    continue
                pairs.setdefault(folder, name)
        base = cls(tuple(sorted(pairs.items(), key=lambda p: len(p[0]))))
        unseen: list[str] = []
        for alias, real in (aliases or {}).items():
            pairs[os.path.abspath(alias)] = base.portable(real)
            if os.path.abspath(alias) != os.path.abspath(real):
                unseen.append(os.path.abspath(source_root))
        return cls(tuple(sorted(pairs.items(), key=lambda p: len(p[0]))), tuple(unseen))

    def portable(self, path: str) -> str:
        """``path`` under the most specific mapped folder, by that folder's name."""
        path = os.path.abspath(path)
        for folder, name in reversed(self.pairs):
            if _inside(path, folder):
                rest = os.path.relpath(path, folder)
                return name if rest == "." else f"{name}/{rest}"
        return path

    def portable_flag(self, flag: str) -> str:
        """A flag with any mapped folder inside it renamed (``-I/tmp/x`` -> ``-I.``)."""
        for prefix in ("-I", "-isystem", "-iquote", "-idirafter", ""):
            rest = flag[len(prefix):]
            if flag.startswith(prefix) and any(_inside(rest, f) for f, _ in self.pairs):
                return prefix + self.portable(rest)
        return flag

    def debug_flags(self) -> list[str]:
        """clang flags that keep these folders out of the object.

        clang tries the last ``-ffile-prefix-map`` first, so the most specific
        folder comes last; trailing slashes keep ``/a`` from matching ``/ab``.
        """
        flags = [f"-ffile-prefix-map={os.path.join(folder, '')}={name}/"
                 for folder, name in self.pairs if folder not in self.unseen]
        flags.append("-fdebug-compilation-dir=.")
        flags.append("-fno-ident")
        return flags

    def line_root(self) -> str:
        """The folder clang runs in: the one named ``.``, as clang sees it.

        Line info names the program's files ``./x.bpf.c``; clang opens them by
        that name to copy their lines into .BTF, so ``.`` must be that folder.
        A mirror (fixed length, see :func:`mirror_folder`) is preferred.
        """
        seen = [f for f, name in self.pairs if name == SOURCE_NAME and f not in self.unseen]
        return seen[-1] if seen else next(f for f, name in self.pairs if name == SOURCE_NAME)


# What a program's folder may hold that clang reads: mirrored (see mirror_folder).
_MIRRORED = (".c", ".h", ".inc", ".def")
_MAX_MIRRORED = 256
_MAX_MIRROR_BYTES = 16 << 20
_PARENT_INCLUDE = re.compile(rb'^\s*#\s*include\s*["<]\.\./', re.M)


def mirror_folder(source_dir: str, workspace: str) -> str | None:
    """The program's folder as ``<workspace>/src-<id>``: a path of fixed length.

    With address randomization off, clang's BTF order still depends on the
    lengths of the paths it holds, and clang learns the real path of every file
    it opens (readlink of /proc/self/fd), so a symlink does not hide it. A hard
    link (or a copy, across file systems) does: its path is the one opened.
    The folder's C files are linked, its subfolders symlinked (files reached
    through them keep their real paths). None, to use the folder itself, when
    that would be wrong or costly: a file includes ``../`` (not reachable from
    the mirror), the folder has its own vmlinux.h or bpf/ (a precompiled header
    keyed by the folder would be remade on every build), or it is large.
    """
    if _inside(os.path.abspath(workspace), os.path.abspath(source_dir)):
        return None  # -w inside the program's folder: the mirror would mirror itself
    try:
        names = sorted(os.listdir(source_dir))
    except OSError:
        return None
    if "vmlinux.h" in names or "bpf" in names:
        return None
    files = [n for n in names if n.endswith(_MIRRORED)
             and os.path.isfile(os.path.join(source_dir, n))]
    if len(files) > _MAX_MIRRORED:
        return None
    total = 0
    for name in files:
        try:
            with open(os.path.join(source_dir, name), "rb") as fh:
                head = fh.read(_MAX_MIRROR_BYTES + 1)
        except OSError:
            return None
        total += len(head)
        if total > _MAX_MIRROR_BYTES or _PARENT_INCLUDE.search(head):
            return None
    tag = key_digest(os.path.abspath(source_dir), 8)
    mirror = os.path.join(workspace, f"src-{tag}")
    try:
        # Made anew by each compile: a kept workspace (-w) must not serve stale copies.
        shutil.rmtree(mirror, ignore_errors=True)
        os.makedirs(mirror)
        for name in names:
            real = os.path.join(source_dir, name)
            if name in files:
                try:
                    os.link(real, os.path.join(mirror, name))
                except OSError:
                    shutil.copy2(real, os.path.join(mirror, name))
            elif os.path.isdir(real):
                os.symlink(real, os.path.join(mirror, name))
    except OSError:
        shutil.rmtree(mirror, ignore_errors=True)
        return None
    return mirror


def unalias(text: str, alias: str, real: str) -> str:
    """Paths through a mirror, written as the user knows them (diagnostics, depfile)."""
    if alias == real:
        return text
    return text.replace(os.path.join(alias, ""), os.path.join(real, ""))


# --- ecc build --verify ------------------------------------------------------

MAX_DIFFERENCES = 6  # per file: enough to see the pattern, short enough to read


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class Verification(NamedTuple):
    compared: tuple[str, ...]       # paths relative to the output folder
    differences: tuple[str, ...]    # one line each, naming file and place

    @property
    def differing_files(self) -> list[str]:
        seen: dict[str, None] = {}
        for line in self.differences:
            seen.setdefault(line.split(": ", 1)[0], None)
        return list(seen)


def verify(out_root: str, build_into: Callable[[str], Iterable[str]]) -> Verification:
    """Build again into a temporary folder and compare with what ``out_root`` holds.

    ``build_into(folder)`` runs the same build with ``folder`` as its output
    root and returns the paths it wrote. Nothing in ``out_root`` is touched.
    """
    fresh_root = tempfile.mkdtemp(prefix="ecc-verify-")
    try:
        written = [os.path.relpath(p, fresh_root) for p in build_into(fresh_root)]
        present = [rel for rel in written if os.path.exists(os.path.join(out_root, rel))]
        if not present:
            raise EccError(f"--verify: nothing to verify in {out_root}: none of "
                           f"{', '.join(written)} is there; build without --verify first")
        differences: list[str] = []
        for rel in written:
            old_path = os.path.join(out_root, rel)
            if not os.path.exists(old_path):
                differences.append(f"{rel}: missing (a fresh build writes it)")
                continue
            with open(old_path, "rb") as fh:
                old = fh.read()
            with open(os.path.join(fresh_root, rel), "rb") as fh:
                new = fh.read()
            if old != new:
                differences += [f"{rel}: {d}" for d in describe_difference(rel, old, new)]
        return Verification(tuple(written), tuple(differences))
    finally:
        shutil.rmtree(fresh_root, ignore_errors=True)


def describe_difference(name: str, old: bytes, new: bytes) -> list[str]:
    """Where two versions of an output differ, in the terms of its format."""
    if name.endswith(".json"):
        try:
            return _json_difference(json.loads(old), json.loads(new)) or [
                "same content, different bytes (formatting)"]
        except ValueError:
            pass
    elif name.endswith((".yaml", ".yml")):
        import yaml

        try:
            return _json_difference(yaml.safe_load(old), yaml.safe_load(new)) or [
                "same content, different bytes (formatting)"]
        except yaml.YAMLError:
            pass
    elif name.endswith(".o"):
        return object_difference(old, new)
    return [_byte_difference(old, new)]


def _byte_difference(old: bytes, new: bytes) -> str:
    first = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                 min(len(old), len(new)))
    return f"bytes differ from offset {first} ({len(old)} bytes here, {len(new)} rebuilt)"


def object_difference(old: bytes, new: bytes) -> list[str]:
    """The ELF sections whose bytes differ, or the header when the layout does."""
    from ..elf import read_object
    from ..errors import ElfError

    try:
        a, b = read_object(old), read_object(new)
    except ElfError as exc:
        return [f"not a readable BPF object ({exc}); {_byte_difference(old, new)}"]
    sec_a = {s.name: s for s in a.sections if s.name}
    sec_b = {s.name: s for s in b.sections if s.name}
    out = [f"section {n} only here" for n in sec_a if n not in sec_b]
    out += [f"section {n} only in the rebuild" for n in sec_b if n not in sec_a]
    for name, sa in sec_a.items():
        sb = sec_b.get(name)
        if sb is None:
            continue
        da = old[sa.offset:sa.offset + sa.size] if sa.type != 8 else b""
        db = new[sb.offset:sb.offset + sb.size] if sb.type != 8 else b""
        if sa.size != sb.size:
            out.append(f"section {name}: {sa.size} bytes here, {sb.size} rebuilt")
        elif da != db:
            out.append(f"section {name}: {_byte_difference(da, db)}")
    if not out:
        out.append(f"same sections, other layout: {_byte_difference(old, new)}")
    return out[:MAX_DIFFERENCES]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_difference(old: Any, new: Any, path: str = "") -> list[str]:
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= MAX_DIFFERENCES or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in [*a, *(k for k in b if k not in a)]:
                sub = f"{where}.{key}" if where else str(key)
                if key not in b:
                    out.append(f"{sub}: only here ({_short(a[key])})")
                elif key not in a:
                    out.append(f"{sub}: only in the rebuild ({_short(b[key])})")
                elif a[key] == b[key]:
                    continue
                elif key == "bpf_object" and isinstance(a[key], str) and isinstance(b[key], str):
                    out.extend(f"{sub}: {d}" for d in _encoded_object_difference(a[key], b[key]))
                else:
                    walk(a[key], b[key], sub)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{where}: {len(a)} entries here, {len(b)} rebuilt")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{where}[{i}]")
        else:
            out.append(f"{where or 'value'}: {_short(a)} here, {_short(b)} rebuilt")

    walk(old, new, path)
    return out[:MAX_DIFFERENCES]


def _encoded_object_difference(old: str, new: str) -> list[str]:
    from ..errors import PackageError

    decoded: list[bytes] = []
    for text in (old, new):
        try:
            decoded.append(_inflate(text))
        except PackageError as exc:
            return [f"cannot be decoded ({exc})"]
    if decoded[0] == decoded[1]:
        return ["same object, different encoding"]
    return object_difference(decoded[0], decoded[1])


def _inflate(text: str) -> bytes:
    import base64
    import binascii
    import zlib

    from ..errors import PackageError
    from ..package import MAX_OBJECT_BYTES

    try:
        inflater = zlib.decompressobj()
        # Bounded, as everywhere a package is read: a tampered file may be a bomb.
        return inflater.decompress(base64.b64decode(text, validate=True), MAX_OBJECT_BYTES)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise PackageError(f"not base64 of zlib data: {exc}") from exc
