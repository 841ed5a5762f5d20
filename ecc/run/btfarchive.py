"""Packages with tailored BTF (``ecc build --btfgen``): choosing the BTF for this kernel.

The tar holds ``package.json``, the object, and minimized kernel BTF files at
``btfhub-archive/<distro>/<version>/<arch>/<kernel>.btf``, the layout eunomia's
ecli unpacks (it looks up ``btfhub-archive/<os-release ID>/<VERSION_ID>/
<uname -m>/<uname -r>.btf`` and uses it only when the kernel has no
``/sys/kernel/btf/vmlinux``). We follow the same rule, plus ``--btf`` to force
a file or an entry of the tar.

The tar itself is read by ecc/package/tar.py.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from collections.abc import Mapping

from .. import log
from ..errors import EccError, PackageError
from ..package.tar import ARCHIVE_PREFIX, entry_name
from ..record import Record, set_field

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")


class Host(Record):
    """What picks a kernel's BTF in a BTFHub archive (eunomia's and libbpf-tools' rule)."""

    __slots__ = ("os_id", "version_id", "machine", "release")
    os_id: str
    version_id: str
    machine: str
    release: str

    def __init__(self, os_id: str, version_id: str, machine: str, release: str) -> None:
        set_field(self, "os_id", os_id)
        set_field(self, "version_id", version_id)
        set_field(self, "machine", machine)
        set_field(self, "release", release)

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


class BtfChoice(Record):
    __slots__ = ("name", "path")
    name: str | None      # the archive entry, or None: the kernel's own BTF (or --btf FILE)
    path: str | None      # what libbpf gets as btf_custom_path

    def __init__(self, name: str | None, path: str | None) -> None:
        set_field(self, "name", name)
        set_field(self, "path", path)


def choose_btf(archive: Mapping[str, bytes] | None, origin: str, forced: str | None, *,
               host: Host | None = None, kernel_btf: str = KERNEL_BTF) -> BtfChoice:
    """The BTF libbpf should relocate against; ``path`` None means the kernel's own."""
    if forced:
        if os.path.isfile(forced):
            return BtfChoice(None, forced)
        entry = entry_name(forced)
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
