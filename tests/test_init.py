"""`ecc init NAME`: the project it writes builds, runs, and its CI workflow works.

The workflow's `run:` steps are executed in order, as GitHub would in the
job's `debian:bookworm-slim` container, in a real container of the local base
image; its pip finds the `ECC_PACKAGE` the workflow names (this release,
ecc-bpf==VERSION) in a folder holding the distributions of this checkout
instead of PyPI, where this version may not be yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import needs
from containers import BASE_IMAGE, Podman
from dists import build_dists
from runner import EccRun, run_child

from ecc import __version__

ROOT = Path(__file__).resolve().parent.parent
FILES = {"demo.bpf.c", "demo.h", "README.md", ".gitignore", ".github/workflows/build.yml"}
WORKSPACE = "/github/workspace"


def ecc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    result = ecc("init", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "ecc: created demo/ (5 files); next: cd demo && ecc build demo.bpf.c demo.h"]
    return tmp_path / "demo"


def workflow(demo: Path) -> Any:
    import yaml

    return yaml.safe_load((demo / ".github" / "workflows" / "build.yml").read_text())


def test_init_writes_the_project(demo: Path) -> None:
    assert files_under(demo) == FILES
    source = (demo / "demo.bpf.c").read_text()
    assert '#include "demo.h"' in source and "BPF_MAP_TYPE_RINGBUF" in source
    assert '"long": "uid"' in source  # the option, with its @cmdarg
    header = (demo / "demo.h").read_text()
    assert "#ifndef __DEMO_H\n#define __DEMO_H\n" in header and "struct event {" in header
    readme = (demo / "README.md").read_text()
    assert "ecc build demo.bpf.c demo.h" in readme and "sudo ecc run package.json" in readme
    assert "package.json" in (demo / ".gitignore").read_text().splitlines()
    steps = workflow(demo)["jobs"]["build"]["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps if "uses" in s] == [
        "actions/checkout", "actions/upload-artifact", "softprops/action-gh-release"]
    # CI builds with the release that wrote the project.
    assert workflow(demo)["jobs"]["build"]["env"]["ECC_PACKAGE"] == f"ecc-bpf=={__version__}"
    release = steps[-1]
    assert release["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert release["with"]["files"] == "package.json"


def test_init_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    cases = {
        "taken": "ecc: error: taken: already exists; choose another name, or remove it first",
        "9lives": "ecc: error: 9lives: a project name is a letter, then letters, digits, '_' "
                  "or '-' (at most 64); for example: ecc init my_tool",
        "no/such/demo": f"ecc: error: no/such/demo: the folder {tmp_path}/no/such does not "
                        f"exist",
    }
    for name, message in cases.items():
        result = ecc("init", name, cwd=tmp_path)
        assert result.returncode == 1, name
        assert result.stderr.splitlines() == [message]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # nothing half-made


def test_init_into_an_empty_folder_and_other_ecc_package(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    result = ecc("init", "demo", "--ecc-package", "ecc @ file:///opt/ecc.whl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert workflow(tmp_path / "demo")["jobs"]["build"]["env"]["ECC_PACKAGE"] == (
        "ecc @ file:///opt/ecc.whl")


@pytest.mark.clang
def test_init_build_then_run(demo: Path, cache_env: Path, kernel: None) -> None:
    result = ecc("build", "demo.bpf.c", "demo.h", cwd=demo)
    assert result.returncode == 0, result.stderr
    package = json.loads((demo / "package.json").read_text())
    assert [t["name"] for t in package["meta"]["export_types"]] == ["event"]
    run = EccRun("--json", "--duration", "2", "package.json", cwd=demo)
    run.wait_ready()
    pid = run_child(["/bin/true"])
    assert run.wait_for(lambda: any(r["pid"] == pid for r in run.json_rows()))
    assert run.wait() == 0  # --duration 2 ends it
    row = next(r for r in run.json_rows() if r["pid"] == pid)
    assert (row["comm"], row["filename"], row["ppid"], row["uid"]) == (
        "true", "/bin/true", os.getpid(), os.getuid())
    assert any(line.startswith("ecc: running demo: 1 program attached (handle_exec)")
               for line in run.err)


@needs("actionlint")
def test_workflows_pass_actionlint(demo: Path) -> None:
    """actionlint runs shellcheck on every `run:` step too, when shellcheck is installed."""
    for path in (demo / ".github" / "workflows" / "build.yml",
                 ROOT / ".github" / "workflows" / "release.yml"):
        result = subprocess.run(["actionlint", str(path)], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, alone with its sdist in its folder."""
    return build_dists(tmp_path_factory.mktemp("ecc-src"), tmp_path_factory.mktemp("dist")).wheel


@pytest.mark.podman
def test_workflow_run_steps_build_the_package_in_the_base_image(
        podman: Podman, demo: Path, wheel: Path, tmp_path: Path) -> None:
    job = workflow(demo)["jobs"]["build"]
    assert job["container"] == "debian:bookworm-slim"
    scripts = tmp_path / "steps"
    scripts.mkdir()
    names = []
    for index, step in enumerate(s for s in job["steps"] if "run" in s):
        assert "${{" not in step["run"] and "if" not in step, step  # nothing to evaluate
        (scripts / f"{index}.sh").write_text(step["run"])
        names.append(f"{index}.sh")
    # GitHub's default shell for `run:` where bash exists, one step after the other.
    driver = "".join(f"echo '>>> step {n}'; bash --noprofile --norc -eo pipefail /steps/{n}\n"
                     for n in names)
    (scripts / "all.sh").write_text("set -e\n" + driver)
    assert job["env"]["ECC_PACKAGE"] == f"ecc-bpf=={__version__}"
    env = {**job["env"], "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels", "CI": "true",
           "GITHUB_WORKSPACE": WORKSPACE}
    result = podman.run(
        "run", "--rm", "-v", f"{demo}:{WORKSPACE}", "-v", f"{wheel.parent}:/wheels:ro",
        "-v", f"{scripts}:/steps:ro", "-w", WORKSPACE,
        *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
        BASE_IMAGE, "bash", "/steps/all.sh", check=False, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stdout.count(">>> step") == len(names) == 3
    package = json.loads((demo / "package.json").read_text())
    assert package["meta"]["bpf_skel"]["obj_name"] == "demo_bpf"
    assert {"demo.bpf.o", "demo.skel.json"} <= files_under(demo)


def test_missing_jinja2_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """jinja2 is installed here; `None` in sys.modules makes its import fail as if not."""
    from ecc.errors import EccError
    from ecc.init import init_project

    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(EccError) as info:
        init_project(str(tmp_path / "demo"))
    assert str(info.value) == ("ecc init needs the jinja2 Python package; install it: "
                               "pip install 'jinja2>=3'")
    assert list(tmp_path.iterdir()) == []
