"""Real containers for the image tests: podman, the base image, the ecc image, the Docker API.

Everything expensive is made once per test run and reused by every container
test: the base image (kept by podman across runs, so made only on a new
machine: about 30 s of debootstrap), the ecc image (podman's layer cache makes
a rebuild of unchanged layers take seconds), and the Docker API service.
Container tests skip only when podman is not installed (tests/conftest.py: the
"podman" capability; ECC_REQUIRE=podman makes that a failure).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
# The defaults of Debian's podman fail in these VMs (shared/spec/containers.md):
# crun and the default ulimits. CONTAINERS_CONF replaces the whole system file.
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'


@dataclass(frozen=True)
class Podman:
    exe: str

    def run(self, *args: str, timeout: float = 600, check: bool = True,
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.exe, *args], capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """podman, set up to work here, with the base image present."""
    from conftest import require  # here: conftest imports this module

    require("podman")
    exe = shutil.which("podman")
    assert exe is not None
    old = os.environ.get("CONTAINERS_CONF")
    if old is None:
        conf = tmp_path_factory.mktemp("podman") / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        os.environ["CONTAINERS_CONF"] = str(conf)
    engine = Podman(exe)
    if engine.run("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        result = subprocess.run(["bash", str(ROOT / "scripts" / "base-image.sh"), BASE_IMAGE],
                                capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, f"base image: {result.stdout}\n{result.stderr}"
    yield engine
    if old is None:
        os.environ.pop("CONTAINERS_CONF", None)


@pytest.fixture(scope="session")
def ecc_image(podman: Podman, docker_host: str) -> Iterator[str]:
    """The ecc image, built by podman from docker/Dockerfile through its Docker API with
    the code `ecc build --docker` uses, under the tag that looks for (a digest of what goes
    into it). Built the same way every time, so that podman's layer cache serves the SDK
    test too: a `podman build` and an API build do not share cached RUN layers."""
    from ecc.docker import connect, context_files, ensure_image, image_tag, prune_older

    old = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = docker_host
    try:
        client = connect()
        files = context_files()
        tag = image_tag(files)
        if ensure_image(client, tag, files, lambda line: None):
            prune_older(client, tag)  # each change to ecc makes a new image
        client.close()
    finally:
        if old is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = old
    if podman.run("image", "exists", tag, check=False).returncode != 0:
        # Our own podman service built it: podman must have it.
        assert old is not None, f"the image {tag} was built but podman does not have it"
        from conftest import require_or_skip

        require_or_skip("podman", f"DOCKER_HOST ({docker_host}) is an engine other than this "
                        "podman, which the image tests run")
    yield tag


@pytest.fixture(scope="session")
def docker_host(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DOCKER_HOST of an engine: the one named by DOCKER_HOST, else podman's API
    service on a socket of our own, stopped by pid at the end."""
    if os.environ.get("DOCKER_HOST"):
        yield os.environ["DOCKER_HOST"]
        return
    sock = tmp_path_factory.mktemp("podman-api") / "podman.sock"
    log = sock.with_name("service.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([podman.exe, "system", "service", "--time=0", f"unix://{sock}"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _answers(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"podman system service did not start: {log.read_text()}")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in s.recv(200)
        except OSError:
            return False
