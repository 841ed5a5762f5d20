"""Shipping WebAssembly programs (issue 20): OCI registries, URLs, standalone files.

Real everything: the guest (tests/data/wasm_ship/ship.c) is built with `ecc build
examples/globals ... --wasm ship.c -s`; the registry is test_oci's (Debian's
docker-registry on 127.0.0.1, its fixture imported from there); URLs are served by
http.server on 127.0.0.1; modules run in wasmtime through `python -m ecc run`, and
the guest's `load` really loads the globals object into the kernel.

The module artifact is eunomia-bpf's (ecli push/pull, its bpf-oci crate): config
application/vnd.wasm.config.v1+json holding `{}`, one layer
application/vnd.wasm.content.layer.v1+wasm, the title annotation on the manifest.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT, needs
from test_oci import _manifest, docker_config, ecc, registry  # noqa: F401 - fixtures

from ecc import oci
from ecc.errors import FetchError
from ecc.package.embedded import wasm_problem

DATA = ROOT / "tests" / "data" / "wasm_ship"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"

pytestmark = needs("wasm", "clang")
on_registry = needs("registry")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    """globals + --wasm ship.c -s: globals.wasm and its standalone globals.out."""
    out = tmp_path_factory.mktemp("wasm-ship")
    src = EXAMPLES / "globals"
    result = subprocess.run(
        [sys.executable, "-m", "ecc", "build", str(src / "globals.bpf.c"),
         str(src / "globals.h"), "--wasm", str(DATA / "ship.c"), "-s", "-o", str(out)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def module(built: Path) -> Path:
    path = built / "globals.wasm"
    assert wasm_problem(path.read_bytes()) is None
    return path


@pytest.fixture(scope="module")
def pushed(registry: str, module: Path, docker_config: Path) -> tuple[str, str]:  # noqa: F811
    """globals.wasm pushed as REGISTRY/ecc/ship:v1; (reference, digest)."""
    ref = f"{registry}/ecc/ship:v1"
    result = ecc("push", str(module), ref, "--plain-http", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"ecc: pushed {module} to {ref}"]
    digest = result.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), result.stdout
    return ref, digest


def _push_raw(host: str, repo_tag: str, blobs: list[bytes], manifest: dict[str, Any],
              config: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Blobs and a manifest written as given, through ecc's registry client (ecc push
    would refuse what the refusal tests need); the reference."""
    ref = oci.parse_reference(f"{host}/{repo_tag}")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with oci._Registry(ref, plain_http=True) as client:
        for blob in blobs:
            client.put_blob(blob)
        client.put_manifest(json.dumps(manifest).encode())
    return str(ref)


def _ecli_manifest(module: bytes, title: str, *, layer_type: str = oci.WASM_LAYER,
                   media_type: bool = False) -> dict[str, Any]:
    """A manifest in the shape ecli's push writes (oci-distribution's OciImageManifest::build
    with the wasm config and layer, the title annotation on the manifest only; its older
    releases leave mediaType out)."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "config": {"mediaType": oci.WASM_CONFIG_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": layer_type, "digest": _sha(module), "size": len(module)}],
        "annotations": {"org.opencontainers.image.title": title},
    }
    if media_type:
        manifest = {"schemaVersion": 2, "mediaType": oci.MANIFEST_TYPE,
                    **{k: v for k, v in manifest.items() if k != "schemaVersion"}}
    return manifest


# --- OCI -----------------------------------------------------------------------------

@on_registry
def test_push_then_pull_is_byte_identical(pushed: tuple[str, str], module: Path,
                                          docker_config: Path,  # noqa: F811
                                          tmp_path: Path) -> None:
    ref, digest = pushed
    # No -o: <repository's last component>.wasm in the current folder.
    result = ecc("pull", ref, "--plain-http", config=docker_config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digest
    assert result.stderr.splitlines() == [f"ecc: pulled {ref} to ship.wasm"]
    assert (tmp_path / "ship.wasm").read_bytes() == module.read_bytes()
    # -o FILE, by digest with oci://: the same bytes, the manifest checked against it.
    pinned = f"oci://{ref.rsplit(':', 1)[0]}@{digest}"
    out = tmp_path / "by-digest.wasm"
    result = ecc("pull", pinned, "-o", str(out), "--plain-http", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == module.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by-digest.wasm", "ship.wasm"]


@on_registry
def test_module_forms_of_push_make_the_same_artifact(pushed: tuple[str, str], registry: str,  # noqa: F811
                                                     module: Path, docker_config: Path,  # noqa: F811
                                                     tmp_path: Path) -> None:
    """`--module APP.wasm REF` is ecli's form; a file not named .wasm is recognised by its
    content. The manifest depends on the bytes and the file name only."""
    _, digest = pushed
    by_flag = ecc("push", "--module", str(module), f"{registry}/ecc/ship:flag",
                  "--plain-http", config=docker_config)
    assert by_flag.returncode == 0, by_flag.stderr
    assert by_flag.stdout.strip() == digest
    renamed = tmp_path / "globals.bin"
    shutil.copy(module, renamed)
    by_content = ecc("push", str(renamed), f"{registry}/ecc/ship:content", "--plain-http",
                     config=docker_config)
    assert by_content.returncode == 0, by_content.stderr
    manifest, served, _ = _manifest(registry, "ecc/ship", "content")
    assert served == by_content.stdout.strip()
    assert manifest["layers"][0]["mediaType"] == "application/vnd.wasm.content.layer.v1+wasm"
    assert manifest["annotations"] == {"org.opencontainers.image.title": "globals.bin"}
    # --arch belongs to packages; both positionals and --module is one too many.
    for args in (("push", str(module), f"{registry}/ecc/ship:x", "--arch", "x86_64"),
                 ("push", "--module", str(module), str(module), f"{registry}/ecc/ship:x")):
        refused = ecc(*args, "--plain-http", config=docker_config)
        assert refused.returncode == 2 and "Error: " in refused.stderr, refused.stderr


@on_registry
def test_manifest_has_the_wasm_media_types(pushed: tuple[str, str], registry: str,  # noqa: F811
                                           module: Path) -> None:
    ref, digest = pushed
    manifest, served_digest, body = _manifest(registry, "ecc/ship", "v1")
    assert served_digest == digest == _sha(body)
    data = module.read_bytes()
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v1+json",
                   "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm",
                    "digest": _sha(data), "size": len(data),
                    "annotations": {"org.opencontainers.image.title": "globals.wasm"}}],
        "annotations": {"org.opencontainers.image.title": "globals.wasm"},
    }
    # The config blob is there, and is `{}` (ecli's pull fetches it).
    with urllib.request.urlopen(f"http://{registry}/v2/ecc/ship/blobs/{EMPTY_DIGEST}",
                                timeout=10) as response:
        assert response.read() == b"{}"


@on_registry
def test_runs_by_reference(pushed: tuple[str, str], docker_config: Path) -> None:  # noqa: F811
    ref, _ = pushed
    result = ecc("run", "--plain-http", ref, "one", "two words", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ship: 2 args [one] [two words]"]
    assert result.stderr == ""
    # The guest's exit status is ecc's.
    failed = ecc("run", "--plain-http", ref, "fail", config=docker_config)
    assert (failed.returncode, failed.stdout) == (3, "ship: 1 args [fail]\n")


@on_registry
@pytest.mark.kernel
def test_runs_by_reference_and_loads(pushed: tuple[str, str], docker_config: Path,  # noqa: F811
                                     kernel: None) -> None:
    ref, _ = pushed
    result = ecc("run", "--plain-http", ref, "load", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ship: 1 args [load]",
                                          "ship: loaded, greeting=shipped"]


@on_registry
@pytest.mark.parametrize("media_type", [False, True], ids=["no-mediaType", "mediaType"])
def test_pulls_and_runs_what_ecli_pushes(registry: str, module: Path,  # noqa: F811
                                         docker_config: Path, tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch,
                                         media_type: bool) -> None:
    data = module.read_bytes()
    ref = _push_raw(registry, f"ecc/from-ecli:{int(media_type)}", [b"{}", data],
                    _ecli_manifest(data, "app.wasm", media_type=media_type), docker_config,
                    monkeypatch)
    out = tmp_path / "app.wasm"
    result = ecc("pull", ref, "-o", str(out), "--plain-http", config=docker_config)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == data
    run = ecc("run", "--plain-http", ref, "hi", config=docker_config)
    assert (run.returncode, run.stdout) == (0, "ship: 1 args [hi]\n"), run.stderr


@on_registry
def test_push_refuses_what_is_not_wasm(registry: str, docker_config: Path,  # noqa: F811
                                       tmp_path: Path) -> None:
    ref = f"{registry}/ecc/not-wasm:v1"
    fake = tmp_path / "fake.wasm"
    fake.write_bytes(b"<html>not a module</html>")
    component = tmp_path / "component.wasm"
    component.write_bytes(COMPONENT_HEADER + b"\0" * 8)
    for path, why in (
            (fake, "not a WebAssembly module (it starts b'<html>no', not b'\\x00asm')"),
            (component, "a WebAssembly component, not a module; ecc runs core modules "
                        "(version 1)")):
        result = ecc("push", str(path), ref, "--plain-http", config=docker_config)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [f"ecc: error: {path}: {why}; nothing pushed"]
    # Nothing reached the registry.
    with pytest.raises(urllib.error.HTTPError) as caught:
        _manifest(registry, "ecc/not-wasm", "v1")
    assert caught.value.code == 404


@on_registry
@pytest.mark.parametrize(("blob", "why"), [
    (b"\x7fELF\x02\x01\x01\0not wasm",
     "not a WebAssembly module (it starts b'\\x7fELF\\x02\\x01\\x01\\x00', not b'\\x00asm')"),
    (b"\0asm\x02\0\0\0", "not a WebAssembly module of version 1 (its header says version 2)"),
    (b"\0as", "not a WebAssembly module (it starts b'\\x00as', not b'\\x00asm')"),
], ids=["elf", "version-2", "short"])
def test_pull_refuses_a_wasm_layer_that_is_not_wasm(registry: str,  # noqa: F811
                                                    docker_config: Path,  # noqa: F811
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    blob: bytes, why: str) -> None:
    tag = hashlib.sha256(blob).hexdigest()[:12]
    ref = _push_raw(registry, f"ecc/bad-layer:{tag}", [b"{}", blob],
                    _ecli_manifest(blob, "app.wasm"), docker_config, monkeypatch)
    for args in (("pull", ref, "--plain-http"), ("run", "--plain-http", ref)):
        result = ecc(*args, config=docker_config, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"ecc: error: {ref}: the wasm layer is {why}; nothing written"]
        assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@on_registry
def test_pull_refuses_manifests_without_one_usable_layer(registry: str,  # noqa: F811
                                                         module: Path,
                                                         docker_config: Path,  # noqa: F811
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    """Two wasm layers, or a wasm module under another layer type: refused by name."""
    data = module.read_bytes()
    two = _ecli_manifest(data, "app.wasm")
    two["layers"] = two["layers"] * 2
    ref = _push_raw(registry, "ecc/two-layers:v1", [b"{}", data], two, docker_config,
                    monkeypatch)
    result = ecc("pull", ref, "--plain-http", config=docker_config, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: not an ecc package (artifact type "
        f"'application/vnd.wasm.config.v1+json', media type None; it has 2 wasm layers, "
        f"ecc takes one); push one with ecc push"]
    other = _ecli_manifest(data, "app.wasm", layer_type="application/wasm")
    ref = _push_raw(registry, "ecc/other-type:v1", [b"{}", data], other, docker_config,
                    monkeypatch)
    result = ecc("run", "--plain-http", ref, config=docker_config, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {ref}: not an ecc package (artifact type "
        f"'application/vnd.wasm.config.v1+json', media type None); push one with ecc push"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("body", "why"), [
    (b"[" * 100000, "the registry sent a manifest that is not JSON"),
    (b'"a string"', "the registry sent a manifest that is not a JSON object"),
    (json.dumps({"config": "x", "layers": 7}).encode(),
     "not an ecc package (artifact type None, media type None); push one with ecc push"),
    (json.dumps({"layers": [{"mediaType": oci.WASM_LAYER, "size": -1,
                             "digest": "sha256:" + "0" * 64}]}).encode(),
     "the wasm layer's descriptor has no sha256 digest and size"),
    (json.dumps({"layers": [{"mediaType": oci.WASM_LAYER, "size": 4,
                             "digest": "sha256:../../../v2/_catalog"}]}).encode(),
     "the wasm layer's descriptor has no sha256 digest and size"),
    (json.dumps({"layers": [{"mediaType": oci.WASM_LAYER, "size": oci.MAX_LAYER_BYTES + 1,
                             "digest": "sha256:" + "0" * 64}]}).encode(),
     f"the wasm layer is {oci.MAX_LAYER_BYTES + 1} bytes, over the "
     f"{oci.MAX_LAYER_BYTES}-byte limit for a module"),
], ids=["deep", "string", "wrong-types", "negative-size", "bad-digest", "too-big"])
def test_hostile_manifests_are_one_error(body: bytes, why: str) -> None:
    """What a registry may send that it would not store: ecc's error, never a crash."""
    ref = oci.parse_reference("127.0.0.1:1/ecc/x:v1")
    with pytest.raises(FetchError) as caught:
        oci._our_layer(ref, body)
    assert str(caught.value) == f"{ref}: {why}"


def test_wasm_header_check() -> None:
    assert wasm_problem(b"\0asm\x01\0\0\0") is None
    assert wasm_problem(b"") == "not a WebAssembly module (it is empty)"
    assert wasm_problem(b"\0asm\x01") == ("not a WebAssembly module (it ends inside its "
                                          "8-byte header)")
    assert wasm_problem(COMPONENT_HEADER).startswith("a WebAssembly component")


# --- URL -----------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet tests
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading past its limit breaks the pipe: expected


@pytest.fixture(scope="module")
def served(module: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A folder on http://127.0.0.1:PORT: the module as ship.wasm and as `module` (no
    extension), and an HTML page named like a module."""
    root = tmp_path_factory.mktemp("www")
    shutil.copy(module, root / "ship.wasm")
    shutil.copy(module, root / "module")
    (root / "page.wasm").write_text("<html>moved</html>")
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _ecc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd=cwd)


def test_runs_by_url(served: str) -> None:
    for name in ("ship.wasm", "module"):  # by its name, and by its content
        result = _ecc("run", f"{served}/{name}", "via", "http")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["ship: 2 args [via] [http]"]
    missing = _ecc("run", f"{served}/gone.wasm")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        f"ecc: error: {served}/gone.wasm: HTTP 404 File not found; check the URL"]
    page = _ecc("run", f"{served}/page.wasm")
    assert page.returncode == 1
    assert page.stderr.splitlines() == [
        f"ecc: error: {served}/page.wasm: not a WebAssembly module (it starts b'<html>mo', "
        f"not b'\\x00asm'); the server sent application/wasm; give the URL of a .wasm module"]


def test_url_size_limit_applies_to_modules(monkeypatch: pytest.MonkeyPatch,
                                           served: str) -> None:
    """The package limit, named for a module: in-process with a small limit, so that no
    64 MiB is served."""
    from ecc.run import fetch

    with pytest.raises(FetchError) as caught:
        fetch.read_url_program(f"{served}/ship.wasm", limit=1000)
    assert str(caught.value).startswith(f"{served}/ship.wasm: the server sends ")
    assert str(caught.value).endswith(" bytes, over the 1000-byte limit for a module; "
                                      "not a module")


# --- standalone ----------------------------------------------------------------------

def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def test_build_writes_the_module_standalone(built: Path, module: Path) -> None:
    assert sorted(p.name for p in built.iterdir()) == [
        "globals.bpf.o", "globals.out", "globals.skel.h", "globals.skel.json", "globals.wasm",
        "globals.wasm.h", "package.json"]
    out = built / "globals.out"
    assert out.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(out, os.X_OK)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert archive.read("module.wasm") == module.read_bytes()
    assert "package.json" not in names
    assert {"__main__.py", "ecc/run/wasm/runtime.py", "ecc/run/wasm/host.py"} <= names
    assert not any(n.startswith(("wasmtime/", "ecc/compiler/")) for n in names)


def test_standalone_runs_alone(built: Path, tmp_path: Path) -> None:
    alone = tmp_path / "globals.out"
    shutil.copy2(built / "globals.out", alone)
    result = subprocess.run(["./globals.out", "a", "--b"], cwd=tmp_path, env=_clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ship: 2 args [a] [--b]"]
    assert result.stderr == ""
    # `ecc run` takes it as well, and the guest's exit status comes through.
    via_ecc = _ecc("run", str(alone), "fail")
    assert (via_ecc.returncode, via_ecc.stdout) == (3, "ship: 1 args [fail]\n")
    assert os.listdir(tmp_path) == ["globals.out"]


def test_standalone_without_wasmtime_says_so(built: Path, tmp_path: Path) -> None:
    """`python -I -S`: no site-packages, so no wasmtime: one line naming the fix."""
    shutil.copy2(built / "globals.out", tmp_path / "globals.out")
    result = subprocess.run([sys.executable, "-I", "-S", "globals.out", "x"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "ecc: error: globals.out: running this WebAssembly program needs the Python package "
        "wasmtime, which is not installed here: pip install wasmtime"]


@pytest.mark.kernel
def test_standalone_loads_into_the_kernel(built: Path, kernel: None) -> None:
    result = subprocess.run([str(built / "globals.out"), "load"], env=_clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ship: 1 args [load]",
                                          "ship: loaded, greeting=shipped"]


def test_broken_embedded_module_is_one_line(tmp_path: Path, built: Path) -> None:
    """A standalone file whose module.wasm is not WebAssembly (written by hand: the
    writer refuses): one line, no traceback."""
    source = built / "globals.out"
    bad = tmp_path / "bad.out"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"\0asm\x02\0\0\0" if info.filename == "module.wasm" else data)
    result = _ecc("run", str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {bad}: its module.wasm is not a WebAssembly module of version 1 (its "
        f"header says version 2); not a standalone file of ecc"]
    from ecc.compiler.standalone import module_standalone_bytes
    from ecc.errors import EccError

    with pytest.raises(EccError, match=r"^x\.wasm: not a WebAssembly module \(it is empty\); "
                                       r"no standalone file written$"):
        module_standalone_bytes(b"", origin="x.wasm")
