"""The project's shape: one importer per outside dependency, and lint/type checks clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs

ROOT = Path(__file__).resolve().parent.parent
OWNERS = {
    "click": {"ecc/cli.py"},
    "elftools": {"ecc/elf.py"},
    "ctypes": {"ecc/run/libbpf.py"},
    "subprocess": {"ecc/compiler/tools.py"},
    "oras": {"ecc/oci.py"},      # the OCI registry client
    "requests": {"ecc/oci.py"},  # only to catch the errors oras lets through
    "urllib.request": {"ecc/run/fetch.py"},
    "docker": {"ecc/docker.py"},  # the Docker Engine API client (ecc build --docker)
    "jinja2": {"ecc/init.py"},    # the project templates (ecc init)
}


@pytest.mark.parametrize("module", sorted(OWNERS))
def test_one_importer_per_dependency(module: str) -> None:
    pattern = re.compile(rf"^\s*(?:import|from)\s+{module}\b", re.M)
    importers = {str(p.relative_to(ROOT)) for p in (ROOT / "ecc").rglob("*.py")
                 if pattern.search(p.read_text())}
    assert importers <= OWNERS[module], f"{module} imported by {importers - OWNERS[module]}"


def test_readers_and_loader_do_not_import_each_other() -> None:
    for path in (ROOT / "ecc" / "run").rglob("*.py"):
        text = path.read_text()
        assert "from ..compiler" not in text and "ecc.compiler" not in text, path
    for path in (ROOT / "ecc" / "build").rglob("*.py"):
        assert "from ..run" not in path.read_text(), path


@needs("ruff")
def test_ruff_clean() -> None:
    result = subprocess.run(["ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@needs("mypy")
def test_mypy_strict_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "ecc"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
