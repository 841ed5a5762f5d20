"""Shared test set-up: pytest options, capability checks, and builds shared by many tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/cases/*/expected.json from the actual results")


def have_clang() -> bool:
    return any(shutil.which(c) for c in ("clang-19", "clang-18", "clang-17", "clang"))


def kernel_skip_reason() -> str | None:
    """Why BPF cannot be loaded here, or None when it can."""
    if os.geteuid() != 0:
        return "loading BPF needs root"
    try:
        from ecc.run.libbpf import load_libbpf

        load_libbpf()
    except Exception as exc:  # noqa: BLE001 - any failure means: no libbpf here
        return f"libbpf.so.1 not usable: {exc}"
    return None


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


requires_clang = pytest.mark.skipif(not have_clang(), reason="clang with the BPF target not found")


@pytest.fixture(scope="session")
def kernel() -> Iterator[None]:
    reason = kernel_skip_reason()
    if reason:
        pytest.skip(reason)
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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> dict[str, object]:
    """Every golden case (so every example) built once, shared by golden, kernel and BTF tests."""
    if not have_clang():
        pytest.skip("clang with the BPF target not found")
    from builds import all_units, build_all

    return build_all(all_units(CASES), tmp_path_factory.mktemp("built"))  # type: ignore[return-value]
