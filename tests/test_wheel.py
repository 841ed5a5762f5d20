"""ecc as a user gets it: the distributions, installed into a fresh venv.

The sdist and the wheel are built as the release workflow builds them
(tests/dists.py). The wheel goes into a new venv, and its `ecc` runs from a
folder outside the checkout with PYTHONPATH cleared (tests/conftest.py points it
at the checkout for every other child), so nothing of the source tree can stand
in for what the wheel lacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dists import Dists, build_dists, clean_env
from runner import EccRun, run_child

from ecc import __version__

# Source folder -> where its files are in the wheel (pyproject.toml's package-dir).
IN_WHEEL = {"ecc": "ecc", "templates": "ecc/_templates", "docker": "ecc/_docker"}
PROJECT_FILES = {"demo.bpf.c", "demo.h", "README.md", ".gitignore",
                 ".github/workflows/build.yml"}
# The Debian packages the generated workflow installs ecc's dependencies as, and
# the same from PyPI for a venv on this host.
DEBIAN_PYTHON = {"python3-click": "click",
                 "python3-yaml": "PyYAML"}


def run(argv: list[str | Path], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=clean_env(**extra), check=False)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def source_files(top: Path, folder: str) -> set[str]:
    base = top / folder
    return {p.relative_to(base).as_posix() for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def workflow(project: Path) -> Any:
    import yaml

    return yaml.safe_load((project / ".github" / "workflows" / "build.yml").read_text())


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return build_dists(tmp_path_factory.mktemp("ecc-src"), tmp_path_factory.mktemp("dist"))


def new_venv(root: Path, *requirements: str | Path) -> Path:
    """A venv at root, without the host's site-packages, with requirements; its bin/."""
    ok(run([sys.executable, "-m", "venv", root], cwd=root.parent))
    if requirements:
        ok(run([root / "bin" / "python", "-m", "pip", "install", "-q", *requirements],
               cwd=root.parent))
    return root / "bin"


@pytest.fixture(scope="module")
def venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel with its `init` extra (jinja2) in a fresh venv; its bin/."""
    return new_venv(tmp_path_factory.mktemp("wheel-venv") / "venv", f"{dists.wheel}[init]")


@dataclass(frozen=True)
class Demo:
    folder: Path
    init: subprocess.CompletedProcess[str]
    build: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo(venv: Path, tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Demo:
    """`ecc init demo`, then `ecc build` of it, by the installed wheel."""
    cwd = tmp_path_factory.mktemp("user")
    init = ok(run([venv / "ecc", "init", "demo"], cwd=cwd))
    build = ok(run([venv / "ecc", "build", "demo.bpf.c", "demo.h"], cwd=cwd / "demo"))
    return Demo(cwd / "demo", init, build)


def test_distributions_hold_the_package_templates_and_docker_files(dists: Dists) -> None:
    info = f"ecc_bpf-{__version__}.dist-info/"
    with zipfile.ZipFile(dists.wheel) as whl:
        members = set(whl.namelist())
        metadata = whl.read(info + "METADATA").decode().splitlines()
        entry_points = whl.read(info + "entry_points.txt").decode()
    # Every file of the three folders, and nothing else, besides the dist-info.
    assert {m for m in members if not m.startswith(info)} == {
        f"{IN_WHEEL[folder]}/{rel}" for folder in IN_WHEEL
        for rel in source_files(dists.src, folder)}
    assert {"ecc/package/schema.json", "ecc/py.typed", "ecc/cli.py", "ecc/_docker/Dockerfile",
            "ecc/_docker/entrypoint.sh", "ecc/_templates/project/NAME.bpf.c.j2",
            "ecc/_templates/project/.gitignore.j2",
            "ecc/_templates/project/.github/workflows/build.yml.j2"} <= members
    assert metadata[1:3] == ["Name: ecc-bpf", f"Version: {__version__}"]
    assert "[console_scripts]\necc = ecc.launch:entry\n" in entry_points

    top = f"ecc_bpf-{__version__}/"
    with tarfile.open(dists.sdist) as sdist:
        in_sdist = {m.name.removeprefix(top) for m in sdist.getmembers() if m.isfile()}
    assert {"pyproject.toml", "README.md"} <= in_sdist
    for folder in IN_WHEEL:
        assert {f"{folder}/{rel}" for rel in source_files(dists.src, folder)} <= in_sdist


def test_installed_wheel_is_all_it_runs(venv: Path, tmp_path: Path) -> None:
    site = ok(run([venv / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                  cwd=tmp_path)).stdout.strip()
    where = ok(run([venv / "python", "-c",
                    "import ecc, ecc.resources as r\n"
                    "print(ecc.__file__)\n"
                    "print(r.data_dir('templates').joinpath('project').joinpath('NAME.h.j2'))\n"
                    "print(r.data_dir('docker').joinpath('Dockerfile'))"], cwd=tmp_path))
    assert where.stdout.splitlines() == [f"{site}/ecc/__init__.py",
                                         f"{site}/ecc/_templates/project/NAME.h.j2",
                                         f"{site}/ecc/_docker/Dockerfile"]
    version = ok(run([venv / "ecc", "--version"], cwd=tmp_path))
    assert version.stdout == f"ecc, version {__version__}\n"


def test_installed_wheel_makes_the_image_the_checkout_makes(venv: Path, tmp_path: Path) -> None:
    """`ecc build --docker` finds the Dockerfile in the wheel, and the image it would
    build has the files, so the tag, of the checkout's."""
    from ecc.docker import context_files, image_tag

    script = ("import json, ecc.docker as d\n"
              "files = d.context_files()\n"
              "print(d.image_tag(files))\n"
              "print(json.dumps(sorted(files)))")
    files = context_files()
    assert "docker/Dockerfile" in files and "ecc/cli.py" in files
    assert ok(run([venv / "python", "-c", script], cwd=tmp_path)).stdout.splitlines() == [
        image_tag(files), json.dumps(sorted(files))]


@pytest.mark.clang
def test_installed_wheel_inits_builds_and_checks_a_project(venv: Path, demo: Demo,
                                                           tmp_path: Path) -> None:
    assert demo.init.stderr.splitlines() == [
        "ecc: created demo/ (5 files); next: cd demo && ecc build demo.bpf.c demo.h"]
    assert source_files(demo.folder, ".") >= PROJECT_FILES
    # The generated CI installs the very release that wrote it.
    assert workflow(demo.folder)["jobs"]["build"]["env"]["ECC_PACKAGE"] == (
        f"ecc-bpf=={__version__}")
    package = json.loads((demo.folder / "package.json").read_text())
    assert package["meta"]["bpf_skel"]["obj_name"] == "demo_bpf"
    assert [t["name"] for t in package["meta"]["export_types"]] == ["event"]
    # The checkout's ecc builds the same project into the same package.
    twin = tmp_path / "demo"
    shutil.copytree(demo.folder, twin, ignore=shutil.ignore_patterns("package.json", "*.bpf.o",
                                                                     "*.skel.json"))
    result = subprocess.run([sys.executable, "-m", "ecc", "build", "demo.bpf.c", "demo.h"],
                            cwd=twin, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert (twin / "package.json").read_bytes() == (demo.folder / "package.json").read_bytes()

    check = ok(run([venv / "ecc", "check", "package.json"], cwd=demo.folder))
    assert (check.stdout, check.stderr) == (
        "package.json: ok (3 maps, 1 program, 1 export type)\n", "")


def test_installed_wheel_doctor_says_what_the_checkout_says(venv: Path, tmp_path: Path) -> None:
    installed = run([venv / "ecc", "doctor"], cwd=tmp_path)
    checkout = subprocess.run([sys.executable, "-m", "ecc", "doctor"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)
    assert installed.stdout  # a line per check
    assert (installed.returncode, installed.stdout, installed.stderr) == (
        checkout.returncode, checkout.stdout, checkout.stderr)


@pytest.mark.clang
def test_installed_wheel_runs_the_package_it_built(venv: Path, demo: Demo, kernel: None) -> None:
    # env -u: EccRun's child inherits this process's PYTHONPATH, the checkout.
    proc = EccRun(cwd=demo.folder, argv=["env", "-u", "PYTHONPATH", str(venv / "ecc"), "run",
                                         "--json", "--duration", "2", "package.json"])
    proc.wait_ready()
    pid = run_child(["/bin/true"])
    assert proc.wait_for(lambda: any(r["pid"] == pid for r in proc.json_rows()))
    assert proc.wait() == 0  # --duration 2 ends it
    row = next(r for r in proc.json_rows() if r["pid"] == pid)
    assert (row["comm"], row["filename"]) == ("true", "/bin/true")
    assert any(line.startswith("ecc: running demo: 1 program attached (handle_exec)")
               for line in proc.err)


@pytest.mark.clang
def test_generated_workflow_installs_the_wheel_and_builds(dists: Dists, venv: Path,
                                                          tmp_path: Path, cache_env: Path) -> None:
    """The workflow's own `run:` steps, on this host: its first step installs the toolchain
    (here already) and ecc's dependencies from Debian, whose PyPI twins stand in for them
    in a fresh venv; then "Install ecc" resolves the workflow's ECC_PACKAGE, unchanged,
    from nothing but the folder holding the local distributions."""
    ok(run([venv / "ecc", "init", "demo"], cwd=tmp_path))
    project = tmp_path / "demo"
    job = workflow(project)["jobs"]["build"]
    steps = {s["name"]: s["run"] for s in job["steps"] if "run" in s}
    assert list(steps) == ["Install clang, llvm, libbpf and bpftool", "Install ecc",
                           "Build the package"]
    debian = {w for w in steps["Install clang, llvm, libbpf and bpftool"].split()
              if w.startswith("python3-") and w != "python3-pip"}
    assert debian == set(DEBIAN_PYTHON)
    bin_dir = new_venv(tmp_path / "ci-venv", *DEBIAN_PYTHON.values())
    env = {**job["env"], "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(dists.wheel.parent), "CI": "true",
           "GITHUB_WORKSPACE": str(project)}
    assert env["ECC_PACKAGE"] == f"ecc-bpf=={__version__}"
    for name in ("Install ecc", "Build the package"):
        # GitHub's shell for `run:` where bash exists.
        ok(run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", steps[name]],
               cwd=project, **env))
    assert (bin_dir / "ecc").is_file()
    package = json.loads((project / "package.json").read_text())
    assert package["meta"]["bpf_skel"]["obj_name"] == "demo_bpf"
    assert {"demo.bpf.o", "demo.skel.json"} <= source_files(project, ".")
