"""Reading a user's file and document: one error line per way it can fail, and bounds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .errors import EccError

if TYPE_CHECKING:
    import tarfile


def read_limited(path: str, *, label: str, limit: int, error: type[EccError],
                 directory_hint: str, too_large: str = "") -> bytes:
    """The bytes of ``path``, at most ``limit``; every failure is ``error("<label>: ...")``.

    Reading one byte past the limit tells an oversized file without reading it all.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except IsADirectoryError:
        raise error(f"{label}: is a directory{directory_hint}") from None
    except OSError as exc:
        raise error(f"{label}: cannot read it ({exc.strerror})") from exc
    if len(data) > limit:
        raise error(f"{label}: larger than {limit} bytes{too_large}")
    return data


def parse_json_or_yaml(origin: str, text: str, yaml_first: bool,
                       error: type[EccError]) -> Any:
    """JSON or YAML text -> its value; every failure is ``error("<origin>: ...")``.

    JSON is tried first unless the name says YAML, and always for text that
    starts like JSON; a file that should be JSON and is broken says where.
    """
    looks_json = text.lstrip().startswith(("{", "["))
    if not yaml_first or looks_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if not yaml_first and looks_json:
                raise error(f"{origin}: not valid JSON: {exc.msg} (line {exc.lineno} "
                            f"column {exc.colno})") from exc
    try:
        import yaml
    except ImportError as exc:
        raise error(f"{origin}: not JSON, and PyYAML is not installed to read YAML "
                    f"(pip install PyYAML)") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1} column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise error(f"{origin}: neither JSON nor YAML: {problem}{where}") from exc


def tar_member_problem(member: tarfile.TarInfo, *, outside: str,
                       refuse_sparse: bool) -> str | None:
    """Why an untrusted tar entry must not be used (a path that escapes, a link, a
    device, anything but a file or folder), or None; sizes are the caller's to bound."""
    name = member.name
    if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
        return f"points outside {outside}"
    kinds = [(member.issym, "a symbolic link"), (member.islnk, "a hard link"),
             (member.ischr, "a character device"), (member.isblk, "a block device"),
             (member.isfifo, "a FIFO")]
    if refuse_sparse:
        kinds.append((member.issparse, "a sparse file"))
    for test, what in kinds:
        if test():
            return f"is {what}"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file"
    return None
