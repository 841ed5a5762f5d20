"""Packages in OCI registries: ``ecc push``, ``ecc pull`` and ``ecc run REF``.

A package is stored as an OCI 1.1 artifact (README, "OCI registries"):

- manifest ``application/vnd.oci.image.manifest.v1+json`` with
  ``artifactType`` :data:`ARTIFACT_TYPE`;
- config: the OCI empty descriptor (``application/vnd.oci.empty.v1+json``, ``{}``),
  as the image spec advises for artifacts that need no config;
- one layer: the package file's bytes as given, media type :data:`LAYER_JSON`
  (or :data:`LAYER_YAML`), titled with the file's name;
- manifest annotations: the program's name, description and version (from its
  ``LICENSE`` doc comment), the target architecture and the compiler version.

The only user of the ``oras`` SDK (and of ``requests``, which it speaks through).
oras gives the reference-to-URL mapping, the request helper with its
authentication dance and the blob existence check; its high-level ``push`` cannot
set ``artifactType``, so the manifest is written here. Its request helper is
called without its retry decorator, which sleeps up to two minutes before
reporting an unreachable registry, and every request has a timeout.

Everything is verified: the manifest against the digest asked for (``@sha256:``)
and the registry's ``Docker-Content-Digest``, the layer against its descriptor's
digest and size, and the package like any package file, before it is run or
written (temp file, then rename).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from . import __version__
from .arch import TARGET_ARCHES
from .errors import EccError, FetchError
from .package import write_atomic
from .package.source import LoadedPackage, read_package_data

ARTIFACT_TYPE = "application/vnd.ecc.bpf.package.v1"
LAYER_JSON = "application/vnd.ecc.bpf.package.v1+json"
LAYER_YAML = "application/vnd.ecc.bpf.package.v1+yaml"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"

# Manifest annotation keys: the OCI ones where they fit, ours for the rest.
ANN_TITLE = "org.opencontainers.image.title"
ANN_DESCRIPTION = "org.opencontainers.image.description"
ANN_VERSION = "org.opencontainers.image.version"
ANN_ARCH = "vnd.ecc.bpf.arch"
ANN_OBJ_NAME = "vnd.ecc.bpf.obj_name"
ANN_ECC_VERSION = "vnd.ecc.bpf.ecc_version"

TIMEOUT_SECONDS = 30.0
# Same bound as a package fetched by URL; a manifest is a few hundred bytes.
MAX_LAYER_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_PACKAGE_FILE_BYTES = 256 * 1024 * 1024

_HOST = r"(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?" \
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?P<registry>{_HOST})/(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?")


@dataclass(frozen=True)
class Reference:
    registry: str          # host[:port]
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}"
        if self.tag:
            name += f":{self.tag}"
        return name + (f"@{self.digest}" if self.digest else "")

    @property
    def target(self) -> str:
        """What the manifest URL names: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"


def _is_registry_host(host: str) -> bool:
    # Docker's rule: a first component is a registry when it has a dot or a port,
    # or is localhost; `ecc run foo/bar:1` is a file name, not a registry.
    return "." in host or ":" in host or host == "localhost"


def looks_like_reference(text: str) -> bool:
    """``host[:port]/repo:tag`` or ``...@sha256:...``: a registry reference, not a file name."""
    match = _REFERENCE.fullmatch(text)
    return bool(match and (match["tag"] or match["digest"])
                and _is_registry_host(match["registry"]))


def parse_reference(text: str) -> Reference:
    bare = text[len("oci://"):] if text.startswith("oci://") else text
    match = _REFERENCE.fullmatch(bare)
    if not match or not _is_registry_host(match["registry"]):
        raise FetchError(f"{text}: not an OCI reference; write "
                         f"HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]")
    tag = match["tag"] or (None if match["digest"] else "latest")
    return Reference(match["registry"], match["repository"], tag, match["digest"])


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, blob: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _sha256(blob), "size": len(blob), **extra}


def package_annotations(meta: dict[str, Any], arch: str) -> dict[str, str]:
    """The manifest's annotations: what a registry UI or ``oras manifest fetch`` shows."""
    skel = meta.get("bpf_skel") or {}
    obj_name = str(skel.get("obj_name", ""))
    raw_doc = skel.get("doc")
    doc: dict[str, Any] = raw_doc if isinstance(raw_doc, dict) else {}
    name = obj_name[: -len("_bpf")] if obj_name.endswith("_bpf") else obj_name
    annotations = {ANN_TITLE: name, ANN_OBJ_NAME: obj_name, ANN_ARCH: arch}
    description = doc.get("brief") or doc.get("description")
    if description:
        annotations[ANN_DESCRIPTION] = str(description)
    if doc.get("version") is not None:
        annotations[ANN_VERSION] = str(doc["version"])
    if meta.get("eunomia_version"):
        annotations[ANN_ECC_VERSION] = str(meta["eunomia_version"])
    return annotations


def make_manifest(package: bytes, file_name: str, yaml: bool,
                  annotations: dict[str, str]) -> bytes:
    """The manifest's exact bytes: its digest is the sha256 of these."""
    layer = _descriptor(LAYER_YAML if yaml else LAYER_JSON, package,
                        annotations={ANN_TITLE: file_name})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": _descriptor(EMPTY_TYPE, EMPTY_BLOB,
                              data=base64.b64encode(EMPTY_BLOB).decode()),
        "layers": [layer],
        "annotations": annotations,
    }
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()


def push_package(path: str, ref_text: str, *, arch: str, plain_http: bool = False) -> str:
    """Push the package file at ``path`` to ``ref_text``; the manifest digest."""
    if arch not in TARGET_ARCHES:
        raise EccError(f"--arch {arch}: unknown; use one of {', '.join(TARGET_ARCHES)}")
    ref = parse_reference(ref_text)
    if ref.digest:
        raise FetchError(f"{ref_text}: push to a tag, not a digest (the registry computes it)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PACKAGE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FetchError(f"{path}: no such file") from None
    except OSError as exc:
        raise FetchError(f"{path}: cannot read it ({exc.strerror})") from None
    yaml = path.endswith((".yaml", ".yml"))
    if path.endswith((".skel.json", ".skel.yaml", ".skel.yml")):
        raise FetchError(f"{path}: push the package.json, not the .skel file")
    loaded = read_package_data(path, data, yaml_first=yaml)  # pushed only when it would run
    manifest = make_manifest(data, "package.yaml" if yaml else "package.json", yaml,
                             package_annotations(loaded.meta, arch))
    digest = _sha256(manifest)
    with _Registry(ref, plain_http) as registry:
        registry.put_blob(EMPTY_BLOB)
        registry.put_blob(data)
        answered = registry.put_manifest(manifest)
    if answered and answered != digest:
        raise FetchError(f"{ref}: the registry stored the manifest as {answered}, but its "
                         f"content is {digest}; the registry changed it")
    return digest


@dataclass(frozen=True)
class Pulled:
    reference: Reference
    data: bytes            # the package file's bytes, verified
    yaml: bool
    digest: str            # the manifest's
    manifest: dict[str, Any]
    loaded: LoadedPackage  # checked like any package


def pull_package(ref_text: str, *, plain_http: bool = False) -> Pulled:
    """Fetch and verify a package: manifest digest, layer digest and size, package content."""
    ref = parse_reference(ref_text)
    with _Registry(ref, plain_http) as registry:
        body, announced = registry.get_manifest()
        digest = _sha256(body)
        if ref.digest and digest != ref.digest:
            raise FetchError(f"{ref}: the registry sent a manifest whose digest is {digest}, "
                             f"not the one asked for; nothing written")
        if announced and announced != digest:
            raise FetchError(f"{ref}: the manifest's content is {digest}, but the registry "
                             f"says {announced}; nothing written")
        manifest, layer = _our_layer(ref, body)
        data = registry.get_blob(layer["digest"], layer["size"])
    if len(data) != layer["size"] or _sha256(data) != layer["digest"]:
        raise FetchError(f"{ref}: the package layer does not verify ({len(data)} bytes, "
                         f"{_sha256(data)}; the manifest says {layer['size']} bytes, "
                         f"{layer['digest']}); nothing written")
    yaml = layer["mediaType"] == LAYER_YAML
    loaded = read_package_data(str(ref), data, yaml_first=yaml)
    return Pulled(ref, data, yaml, digest, manifest, loaded)


def pull_to_file(ref_text: str, output: str | None, *,
                 plain_http: bool = False) -> tuple[Pulled, str]:
    """Pull, verify, then write through a temp file and a rename; nothing on failure."""
    pulled = pull_package(ref_text, plain_http=plain_http)
    name = "package.yaml" if pulled.yaml else "package.json"
    path = output or name
    if os.path.isdir(path):
        path = os.path.join(path, name)
    try:
        write_atomic(path, pulled.data)
    except OSError as exc:
        raise FetchError(f"{path}: cannot write it ({exc.strerror})") from None
    return pulled, path


def _our_layer(ref: Reference, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        manifest = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise FetchError(f"{ref}: the registry sent a manifest that is not JSON") from None
    if not isinstance(manifest, dict):
        raise FetchError(f"{ref}: the registry sent a manifest that is not a JSON object")
    artifact = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
    layers = [x for x in manifest.get("layers") or []
              if isinstance(x, dict) and x.get("mediaType") in (LAYER_JSON, LAYER_YAML)]
    if len(layers) != 1:
        raise FetchError(f"{ref}: not an ecc package (artifact type {artifact!r}, "
                         f"media type {manifest.get('mediaType')!r}); push one with ecc push")
    layer = layers[0]
    if not isinstance(layer.get("size"), int) or not isinstance(layer.get("digest"), str) \
            or not layer["digest"].startswith("sha256:"):
        raise FetchError(f"{ref}: the package layer's descriptor has no sha256 digest and size")
    if layer["size"] > MAX_LAYER_BYTES:
        raise FetchError(f"{ref}: the package layer is {layer['size']} bytes, over the "
                         f"{MAX_LAYER_BYTES}-byte limit for a package")
    return manifest, layer


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

    def get_blob(self, digest: str, size: int) -> bytes:
        url = f"{self.base}/v2/{self.ref.repository}/blobs/{digest}"
        response = self._request("GET", url, "blob", stream=True)
        with response:
            if response.status_code != 200:
                raise self._status_error(response, f"the blob {digest}")
            return self._read(response, size, "package layer")

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

