"""Reproducible builds, provenance, --verify, --report and --depfile (issue 9)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builds import EXAMPLES, Built, build_all, discover
from conftest import require, requires_clang

from ecc.compiler.report import parse_depfile
from ecc.elf import read_object

pytestmark = requires_clang

BOOTSTRAP = EXAMPLES / "bootstrap"
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if list(p.glob("*.bpf.c")))


def ecc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          cwd=cwd, check=False)


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> dict[str, Path]:
    """Every example copied into two folders of different depth and name length, and built."""
    root = tmp_path_factory.mktemp("repro")
    units = []
    for where in ("a", "a-much-longer-folder-name/nested/deeper"):
        for name in EXAMPLE_NAMES:
            folder = root / where / name
            shutil.copytree(EXAMPLES / name, folder)
            units.append(discover(folder))
    built = build_all(units, root / "out")
    for b in built.values():
        assert b.error is None, f"{b.unit.source}: {b.error}\n{b.error.details}"
    return {f"{b.unit.folder.parent.name}/{b.unit.name}": b.out_dir for b in built.values()}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_are_byte_identical_in_other_folders(name: str, copies: dict[str, Path],
                                                      built: dict[str, Built]) -> None:
    """The same example built from three folders (the repository's and two copies):
    the same .bpf.o, .skel.json and package.json, byte for byte."""
    first = outputs(copies[f"a/{name}"])
    second = outputs(copies[f"deeper/{name}"])
    assert set(first) == {f"{name}.bpf.o", f"{name}.skel.json", "package.json"}
    assert first == second
    original = built[f"cases/example-{name}"]
    assert original.result is not None, original.error
    assert outputs(original.out_dir) == first
    for data in first.values():
        assert b"/a-much-longer" not in data and str(EXAMPLES).encode() not in data


def test_line_info_keeps_source_text_without_paths(copies: dict[str, Path]) -> None:
    """Paths are mapped to '.', and the source lines are still in .BTF (what the
    verifier prints): clang runs in the folder "." names, and finds them there."""
    obj = (copies["a/bootstrap"] / "bootstrap.bpf.o").read_bytes()
    btf = read_object(obj).btf or b""
    assert b"./bootstrap.bpf.c\x00" in btf
    assert b"bpf_ringbuf_reserve(&rb, sizeof(*e), 0);" in btf
    assert b"/tmp" not in obj and b"clang version" not in obj


def test_provenance_records_toolchain_and_hashes(built: dict[str, Built]) -> None:
    case = built["cases/example-bootstrap"]
    assert case.result is not None
    meta = json.loads(case.package.read_text())["meta"]
    assert list(meta)[-1] == "provenance"  # after the keys loaders read
    record = meta["provenance"]
    assert list(record) == ["ecc_version", "arch", "clang", "flags", "sources", "headers"]
    assert record["arch"] == "x86" and record["ecc_version"] == meta["eunomia_version"]
    clang = subprocess.run(["clang-19", "--version"], capture_output=True, text=True).stdout
    assert record["clang"] == clang.splitlines()[0]
    assert "-D__TARGET_ARCH_x86" in record["flags"] and "-I." in record["flags"]
    assert {"-fno-ident", "-fdebug-compilation-dir=."} <= set(record["flags"])
    source = BOOTSTRAP / "bootstrap.bpf.c"
    assert record["sources"] == [{"path": "./bootstrap.bpf.c",
                                  "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}]
    headers = {h["path"]: h["sha256"] for h in record["headers"]}
    assert headers["./bootstrap.h"] == hashlib.sha256(
        (BOOTSTRAP / "bootstrap.h").read_bytes()).hexdigest()
    assert {"/usr/include/bpf/bpf_helpers.h", "/usr/include/bpf/bpf_tracing.h",
            "<vmlinux>/vmlinux.h"} <= set(headers)
    # The .skel.json is meta alone: it carries the same record.
    skel = json.loads((case.out_dir / "bootstrap.skel.json").read_text())
    assert skel["provenance"] == record


def _build_bootstrap(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return ecc("build", str(BOOTSTRAP / "bootstrap.bpf.c"), str(BOOTSTRAP / "bootstrap.h"),
               "-o", str(out), *extra)


def test_verify_passes_then_names_what_was_tampered(tmp_path: Path, cache_env: Path) -> None:
    out = tmp_path / "out"
    assert _build_bootstrap(out).returncode == 0
    result = _build_bootstrap(out, "--verify")
    assert (result.returncode, result.stderr) == (0, (
        "ecc: verified: bootstrap.bpf.o, bootstrap.skel.json, package.json match a fresh "
        "build\n"))

    package = json.loads((out / "package.json").read_text())
    package["meta"]["bpf_skel"]["maps"][0]["name"] = "tampered"
    (out / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    obj = bytearray((out / "bootstrap.bpf.o").read_bytes())
    section = next(s for s in read_object(bytes(obj)).sections
                   if s.name == "tp/sched/sched_process_exec")
    obj[section.offset + 9] ^= 0xFF
    (out / "bootstrap.bpf.o").write_bytes(bytes(obj))
    result = _build_bootstrap(out, "--verify")
    assert result.returncode == 1
    assert result.stderr == (
        "bootstrap.bpf.o: section tp/sched/sched_process_exec: bytes differ from offset 9 "
        f"({section.size} bytes here, {section.size} rebuilt)\n"
        'package.json: meta.bpf_skel.maps[0].name: "tampered" here, "exec_start" rebuilt\n'
        "ecc: error: --verify: bootstrap.bpf.o, package.json differ from a fresh build of the "
        "same sources (see above)\n")


def test_verify_names_an_object_changed_inside_the_package(tmp_path: Path,
                                                            cache_env: Path) -> None:
    import base64
    import zlib

    out = tmp_path / "out"
    assert _build_bootstrap(out).returncode == 0
    package = json.loads((out / "package.json").read_text())
    obj = bytearray(zlib.decompress(base64.b64decode(package["bpf_object"])))
    section = next(s for s in read_object(bytes(obj)).sections if s.name == "license")
    obj[section.offset] ^= 0x20  # "Dual" -> "dual"
    package["bpf_object"] = base64.b64encode(zlib.compress(bytes(obj))).decode()
    (out / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    result = _build_bootstrap(out, "--verify")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "package.json: bpf_object: section license: bytes differ from offset 0 "
        f"({section.size} bytes here, {section.size} rebuilt)")


def test_verify_with_nothing_built(tmp_path: Path, cache_env: Path) -> None:
    result = _build_bootstrap(tmp_path, "--verify")
    assert result.returncode == 1
    assert result.stderr == (
        f"ecc: error: --verify: nothing to verify in {tmp_path}: none of bootstrap.bpf.o, "
        f"bootstrap.skel.json, package.json is there; build without --verify first\n")
    assert list(tmp_path.iterdir()) == []


def test_report_and_depfile(tmp_path: Path, cache_env: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECC_OBJECT_CACHE", "0")  # a compile's report: it names clang's run
    out = tmp_path / "out"
    report, depfile = tmp_path / "report.json", tmp_path / "deps.d"
    before = outputs(BOOTSTRAP)
    result = _build_bootstrap(out, "--report", str(report), "--depfile", str(depfile))
    assert result.returncode == 0, result.stderr
    assert outputs(BOOTSTRAP) == before  # inputs are only read
    doc = json.loads(report.read_text())
    assert doc["ok"] is True and doc["ecc_version"] and doc["seconds"] > 0
    (record,) = doc["builds"]
    assert record["arch"] == "x86"
    assert record["sources"] == [str(BOOTSTRAP / "bootstrap.bpf.c")]
    inputs = {i["path"]: i for i in record["inputs"]}
    assert inputs[str(BOOTSTRAP / "bootstrap.bpf.c")]["kind"] == "source"
    assert inputs[str(BOOTSTRAP / "bootstrap.h")]["kind"] == "header"
    assert "/usr/include/bpf/bpf_helpers.h" in inputs
    assert any(p.endswith("/vmlinux.h") for p in inputs)
    for item in record["inputs"]:
        assert item["sha256"] == hashlib.sha256(Path(item["path"]).read_bytes()).hexdigest()
    assert [Path(o["path"]).name for o in record["outputs"]] == [
        "bootstrap.bpf.o", "bootstrap.skel.json", "package.json"]
    for item in record["outputs"]:
        data = Path(item["path"]).read_bytes()
        assert (item["bytes"], item["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    clang = next(c for c in record["commands"] if c["what"] == "compiling bootstrap.bpf.c")
    assert clang["exit"] == 0 and clang["seconds"] > 0 and "-MD" in clang["argv"]
    assert {"clang", "strip", "read", "write"} <= set(record["timings"])
    assert record["warnings"] == []

    text = depfile.read_text()
    targets = text.split(":", 1)[0].split()
    assert targets == [o["path"] for o in record["outputs"]]
    assert parse_depfile(text) == list(inputs)
    assert f"\n{BOOTSTRAP / 'bootstrap.h'}:\n" in text  # empty rules, as clang's -MP


def test_depfile_drives_make(tmp_path: Path, cache_env: Path) -> None:
    """make reads the depfile: up to date after the build, stale once a header changes."""
    require("make")
    src = tmp_path / "src"
    shutil.copytree(BOOTSTRAP, src)
    out, depfile = tmp_path / "out", tmp_path / "bootstrap.d"
    (tmp_path / "Makefile").write_text(
        f"{out}/package.json:\n\t{sys.executable} -m ecc build {src}/bootstrap.bpf.c "
        f"{src}/bootstrap.h -o {out} --depfile {depfile}\n-include {depfile}\n")
    assert subprocess.run(["make", "-s", "-C", str(tmp_path)], capture_output=True,
                          check=False).returncode == 0
    assert subprocess.run(["make", "-q", "-C", str(tmp_path)], check=False).returncode == 0
    header = src / "bootstrap.h"
    header.write_text(header.read_text() + "\n")
    assert subprocess.run(["make", "-q", "-C", str(tmp_path)], check=False).returncode == 1


def test_report_of_a_failed_build(tmp_path: Path, cache_env: Path) -> None:
    source = tmp_path / "bad.bpf.c"
    source.write_text("int x = ;\n")
    report = tmp_path / "report.json"
    result = ecc("build", str(source), "--report", str(report))
    assert result.returncode == 1
    doc = json.loads(report.read_text())
    assert doc["ok"] is False
    assert doc["error"] == "bad.bpf.c: clang reported 1 error; fix the source and build again"
    assert "bad.bpf.c:1:9: error: expected expression" in doc["diagnostics"]


def test_depfile_parser_undoes_escapes() -> None:
    text = "out\\ dir/x.o: a.c /p/with\\ space.h \\\n  /q/hash\\#.h /r/dollar$$.h\n"
    assert parse_depfile(text) == ["a.c", "/p/with space.h", "/q/hash#.h", "/r/dollar$.h"]


FILE_MACRO = """\
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tp/syscalls/sys_enter_getpid")
int where(void *ctx)
{
	bpf_printk("%s", __FILE__);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("cache", [True, False], ids=["pch", "no-cache"])
def test_file_macro_and_no_cache_builds_are_reproducible(cache: bool, tmp_path: Path,
                                                         cache_env: Path) -> None:
    """__FILE__ is mapped like line info; without the PCH too, clang runs with fixed
    addresses (its BTF order varied from run to run before)."""
    from ecc.compiler import BuildOptions, build

    objects = set()
    for folder in ("x", "a-longer-folder/and-deeper", "y"):
        source = tmp_path / folder / "where.bpf.c"
        source.parent.mkdir(parents=True)
        source.write_text(FILE_MACRO)
        result = build(BuildOptions(source=str(source), cache=cache,
                                    output_dir=str(tmp_path / folder / "out")))
        objects.add(result.object_bytes)
    (obj,) = objects
    assert b"./where.bpf.c\x00" in obj and str(tmp_path).encode() not in obj


def test_path_map_names_the_most_specific_folder() -> None:
    from ecc.compiler.repro import PathMap

    paths = PathMap.for_build("/src/prog", workspace="/tmp/ecc-1", cache="/home/u/.cache/ecc",
                              vmlinux_dir="/home/u/.cache/ecc/vmlinux/ab",
                              aliases={"/tmp/ecc-1/src-12345678": "/src/prog"})
    assert paths.portable("/src/prog/x.h") == "./x.h"
    assert paths.portable("/src/progress/x.h") == "/src/progress/x.h"  # not a prefix
    assert paths.portable("/tmp/ecc-1/src-12345678/sub/y.h") == "./sub/y.h"
    assert paths.portable("/home/u/.cache/ecc/vmlinux/ab/vmlinux.h") == "<vmlinux>/vmlinux.h"
    assert paths.portable("/home/u/.cache/ecc/pch/k/prefix.h") == "<cache>/pch/k/prefix.h"
    assert paths.portable_flag("-I/tmp/ecc-1/src-12345678") == "-I."
    flags = paths.debug_flags()
    # Never the real folder (clang does not see it), most specific last (clang tries it first).
    assert flags[:4] == ["-ffile-prefix-map=/tmp/ecc-1/=<workspace>/",
                         "-ffile-prefix-map=/home/u/.cache/ecc/=<cache>/",
                         "-ffile-prefix-map=/tmp/ecc-1/src-12345678/=./",
                         "-ffile-prefix-map=/home/u/.cache/ecc/vmlinux/ab/=<vmlinux>/"]
    assert "-gembed-source" not in flags  # it would put all of vmlinux.h in the DWARF
    assert paths.line_root() == "/tmp/ecc-1/src-12345678"  # the mirror clang sees as "."


def test_json_difference_names_paths() -> None:
    from ecc.compiler.repro import describe_difference

    old = json.dumps({"meta": {"a": [1, 2], "b": "x", "gone": 1}}).encode()
    new = json.dumps({"meta": {"a": [1, 3, 4], "b": "x", "new": True}}).encode()
    assert describe_difference("package.json", old, new) == [
        "meta.a: 2 entries here, 3 rebuilt",
        "meta.a[1]: 2 here, 3 rebuilt",
        "meta.gone: only here (1)",
        "meta.new: only in the rebuild (true)",
    ]
    assert describe_difference("package.json", b'{"a": 1}', b'{ "a": 1 }') == [
        "same content, different bytes (formatting)"]


def test_digest_is_remembered_only_for_settled_files(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """-j builds share a vmlinux.h digest. A file changed in the last two seconds is
    hashed again, and so is one rewritten since, even with its mtime put back."""
    import os
    import time

    from ecc.compiler import provenance

    header = tmp_path / "vmlinux.h"
    header.write_text("one\n")
    os.utime(header, ns=(0, 10**18))  # an old mtime, as `cp -p` leaves; the ctime is now
    assert provenance.digest(str(header)) == hashlib.sha256(b"one\n").hexdigest()
    assert str(header) not in provenance._MEMO
    monkeypatch.setattr(provenance, "_SETTLED_NS", -(10**19))  # as if two seconds had passed
    assert provenance.digest(str(header)) == hashlib.sha256(b"one\n").hexdigest()
    assert str(header) in provenance._MEMO
    time.sleep(0.05)  # past the file system clock's tick
    header.write_text("two\n")  # the same size and mtime: only the ctime tells
    os.utime(header, ns=(0, 10**18))
    assert provenance.digest(str(header)) == hashlib.sha256(b"two\n").hexdigest()
