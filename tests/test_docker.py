"""The ecc image and `ecc build --docker`, with real containers (podman, its Docker API).

The image's build of a mounted folder must match a build on the host: same
`meta`, and (with the same clang) the same object, byte for byte, although
the host's cache holds the precompiled vmlinux.h and the container's does not
(the BTF is in canonical order either way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import needs, require, require_or_skip
from containers import Podman

from ecc.compiler import pch
from ecc.docker import Mount, OptionSpec, _Relay, container_args
from ecc.errors import EccError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
UID = 4242  # a user that exists nowhere: only numbers matter for ownership
OUTPUTS = {"bootstrap.bpf.o", "bootstrap.skel.json", "package.json"}


def ecc(*args: str, cwd: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})}, check=False)


def project(tmp_path: Path, name: str = "src", *examples: str, owner: int = UID) -> Path:
    """A copy of examples (bootstrap by default) in a folder owned by `owner`."""
    folder = tmp_path / name
    folder.mkdir()
    for example in examples or ("bootstrap",):
        for f in (EXAMPLES / example).iterdir():
            shutil.copy(f, folder / f.name)
    for path in [folder, *folder.iterdir()]:
        os.chown(path, owner, owner)
    return folder


def meta(package: Path) -> Any:
    return json.loads(package.read_text())["meta"]


@pytest.fixture(scope="module")
def host_package(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    """bootstrap built on the host, the reference for the container builds."""
    folder = project(tmp_path_factory.mktemp("host"), owner=0)
    for _ in range(2):  # the second build with the PCH the first one left making
        result = ecc("build", "bootstrap.bpf.c", "bootstrap.h", cwd=folder)
        assert result.returncode == 0, result.stderr
        pch.settle(cache_env)
    return folder / "package.json"


def clang_version(*prefix: str) -> str:
    return subprocess.run([*prefix, "clang-19", "--version"], capture_output=True, text=True,
                          check=False).stdout.split("\n")[0]


# ------------------------------------------------------------ the image itself

@pytest.mark.podman
def test_image_builds_the_mounted_folder_as_the_calling_user(
        podman: Podman, ecc_image: str, tmp_path: Path, host_package: Path) -> None:
    src = project(tmp_path)
    before = {p.name for p in src.iterdir()}
    result = podman.run("run", "--rm", "--user", f"{UID}:{UID}", "-v", f"{src}:/src", ecc_image)
    assert result.stderr == ""
    made = {p.name for p in src.iterdir()} - before
    assert made == OUTPUTS  # and nothing else
    for name in made:
        st = (src / name).stat()
        assert (st.st_uid, st.st_gid) == (UID, UID), name
    assert meta(src / "package.json") == meta(host_package)
    image_clang = clang_version(podman.exe, "run", "--rm", "--entrypoint", "", ecc_image)
    if image_clang != clang_version():
        require_or_skip("same-clang", f"meta equal; objects not compared: the image has "
                        f"{image_clang!r}, this host {clang_version()!r}")
    obj = (src / "bootstrap.bpf.o").read_bytes()
    assert obj == (host_package.parent / "bootstrap.bpf.o").read_bytes()


@pytest.mark.podman
def test_image_passes_arguments_to_ecc_build_and_builds_every_program(
        podman: Podman, ecc_image: str, tmp_path: Path) -> None:
    src = project(tmp_path, "src", "bootstrap", "opensnoop")
    result = podman.run("run", "--rm", "--user", f"{UID}:{UID}", "-v", f"{src}:/src", ecc_image,
                        "--yaml", "-o", "out")
    assert "built 2 of 2 programs" in result.stderr
    for stem in ("bootstrap", "opensnoop"):
        package = src / "out" / stem / "package.yaml"
        assert package.is_file()
        assert package.stat().st_uid == UID
    assert not (src / "package.json").exists()


@pytest.mark.podman
def test_image_run_as_root_gives_the_outputs_to_the_folders_owner(
        podman: Podman, ecc_image: str, tmp_path: Path) -> None:
    src = project(tmp_path)
    podman.run("run", "--rm", "-v", f"{src}:/src", ecc_image)
    for name in OUTPUTS:
        assert (src / name).stat().st_uid == UID, name


@pytest.mark.podman
def test_image_without_a_program_says_so(podman: Podman, ecc_image: str, tmp_path: Path) -> None:
    result = podman.run("run", "--rm", "--user", f"{UID}:{UID}", "-v", f"{tmp_path}:/src",
                        ecc_image, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'ecc: error: /src has no .bpf.c program; mount the folder that holds it: '
        'docker run --rm -v "$PWD:/src" IMAGE']


@pytest.mark.podman
def test_image_size(podman: Podman, ecc_image: str) -> None:
    size = int(podman.run("image", "inspect", "--format", "{{.Size}}", ecc_image).stdout)
    print(f"ecc image: {size / 1e6:.0f} MB")
    assert size < 600e6  # 511 MB when written: toolchain without docs, caches or runtimes


@needs("hadolint")
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(["hadolint", str(ROOT / "docker" / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@needs("shellcheck")
def test_scripts_pass_shellcheck() -> None:
    result = subprocess.run(["shellcheck", str(ROOT / "docker" / "entrypoint.sh"),
                             str(ROOT / "scripts" / "base-image.sh")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


# ------------------------------------------------------- ecc build --docker

@pytest.mark.podman
def test_docker_option_builds_through_the_api(
        podman: Podman, ecc_image: str, docker_host: str, tmp_path: Path,
        host_package: Path) -> None:
    """The SDK builds a fresh tag from docker/Dockerfile (podman's layer cache: seconds),
    then runs the build in it; root's build is written as the folder's owner."""
    src = project(tmp_path)
    before = {p.name for p in src.iterdir()}
    tag = f"ecc-test-sdk:{os.getpid()}"
    try:
        result = ecc("build", "--docker", "src/bootstrap.bpf.c", "src/bootstrap.h", cwd=tmp_path,
                     env={"DOCKER_HOST": docker_host, "ECC_DOCKER_IMAGE": tag})
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines()[0] == (
            f"ecc: building image {tag} from docker/Dockerfile (once; -v shows its log)")
    finally:
        podman.run("rmi", tag, check=False)
    assert {p.name for p in src.iterdir()} - before == OUTPUTS
    for name in OUTPUTS:
        assert (src / name).stat().st_uid == UID, name
    assert meta(src / "package.json") == meta(host_package)


@pytest.mark.podman
def test_docker_option_relays_errors_with_the_users_paths(
        podman: Podman, ecc_image: str, docker_host: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = ecc("build", "--docker", "empty", cwd=tmp_path, env={"DOCKER_HOST": docker_host})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "ecc: error: empty: no .bpf.c file in this folder"

    src = project(tmp_path, "bad")
    (src / "bootstrap.bpf.c").write_text('#include "vmlinux.h"\nint broken(\n')
    result = ecc("build", "--docker", "bad/bootstrap.bpf.c", cwd=tmp_path,
                 env={"DOCKER_HOST": docker_host})
    assert result.returncode == 1
    assert "bad/bootstrap.bpf.c:2:" in result.stderr  # clang's diagnostic, on the host's path
    assert result.stderr.splitlines()[-1].startswith("ecc: error: ")
    assert result.stderr.count("ecc: error: ") == 1


def test_docker_option_without_an_engine(tmp_path: Path) -> None:
    require("docker-sdk")
    (tmp_path / "p.bpf.c").write_text("")
    sock = tmp_path / "none.sock"
    result = ecc("build", "--docker", "p.bpf.c", cwd=tmp_path,
                 env={"DOCKER_HOST": f"unix://{sock}"})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: no container engine answers at unix://{sock} (DOCKER_HOST); start one, "
        f"e.g. `podman system service --time=0 unix:///run/podman/podman.sock &` then "
        f"`export DOCKER_HOST=unix:///run/podman/podman.sock`"]


@pytest.mark.podman
def test_image_build_failure_is_one_line(podman: Podman, docker_host: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dockerfile that fails, through the same code `ecc build --docker` uses."""
    from ecc.docker import connect, ensure_image

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    client = connect()
    tag = f"ecc-test-broken:{os.getpid()}"
    shown: list[str] = []
    with pytest.raises(EccError) as info:
        ensure_image(client, tag, {"docker/Dockerfile":
                                   b"FROM debian:bookworm-slim\nRUN exit 3\n"}, shown.append)
    client.close()
    assert str(info.value) == (
        f'building image {tag} from docker/Dockerfile failed: building at STEP "RUN exit 3": '
        f'while running runtime: exit status 3')
    assert "RUN exit 3" in (info.value.details or "")
    assert podman.run("image", "exists", tag, check=False).returncode == 1


def test_docker_option_refuses_host_tools(tmp_path: Path) -> None:
    (tmp_path / "p.bpf.c").write_text("")
    result = ecc("build", "--docker", "-c", "/usr/bin/clang", "p.bpf.c", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "ecc: error: --clang-bin cannot be used with --docker: the image brings its own "
        "toolchain (clang, llvm-strip, bpftool)"]


# ------------------------------------------- arguments and output (pure code)

SPECS = {
    "output_dir": OptionSpec("--output-dir", None, None, "DIR"),
    "yaml_": OptionSpec("--yaml", None, False, None),
    "cflags": OptionSpec("--additional-cflags", None, None, "FLAGS"),
    "vmlinux": OptionSpec("--vmlinux", None, None, "[ARCH=]FILE"),
    "report": OptionSpec("--report", None, None, "FILE.json"),
    "jobs": OptionSpec("--jobs", None, None, "N"),
}


def test_container_args_map_host_paths_to_mounts(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.bpf.c").write_text("")
    (tmp_path / "a" / "p.h").write_text("")
    (tmp_path / "vm.h").write_text("")
    params = {"output_dir": "out", "yaml_": True, "cflags": ("-DX=1",),
              "vmlinux": ("arm64=vm.h",), "report": "r.json", "jobs": 2}
    args, mounts = container_args(["a/p.bpf.c", "a/p.h"], params, SPECS)
    assert args == ["/src/p.bpf.c", "/src/p.h", "--output-dir", "/out", "--yaml",
                    "--additional-cflags", "-DX=1", "--vmlinux", "arm64=/host/vmlinux0/vm.h",
                    "--report", "/host/report0/r.json", "--jobs", "2"]
    assert mounts == [Mount(str(tmp_path / "a"), "/src", True),
                      Mount(str(tmp_path / "out"), "/out", True),
                      Mount(str(tmp_path / "vm.h"), "/host/vmlinux0/vm.h", False),
                      Mount(str(tmp_path), "/host/report0", True)]
    assert (tmp_path / "out").is_dir()  # made by the caller, so the caller owns it


def test_relay_maps_paths_back_and_holds_the_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shown: list[str] = []
    relay = _Relay([Mount(str(tmp_path / "a"), "/src", True)], shown.append)
    relay.feed([b"/src/p.bpf.c:3:1: error: x\n/usr/src/linux stays\nin /src", b" now\n",
                b"ecc: error: /src/p.bpf.c: failed"])
    assert shown == ["a/p.bpf.c:3:1: error: x", "/usr/src/linux stays", "in a now"]
    assert relay.error == "a/p.bpf.c: failed"


def test_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(EccError, match=r"^nope.bpf.c: no such file or folder$"):
        container_args(["nope.bpf.c"], {}, SPECS)


def test_missing_docker_package_is_named(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """The SDK is installed here; `None` in sys.modules makes its import fail as if not."""
    from ecc.docker import build_in_container

    monkeypatch.setitem(sys.modules, "docker", None)
    (tmp_path / "p.bpf.c").write_text("")
    with pytest.raises(EccError) as info:
        build_in_container([str(tmp_path / "p.bpf.c")], {}, SPECS, print)
    assert str(info.value) == ("ecc build --docker needs the docker Python package; install it: "
                               "pip install 'docker>=6'")
