"""``ecc build --btfgen``: tailored kernel BTF for kernels without their own (spec section 6).

For every ``<distro>/<version>/<arch>/<kernel>.btf`` (or ``.btf.tar.xz``) of a
local BTFHub-layout archive, ``bpftool gen min_core_btf`` keeps only the types
the object's CO-RE relocations touch (a few hundred bytes instead of ~6 MB).
They go into ``<stem>.tar`` with ``package.json`` and the object, laid out as
eunomia's loaders unpack it: ``package.json`` at the root and the BTF files
under ``btfhub-archive/<distro>/<version>/<arch>/<kernel>.btf`` (ecli unpacks
the tar and looks up ``btfhub-archive/<os-release ID>/<VERSION_ID>/<uname -m>/
<uname -r>.btf``; ``ecc run`` does the same).

The archive is untrusted input: links are not followed, compressed entries are
read from the stream into files we name ourselves (no path from the archive
is ever joined to a folder), and sizes are bounded before anything is read.
A file that cannot be used is skipped with a warning naming it.
"""

from __future__ import annotations

import io
import lzma
import os
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from .. import log
from ..errors import EccError

# Real kernel BTF is 3 to 10 MB; anything this large is not one, and reading it
# (or inflating it from a small .tar.xz) would only fill memory or the disk.
MAX_BTF_BYTES = 256 * 1024 * 1024
# A BTFHub .btf.tar.xz holds exactly one file; a few more entries are tolerated.
MAX_XZ_ENTRIES = 16
# Where eunomia's loaders look for the kernel BTF files inside the tar.
ARCHIVE_PREFIX = "btfhub-archive"
LAYOUT = "<distro>/<version>/<arch>/<kernel>.btf"
SUFFIXES = (".btf.tar.xz", ".btf")
# Below this many kernels the work is over before a progress line would help.
PROGRESS_MIN = 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class KernelBtf:
    """One kernel of the archive: ``rel`` is its name in the tar, below ARCHIVE_PREFIX."""

    rel: str          # <distro>/<version>/<arch>/<kernel>.btf
    source: str       # the file in the user's archive
    shown: str        # how messages name that file
    compressed: bool


@dataclass(frozen=True)
class Minimized:
    rel: str
    input_bytes: int
    data: bytes


@dataclass
class BtfgenResult:
    path: str
    minimized: list[Minimized]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


class UnusableKernelBtf(Exception):
    """This archive file cannot be used; the message is the warning, without 'skipped'."""


def check_options(btfgen: bool, archive: str | None) -> None:
    """Fail before compiling when the options cannot work (no network: no default archive)."""
    if archive is not None and not btfgen:
        raise EccError("--btfhub-archive is only used with --btfgen; add --btfgen")
    if not btfgen:
        return
    if archive is None:
        raise EccError("--btfgen needs --btfhub-archive DIR, a local BTFHub archive folder "
                       f"({LAYOUT} or .btf.tar.xz files); ecc does not download one")
    if not os.path.isdir(archive):
        what = "is not a folder" if os.path.exists(archive) else "no such folder"
        raise EccError(f"--btfhub-archive {archive}: {what}; give the BTFHub archive folder")


def find_kernels(archive: str) -> tuple[list[KernelBtf], list[str]]:
    """Every kernel BTF of the archive in a stable order, and warnings for what is skipped."""
    kernels: dict[str, KernelBtf] = {}
    warnings: list[str] = []

    def walk_error(exc: OSError) -> None:
        warnings.append(f"{exc.filename}: cannot read it ({exc.strerror}); skipped")

    for folder, dirnames, filenames in os.walk(archive, onerror=walk_error):
        # Hidden folders (.git of a BTFHub checkout) hold no kernels.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in list(dirnames):
            if os.path.islink(os.path.join(folder, name)):
                dirnames.remove(name)
                shown = os.path.join(folder, name)
                warnings.append(f"{shown}: is a symbolic link (links are not followed); skipped")
        for name in sorted(filenames):
            suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
            if suffix is None or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            rel_parts = os.path.relpath(path, archive).split(os.sep)
            kernel = name[: -len(suffix)]
            if len(rel_parts) != 4 or not kernel:
                warnings.append(f"{path}: not at {LAYOUT} (or .btf.tar.xz) in the archive; "
                                f"skipped")
                continue
            try:
                st = os.lstat(path)
            except OSError as exc:
                warnings.append(f"{path}: cannot read it ({exc.strerror}); skipped")
                continue
            problem = _file_problem(st.st_mode, st.st_size)
            if problem:
                warnings.append(f"{path}: {problem}; skipped")
                continue
            rel = "/".join([*rel_parts[:3], kernel + ".btf"])
            if rel in kernels:
                warnings.append(f"{path}: the same kernel as {kernels[rel].shown}; skipped")
                continue
            kernels[rel] = KernelBtf(rel, path, path, compressed=suffix != ".btf")
    return [kernels[k] for k in sorted(kernels)], warnings


def _file_problem(mode: int, size: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "is a symbolic link (links are not followed)"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if size > MAX_BTF_BYTES:
        return f"is {size} bytes, over the {MAX_BTF_BYTES}-byte limit for a kernel BTF"
    return None


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why an entry of a .btf.tar.xz must not be used, or None."""
    from ..fileio import tar_member_problem

    problem = tar_member_problem(member, outside="its folder", refuse_sparse=False)
    if problem:
        return problem
    if member.size > MAX_BTF_BYTES:
        return f"is {member.size} bytes, over the {MAX_BTF_BYTES}-byte limit for a kernel BTF"
    return None


def unpack_xz(kernel: KernelBtf, dest: str) -> int:
    """Copy the kernel's ``.btf`` out of its ``.btf.tar.xz`` into ``dest``; its size.

    The archive is read as a stream (no seeking back, no extraction by the
    archive's own names) and any entry that is a link, a device, outside its
    folder or too large condemns the whole file.
    """
    want = posixpath.basename(kernel.rel)
    try:
        with tarfile.open(kernel.source, mode="r|xz") as tar:
            for count, member in enumerate(tar, 1):
                if count > MAX_XZ_ENTRIES:
                    raise UnusableKernelBtf(
                        f"more than {MAX_XZ_ENTRIES} entries; not a BTFHub file")
                problem = _member_problem(member)
                if problem:
                    raise UnusableKernelBtf(f"entry '{member.name}' {problem}")
                if member.isdir() or posixpath.basename(member.name) != want:
                    continue
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isreg() was checked
                    raise UnusableKernelBtf(f"entry '{member.name}' has no data")
                copied = 0
                with open(dest, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        copied += len(chunk)
                        if copied > member.size:  # pragma: no cover - tarfile stops at size
                            raise UnusableKernelBtf(f"entry '{member.name}' is longer than it says")
                        out.write(chunk)
                return copied
    except (tarfile.TarError, lzma.LZMAError, EOFError) as exc:
        raise UnusableKernelBtf(f"not a readable .tar.xz ({exc})") from exc
    except OSError as exc:
        raise UnusableKernelBtf(f"cannot read it ({exc.strerror or exc})") from exc
    raise UnusableKernelBtf(f"holds no {want}")


def _minimize(kernel: KernelBtf, obj_path: str, tmp: str, bpftool: str, index: int,
              ) -> Minimized:
    from . import tools

    source = kernel.source
    scratch = os.path.join(tmp, f"{index}.in.btf")
    out = os.path.join(tmp, f"{index}.min.btf")
    try:
        if kernel.compressed:
            size = unpack_xz(kernel, scratch)
            source = scratch
        else:
            size = os.path.getsize(source)
        result = tools.run([bpftool, "gen", "min_core_btf", source, out, obj_path],
                           what=f"bpftool gen min_core_btf {kernel.shown}", check=False)
        if result.returncode != 0 or not os.path.isfile(out):
            detail = result.stderr.decode(errors="replace").strip()
            log.info("%s: bpftool said: %s", kernel.shown, detail)
            raise UnusableKernelBtf(
                "not a valid BTF file (bpftool gen min_core_btf failed; -v shows why)", detail)
        with open(out, "rb") as fh:
            data = fh.read(MAX_BTF_BYTES + 1)
        return Minimized(kernel.rel, size, data)
    finally:
        # A whole BTFHub archive inflates to tens of GB: keep only one file per worker.
        for path in (scratch, out):
            if os.path.exists(path):
                os.unlink(path)


class _Progress:
    """One line on a terminal, redrawn at most ten times a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.enabled = total >= PROGRESS_MIN and sys.stderr.isatty()
        self._last = 0.0

    def step(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (done < self.total and now - self._last < 0.1):
            return
        self._last = now
        sys.stderr.write(f"\recc: btfgen: {done}/{self.total} kernels")
        if done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def minimize_all(kernels: list[KernelBtf], object_bytes: bytes, *, bpftool: str,
                 jobs: int | None = None, workspace: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 ) -> tuple[list[Minimized], list[tuple[KernelBtf, UnusableKernelBtf]]]:
    """Minimize every kernel's BTF against the object, in parallel; results in input order."""
    tmp = tempfile.mkdtemp(prefix="ecc-btfgen-", dir=workspace)
    try:
        obj_path = os.path.join(tmp, "object.bpf.o")
        with open(obj_path, "wb") as fh:
            fh.write(object_bytes)
        done: dict[int, Minimized] = {}
        skipped: dict[int, tuple[KernelBtf, UnusableKernelBtf]] = {}
        workers = max(1, min(jobs or os.cpu_count() or 1, len(kernels) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_minimize, k, obj_path, tmp, bpftool, i): i
                       for i, k in enumerate(kernels)}
            for count, future in enumerate(as_completed(futures), 1):
                index = futures[future]
                try:
                    result = future.result()
                except UnusableKernelBtf as exc:
                    skipped[index] = (kernels[index], exc)
                except BaseException:
                    for other in futures:
                        other.cancel()
                    raise
                else:
                    done[index] = result
                if progress is not None:
                    progress(count)
        return ([done[i] for i in sorted(done)],
                [skipped[i] for i in sorted(skipped)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mtime() -> int:
    """SOURCE_DATE_EPOCH when set, else 0: the same inputs give the same tar, byte for byte."""
    try:
        return max(0, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    except ValueError:
        return 0


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A plain tar of regular files with fixed owners, modes and times (reproducible)."""
    buffer = io.BytesIO()
    mtime = _mtime()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_btfgen_tar(archive: str, *, stem: str, out_dir: str, object_bytes: bytes,
                     package_json: str, bpftool: str | None = None, jobs: int | None = None,
                     workspace: str | None = None) -> BtfgenResult:
    """Make ``out_dir/<stem>.tar``: package.json, the object and a minimized BTF per kernel."""
    from ..package import write_atomic
    from . import tools

    start = time.perf_counter()
    check_options(True, archive)
    kernels, warnings = find_kernels(archive)
    if not kernels:
        raise EccError(f"--btfhub-archive {archive}: no kernel BTF found; expected {LAYOUT} "
                       f"or .btf.tar.xz files", details="\n".join(
                           f"ecc: warning: {w}" for w in warnings) or None)
    tool = tools.find_tool("bpftool", bpftool)
    progress = _Progress(len(kernels))
    minimized, skipped = minimize_all(kernels, object_bytes, bpftool=tool, jobs=jobs,
                                      workspace=workspace, progress=progress.step)
    warnings += [f"{k.shown}: {exc.args[0]}; skipped" for k, exc in skipped]
    if not minimized:
        first = next((exc.args[1] for _, exc in skipped if len(exc.args) > 1), None)
        raise EccError(
            f"--btfhub-archive {archive}: none of its {len(kernels)} kernel BTF files could be "
            f"used; see the warnings above",
            details="\n".join([*(f"ecc: warning: {w}" for w in warnings),
                               *([f"bpftool said: {first}"] if first else [])]))
    members = [("package.json", package_json.encode()), (f"{stem}.bpf.o", object_bytes)]
    members += [(f"{ARCHIVE_PREFIX}/{m.rel}", m.data) for m in minimized]
    path = os.path.join(out_dir, f"{stem}.tar")
    write_atomic(path, tar_bytes(members))
    seconds = time.perf_counter() - start
    before = sum(m.input_bytes for m in minimized)
    after = sum(len(m.data) for m in minimized)
    log.info("btfgen: %d kernel BTF files minimized (%.1f MB -> %.1f KB) in %.2f s",
             len(minimized), before / 1e6, after / 1e3, seconds)
    return BtfgenResult(path, minimized, warnings, seconds)

