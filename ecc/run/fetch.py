"""Where ``ecc run`` gets its program: a file, an http(s) URL, an OCI reference, a standalone file.

The program is an eBPF package or a WebAssembly module (:class:`WasmModule`,
eunomia's wasm-bpf ABI), from any of those places: :func:`open_program`.

A URL is fetched with a timeout and a size limit, and every way it can fail
(DNS, connection, TLS, HTTP status, a body that is no package) is one line
naming the URL. What arrives is checked exactly like a package file before
anything is loaded; a module's header must be WebAssembly's.
"""

from __future__ import annotations

import os
import time
from typing import IO, TYPE_CHECKING, NamedTuple

from .. import __version__
from ..errors import FetchError
from ..package.source import LoadedPackage, read_package, read_package_data

if TYPE_CHECKING:
    import urllib.request
    from http.client import HTTPMessage

# A package is its object (64 MiB at most, inflated) compressed and base64'd plus
# metadata; a real one is kilobytes. Refusing early keeps a wrong URL from filling memory.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
# Per connection attempt and per read; the whole download also has a deadline.
TIMEOUT_SECONDS = 30.0
DOWNLOAD_DEADLINE_SECONDS = 300.0
CHUNK = 1 << 20


class WasmModule(NamedTuple):
    """A WebAssembly module to run: its bytes and where they came from (errors name it)."""

    origin: str
    data: bytes


def open_program(ref: str, *, plain_http: bool = False) -> LoadedPackage | WasmModule:
    """What ``ecc run REF`` runs: a checked package, or a WebAssembly module, from a path
    (``APP.wasm``, a package, a standalone file), ``-``, an http(s) URL or an OCI reference."""
    if ref.startswith(("http://", "https://")):
        return read_url_program(ref)
    if ref.startswith("oci://"):
        return _pull_program(ref, plain_http)
    # The zip and WebAssembly readers cost ~3 ms each to import: asked only when the
    # first bytes could be theirs (a zipapp starts "#!" or "PK", a module "\0asm").
    head = _head(ref) if ref != "-" else None
    if ref != "-" and os.path.isfile(ref) and (head is None or head[:2] in (b"#!", b"PK")):
        from ..package.embedded import read_embedded, read_embedded_module

        module = read_embedded_module(ref)
        if module is not None:
            return WasmModule(ref, module)
        embedded = read_embedded(ref)
        if embedded is not None:
            return read_package_data(ref, embedded)
    elif ref != "-" and not os.path.exists(ref):
        from ..oci import looks_like_reference

        if looks_like_reference(ref):
            return _pull_program(ref, plain_http)
    if ref != "-" and (ref.endswith(".wasm") or head is None or head == b"\0asm"):
        from .wasm import read_wasm

        wasm = read_wasm(ref)  # named *.wasm, or starting with the magic
        if wasm is not None:
            return WasmModule(ref, wasm)
    return read_package(ref)


def _head(path: str) -> bytes | None:
    """The first 4 bytes of a file; None when it cannot be read (the readers say why)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4)
    except OSError:
        return None


def _pull_program(ref: str, plain_http: bool) -> LoadedPackage | WasmModule:
    from ..oci import PulledModule, pull

    pulled = pull(ref, plain_http=plain_http)
    if isinstance(pulled, PulledModule):
        return WasmModule(ref, pulled.data)
    return pulled.loaded


def open_package(ref: str, *, plain_http: bool = False) -> LoadedPackage:
    """A checked package from a path, ``-``, an http(s) URL or an OCI reference."""
    if ref.startswith(("http://", "https://")):
        return read_url(ref)
    if ref.startswith("oci://"):
        return _read_oci(ref, plain_http)
    if ref != "-" and os.path.isfile(ref):
        from ..package.embedded import read_embedded

        embedded = read_embedded(ref)
        if embedded is not None:
            return read_package_data(ref, embedded)
    elif ref != "-" and not os.path.exists(ref):
        from ..oci import looks_like_reference

        if looks_like_reference(ref):
            return _read_oci(ref, plain_http)
    return read_package(ref)


def _read_oci(ref: str, plain_http: bool) -> LoadedPackage:
    from ..oci import pull_package

    return pull_package(ref, plain_http=plain_http).loaded


def read_url_program(url: str, *, timeout: float = TIMEOUT_SECONDS,
                     limit: int = MAX_DOWNLOAD_BYTES) -> LoadedPackage | WasmModule:
    """The package or WebAssembly module at ``url``: a module when the URL names a
    ``.wasm``, the server says ``application/wasm`` or the body starts with the magic."""
    from ..package.embedded import WASM_MAGIC, wasm_problem

    path = url.split("?", 1)[0].split("#", 1)[0]
    named = path.endswith(".wasm")
    body, content_type = fetch(url, timeout=timeout, limit=limit,
                               what="module" if named else "package")
    if named or content_type == "application/wasm" or body[:4] == WASM_MAGIC:
        problem = wasm_problem(body)
        if problem:
            raise FetchError(f"{url}: {problem}; the server sent "
                             f"{content_type or 'no type'}; give the URL of a .wasm module")
        return WasmModule(url, body)
    return _package_body(url, path, body, content_type)


def read_url(url: str, *, timeout: float = TIMEOUT_SECONDS,
             limit: int = MAX_DOWNLOAD_BYTES) -> LoadedPackage:
    body, content_type = fetch(url, timeout=timeout, limit=limit)
    path = url.split("?", 1)[0].split("#", 1)[0]
    return _package_body(url, path, body, content_type)


def _package_body(url: str, path: str, body: bytes, content_type: str) -> LoadedPackage:
    yaml_first = path.endswith((".yaml", ".yml")) or "yaml" in content_type
    head = body[:256].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{") and not yaml_first:
        sample = head[:40].decode("utf-8", "replace").splitlines()[0] if head else ""
        raise FetchError(f"{url}: not a package (the server sent {content_type or 'no type'}"
                         f"{f', starting {sample!r}' if sample else ', empty'}); "
                         f"give the URL of a package.json")
    return read_package_data(url, body, yaml_first=yaml_first)


def fetch(url: str, *, timeout: float = TIMEOUT_SECONDS, limit: int = MAX_DOWNLOAD_BYTES,
          what: str = "package") -> tuple[bytes, str]:
    """The body and content type at ``url``; :class:`FetchError` in one line otherwise.
    ``what`` (package, module) names what the size limit is for."""
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise FetchError(f"{url}: no host in the URL")
    request = urllib.request.Request(url, headers={
        "User-Agent": f"ecc/{__version__}",
        "Accept": "application/json, application/yaml;q=0.9, application/wasm;q=0.9, "
                  "*/*;q=0.1",
    })
    opener = _opener()
    try:
        with opener.open(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type() \
                if response.headers.get("Content-Type") else ""
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise FetchError(f"{url}: the server sends {int(declared)} bytes, over the "
                                 f"{limit}-byte limit for a {what}; not a {what}")
            body = _read_limited(url, response, limit, what)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}; check the URL") from None
    except urllib.error.URLError as exc:
        raise FetchError(_connect_message(url, parts.hostname, parts.netloc, exc.reason,
                                          timeout)) from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise FetchError(f"{url}: the server broke the connection ({exc.__class__.__name__}"
                         f"{': ' + str(exc) if str(exc) else ''})") from None
    except TimeoutError:
        raise FetchError(f"{url}: no answer from {parts.netloc} within {timeout:g} s") from None
    return body, content_type


def _opener() -> urllib.request.OpenerDirector:
    """urllib's opener, following redirects to http(s) only (urllib would follow ftp://)."""
    import urllib.request

    class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int,
                             msg: str, headers: HTTPMessage, newurl: str,
                             ) -> urllib.request.Request | None:
            if not newurl.lower().startswith(("http://", "https://")):
                raise FetchError(f"{req.full_url}: redirected to {newurl}, not to http(s)")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(HttpOnlyRedirects())


def _read_limited(url: str, response: object, limit: int, what: str = "package") -> bytes:
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_SECONDS
    chunks: list[bytes] = []
    size = 0
    read = response.read  # type: ignore[attr-defined]
    while True:
        chunk = read(min(CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise FetchError(f"{url}: larger than the {limit}-byte limit for a {what}; "
                             f"not a {what}")
        if time.monotonic() > deadline:
            raise FetchError(f"{url}: still downloading after {DOWNLOAD_DEADLINE_SECONDS:g} s; "
                             f"giving up")


def _connect_message(url: str, host: str, netloc: str, reason: object, timeout: float) -> str:
    """One line per way a connection fails: DNS, refused, TLS, timeout."""
    import socket
    import ssl

    if isinstance(reason, socket.gaierror):
        return f"{url}: cannot resolve host '{host}' ({reason.strerror}); check the URL"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (f"{url}: TLS certificate of '{host}' not trusted "
                f"({reason.verify_message}); fix the server's certificate or use its http URL")
    if isinstance(reason, ssl.SSLError):
        return f"{url}: TLS with '{host}' failed ({reason.reason or reason})"
    if isinstance(reason, TimeoutError):
        return f"{url}: no answer from {netloc} within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"{url}: connection refused by {netloc}; is the server running?"
    if isinstance(reason, OSError):
        return f"{url}: cannot connect to {netloc} ({reason.strerror or reason})"
    return f"{url}: cannot fetch it ({reason})"
