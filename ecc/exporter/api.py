"""The control API: start, list and stop programs of a running exporter.

Off unless ``ecc exporter --api``; then every request needs
``Authorization: Bearer TOKEN`` with the token of ``--api-token-file``.

- ``POST /start``: the body is one program entry of the configuration, as
  JSON (``{"name": ..., "metrics": {...}, "ebpf_data": ...}``; a relative
  ``compiled_ebpf_filename`` is taken from the exporter's working folder).
  ``200 {"id": N, "name": ..., "attached": [...]}``; ``400 {"error": reason}``
  when the config is wrong or the kernel refuses the program: it is checked
  in full before anything is loaded, and a failed load leaves nothing behind.
- ``GET /list``: ``200 [{"id", "name", "attached", "metrics", "events", ...}]``.
- ``POST /stop/{id}``: ``200 {"stopped": id, "name": ...}``; ``404`` for an
  unknown id.

A request without the right token gets ``401`` and touches nothing.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from ..errors import EccError
from .config import ConfigError, parse_program
from .programs import Exporter

MAX_BODY_BYTES = 64 * 1024 * 1024
API_PATHS = ("/start", "/list", "/stop")


@dataclass(frozen=True)
class Reply:
    status: int
    payload: Any
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> bytes:
        return (json.dumps(self.payload, indent=1) + "\n").encode()


def is_api_path(path: str) -> bool:
    return path in API_PATHS or path.startswith("/stop/")


def authorized(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    # Constant-time comparison: the token must not leak through response timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


def unauthorized(header: str | None) -> Reply:
    reason = ("missing Authorization: Bearer token" if not header
              else "wrong bearer token")
    return Reply(401, {"error": reason},
                 (("WWW-Authenticate", 'Bearer realm="ecc exporter"'),))


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def handle(exporter: Exporter, method: str, path: str, body: bytes | None) -> Reply:
    """One authorized API request."""
    if path == "/list":
        if method != "GET":
            return error(405, "use GET /list")
        return Reply(200, [p.describe() for p in exporter.running()])
    if path == "/start":
        if method != "POST":
            return error(405, "use POST /start with a program config as JSON")
        return _start(exporter, body or b"")
    if path.startswith("/stop/"):
        if method != "POST":
            return error(405, "use POST /stop/{id}")
        text = path[len("/stop/"):]
        if not text.isdigit():
            return error(404, f"no program with id {text!r}; ids are numbers (GET /list)")
        program = exporter.stop(int(text))
        if program is None:
            return error(404, f"no program with id {int(text)} (GET /list)")
        return Reply(200, {"stopped": program.id, "name": program.spec.name})
    return error(404, "no such API path; the API has POST /start, GET /list, POST /stop/{id}")


def _start(exporter: Exporter, body: bytes) -> Reply:
    try:
        entry = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return error(400, "the body is not UTF-8 text")
    except json.JSONDecodeError as exc:
        return error(400, f"the body is not JSON: {exc.msg} (line {exc.lineno} column "
                          f"{exc.colno})")
    try:
        spec = parse_program(entry, "program config", os.getcwd())
        program = exporter.start(spec)
    except ConfigError as exc:
        return error(400, str(exc))
    except EccError as exc:
        return error(400, f"program config ({entry.get('name')}): cannot be loaded: {exc}")
    describe = program.describe()
    return Reply(200, {"id": program.id, "name": program.spec.name,
                       "attached": describe["attached"], "skipped": describe["skipped"]})
