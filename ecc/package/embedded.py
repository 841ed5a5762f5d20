"""The standalone container (``ecc build -s``): a zipapp whose ``package.json`` is the package.

ecc/compiler/standalone.py writes it; ``ecc run FILE`` and ``ecc check FILE`` read
the package back out of it here.
"""

from __future__ import annotations

from ..errors import PackageError

PACKAGE_NAME = "package.json"
MAIN_NAME = "__main__.py"
# The embedded package is written by ecc itself; far larger means this is not our file.
MAX_EMBEDDED_BYTES = 256 * 1024 * 1024


def read_embedded(path: str) -> bytes | None:
    """The package inside a standalone file, or None when ``path`` is not one."""
    import zipfile

    try:
        with open(path, "rb") as fh:
            if fh.read(2) not in (b"#!", b"PK"):
                return None
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if MAIN_NAME not in names or PACKAGE_NAME not in names:
                return None
            info = archive.getinfo(PACKAGE_NAME)
            if info.file_size > MAX_EMBEDDED_BYTES:
                raise PackageError(f"{path}: its {PACKAGE_NAME} claims {info.file_size} bytes; "
                                   f"not a standalone file of ecc")
            with archive.open(info) as member:
                return member.read(MAX_EMBEDDED_BYTES + 1)
    except (OSError, zipfile.BadZipFile):
        return None
