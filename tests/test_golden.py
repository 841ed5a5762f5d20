"""Golden cases: each tests/cases/<name>/ builds to the meta in its expected.json.

`pytest --update-golden` rewrites expected.json from the actual result; review
with `git diff tests/cases`. CI never passes the flag.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from builds import CASES, Built, all_units

from ecc.package.schema import package_schema

CASE_NAMES = [u.name for u in all_units(CASES)]
# Cases whose build must fail (expected-error.txt) have no package to check.
BUILDABLE = [n for n in CASE_NAMES if not (CASES / n / "expected-error.txt").exists()]


def normalized(meta: dict[str, Any]) -> dict[str, Any]:
    """The meta with the compiler's version blanked, so a release does not touch every case.

    ``provenance`` (hashes of every header, toolchain versions) changes with the
    machine's libbpf and clang; tests/test_repro.py checks it.
    """
    out = dict(meta)
    if "eunomia_version" in out:
        out["eunomia_version"] = "*"
    out.pop("provenance", None)
    return out


def _relative(text: str, case: Built) -> str:
    """Messages name the source as the user typed it; golden files use the bare file name."""
    return text.replace(str(case.unit.source), case.unit.source.name)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_golden_meta(name: str, built: dict[str, Built], request: pytest.FixtureRequest) -> None:
    case = built[f"cases/{name}"]
    folder = CASES / name
    update = request.config.getoption("--update-golden")
    expected_error = folder / "expected-error.txt"
    expected_warnings = folder / "expected-warnings.txt"
    if case.error is not None:
        message = _relative(str(case.error), case)
        if update:
            expected_error.write_text(message + "\n")
        assert expected_error.is_file(), f"build failed: {message}"
        assert message == expected_error.read_text().strip()
        return
    assert case.result is not None
    actual = normalized(case.result.meta)
    warnings = "".join(_relative(w, case) + "\n" for w in case.result.warnings)
    expected_file = folder / "expected.json"
    if update:
        expected_file.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
        if warnings:
            expected_warnings.write_text(warnings)
        elif expected_warnings.exists():
            expected_warnings.unlink()
    assert expected_file.is_file(), f"{expected_file} missing: run pytest --update-golden"
    assert actual == json.loads(expected_file.read_text())
    assert warnings == (expected_warnings.read_text() if expected_warnings.is_file() else "")


@pytest.mark.parametrize("name", BUILDABLE)
def test_package_files(name: str, built: dict[str, Built]) -> None:
    """package.json validates against the schema and agrees with .skel.json and the .bpf.o."""
    import base64
    import zlib

    import jsonschema

    case = built[f"cases/{name}"]
    assert case.result is not None, case.error
    package = json.loads(case.package.read_text())
    jsonschema.validate(package, package_schema())
    obj = zlib.decompress(base64.b64decode(package["bpf_object"]))
    assert len(obj) == package["bpf_object_size"]
    stem = case.unit.source.name.split(".", 1)[0]
    assert (case.out_dir / f"{stem}.bpf.o").read_bytes() == obj
    assert json.loads((case.out_dir / f"{stem}.skel.json").read_text()) == package["meta"]
    produced = sorted(p.name for p in case.out_dir.iterdir())
    assert produced == sorted([f"{stem}.bpf.o", f"{stem}.skel.json", "package.json"])
