"""`ecc build -s`: one executable file that runs the program like `ecc run package.json` (issue 10).

The file is copied alone into an empty folder and run from there; the runs that
prove it needs nothing beside it use `python -I -S` (no site-packages, no
PYTHONPATH), so a module missing from the file fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import EXAMPLES, requires_clang
from runner import EccRun, run_child

pytestmark = requires_clang


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


@pytest.fixture(scope="module")
def built_out(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    """The bootstrap example built with -s, as a user would."""
    out = tmp_path_factory.mktemp("standalone-build")
    src = EXAMPLES / "bootstrap"
    result = subprocess.run(
        [sys.executable, "-m", "ecc", "build", "-s", str(src / "bootstrap.bpf.c"),
         str(src / "bootstrap.h"), "-o", str(out)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture()
def alone(built_out: Path, tmp_path: Path) -> Path:
    """bootstrap.out copied alone into an empty folder."""
    folder = tmp_path / "empty"
    folder.mkdir()
    shutil.copy2(built_out / "bootstrap.out", folder / "bootstrap.out")
    return folder / "bootstrap.out"


def test_build_writes_an_executable_beside_the_package(built_out: Path) -> None:
    out = built_out / "bootstrap.out"
    assert sorted(p.name for p in built_out.iterdir()) == [
        "bootstrap.bpf.o", "bootstrap.out", "bootstrap.skel.json", "package.json"]
    assert out.stat().st_mode & stat.S_IXUSR
    assert out.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        embedded = archive.read("package.json")
    # The package inside is the one written beside it.
    assert json.loads(embedded) == json.loads((built_out / "package.json").read_text())
    assert {"__main__.py", "ecc/cli.py", "ecc/run/loader.py", "ecc/elf.py",
            "click/core.py", "licenses/click/LICENSE.txt"} <= names
    # ecc/elf.py reads objects itself: no ELF library is carried.
    assert not any(n.startswith(("elftools/", "licenses/pyelftools")) for n in names)
    # Only the loader: nothing of the compiler, nor the registry client.
    assert not any(n.startswith("ecc/compiler/") for n in names)
    assert "ecc/oci.py" not in names and "ecc/doc_comments.py" not in names


def test_help_lists_the_program_options(alone: Path) -> None:
    result = subprocess.run(["./bootstrap.out", "--help"], cwd=alone.parent, env=_clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage: bootstrap [OPTIONS]"
    assert "Trace process starts and exits." in result.stdout
    assert any(line.split()[:2] == ["-p,", "--pid"] for line in lines)
    assert any(line.split()[:2] == ["-d,", "--duration"] for line in lines)
    assert any(line.split()[:1] == ["--json"] for line in lines)
    assert os.listdir(alone.parent) == ["bootstrap.out"]  # nothing unpacked or cached


def test_help_is_exactly_ecc_runs(alone: Path, built_out: Path) -> None:
    """Same click command, same text: `./prog.out --help` == `ecc run package.json --help`."""
    isolated = subprocess.run([sys.executable, "-I", "-S", "bootstrap.out", "--help"],
                              cwd=alone.parent, capture_output=True, text=True, timeout=60,
                              check=False)
    assert isolated.returncode == 0, isolated.stderr
    ecc_run = subprocess.run([sys.executable, "-m", "ecc", "run",
                              str(built_out / "package.json"), "--help"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert isolated.stdout == ecc_run.stdout
    # And `ecc run` takes the standalone file itself as a package.
    via_ecc = subprocess.run([sys.executable, "-m", "ecc", "run", str(alone), "--help"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert via_ecc.stdout == ecc_run.stdout


def test_bad_option_value_is_one_line(alone: Path) -> None:
    result = subprocess.run([sys.executable, "-I", "-S", "bootstrap.out", "--pid", "many"],
                            cwd=alone.parent, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "ecc: error: option --pid: 'many' is not a valid int: expected an integer like 42 "
        "or 0x2a"]


def test_output_is_reproducible(built_out: Path, tmp_path: Path) -> None:
    """Built again into another folder, with an empty cache (so the bytecode is compiled
    afresh), the file is the first build's, byte for byte; its entries are sorted and
    carry the fixed zip time."""
    src = EXAMPLES / "bootstrap"
    again, cache = tmp_path / "again", tmp_path / "fresh-cache"
    result = subprocess.run(
        [sys.executable, "-m", "ecc", "build", "-s", str(src / "bootstrap.bpf.c"),
         str(src / "bootstrap.h"), "-o", str(again)],
        env={**os.environ, "ECC_CACHE_DIR": str(cache)},
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert list((cache / "standalone").glob("*.marshal")), "the bytecode was not made afresh"
    assert (again / "bootstrap.out").read_bytes() == (built_out / "bootstrap.out").read_bytes()
    with zipfile.ZipFile(again / "bootstrap.out") as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_broken_embedded_package_is_one_line(tmp_path: Path, built_out: Path) -> None:
    from ecc.compiler.standalone import standalone_bytes

    package = json.loads((built_out / "package.json").read_text())
    package["bpf_object_size"] += 8
    bad = tmp_path / "bad.out"
    bad.write_bytes(standalone_bytes(json.dumps(package)))
    result = subprocess.run([sys.executable, "-I", "-S", "bad.out"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    size = package["bpf_object_size"]
    assert result.stderr.splitlines() == [
        f"ecc: error: bad.out: package field 'bpf_object' inflates to {size - 8} bytes, "
        f"but 'bpf_object_size' says {size}"]


@pytest.mark.kernel
def test_runs_alone_and_decodes_an_event(alone: Path, kernel: None) -> None:
    """The file alone, no site-packages: attaches, and prints the event a test triggers.

    bootstrap has its own ``-d/--duration`` (minimum process lifetime in ns), which
    shadows ecc's, exactly as in ``ecc run package.json --duration 2``: with it set,
    the program reports only exits (no execs), which shows the value reached the
    kernel. It runs until stopped.
    """
    run = EccRun(cwd=alone.parent, argv=[sys.executable, "-I", "-S", "bootstrap.out",
                                         "--duration", "2", "--json"])
    run.wait_ready()
    pid = run_child(["/bin/true"])
    assert run.wait_for(lambda: any(r["pid"] == pid for r in run.json_rows()))
    assert run.stop(signal.SIGINT) == 0
    rows = run.json_rows()
    exit_row = next(r for r in rows if r["pid"] == pid)
    assert exit_row["exit_event"] is True and exit_row["comm"] == "true"
    assert exit_row["exit_code"] == 0 and exit_row["duration_ns"] > 2
    assert exit_row["ppid"] == os.getpid()
    assert not any(r["exit_event"] is False for r in rows)  # --duration set: no exec events
    assert os.listdir(alone.parent) == ["bootstrap.out"]
