"""Several sources, one package: `ecc build a.bpf.c b.bpf.c --link NAME` (issue 9).

tests/data/link: maps.bpf.c holds the maps and a setting, progs.bpf.c the
program, which declares them extern; progs.h is the event it sends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import requires_clang

from ecc.package.schema import package_schema

pytestmark = requires_clang

DATA = Path(__file__).resolve().parent / "data" / "link"
SOURCES = [str(DATA / "maps.bpf.c"), str(DATA / "progs.bpf.c")]


def ecc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    out = tmp_path_factory.mktemp("linked")
    result = ecc("build", *SOURCES, str(DATA / "progs.h"), "--link", "twofile", "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_two_files_make_one_package(linked: Path) -> None:
    import jsonschema

    assert sorted(p.name for p in linked.iterdir()) == [
        "package.json", "twofile.bpf.o", "twofile.skel.json"]
    package = json.loads((linked / "package.json").read_text())
    jsonschema.validate(package, package_schema())
    meta = package["meta"]
    skel = meta["bpf_skel"]
    assert skel["obj_name"] == "twofile_bpf"
    assert [m["name"] for m in skel["maps"]] == ["events", "calls", "twofile_.rodata",
                                                 "twofile_.bss"]
    assert skel["progs"] == [{"name": "on_getpid", "attach": "tp/syscalls/sys_enter_getpid",
                              "link": True,
                              "description": "Counts getpid() calls per process and reports "
                                             "each"}]
    # Doc comments of both files, and the export header's struct in the linked BTF.
    rodata = next(s for s in skel["data_sections"] if s["name"] == ".rodata")
    assert rodata["variables"] == [{"name": "target_tgid", "type": "int",
                                    "description": "Only report this process (0: every "
                                                   "process)"}]
    (event,) = meta["export_types"]
    assert event["name"] == "event" and [m["name"] for m in event["members"]] == [
        "tgid", "calls", "comm"]
    record = meta["provenance"]
    assert [s["path"] for s in record["sources"]] == ["./maps.bpf.c", "./progs.bpf.c"]
    assert record["linker"].startswith("bpftool v")
    assert {"./progs.h"} <= {h["path"] for h in record["headers"]}


def test_linked_export_type_id_matches_btf(linked: Path) -> None:
    from ecc.package.source import read_package

    loaded = read_package(str(linked / "package.json"))  # checks every export type id
    assert loaded.btf is not None
    (event,) = loaded.meta["export_types"]
    assert loaded.btf[event["type_id"]].name == "event"


def test_a_folder_links_its_sources_with_their_headers(tmp_path: Path, cache_env: Path,
                                                       linked: Path) -> None:
    """The folder form finds progs.h as progs.bpf.c's header; same bytes as the files form,
    from another folder too."""
    copy = tmp_path / "elsewhere" / "link"
    shutil.copytree(DATA, copy)
    result = ecc("build", str(copy), "--link", "twofile", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    for name in ("twofile.bpf.o", "twofile.skel.json", "package.json"):
        assert (tmp_path / "out" / name).read_bytes() == (linked / name).read_bytes(), name


def test_same_name_twice(tmp_path: Path) -> None:
    other = tmp_path / "maps.bpf.c"
    other.write_text("int x;\n")
    result = ecc("build", SOURCES[0], str(other), "--link", "two")
    assert result.returncode == 1
    assert result.stderr == (f"ecc: error: --link: {SOURCES[0]} and {other} have the same name "
                             f"'maps'; rename one\n")


def test_link_conflict_is_the_linkers_message(tmp_path: Path, cache_env: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.bpf.c").write_text(
            '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
            'SEC("tp/syscalls/sys_enter_getpid") int same(void *ctx) { return 0; }\n')
    result = ecc("build", str(tmp_path / "a.bpf.c"), str(tmp_path / "b.bpf.c"), "--link", "ab",
                 "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    b = tmp_path / "b.bpf.c"
    assert result.stderr == (
        f"libbpf: conflicting non-weak symbol #2 (same) definition in {b}\n"
        f"Error: failed to link {b}: Invalid argument (22)\n"
        f"ecc: error: linking a.bpf.c, b.bpf.c into ab.bpf.o failed: conflicting non-weak "
        f"symbol #2 (same) definition in {b}\n")


@pytest.mark.kernel
def test_linked_package_runs(linked: Path, kernel: None) -> None:
    from runner import EccRun

    run = EccRun("--json", "--duration", "8", str(linked / "package.json"))
    run.wait_ready()
    child = subprocess.Popen([sys.executable, "-c", "import os; [os.getpid() for _ in range(3)]"])
    child.wait(10)
    assert run.wait_for(lambda: sum(r["tgid"] == child.pid for r in run.json_rows()) >= 3)
    assert run.stop() == 0
    rows = [r for r in run.json_rows() if r["tgid"] == child.pid]
    # The hash map of maps.bpf.c counts, the ring buffer of maps.bpf.c carries the events.
    assert [r["calls"] for r in rows][:3] == [1, 2, 3]
    assert rows[0]["comm"].startswith("python")
