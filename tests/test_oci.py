"""`ecc push`, `ecc pull`, `ecc run REF` against a real registry on 127.0.0.1 (issue 10).

The registry is Debian's `docker-registry` (the CNCF distribution registry,
installed by scripts/install.sh --dev), started here on a free port with its
storage in a temp folder and stopped by its process id. A second one requires
credentials (htpasswd), which ecc must take from the Docker config.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builds import Built
from conftest import needs
from runner import EccRun, exec_row

from ecc import oci
from ecc.arch import host_arch

REGISTRY = shutil.which("docker-registry")
pytestmark = needs("registry")
# bcrypt of "s3cret" at cost 4: the registry checks it on every request, so keep it cheap.
HTPASSWD = "ecc:$2b$04$KHrq4nHemIuDrgSr.dGSy.ipA87aYLG9AEX5D8aLuoanq5j49proC\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_registry(folder: Path, auth: bool) -> Iterator[str]:
    port = _free_port()
    config = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
              "storage:", "  filesystem:", f"    rootdirectory: {folder / 'data'}",
              "http:", f"  addr: 127.0.0.1:{port}", "  secret: ecc-tests"]
    if auth:
        (folder / "htpasswd").write_text(HTPASSWD)
        config += ["auth:", "  htpasswd:", "    realm: ecc-tests",
                   f"    path: {folder / 'htpasswd'}"]
    (folder / "config.yml").write_text("\n".join(config) + "\n")
    log = open(folder / "registry.log", "wb")  # noqa: SIM115 - closed in the finalizer
    assert REGISTRY is not None
    proc = subprocess.Popen([REGISTRY, "serve", str(folder / "config.yml")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except urllib.error.HTTPError as exc:  # 401 with auth: it is up
                if exc.code == 401:
                    break
                raise
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"registry did not start: {(folder / 'registry.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_registry(tmp_path_factory.mktemp("registry"), auth=False)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_registry(tmp_path_factory.mktemp("registry-auth"), auth=True)


@pytest.fixture(scope="module")
def docker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty DOCKER_CONFIG folder, so the user's own credentials never take part."""
    return tmp_path_factory.mktemp("docker-config")


@pytest.fixture(scope="module")
def package(built: dict[str, Built]) -> Path:
    case = built["cases/example-bootstrap"]
    assert case.result is not None, case.error
    return case.package


def ecc(*args: str, config: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          timeout=60, check=False, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def pushed(registry: str, package: Path, docker_config: Path) -> tuple[str, str]:
    """bootstrap pushed as REGISTRY/ecc/bootstrap:v1; (reference, digest)."""
    ref = f"{registry}/ecc/bootstrap:v1"
    result = ecc("push", str(package), ref, "--plain-http", config=docker_config)
    assert result.returncode == 0, result.stderr
    digest = result.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), result.stdout
    assert result.stderr.splitlines() == [f"ecc: pushed {package} to {ref}"]
    return ref, digest


def _manifest(registry: str, repo: str, target: str) -> tuple[dict[str, Any], str, bytes]:
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{target}",
                                     headers={"Accept": oci.MANIFEST_TYPE})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        return json.loads(body), response.headers["Docker-Content-Digest"], body


def test_push_then_pull_is_byte_identical(pushed: tuple[str, str], package: Path,
                                          docker_config: Path, tmp_path: Path) -> None:
    ref, digest = pushed
    out = tmp_path / "pulled.json"
    result = ecc("pull", ref, "-o", str(out), "--plain-http", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digest
    assert out.read_bytes() == package.read_bytes()
    # By digest, with oci://, into a folder: the same bytes, verified against the digest.
    pinned = f"oci://{ref.rsplit(':', 1)[0]}@{digest}"
    result = ecc("pull", pinned, "-o", str(tmp_path), "--plain-http", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "package.json").read_bytes() == package.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package.json", "pulled.json"]


def test_manifest_is_an_oci_artifact_with_annotations(pushed: tuple[str, str], registry: str,
                                                      package: Path) -> None:
    ref, digest = pushed
    manifest, served_digest, body = _manifest(registry, "ecc/bootstrap", "v1")
    assert served_digest == digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == "application/vnd.ecc.bpf.package.v1"
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "data": "e30=",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
    data = package.read_bytes()
    assert manifest["layers"] == [{
        "mediaType": "application/vnd.ecc.bpf.package.v1+json",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data),
        "annotations": {"org.opencontainers.image.title": "package.json"}}]
    meta = json.loads(data)["meta"]
    assert manifest["annotations"] == {
        "org.opencontainers.image.title": "bootstrap",
        "org.opencontainers.image.description": "Trace process starts and exits.",
        "org.opencontainers.image.version": "0.1",
        "vnd.ecc.bpf.arch": host_arch(),
        "vnd.ecc.bpf.obj_name": "bootstrap_bpf",
        "vnd.ecc.bpf.ecc_version": meta["eunomia_version"],
    }


def test_run_by_reference_lists_options(pushed: tuple[str, str], package: Path,
                                        docker_config: Path) -> None:
    ref, _ = pushed
    by_ref = ecc("run", "--plain-http", ref, "--help", config=docker_config)
    by_file = ecc("run", str(package), "--help", config=docker_config)
    assert by_ref.returncode == 0, by_ref.stderr
    assert by_ref.stdout == by_file.stdout


@pytest.mark.kernel
def test_runs_by_reference(pushed: tuple[str, str], docker_config: Path, kernel: None,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    ref, _ = pushed
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    run = EccRun("--plain-http", "--json", "--duration", "6", ref)
    run.wait_ready()
    row = exec_row(run)
    assert row["comm"] == "true" and row["filename"] == "/bin/true"


def test_wrong_tag(pushed: tuple[str, str], registry: str, docker_config: Path,
                   tmp_path: Path) -> None:
    ref = f"{registry}/ecc/bootstrap:v9"
    result = ecc("pull", ref, "--plain-http", config=docker_config, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: not in the registry (MANIFEST_UNKNOWN: manifest unknown); "
        f"check the repository and tag"]
    assert list(tmp_path.iterdir()) == []


def test_unreachable_registry(package: Path, docker_config: Path) -> None:
    port = _free_port()  # nothing listens there
    ref = f"127.0.0.1:{port}/ecc/bootstrap:v1"
    start = time.monotonic()
    for args in (("run", "--plain-http", ref), ("push", str(package), ref, "--plain-http")):
        result = ecc(*args, config=docker_config)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"ecc: error: {ref}: cannot reach the registry at http://127.0.0.1:{port} "
            f"(connection refused)"]
    assert time.monotonic() - start < 10  # one attempt each, not oras's retries with sleeps


def test_https_to_a_plain_registry_says_plain_http(registry: str, docker_config: Path) -> None:
    ref = f"{registry}/ecc/bootstrap:v1"
    result = ecc("pull", ref, config=docker_config)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: TLS with the registry at https://{registry} failed "
        f"(WRONG_VERSION_NUMBER); for a registry without TLS add --plain-http"]


def _blob_file(registry_data: Path, digest: str) -> Path:
    hexdigest = digest.split(":", 1)[1]
    return (registry_data / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexdigest[:2]
            / hexdigest / "data")


def test_tampered_layer_is_not_written(registry: str, package: Path, docker_config: Path,
                                       tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                       ) -> None:
    """The registry's stored blob is changed behind its back: the pull refuses it."""
    # A package of its own (other bytes, same content), so no other test shares the blob.
    own = tmp_path / "package.json"
    own.write_text(json.dumps(json.loads(package.read_text()), indent=1))
    ref = f"{registry}/ecc/tampered:v1"
    assert ecc("push", str(own), ref, "--plain-http", config=docker_config).returncode == 0
    digest = "sha256:" + hashlib.sha256(own.read_bytes()).hexdigest()
    roots = list(Path(tmp_path_factory.getbasetemp()).glob("registry*/data"))
    blob = next(f for root in roots if (f := _blob_file(root, digest)).is_file())
    data = bytearray(blob.read_bytes())
    data[data.index(b'"bpf_object": "') + 20] ^= 0x01  # same size, one bit off
    blob.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    result = ecc("pull", ref, "-o", str(out / "package.json"), "--plain-http",
                 config=docker_config)
    assert result.returncode == 1
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: the package layer does not verify ({len(data)} bytes, {actual}; "
        f"the manifest says {len(data)} bytes, {digest}); nothing written"]
    assert list(out.iterdir()) == []


def test_pulled_content_is_checked_like_any_package(registry: str, package: Path,
                                                    docker_config: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A well-formed artifact whose package is broken: verified digests, but not written."""
    broken = json.loads(package.read_text())
    broken["bpf_object_size"] += 8
    data = json.dumps(broken).encode()
    ref = oci.parse_reference(f"{registry}/ecc/broken:v1")
    manifest = oci.make_manifest(data, "package.json", False, {})
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    # Pushed through ecc's own registry client: `ecc push` would refuse this package.
    with oci._Registry(ref, plain_http=True) as client:
        client.put_blob(oci.EMPTY_BLOB)
        client.put_blob(data)
        client.put_manifest(manifest)
    result = ecc("pull", str(ref), "--plain-http", config=docker_config, cwd=tmp_path)
    size = broken["bpf_object_size"]
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: package field 'bpf_object' inflates to {size - 8} bytes, "
        f"but 'bpf_object_size' says {size}"]
    assert list(tmp_path.iterdir()) == []


def test_credentials_come_from_docker_config(auth_registry: str, package: Path,
                                             tmp_path: Path) -> None:
    ref = f"{auth_registry}/ecc/private:v1"
    config = tmp_path / "docker"
    config.mkdir()
    result = ecc("push", str(package), ref, "--plain-http", config=config)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: the registry at http://{auth_registry} wants credentials; log in "
        f"(docker login {auth_registry}) or add them to {config / 'config.json'}"]

    def login(password: str) -> None:
        token = base64.b64encode(f"ecc:{password}".encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {auth_registry:
                                                                  {"auth": token}}}))

    login("s3cret")
    result = ecc("push", str(package), ref, "--plain-http", config=config)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "pulled.json"
    result = ecc("pull", ref, "--plain-http", "-o", str(out), config=config)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == package.read_bytes()

    login("wrong")
    result = ecc("pull", ref, "--plain-http", config=config, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: the registry at http://{auth_registry} refused the credentials "
        f"from {config / 'config.json'}; log in again (docker login {auth_registry})"]


def test_reference_syntax() -> None:
    assert oci.looks_like_reference("127.0.0.1:5000/ecc/bootstrap:v1")
    assert oci.looks_like_reference("localhost/bootstrap@sha256:" + "a" * 64)
    assert oci.looks_like_reference("ghcr.io/org/prog:1.0")
    assert not oci.looks_like_reference("build.d/package.json")   # no tag: a file name
    assert not oci.looks_like_reference("examples/prog:v1")       # no registry host
    assert not oci.looks_like_reference("package.json")
    ref = oci.parse_reference("oci://127.0.0.1:5000/a/b")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000", "a/b", "latest", None)
    with pytest.raises(oci.FetchError, match="not an OCI reference"):
        oci.parse_reference("oci://Not A Ref")


def test_other_artifacts_are_not_packages(registry: str, docker_config: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An OCI artifact of another kind (here an image-like manifest) is refused by name."""
    layer = b"not a package"
    ref = oci.parse_reference(f"{registry}/ecc/other:v1")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": oci.MANIFEST_TYPE,
        "artifactType": "application/vnd.example.thing.v1",
        "config": {"mediaType": oci.EMPTY_TYPE, "size": 2,
                   "digest": "sha256:" + hashlib.sha256(oci.EMPTY_BLOB).hexdigest()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}],
    }).encode()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    with oci._Registry(ref, plain_http=True) as client:
        client.put_blob(oci.EMPTY_BLOB)
        client.put_blob(layer)
        client.put_manifest(manifest)
    result = ecc("pull", str(ref), "--plain-http", config=docker_config, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: not an ecc package (artifact type "
        f"'application/vnd.example.thing.v1', media type "
        f"'application/vnd.oci.image.manifest.v1+json'); push one with ecc push"]
    assert list(tmp_path.iterdir()) == []
