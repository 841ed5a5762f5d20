"""The suite cannot hide a failure behind a skip (issue 18).

- every test that uses the kernel, a build or a container carries the marker
  that says so (``-m "not kernel"`` really leaves them all out);
- a broken libbpf binding makes kernel tests error, not skip;
- ECC_REQUIRE turns a capability's skip into a failure, and under it any skip
  that names neither a kernel limit nor an unrequired capability fails;
- .ci/run requires every capability and runs the README's test command.

Each check runs pytest in a child process on real tests of this suite (or a
small test file of its own, with tests/conftest.py as a plugin), and reads the
outcomes from its JUnit XML report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import CAPABILITIES, ENV_REQUIRE, FIXTURE_MARKERS, ROOT

TESTS = ROOT / "tests"

COLLECT_PLUGIN = '''
import json, os


def pytest_collection_finish(session):
    rows = [{"id": item.nodeid, "fixtures": sorted(getattr(item, "fixturenames", ())),
             "marks": sorted({m.name for m in item.iter_markers()})} for item in session.items]
    with open(os.environ["ECC_TEST_COLLECTED"], "w") as fh:
        json.dump(rows, fh)
'''

# Breaks the ctypes binding the way a wrong entry in its prototype table would, before
# anything loads libbpf.
BREAK_PLUGIN = '''
import ctypes, os

from ecc.run import libbpf

how = os.environ["ECC_TEST_BREAK_LIBBPF"]
if how == "missing-symbol":
    libbpf._PROTOTYPES["bpf_no_such_function_for_the_test"] = (ctypes.c_int, [])
elif how == "bad-prototype":
    restype, argtypes = libbpf._PROTOTYPES["bpf_object__open_mem"]
    libbpf._PROTOTYPES["bpf_object__open_mem"] = (restype, [*argtypes[:-1], 42])
else:
    raise ValueError(how)
'''

SKIPS = '''
import pytest
from conftest import require_or_skip


def test_plain_skip():
    pytest.skip("no reason that names a capability")


def test_kernel_limit():
    pytest.skip("kernel limit: kprobes are compiled out of this kernel")


def test_podman_absent():
    require_or_skip("podman", "podman not installed")


def test_ruff_absent():
    require_or_skip("ruff", "ruff not installed")


@pytest.mark.needs("no-such-tool-here")
def test_unknown_capability():
    pass
'''


def pytest_child(args: list[str], tmp_path: Path, env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run pytest on ``args``; returns the process and test name -> outcome (passed,
    failed, error, skipped) with its message after a colon."""
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.xml"
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), str(TESTS), child_env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}", *args],
        cwd=cwd, env=child_env, capture_output=True, text=True, timeout=600, check=False)
    outcomes: dict[str, str] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("name", "")
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    kind = "failed" if child.tag == "failure" else child.tag
                    # a setup error and a call failure of the same test: keep the first
                    if outcome == "passed":
                        outcome = f"{kind}: {child.get('message', '')}"
            outcomes[name] = outcome
    return result, outcomes


def collect(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """Every test pytest collects from tests/ with ``args``: id, fixtures, markers."""
    if not (tmp_path / "ecc_test_collect.py").exists():
        (tmp_path / "ecc_test_collect.py").write_text(COLLECT_PLUGIN)
    out = tmp_path / "collected.json"
    result, _ = pytest_child(["--collect-only", "-p", "ecc_test_collect", *args, "tests"],
                             tmp_path, env={"ECC_TEST_COLLECTED": str(out)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows


# Tests that need a capability through a fixture of their own module, or by what they
# do; each must carry these markers.
KNOWN = {
    "tests/test_run.py::test_verifier_failure_names_program_and_log": {"kernel", "clang"},
    "tests/test_docker.py::test_docker_option_builds_through_the_api": {"podman", "clang"},
    "tests/unit/test_options.py::test_kconfig_and_dummies_are_skipped": {"clang"},
    "tests/unit/test_decode.py::test_clang_every_kind[little]": {"clang"},
    "tests/test_libbpf_kernel.py::test_struct_layouts_match_installed_headers": {"kernel", "clang"},
}


def test_markers_follow_the_fixtures(tmp_path: Path) -> None:
    """Every test that uses the kernel fixture, a build or a container carries the
    kernel, clang or podman marker, so `-m "not kernel and not clang and not podman"`
    leaves none of them."""
    rows = collect(tmp_path)
    users = {fixture: [r for r in rows if fixture in r["fixtures"]] for fixture in FIXTURE_MARKERS}
    for fixture, marker in FIXTURE_MARKERS.items():
        unmarked = [r["id"] for r in users[fixture] if marker not in r["marks"]]
        assert not unmarked, f"use {fixture!r} without the {marker!r} marker: {unmarked}"
    # Not vacuous: the suite's kernel tests, builds and containers are all there.
    assert len(users["kernel"]) > 90
    assert len(users["built"]) > 100
    assert len(users["podman"]) >= 8
    marks = {r["id"]: set(r["marks"]) for r in rows}
    for test, wanted in KNOWN.items():
        assert wanted <= marks[test], (test, marks[test])
    # Whole modules that load BPF, whatever fixtures their tests use.
    for module in ("tests/test_libbpf_kernel.py", "tests/test_run.py"):
        tests = [r for r in rows if r["id"].startswith(module + "::")]
        assert tests and all("kernel" in r["marks"] for r in tests), module
    # options tests compile with clang-19 through their module's `objects` fixture
    options = [r for r in rows if r["id"].startswith("tests/unit/test_options.py::")
               and "objects" in r["fixtures"]]
    assert options and all("clang" in r["marks"] for r in options)

    rest = collect(tmp_path, "-m", "not kernel and not clang and not podman")
    assert 0 < len(rest) < len(rows) - len(users["built"])
    for row in rest:
        assert not set(FIXTURE_MARKERS) & set(row["fixtures"]), row
        assert row["id"] not in KNOWN, row


KERNEL_TESTS = [
    # a module marked kernel, its own fixtures
    "tests/test_libbpf_kernel.py::test_libbpf_version_and_library_cache",
    # the conftest kernel fixture, no build
    "tests/test_run.py::test_verifier_failure_names_program_and_log",
    # the kernel fixture and every example built
    "tests/test_run.py::test_bootstrap_json_decodes_exec",
]


@pytest.mark.kernel
@pytest.mark.parametrize(("how", "message"), [
    ("missing-symbol", "lacks bpf_no_such_function_for_the_test: ecc needs libbpf 1.x"),
    ("bad-prototype", "TypeError: item 3 in _argtypes_ has no from_param method"),
])
def test_broken_binding_fails_kernel_tests(tmp_path: Path, how: str, message: str) -> None:
    """With one prototype of the ctypes table broken, kernel tests error (with the
    binding's own message); they do not skip as if libbpf were absent."""
    (tmp_path / "ecc_test_break.py").write_text(BREAK_PLUGIN)
    result, outcomes = pytest_child(["-p", "ecc_test_break", *KERNEL_TESTS], tmp_path,
                                    env={"ECC_TEST_BREAK_LIBBPF": how, ENV_REQUIRE: ""})
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(outcomes) == len(KERNEL_TESTS), outcomes
    for name, outcome in outcomes.items():
        assert outcome.startswith("error: "), (name, outcome)
        assert message in outcome, (name, outcome)


@pytest.mark.kernel
def test_unbroken_binding_passes_the_same_kernel_tests(tmp_path: Path) -> None:
    """The control: without the plugin, the same (cheap) tests pass."""
    result, outcomes = pytest_child(KERNEL_TESTS[:2], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted(outcomes.values()) == ["passed", "passed"]


def test_require_turns_skips_into_failures(tmp_path: Path) -> None:
    """require_or_skip and the `needs` marker skip, naming the capability; ECC_REQUIRE
    makes the listed ones fail, and any skip naming neither a kernel limit nor an
    unlisted capability fail too."""
    (tmp_path / "test_skips.py").write_text(SKIPS)
    args = ["-p", "conftest", str(tmp_path / "test_skips.py")]
    _, free = pytest_child(args, tmp_path, env={ENV_REQUIRE: ""}, cwd=tmp_path)
    assert free == {
        "test_plain_skip": "skipped: no reason that names a capability",
        "test_kernel_limit": "skipped: kernel limit: kprobes are compiled out of this kernel",
        "test_podman_absent": "skipped: missing capability podman: podman not installed",
        "test_ruff_absent": "skipped: missing capability ruff: ruff not installed",
        "test_unknown_capability":
            "error: failed on setup with \"ValueError: unknown capability "
            "'no-such-tool-here'; add it to CAPABILITIES\"",
    }
    _, strict = pytest_child(args, tmp_path, env={ENV_REQUIRE: "ruff,bpftool"}, cwd=tmp_path)
    assert strict["test_kernel_limit"] == free["test_kernel_limit"]
    assert strict["test_podman_absent"] == free["test_podman_absent"]  # not required
    assert strict["test_ruff_absent"] == (
        "failed: Failed: ruff not installed (ECC_REQUIRE lists 'ruff': not a skip)")
    assert strict["test_plain_skip"] == (
        "failed: skipped while ECC_REQUIRE is set, for a reason that names neither a kernel "
        "limit nor a capability it leaves out: no reason that names a capability")


def test_required_tool_absent_from_path_fails(tmp_path: Path) -> None:
    """A real capability: with ruff off PATH, the lint test skips naming it, and fails
    when ECC_REQUIRE lists ruff."""
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if d and not (Path(d) / "ruff").exists())
    assert shutil.which("ruff", path=path) is None
    node = "tests/test_layout.py::test_ruff_clean"
    _, free = pytest_child([node], tmp_path, env={"PATH": path, ENV_REQUIRE: ""})
    reason = "ruff not installed (pip install -e .[dev])"
    assert free == {"test_ruff_clean": f"skipped: missing capability ruff: {reason}"}
    _, strict = pytest_child([node], tmp_path, env={"PATH": path, ENV_REQUIRE: "ruff"})
    # the marker is checked before any fixture: an error of the setup
    assert strict == {"test_ruff_clean": f'error: failed on setup with "Failed: {reason} '
                                         f"(ECC_REQUIRE lists 'ruff': not a skip)\""}


def test_unknown_required_capability_is_a_usage_error(tmp_path: Path) -> None:
    result, outcomes = pytest_child(["tests/test_layout.py"], tmp_path,
                                    env={ENV_REQUIRE: "clang,clnag"})
    assert result.returncode == 4  # pytest's usage error
    assert "ECC_REQUIRE names unknown capabilities: clnag; known: clang, " in result.stderr
    assert outcomes == {}


def test_ci_requires_every_capability_and_runs_the_readme_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    listed = re.findall(r"^export ECC_REQUIRE=([\w,-]+)$", script, re.M)
    assert len(listed) == 1, listed
    assert sorted(listed[0].split(",")) == sorted(CAPABILITIES)
    command = "bash scripts/install.sh --dev && python3 -m pytest -q"
    assert f"    {command}\n" in (ROOT / "README.md").read_text()
    assert command in script
