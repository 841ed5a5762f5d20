"""Broken packages: each gets its exact one-line error from `ecc run`, before anything loads."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builds import Built


def ecc_run(path: Path | str, *args: str, stdin: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", "run", str(path), *args],
                          capture_output=True, text=True, input=stdin, timeout=60, check=False)


@pytest.fixture()
def good(built: dict[str, Built]) -> dict[str, Any]:
    case = built["cases/example-bootstrap"]
    assert case.result is not None
    return json.loads(case.package.read_text())  # type: ignore[no-any-return]


def _truncate(p: dict[str, Any]) -> None:
    obj = zlib.compress(zlib.decompress(base64.b64decode(p["bpf_object"])))
    p["bpf_object"] = base64.b64encode(obj[: len(obj) // 2]).decode()


def _wrong_size(p: dict[str, Any]) -> None:
    p["bpf_object_size"] += 8


def _bomb(p: dict[str, Any]) -> None:
    p["bpf_object"] = base64.b64encode(zlib.compress(b"\0" * (80 << 20), 9)).decode()
    p["bpf_object_size"] = 80 << 20


def _bad_type_id(p: dict[str, Any]) -> None:
    p["meta"]["export_types"][0]["type_id"] = 2


def _type_id_out_of_range(p: dict[str, Any]) -> None:
    p["meta"]["export_types"][0]["type_id"] = 99999


def _member_count(p: dict[str, Any]) -> None:
    p["meta"]["export_types"][0]["members"].pop()


def _unknown_section(p: dict[str, Any]) -> None:
    p["meta"]["bpf_skel"]["data_sections"].append({"name": ".data.nope", "variables": []})


def _unknown_prog_section(p: dict[str, Any]) -> None:
    p["meta"]["bpf_skel"]["progs"][0]["attach"] = "tp/nope/nope"


def _not_elf(p: dict[str, Any]) -> None:
    junk = b"not an object" * 10
    p["bpf_object"] = base64.b64encode(zlib.compress(junk)).decode()
    p["bpf_object_size"] = len(junk)


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "truncated": (_truncate, "package field 'bpf_object' is truncated (its zlib stream is cut)"),
    "wrong-size": (_wrong_size, "package field 'bpf_object' inflates to {size} bytes, but "
                   "'bpf_object_size' says {size8}"),
    "bomb": (_bomb, "package field 'bpf_object_size' is 83886080 bytes, over the "
             "67108864-byte limit"),
    "bad-type-id": (_bad_type_id, "export_types[0]: type_id 2 is {kind2} in the object's BTF, "
                    "not struct event; rebuild the package"),
    "type-id-out-of-range": (_type_id_out_of_range, "export_types[0] (event): type_id 99999 is "
                             "not in the object's BTF (ids 1 to {last}); rebuild the package"),
    "member-count": (_member_count, "export_types[0]: struct event has 7 members in the "
                     "object's BTF, but the package lists 6; rebuild the package"),
    "unknown-section": (_unknown_section, "data section '.data.nope' is not in the object; the "
                        "package does not belong to this object (rebuild it)"),
    "unknown-prog-section": (_unknown_prog_section, "program 'handle_exec' names section "
                             "'tp/nope/nope', which the object does not have"),
    "not-elf": (_not_elf, "its BPF object is broken: not an ELF file (bad magic)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_package(name: str, good: dict[str, Any], tmp_path: Path) -> None:
    from ecc.btf import parse_btf
    from ecc.elf import read_object

    mutate, template = CASES[name]
    obj = zlib.decompress(base64.b64decode(good["bpf_object"]))
    btf = parse_btf(read_object(obj).btf or b"")
    kind2 = btf[2]
    facts = {"size": len(obj), "size8": len(obj) + 8, "last": len(btf) - 1,
             "kind2": f"{kind2.kind.name} '{kind2.name}'" if kind2.name else kind2.kind.name}
    package = json.loads(json.dumps(good))
    mutate(package)
    path = tmp_path / "package.json"
    path.write_text(json.dumps(package))
    result = ecc_run(path)
    assert result.returncode == 1
    assert result.stderr == f"ecc: error: {path}: {template.format(**facts)}\n"


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "package.json"
    path.write_text('{"bpf_object": ')
    result = ecc_run(path)
    assert result.returncode == 1
    assert result.stderr == (f"ecc: error: {path}: not valid JSON: Expecting value "
                             "(line 1 column 16)\n")


def test_missing_file(tmp_path: Path) -> None:
    result = ecc_run(tmp_path / "none.json")
    assert result.stderr == f"ecc: error: {tmp_path / 'none.json'}: no such file\n"


def test_stdin_and_skel_forms(good: dict[str, Any], built: dict[str, Built]) -> None:
    """`-` reads the package from stdin; a .skel.json finds its .bpf.o beside it."""
    result = ecc_run("-", "--help", stdin=json.dumps(good))
    assert result.returncode == 0 and "Usage: bootstrap" in result.stdout
    case = built["cases/example-bootstrap"]
    skel = ecc_run(case.out_dir / "bootstrap.skel.json", "--help")
    assert skel.returncode == 0 and "-p, --pid INT" in skel.stdout
