"""Reading a user's file with one error line per way it can fail, and a size bound."""

from __future__ import annotations

from .errors import EccError


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
