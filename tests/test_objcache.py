"""The compiled-object cache (ecc/compiler/objcache.py): a build of unchanged inputs takes
the object an earlier build made, without clang; anything clang would see differently
(a header's bytes, a header put earlier in the search path, a flag, clang's environment)
compiles again, and what a manifest cannot see is never kept. Every object is checked
against a ``--no-cache`` compile of the same files: clang is the oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import requires_clang

from ecc.cli import parse_build_args
from ecc.compiler import BuildResult, build, objcache, pch
from ecc.compiler.cache import disk_usage

ROOT = Path(__file__).resolve().parent.parent

pytestmark = requires_clang

# No vmlinux.h: the compiles take a blink. VALUE lands in .data, so the object says
# which common.h clang read.
PROGRAM = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"

int value = VALUE;

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return value > 0 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
"""
COMMON = "#ifndef COMMON_H\n#define COMMON_H\n#define VALUE %d\n#endif\n"


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as settled at once (the 2 s rule has its test)."""
    monkeypatch.setattr(objcache, "SETTLED_NS", 0)


def _project(root: Path, value: int = 1, common_in: str = ".") -> Path:
    folder = root / "prog"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prog.bpf.c").write_text(PROGRAM)
    (folder / common_in).mkdir(parents=True, exist_ok=True)
    (folder / common_in / "common.h").write_text(COMMON % value)
    return folder


def _build(folder: Path, out: str, *flags: str) -> BuildResult:
    return build(parse_build_args([str(folder / "prog.bpf.c"), *flags, "-o",
                                   str(folder / out)]))


def _compiled(result: BuildResult) -> bool:
    return any(os.path.basename(c["argv"][0]).startswith("clang") for c in result.commands)


def _taken(result: BuildResult) -> bool:
    return "cached" in result.timings and not _compiled(result)


def _plain(folder: Path, *flags: str) -> bytes:
    """The object clang makes of the folder as it is now, no cache at all."""
    result = _build(folder, f"plain-{time.monotonic_ns()}", "--no-cache", *flags)
    assert _compiled(result)
    return result.object_bytes


def _objects(cache: Path) -> list[Path]:
    return sorted((cache / objcache.FOLDER).glob("*"))


def test_a_rebuild_takes_the_object_and_writes_the_same_files(
        tmp_path: Path, fresh_cache: Path, settled: None) -> None:
    folder = _project(tmp_path)
    first = _build(folder, "first")
    assert _compiled(first) and len(_objects(fresh_cache)) == 1
    again = _build(folder, "again")
    assert _taken(again)
    plain = _build(folder, "plain", "--no-cache")
    for name in ("prog.bpf.o", "prog.skel.json", "package.json"):
        assert (folder / "again" / name).read_bytes() == (folder / "plain" / name).read_bytes() \
            == (folder / "first" / name).read_bytes(), name
    # The provenance names the inputs and their digests as a compile would.
    assert again.meta == plain.meta and again.inputs == plain.inputs
    assert (fresh_cache / "stats" / "object-hits").stat().st_size == 1


def test_a_changed_header_compiles_again(tmp_path: Path, fresh_cache: Path,
                                          settled: None) -> None:
    folder = _project(tmp_path, value=1)
    one = _build(folder, "one").object_bytes
    (folder / "common.h").write_text(COMMON % 2)
    two = _build(folder, "two")
    assert _compiled(two) and two.object_bytes == _plain(folder) != one
    assert _taken(_build(folder, "two-again"))
    (folder / "common.h").write_text(COMMON % 1)  # back: the entry now holds value 2's
    back = _build(folder, "back")
    assert _compiled(back) and back.object_bytes == one


def test_a_header_put_earlier_in_the_search_path_compiles_again(
        tmp_path: Path, fresh_cache: Path, settled: None) -> None:
    folder = _project(tmp_path, value=1, common_in="inc")
    flags = ("--additional-cflags", f"-I{folder / 'inc'}")
    one = _build(folder, "one", *flags).object_bytes
    assert _taken(_build(folder, "one-again", *flags))
    # The program's own folder is searched before -I inc: this one wins now.
    (folder / "common.h").write_text(COMMON % 3)
    three = _build(folder, "three", *flags)
    assert _compiled(three) and three.object_bytes == _plain(folder, *flags) != one


@pytest.mark.parametrize("header, why", [
    ('#if __has_include("extra.h")\n#define VALUE 2\n#else\n#define VALUE 1\n#endif\n',
     "asks whether a file exists"),
    ("#define VALUE (sizeof(__DATE__) + 1)\n", "reads the clock"),
    ('#include "../sibling/common.h"\n', "includes through .."),
])
def test_what_a_manifest_cannot_see_is_not_kept(tmp_path: Path, fresh_cache: Path,
                                                 settled: None, header: str, why: str) -> None:
    folder = _project(tmp_path)
    (tmp_path / "sibling").mkdir()  # a folder beside the program's, in the test's tmp_path
    (tmp_path / "sibling" / "common.h").write_text(COMMON % 5)
    (folder / "common.h").write_text(header)
    first = _build(folder, "first")
    assert _compiled(first) and _objects(fresh_cache) == [], why
    if "__has_include" in header:  # and indeed: the file appears, the program changes
        (folder / "extra.h").write_text("\n")
        assert _build(folder, "second").object_bytes == _plain(folder) != first.object_bytes
    else:
        assert _compiled(_build(folder, "second"))


def test_a_taken_object_says_what_its_compile_said(tmp_path: Path, fresh_cache: Path,
                                                   settled: None) -> None:
    folder = _project(tmp_path)
    (folder / "common.h").write_text(COMMON % 1 + "#warning look here\n")
    first = _build(folder, "first")
    assert "look here" in first.diagnostics and len(_objects(fresh_cache)) == 1
    second = _build(folder, "second")
    plain = _build(folder, "plain", "--no-cache")
    assert _taken(second) and second.diagnostics == plain.diagnostics == first.diagnostics
    assert f"{folder / 'common.h'}:5:2: warning: look here" in second.diagnostics


def test_flags_and_clangs_environment_are_in_the_key(tmp_path: Path, fresh_cache: Path,
                                                     settled: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _project(tmp_path)
    _build(folder, "one")
    other = _build(folder, "other", "--additional-cflags", "-DEXTRA=1")
    assert _compiled(other) and len(_objects(fresh_cache)) == 2
    # CPATH puts a folder in clang's search: a common.h there could win.
    monkeypatch.setenv("CPATH", str(tmp_path))
    assert _compiled(_build(folder, "cpath"))
    monkeypatch.delenv("CPATH")
    assert _taken(_build(folder, "plain-again"))


def test_a_damaged_entry_is_compiled_again(tmp_path: Path, fresh_cache: Path,
                                           settled: None) -> None:
    folder = _project(tmp_path)
    good = _build(folder, "one").object_bytes
    [entry] = _objects(fresh_cache)
    obj = entry / objcache.OBJECT
    obj.write_bytes(obj.read_bytes()[:-1] + b"\x01")  # same size, other bytes
    again = _build(folder, "two")
    assert _compiled(again) and again.object_bytes == good
    (entry / objcache.MANIFEST).write_text("{not json")
    assert _compiled(_build(folder, "three"))
    assert _taken(_build(folder, "four"))  # the compile kept a whole entry again
    manifest = json.loads((entry / objcache.MANIFEST).read_text())
    assert set(manifest["inputs"]) == set(manifest["depends"])
    assert str(folder / "common.h") in manifest["inputs"]


def test_a_file_changed_just_before_the_build_is_not_kept(tmp_path: Path,
                                                          fresh_cache: Path) -> None:
    """The real 2 s rule: a file changed within the clock's granularity of the compile
    might not be the one clang read, so its object waits for a later build."""
    folder = _project(tmp_path)
    assert _compiled(_build(folder, "fresh")) and _objects(fresh_cache) == []
    time.sleep(objcache.SETTLED_NS / 1e9 + 0.2)
    assert _compiled(_build(folder, "settled")) and len(_objects(fresh_cache)) == 1
    assert _taken(_build(folder, "taken"))


def test_objects_are_evicted_with_the_precompiled_headers(
        tmp_path: Path, fresh_cache: Path, settled: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folders = [_project(tmp_path / f"p{i}", value=i + 1) for i in range(3)]
    for f in folders:
        _build(f, "out")
        time.sleep(0.02)  # the entries' mtimes order them
    entries = _objects(fresh_cache)
    assert len(entries) == 3
    oldest = min(entries, key=lambda e: e.stat().st_mtime)
    monkeypatch.setenv("ECC_CACHE_MAX", str(disk_usage(fresh_cache) - disk_usage(oldest) // 2))
    removed = pch.evict()
    assert removed and removed[0] == oldest and not oldest.exists()
    assert disk_usage(fresh_cache) <= int(os.environ["ECC_CACHE_MAX"])


def test_cache_info_counts_objects_and_clean_removes_them(tmp_path: Path,
                                                         fresh_cache: Path) -> None:
    folder = _project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def ecc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True,
                              text=True, env=env, check=False)

    time.sleep(objcache.SETTLED_NS / 1e9 + 0.2)
    for _ in range(3):
        assert ecc("build", str(folder / "prog.bpf.c")).returncode == 0
    info = ecc("cache", "info").stdout.splitlines()
    assert info[4].startswith("objects:  1 compiled object (")
    assert info[4].endswith("), reused 2 times, compiled 1 times")
    assert ecc("cache", "clean").returncode == 0
    assert not (fresh_cache / objcache.FOLDER).exists()
    # The last build's workspace touched the program's ctime (its links): settle again.
    time.sleep(objcache.SETTLED_NS / 1e9 + 0.2)
    off = ecc("build", str(folder / "prog.bpf.c"), "-v")
    assert "cached" not in off.stderr  # cleaned: compiled, and kept again
    env["ECC_OBJECT_CACHE"] = "0"
    assert "cached" not in ecc("build", str(folder / "prog.bpf.c"), "-v").stderr
    env.pop("ECC_OBJECT_CACHE")
    assert "cached" in ecc("build", str(folder / "prog.bpf.c"), "-v").stderr


def test_verify_compiles_instead_of_taking_the_object(tmp_path: Path, fresh_cache: Path,
                                                      settled: None) -> None:
    folder = _project(tmp_path)
    _build(folder, "out")
    assert _taken(_build(folder, "out"))
    report = tmp_path / "report.json"
    verified = subprocess.run(
        [sys.executable, "-m", "ecc", "build", str(folder / "prog.bpf.c"), "-o",
         str(folder / "out"), "--verify", "--report", str(report)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False)
    assert verified.returncode == 0, verified.stderr
    [record] = json.loads(report.read_text())["builds"]
    assert any(c["what"] == "compiling prog.bpf.c" for c in record["commands"])
    assert "cached" not in record["timings"]
