"""Packages and WebAssembly modules in OCI registries: ``ecc push``, ``ecc pull``,
``ecc run REF``.

A package is stored as an OCI 1.1 artifact (README, "OCI registries"):

- manifest ``application/vnd.oci.image.manifest.v1+json`` with
  ``artifactType`` :data:`ARTIFACT_TYPE`;
- config: the OCI empty descriptor (``application/vnd.oci.empty.v1+json``, ``{}``),
  as the image spec advises for artifacts that need no config;
- one layer: the package file's bytes as given, media type :data:`LAYER_JSON`
  (or :data:`LAYER_YAML`), titled with the file's name;
- manifest annotations: the program's name, description and version (from its
  ``LICENSE`` doc comment), the target architecture and the compiler version.

A WebAssembly module (``ecc push APP.wasm REF``) is stored the way eunomia-bpf's
``ecli push`` stores one (its bpf-oci crate), so that each pulls the other's:

- manifest ``application/vnd.oci.image.manifest.v1+json``, no ``artifactType``
  (the config's media type names the kind, as OCI 1.1 reads it);
- config: :data:`WASM_CONFIG_TYPE` with the blob ``{}``;
- one layer: the module's bytes as given, media type :data:`WASM_LAYER`; ecli's
  pull takes the first layer of that type and refuses an artifact with any other;
- manifest annotation ``org.opencontainers.image.title``: the module's file name
  (ecli writes the path it was given). ecc also titles the layer with it, which
  ecli ignores and ``oras pull`` uses to name the file it writes.

Pulling takes an artifact with exactly one package layer, or exactly one wasm
layer; the module's first eight bytes must be WebAssembly's (magic and version 1)
on push and on pull.

The registry conversation itself (oras, requests, credentials) is in
:mod:`ecc.oci_registry`.

Everything is verified: the manifest against the digest asked for (``@sha256:``)
and the registry's ``Docker-Content-Digest``, the layer against its descriptor's
digest and size, and the package like any package file, before it is run or
written (temp file, then rename).
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from .arch import TARGET_ARCHES
from .errors import EccError, FetchError
from .oci_registry import MANIFEST_TYPE, _Registry, _sha256
from .package import write_atomic
from .package.embedded import WASM_MAGIC, wasm_problem
from .package.source import LoadedPackage, read_package_data

ARTIFACT_TYPE = "application/vnd.ecc.bpf.package.v1"
LAYER_JSON = "application/vnd.ecc.bpf.package.v1+json"
LAYER_YAML = "application/vnd.ecc.bpf.package.v1+yaml"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
# The wasm OCI artifact convention that eunomia-bpf's ecli reads and writes.
WASM_CONFIG_TYPE = "application/vnd.wasm.config.v1+json"
WASM_LAYER = "application/vnd.wasm.content.layer.v1+wasm"
WASM_CONFIG_BLOB = b"{}"

# Manifest annotation keys: the OCI ones where they fit, ours for the rest.
ANN_TITLE = "org.opencontainers.image.title"
ANN_DESCRIPTION = "org.opencontainers.image.description"
ANN_VERSION = "org.opencontainers.image.version"
ANN_ARCH = "vnd.ecc.bpf.arch"
ANN_OBJ_NAME = "vnd.ecc.bpf.obj_name"
ANN_ECC_VERSION = "vnd.ecc.bpf.ecc_version"

# Same bound as a package fetched by URL.
MAX_LAYER_BYTES = 64 * 1024 * 1024
MAX_PACKAGE_FILE_BYTES = 256 * 1024 * 1024

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
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


def make_module_manifest(module: bytes, file_name: str) -> bytes:
    """The manifest of a WebAssembly module, in the shape ecli's push gives it."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": _descriptor(WASM_CONFIG_TYPE, WASM_CONFIG_BLOB),
        "layers": [_descriptor(WASM_LAYER, module, annotations={ANN_TITLE: file_name})],
        "annotations": {ANN_TITLE: file_name},
    }
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()


def _push_target(ref_text: str) -> Reference:
    ref = parse_reference(ref_text)
    if ref.digest:
        raise FetchError(f"{ref_text}: push to a tag, not a digest (the registry computes it)")
    return ref


def _read_file(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise FetchError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FetchError(f"{path}: a directory, not a file") from None
    except OSError as exc:
        raise FetchError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > limit:
        raise FetchError(f"{path}: larger than the {limit}-byte limit for a registry layer")
    return data


def is_module_file(path: str) -> bool:
    """Whether ``ecc push PATH`` pushes a WebAssembly module: named ``*.wasm``, or its
    content starts with the wasm magic (a package file never does)."""
    if path.endswith(".wasm"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(len(WASM_MAGIC)) == WASM_MAGIC
    except OSError:
        return False  # push_package says why it cannot be read


def push_module(path: str, ref_text: str, *, plain_http: bool = False) -> str:
    """Push the WebAssembly module at ``path`` to ``ref_text``; the manifest digest."""
    ref = _push_target(ref_text)
    data = _read_file(path, MAX_LAYER_BYTES)
    problem = wasm_problem(data)
    if problem:
        raise FetchError(f"{path}: {problem}; nothing pushed")
    manifest = make_module_manifest(data, os.path.basename(path))
    return _push(ref, [WASM_CONFIG_BLOB, data], manifest, plain_http)


def push_package(path: str, ref_text: str, *, arch: str, plain_http: bool = False) -> str:
    """Push the package file at ``path`` to ``ref_text``; the manifest digest."""
    if arch not in TARGET_ARCHES:
        raise EccError(f"--arch {arch}: unknown; use one of {', '.join(TARGET_ARCHES)}")
    ref = _push_target(ref_text)
    data = _read_file(path, MAX_PACKAGE_FILE_BYTES)
    yaml = path.endswith((".yaml", ".yml"))
    if path.endswith((".skel.json", ".skel.yaml", ".skel.yml")):
        raise FetchError(f"{path}: push the package.json, not the .skel file")
    loaded = read_package_data(path, data, yaml_first=yaml)  # pushed only when it would run
    manifest = make_manifest(data, "package.yaml" if yaml else "package.json", yaml,
                             package_annotations(loaded.meta, arch))
    return _push(ref, [EMPTY_BLOB, data], manifest, plain_http)


def _push(ref: Reference, blobs: list[bytes], manifest: bytes, plain_http: bool) -> str:
    """Blobs first, then the manifest that names them; the manifest's digest."""
    digest = _sha256(manifest)
    with _Registry(ref, plain_http) as registry:
        for blob in blobs:
            registry.put_blob(blob)
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

    @property
    def file_name(self) -> str:
        """What ``ecc pull`` names it without ``-o``."""
        return "package.yaml" if self.yaml else "package.json"


@dataclass(frozen=True)
class PulledModule:
    reference: Reference
    data: bytes            # the module's bytes, verified (digest, size, wasm header)
    digest: str            # the manifest's
    manifest: dict[str, Any]

    @property
    def file_name(self) -> str:
        """``<repository's last component>.wasm``: ``ecc pull host/ecc/hello:v1`` writes
        ``hello.wasm``."""
        return self.reference.repository.rsplit("/", 1)[-1] + ".wasm"


def pull(ref_text: str, *, plain_http: bool = False) -> Pulled | PulledModule:
    """Fetch and verify what ``ref_text`` names: the manifest's digest, the layer's digest
    and size, then its content (a package is checked like any package file, a module's
    header must be WebAssembly's)."""
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
        module = layer["mediaType"] == WASM_LAYER
        what = "wasm layer" if module else "package layer"
        data = registry.get_blob(layer["digest"], layer["size"], what)
    if len(data) != layer["size"] or _sha256(data) != layer["digest"]:
        raise FetchError(f"{ref}: the {what} does not verify ({len(data)} bytes, "
                         f"{_sha256(data)}; the manifest says {layer['size']} bytes, "
                         f"{layer['digest']}); nothing written")
    if module:
        problem = wasm_problem(data)
        if problem:
            raise FetchError(f"{ref}: the wasm layer is {problem}; nothing written")
        return PulledModule(ref, data, digest, manifest)
    yaml = layer["mediaType"] == LAYER_YAML
    loaded = read_package_data(str(ref), data, yaml_first=yaml)
    return Pulled(ref, data, yaml, digest, manifest, loaded)


def pull_package(ref_text: str, *, plain_http: bool = False) -> Pulled:
    """Like :func:`pull`, for callers that take a package only."""
    pulled = pull(ref_text, plain_http=plain_http)
    if isinstance(pulled, PulledModule):
        raise FetchError(f"{pulled.reference}: a WebAssembly module, not an eBPF package; "
                         f"run it with ecc run {ref_text}")
    return pulled


def pull_to_file(ref_text: str, output: str | None, *,
                 plain_http: bool = False) -> tuple[Pulled | PulledModule, str]:
    """Pull, verify, then write through a temp file and a rename; nothing on failure.

    Without ``output``, into ``package.json`` (``.yaml``) or ``<repository>.wasm`` in
    the current folder; when ``output`` is a folder, under that name in it."""
    pulled = pull(ref_text, plain_http=plain_http)
    name = pulled.file_name
    path = output or name
    if os.path.isdir(path):
        path = os.path.join(path, name)
    try:
        write_atomic(path, pulled.data)
    except OSError as exc:
        raise FetchError(f"{path}: cannot write it ({exc.strerror})") from None
    return pulled, path


def _our_layer(ref: Reference, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest and its one package or wasm layer's descriptor, checked for shape."""
    try:
        manifest = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FetchError(f"{ref}: the registry sent a manifest that is not JSON") from None
    if not isinstance(manifest, dict):
        raise FetchError(f"{ref}: the registry sent a manifest that is not a JSON object")
    config = manifest.get("config")
    artifact = manifest.get("artifactType") or (
        config.get("mediaType") if isinstance(config, dict) else None)
    listed = manifest.get("layers")
    descriptors = [x for x in listed if isinstance(x, dict)] if isinstance(listed, list) else []
    packages = [x for x in descriptors if x.get("mediaType") in (LAYER_JSON, LAYER_YAML)]
    modules = [x for x in descriptors if x.get("mediaType") == WASM_LAYER]
    if len(packages) + len(modules) != 1:
        extra = f"; it has {len(modules)} wasm layers, ecc takes one" if len(modules) > 1 \
            else ""
        raise FetchError(f"{ref}: not an ecc package (artifact type {artifact!r}, "
                         f"media type {manifest.get('mediaType')!r}{extra}); push one with "
                         f"ecc push")
    layer = (packages or modules)[0]
    kind = "wasm layer" if modules else "package layer"
    size = layer.get("size")
    digest = layer.get("digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 \
            or not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise FetchError(f"{ref}: the {kind}'s descriptor has no sha256 digest and size")
    limit_what = "a module" if modules else "a package"
    if size > MAX_LAYER_BYTES:
        raise FetchError(f"{ref}: the {kind} is {size} bytes, over the "
                         f"{MAX_LAYER_BYTES}-byte limit for {limit_what}")
    return manifest, layer
