"""ecc's ``-v`` log, without importing :mod:`logging` for builds that show nothing.

``from .. import log; log.info(...)`` reads like a logger. Messages go to the
``ecc`` logger once :mod:`logging` is imported: by the CLI for ``-v``, or by
an application using ecc as a library. Until then there is no one to show
them to, and importing logging (a few ms) would only slow a build down.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any


def info(message: str, *args: Any) -> None:
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("ecc").info(message, *args)


class Command:
    """An argv, after the variables it adds to the environment, that logs as a
    shell line; quoted only when a message is made of it."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.argv = argv
        self.env = env or {}

    def __str__(self) -> str:
        import shlex

        assignments = [f"{name}={shlex.quote(value)}" for name, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])
