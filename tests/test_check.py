"""``ecc check PACKAGE`` (issue 18): the schema shipped in ecc, the object, and libbpf.

Each broken package below is broken by hand in one known way, and the check
must say exactly that, one line per problem, exit 1, no traceback.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from builds import CASES, Built, all_units
from conftest import EXAMPLES, needs, requires_clang

from ecc.check import check_file, schema_problems
from ecc.package.schema import package_schema

# Every check opens the object with libbpf.
pytestmark = needs("libbpf")
BUILDABLE = [u.name for u in all_units(CASES)
             if not (CASES / u.name / "expected-error.txt").exists()]


def ecc(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          input=stdin, check=False)


@pytest.mark.parametrize("name", BUILDABLE)
def test_every_package_ecc_builds_passes(name: str, built: dict[str, Built]) -> None:
    case = built[f"cases/{name}"]
    assert case.result is not None, case.error
    result = check_file(str(case.package))
    assert result.problems == () and result.notes == ()
    skel = json.loads(case.package.read_text())["meta"]["bpf_skel"]
    assert result.checked.startswith(f"{len(skel['maps'])} map")


def test_the_schema_is_ecc_own() -> None:
    schema = package_schema()
    assert schema["required"] == ["bpf_object", "bpf_object_size", "meta"]
    assert schema_problems({"bpf_object": "AAAA", "bpf_object_size": 64}) == [
        "'meta' is a required property"]


@pytest.fixture()
def bootstrap(built: dict[str, Built], tmp_path: Path) -> dict[str, Any]:
    case = built["cases/example-bootstrap"]
    assert case.result is not None, case.error
    return json.loads(case.package.read_text())  # type: ignore[no-any-return]


def _write(tmp_path: Path, package: dict[str, Any]) -> Path:
    path = tmp_path / "package.json"
    path.write_text(json.dumps(package))
    return path


@needs("bpftool")
def test_each_problem_is_one_line(bootstrap: dict[str, Any], tmp_path: Path) -> None:
    skel = bootstrap["meta"]["bpf_skel"]
    skel["maps"][3]["mmaped"] = False           # the schema: an mmaped map says true
    skel["maps"][1]["name"] = "rb_renamed"      # libbpf: no such map
    skel["progs"][1]["attach"] = "tp/sched/sched_switch"  # the object: no such section
    bootstrap["meta"]["export_types"][0]["type_id"] = 1   # not struct event
    path = _write(tmp_path, bootstrap)
    result = ecc("check", str(path))
    assert result.returncode == 1
    p = str(path)
    progs = [("handle_exec", "tp/sched/sched_process_exec"),
             ("handle_exit", "tp/sched/sched_process_exit")]
    listed = [progs[0], ("handle_exit", "tp/sched/sched_switch")]
    # What type 1 is, by bpftool: the oracle for both ecc's line and libbpf's.
    obj = tmp_path / "bootstrap.bpf.o"
    obj.write_bytes(zlib.decompress(base64.b64decode(bootstrap["bpf_object"])))
    first = subprocess.run(["bpftool", "btf", "dump", "file", str(obj)], capture_output=True,
                           text=True, check=True).stdout.splitlines()[0]
    match = re.fullmatch(r"\[1\] DATASEC '(\S+)' size=\d+ vlen=(\d+)", first)
    assert match, first
    section, vlen = match.group(1), int(match.group(2))
    assert result.stdout.splitlines() == [
        f"{p}: field 'meta.bpf_skel.maps[3].mmaped': True was expected",
        f"{p}: program 'handle_exit' names section 'tp/sched/sched_switch', which the object "
        f"does not have",
        f"{p}: export_types[0]: type_id 1 is DATASEC '{section}' in the object's BTF, not "
        f"struct event; rebuild the package",
        f"{p}: map 'rb_renamed': libbpf finds no map of that name",
        f"{p}: progs: libbpf has {progs}, the package lists {listed}",
        f"{p}: export_types[0]: libbpf's BTF has type 1 as kind 15 '{section}' with {vlen} "
        f"members, not struct event with 7",
    ]
    assert result.stderr == "ecc: error: 1 of 1 package failed the check; each line above " \
                            "names the field\n"


def test_a_good_package_and_its_other_forms(built: dict[str, Built], tmp_path: Path) -> None:
    case = built["cases/example-bootstrap"]
    out = case.out_dir
    skel = next(out.glob("*.skel.json"))
    result = ecc("check", str(case.package), str(skel))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{case.package}: ok (4 maps, 2 programs, 1 export type)",
        f"{skel}: ok (4 maps, 2 programs, 1 export type)"]
    assert result.stderr == ""
    piped = ecc("check", "-", stdin=case.package.read_text())
    assert piped.stdout == "<stdin>: ok (4 maps, 2 programs, 1 export type)\n"
    import yaml

    as_yaml = tmp_path / "package.yaml"
    as_yaml.write_text(yaml.safe_dump(json.loads(case.package.read_text())))
    assert ecc("check", str(as_yaml)).stdout == (
        f"{as_yaml}: ok (4 maps, 2 programs, 1 export type)\n")


@requires_clang
def test_a_standalone_file_is_checked(tmp_path: Path) -> None:
    source = EXAMPLES / "xdp" / "xdp.bpf.c"
    built = ecc("build", str(source), "--standalone", "-o", str(tmp_path))
    assert built.returncode == 0, built.stderr
    result = ecc("check", str(tmp_path / "xdp.out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{tmp_path / 'xdp.out'}: ok (")


def test_a_broken_object_is_one_line(bootstrap: dict[str, Any], tmp_path: Path) -> None:
    """An object that is no ELF file: nothing else can be checked, and that is said once."""
    obj = zlib.decompress(base64.b64decode(bootstrap["bpf_object"]))
    broken = bytearray(obj)
    broken[:4] = b"\x7fELG"
    bootstrap["bpf_object"] = base64.b64encode(zlib.compress(bytes(broken))).decode()
    path = _write(tmp_path, bootstrap)
    result = ecc("check", str(path))
    assert result.returncode == 1
    assert result.stdout == (f"{path}: its BPF object is broken: not an ELF file (bad magic)\n")


@pytest.mark.parametrize(("content", "message"), [
    (b"\xffnot json", "not UTF-8 text (byte 0)"),
    (b"{\"bpf_object\": ", "not valid JSON: Expecting value (line 1 column 16)"),
])
def test_not_a_package_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "package.json"
    path.write_bytes(content)
    result = ecc("check", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"ecc: error: {path}: {message}")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
