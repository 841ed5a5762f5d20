"""Packages with tailored BTF (``ecc build --btfgen``): reading the tar safely, choosing the BTF.

The tar holds ``package.json``, the object, and minimized kernel BTF files at
``btfhub-archive/<distro>/<version>/<arch>/<kernel>.btf``, the layout eunomia's
ecli unpacks (it looks up ``btfhub-archive/<os-release ID>/<VERSION_ID>/
<uname -m>/<uname -r>.btf`` and uses it only when the kernel has no
``/sys/kernel/btf/vmlinux``). We follow the same rule, plus ``--btf`` to force
a file or an entry of the tar.

The tar is untrusted: nothing is extracted to disk by the tar's own names. Any
entry that is a link, a device, outside the package or oversized refuses the
whole package, which has been tampered with or was not made by a packer.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from .. import log
from ..errors import EccError, PackageError

ARCHIVE_PREFIX = "btfhub-archive"
KERNEL_BTF = "/sys/kernel/btf/vmlinux"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
# Kernel BTF is 3 to 10 MB before minimizing, a few KB after.
MAX_BTF_BYTES = 256 * 1024 * 1024
MAX_PACKAGE_JSON_BYTES = 256 * 1024 * 1024
# A BTFHub archive has a few thousand kernels; far more entries is a tar bomb.
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class TarPackage:
    package_bytes: bytes          # the package.json inside
    btfs: dict[str, bytes]        # '<distro>/<version>/<arch>/<kernel>.btf' -> BTF


def _problem(member: tarfile.TarInfo) -> str | None:
    from ..fileio import tar_member_problem

    name = member.name
    problem = tar_member_problem(member, outside="the package", refuse_sparse=True)
    if problem:
        return problem
    limit = MAX_PACKAGE_JSON_BYTES if _normal(name) == "package.json" else MAX_BTF_BYTES
    if member.size > limit:
        return f"is {member.size} bytes, over the {limit}-byte limit"
    return None


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def read_tar(origin: str, data: bytes) -> TarPackage:
    """package.json and the BTF files of a ``--btfgen`` tar; PackageError on anything hostile."""
    package: bytes | None = None
    btfs: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for count, member in enumerate(tar, 1):
                if count > MAX_ENTRIES:
                    raise PackageError(f"{origin}: more than {MAX_ENTRIES} entries; not a package")
                problem = _problem(member)
                if problem:
                    raise PackageError(f"{origin}: entry '{member.name}' {problem}; refusing it")
                name = _normal(member.name)
                if member.isdir() or name in ("", "."):
                    continue
                if name in seen:
                    raise PackageError(f"{origin}: entry '{name}' appears twice; refusing it")
                seen.add(name)
                parts = name.split("/")
                wanted = name == "package.json" or (
                    parts[0] == ARCHIVE_PREFIX and len(parts) == 5 and name.endswith(".btf"))
                if not wanted:
                    continue  # the .bpf.o (package.json carries it too), notes, ...
                source = tar.extractfile(member)
                content = source.read() if source is not None else b""
                if name == "package.json":
                    package = content
                else:
                    btfs["/".join(parts[1:])] = content
    except tarfile.TarError as exc:
        raise PackageError(f"{origin}: not a valid tar ({exc})") from exc
    if package is None:
        raise PackageError(f"{origin}: no package.json in it; a --btfgen package holds one at "
                           f"its top")
    return TarPackage(package, btfs)


@dataclass(frozen=True)
class Host:
    """What picks a kernel's BTF in a BTFHub archive (eunomia's and libbpf-tools' rule)."""

    os_id: str
    version_id: str
    machine: str
    release: str

    @property
    def btf_name(self) -> str:
        return f"{self.os_id}/{self.version_id}/{self.machine}/{self.release}.btf"


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines, values unquoted (os-release(5) uses shell quoting)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value.replace("\\\"", "\"").replace("\\\\", "\\")
    return values


def this_host(os_release: tuple[str, ...] = OS_RELEASE) -> Host:
    text = ""
    for path in os_release:
        with contextlib.suppress(OSError):
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            break
    values = parse_os_release(text)
    uname = os.uname()
    # os-release(5): ID defaults to "linux"; VERSION_ID has no default.
    return Host(values.get("ID") or "linux", values.get("VERSION_ID", ""), uname.machine,
                uname.release)


@dataclass(frozen=True)
class BtfChoice:
    name: str | None      # the archive entry, or None: the kernel's own BTF (or --btf FILE)
    path: str | None      # what libbpf gets as btf_custom_path


def choose_btf(archive: Mapping[str, bytes] | None, origin: str, forced: str | None, *,
               host: Host | None = None, kernel_btf: str = KERNEL_BTF) -> BtfChoice:
    """The BTF libbpf should relocate against; ``path`` None means the kernel's own."""
    if forced:
        if os.path.isfile(forced):
            return BtfChoice(None, forced)
        entry = _normal(forced)
        entry = entry[len(ARCHIVE_PREFIX) + 1:] if entry.startswith(ARCHIVE_PREFIX + "/") else entry
        if archive is not None and entry in archive:
            log.info("using BTF %s from %s", entry, origin)
            return BtfChoice(entry, _as_path(archive[entry]))
        if os.path.isdir(forced):
            raise EccError(f"--btf {forced}: is a directory; give a BTF file")
        if archive is None:
            raise EccError(f"--btf {forced}: no such file")
        names = sorted(archive)
        listed = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        raise EccError(f"--btf {forced}: no such file, and {origin} holds no BTF of that name "
                       f"(it holds {listed or 'none'})")
    if archive is None:
        return BtfChoice(None, None)
    if os.path.exists(kernel_btf):
        log.info("the kernel has its own BTF (%s); not using those in %s", kernel_btf, origin)
        return BtfChoice(None, None)
    host = host or this_host()
    if not host.version_id:
        raise PackageError(f"{origin}: cannot tell this system's version (no VERSION_ID in "
                           f"/etc/os-release) to pick its BTF; give --btf FILE")
    name = host.btf_name
    if name not in archive:
        raise PackageError(
            f"{origin}: holds no BTF for this kernel ({name}), and the kernel has no "
            f"{kernel_btf}; rebuild with --btfgen and an archive that has it, or give --btf FILE")
    log.info("using BTF %s from %s", name, origin)
    return BtfChoice(name, _as_path(archive[name]))


def _as_path(data: bytes) -> str:
    """A path libbpf can open holding ``data``; a memory file, so nothing is left on disk."""
    try:
        fd = os.memfd_create("ecc-btf")
        path = f"/proc/self/fd/{fd}"
    except (AttributeError, OSError):
        fd, path = tempfile.mkstemp(prefix="ecc-btf-", suffix=".btf")
        atexit.register(_unlink, path)
    _KEEP_OPEN.append(fd)  # libbpf opens the path at load time: keep it alive until exit
    with os.fdopen(os.dup(fd), "wb") as fh:
        fh.write(data)
    return path


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


_KEEP_OPEN: list[int] = []
