"""The ``--btfgen`` container: a tar of package.json and tailored kernel BTF, read safely.

The tar holds ``package.json``, the object, and minimized kernel BTF files at
``btfhub-archive/<distro>/<version>/<arch>/<kernel>.btf`` (the layout eunomia's
ecli unpacks; ecc/run/btfarchive.py chooses among them). The tar is untrusted:
nothing is extracted to disk by the tar's own names. Any entry that is a link,
a device, outside the package or oversized refuses the whole package, which has
been tampered with or was not made by a packer.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

from ..errors import PackageError
from ..fileio import tar_member_problem

ARCHIVE_PREFIX = "btfhub-archive"
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
    name = member.name
    problem = tar_member_problem(member, outside="the package", refuse_sparse=True)
    if problem:
        return problem
    limit = MAX_PACKAGE_JSON_BYTES if entry_name(name) == "package.json" else MAX_BTF_BYTES
    if member.size > limit:
        return f"is {member.size} bytes, over the {limit}-byte limit"
    return None


def entry_name(name: str) -> str:
    """A member's name without leading ``./`` or a trailing slash."""
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
                name = entry_name(member.name)
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
