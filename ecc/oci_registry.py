"""The registry side of :mod:`ecc.oci`: one conversation with an OCI registry's HTTP API,
and the credentials it needs from the Docker config.

The only user of the ``oras`` SDK (and of ``requests``, which it speaks through).
oras gives the reference-to-URL mapping, the request helper with its
authentication dance and the blob existence check; its high-level ``push`` cannot
set ``artifactType``, so the manifest is written in :mod:`ecc.oci`. Its request helper
is called without its retry decorator, which sleeps up to two minutes before
reporting an unreachable registry, and every request has a timeout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import EccError, FetchError

if TYPE_CHECKING:  # ecc.oci imports this module: the reference is only annotated here
    from .oci import Reference

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
TIMEOUT_SECONDS = 30.0
# A manifest is a few hundred bytes.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _docker_credentials(host: str) -> tuple[str, str] | None | bool:
    """(user, password) from the Docker config; True when a credential helper has them."""
    path = docker_config_path()
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, ValueError) as exc:
        raise FetchError(f"{path}: not a readable Docker config ({exc}); fix or move it") from None
    if not isinstance(config, dict):
        raise FetchError(f"{path}: not a Docker config (not a JSON object); fix or move it")
    auths = config.get("auths") or {}
    for key in (host, f"https://{host}", f"http://{host}", f"{host}/v1/", f"https://{host}/v1/"):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise FetchError(f"{path}: auths.{key}.auth is not base64 of "
                                 f"user:password; log in again (docker login {host})") from None
            return user, password
        if entry.get("username") and entry.get("password"):
            return str(entry["username"]), str(entry["password"])
    if (config.get("credHelpers") or {}).get(host) or config.get("credsStore"):
        return True
    return None


class _Registry:
    """One registry conversation through oras, with one-line errors for every failure."""

    def __init__(self, ref: Reference, plain_http: bool) -> None:
        try:
            import oras.provider
            import requests
        except ImportError:
            raise EccError("OCI registries need the oras package: pip install oras") from None
        self.ref = ref
        self.plain_http = plain_http
        self.base = f"{'http' if plain_http else 'https'}://{ref.registry}"
        self._requests = requests
        self.headers: dict[str, str] = {}
        scheme = self._challenge()
        registry = _unretried_registry(oras.provider.Registry)(
            hostname=ref.registry, insecure=plain_http,
            auth_backend="basic" if scheme == "basic" else "token")
        session = _timeout_session(requests)
        registry.session = session
        registry.auth.session = session
        name = f"{ref.repository}@{ref.digest}" if ref.digest else f"{ref.repository}:{ref.tag}"
        # oras finds credentials by the container's registry; ours is parsed already (oras
        # would take a first path component with a dot for a host).
        self.container = registry.get_container(name)
        self.container.registry = ref.registry
        self.registry = registry
        creds = _docker_credentials(ref.registry)
        if creds is True:  # a credential helper: oras runs docker-credential-<name>
            registry.auth.load_configs(self.container, configs=[docker_config_path()])
        elif isinstance(creds, tuple):
            registry.auth.set_basic_auth(*creds)
        self.has_credentials = creds is not None
        if scheme == "basic":
            try:  # sent up front: basic auth needs no challenge round trip per request
                self.headers = registry.auth.get_auth_header()
            except AttributeError:  # oras's basic backend without credentials
                self.has_credentials = False
                raise self._denied() from None

    def __enter__(self) -> _Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.registry.session.close()

    def _challenge(self) -> str | None:
        """Ping /v2/ (as docker does): reachability first, and which auth scheme it wants."""
        response = self._request("GET", f"{self.base}/v2/", "ping", raw=True)
        if response.status_code == 401:
            header = response.headers.get("Www-Authenticate", "")
            return header.split(" ", 1)[0].lower() or None
        if response.status_code != 200:
            raise self._status_error(response, "the registry API check (/v2/)")
        return None

    def _request(self, method: str, url: str, what: str, *, raw: bool = False,
                 **kwargs: Any) -> Any:
        requests = self._requests
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            if raw:
                with requests.Session() as session:
                    return session.request(method, url, headers=headers,
                                           timeout=TIMEOUT_SECONDS, **kwargs)
            return self.registry.do_request(url, method, headers=headers, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise FetchError(
                f"{self.ref}: TLS with the registry at {self.base} failed ({_cause(exc)}); "
                f"for a registry without TLS add --plain-http") from None
        except requests.exceptions.Timeout:
            raise FetchError(f"{self.ref}: the registry at {self.base} did not answer within "
                             f"{TIMEOUT_SECONDS:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise FetchError(f"{self.ref}: cannot reach the registry at {self.base} "
                             f"({_cause(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise FetchError(f"{self.ref}: request to {self.base} failed ({exc})") from None
        except ValueError as exc:  # oras: "Cannot respond to request for authentication."
            raise FetchError(f"{self.ref}: {what} failed: {exc}") from None

    def _denied(self) -> FetchError:
        if self.has_credentials:
            return FetchError(f"{self.ref}: the registry at {self.base} refused the credentials "
                              f"from {docker_config_path()}; log in again "
                              f"(docker login {self.ref.registry})")
        return FetchError(f"{self.ref}: the registry at {self.base} wants credentials; log in "
                          f"(docker login {self.ref.registry}) or add them to "
                          f"{docker_config_path()}")

    def _status_error(self, response: Any, what: str) -> FetchError:
        if response.status_code in (401, 403):
            return self._denied()
        detail = ""
        try:
            errors = response.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors
                               if isinstance(e, dict))
        except (ValueError, AttributeError):
            detail = ""
        detail = detail or f"HTTP {response.status_code} {response.reason}"
        if response.status_code == 404 and what == "manifest":
            return FetchError(f"{self.ref}: not in the registry ({detail}); check the "
                              f"repository and tag")
        return FetchError(f"{self.ref}: the registry refused {what} (HTTP "
                          f"{response.status_code}: {detail})")

    def put_blob(self, data: bytes) -> None:
        digest = _sha256(data)
        url = f"{self.base}/v2/{self.ref.repository}/blobs/{digest}"
        if self._request("HEAD", url, "blob check").status_code == 200:
            return
        start = self._request("POST", f"{self.base}/v2/{self.ref.repository}/blobs/uploads/",
                              "blob upload", headers={"Content-Length": "0"})
        if start.status_code != 202 or not start.headers.get("Location"):
            raise self._status_error(start, "the blob upload")
        location = start.headers["Location"]
        if not location.startswith(("http://", "https://")):
            location = self.base + location
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        done = self._request("PUT", location, "blob upload", data=data, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        if done.status_code != 201:
            raise self._status_error(done, "the blob upload")

    def put_manifest(self, body: bytes) -> str | None:
        url = f"{self.base}/v2/{self.ref.repository}/manifests/{self.ref.target}"
        response = self._request("PUT", url, "manifest upload", data=body,
                                 headers={"Content-Type": MANIFEST_TYPE})
        if response.status_code != 201:
            raise self._status_error(response, "the manifest")
        return response.headers.get("Docker-Content-Digest")  # type: ignore[no-any-return]

    def get_manifest(self) -> tuple[bytes, str | None]:
        url = f"{self.base}/v2/{self.ref.repository}/manifests/{self.ref.target}"
        response = self._request("GET", url, "manifest", stream=True,
                                 headers={"Accept": MANIFEST_TYPE})
        with response:
            if response.status_code != 200:
                raise self._status_error(response, "manifest")
            body = self._read(response, MAX_MANIFEST_BYTES, "manifest")
            return body, response.headers.get("Docker-Content-Digest")

    def get_blob(self, digest: str, size: int, what: str = "package layer") -> bytes:
        url = f"{self.base}/v2/{self.ref.repository}/blobs/{digest}"
        response = self._request("GET", url, "blob", stream=True)
        with response:
            if response.status_code != 200:
                raise self._status_error(response, f"the blob {digest}")
            return self._read(response, size, what)

    def _read(self, response: Any, limit: int, what: str) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(chunk_size=1 << 20):
                total += len(chunk)
                if total > limit:
                    raise FetchError(f"{self.ref}: the {what} is larger than the "
                                     f"{limit} bytes announced; nothing written")
                chunks.append(chunk)
        except self._requests.exceptions.RequestException as exc:
            raise FetchError(f"{self.ref}: the download of the {what} broke off "
                             f"({_cause(exc)})") from None
        return b"".join(chunks)


def _cause(exc: BaseException) -> str:
    """The innermost OS-level reason (refused, DNS, TLS) behind requests' wrapped errors."""
    import socket
    import ssl

    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return f"cannot resolve the host: {current.strerror}"
        if isinstance(current, ssl.SSLError):
            return str(current.reason or current)
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *(a for a in current.args if isinstance(a, BaseException))]
        todo.extend(n for n in nested if isinstance(n, BaseException))
    return str(exc)


def _timeout_session(requests: Any) -> Any:
    """A requests session whose every request has a timeout (oras sets none)."""

    class TimeoutSession(requests.Session):  # type: ignore[misc]
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", TIMEOUT_SECONDS)
            return super().request(*args, **kwargs)

    session = TimeoutSession()
    session.headers["User-Agent"] = f"ecc/{__version__} (oras-py)"
    from http.cookiejar import DefaultCookiePolicy

    # As oras does: some registries set cookies and then expect CSRF tokens.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def _unretried_registry(base: Any) -> Any:
    """oras's Registry whose do_request is the undecorated one: no retry with long sleeps."""

    class Registry(base):  # type: ignore[misc]
        def do_request(self, url: str, method: str = "GET", data: Any = None,
                       headers: dict[str, str] | None = None, json: Any = None,
                       stream: bool = False) -> Any:
            return base.do_request.__wrapped__(self, url, method, data, headers, json, stream)

    return Registry

